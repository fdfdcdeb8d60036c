using ZImage.Server;

var app = ServerApp.Build(args);
if (app.Services.GetRequiredService<ServerInfo>().IsDemoModel)
    Console.WriteLine(ServerInfo.DemoNotice);
await app.RunAsync();

/// <summary>The entry point (public for <c>WebApplicationFactory</c>).</summary>
public partial class Program;
