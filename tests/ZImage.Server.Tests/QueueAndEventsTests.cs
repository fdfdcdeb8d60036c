using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Server.Tests.Infrastructure;

namespace ZImage.Server.Tests;

public sealed class QueueAndEventsTests
{
    private static object Small(long seed) => new { prompt = "p", size = "32x32", steps = 2, seed };

    [Fact]
    public async Task FullQueue_Is503_WithRetryAfter_InOpenAiErrorShape()
    {
        var engine = new FakeEngine();
        await using var factory = new FakeServerFactory(engine, capacity: 1);
        using var client = factory.CreateClient();
        var gate = new StageGate("text-encoder");
        engine.Gate = gate;
        var running = client.PostAsJsonAsync(Wire.Generations, Small(1));
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var waiting = client.PostAsJsonAsync(Wire.Generations, Small(2));
        await WaitUntil(() => factory.Services.GetRequiredService<ServerEvents>().MemoryMessage() is not null && QueueLength(factory) == 1);

        var (status, body, response) = await Wire.PostAsync(client, Small(3));
        Assert.Equal(503, status);
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After is missing");
        var e = Wire.Error(body);
        Assert.Equal("queue_full", e.GetProperty("code").GetString());
        Assert.Equal("server_error", e.GetProperty("type").GetString());

        gate.Release.Set();
        Assert.Equal(HttpStatusCode.OK, (await running).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await waiting).StatusCode);
    }

    [Fact]
    public async Task Events_StreamQueuePositions_Progress_Memory_AndPreviewPngs()
    {
        var engine = new FakeEngine();
        await using var factory = new FakeServerFactory(engine);
        using var client = factory.CreateClient();
        var gate = new StageGate("text-encoder");
        engine.Gate = gate;

        using var stream = await client.GetStreamAsync("/v1/events");
        using var reader = new StreamReader(stream);
        var events = new List<(string Name, JsonElement Data)>();
        async Task<(string Name, JsonElement Data)> Next()
        {
            string? name = null;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal) && name is not null)
                {
                    var e = (name, JsonDocument.Parse(line[6..]).RootElement);
                    events.Add(e);
                    return e;
                }
            }
            throw new EndOfStreamException();
        }
        Assert.Equal("memory", (await Next()).Name);
        Assert.Equal("queue", (await Next()).Name);

        var first = PostAs(client, "page-a", Small(1));
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var second = PostAs(client, "page-b", Small(2));
        // Read until page-b is seen waiting at position 1 behind page-a.
        while (true)
        {
            var (name, data) = await Next().WaitAsync(TimeSpan.FromSeconds(30));
            if (name == "queue" && Running(data) is not null
                && data.GetProperty("waiting").EnumerateArray().Any(w => w.GetProperty("client").GetString() == "page-b" && w.GetProperty("position").GetInt32() == 1))
            {
                Assert.Equal("page-a", Running(data));
                break;
            }
        }
        gate.Release.Set();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);
        // Both jobs' steps, memory snapshots while running, and previews as PNG (the yellow state needs the real engine: see the browser test).
        while (!(events.Count(e => e.Name == "progress" && e.Data.GetProperty("stage").GetString() == "Completed") == 2
                 && events.Any(e => e.Name == "queue" && Running(e.Data) is null && e.Data.GetProperty("waiting").GetArrayLength() == 0)))
            await Next().WaitAsync(TimeSpan.FromSeconds(30));

        var steps = events.Where(e => e.Name == "progress" && e.Data.GetProperty("client").GetString() == "page-a" && e.Data.GetProperty("stage").GetString() == "Denoising")
            .Select(e => e.Data.GetProperty("step").GetInt32()).ToList();
        Assert.Contains(2, steps);
        Assert.Contains(events, e => e.Name == "memory");
        var preview = events.First(e => e.Name == "preview").Data.GetProperty("png").GetString()!;
        Assert.Equal([137, 80, 78, 71], Convert.FromBase64String(preview)[..4]);
    }

    // The client of the running job, or null (the key is left out when nothing runs).
    private static string? Running(JsonElement queue) =>
        queue.TryGetProperty("running", out var r) && r.ValueKind == JsonValueKind.Object ? r.GetProperty("client").GetString() : null;

    private static Task<HttpResponseMessage> PostAs(HttpClient client, string page, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Wire.Generations) { Content = JsonContent.Create(body) };
        request.Headers.Add("X-ZImage-Client", page);
        return client.SendAsync(request);
    }

    private static int QueueLength(FakeServerFactory factory) =>
        factory.Services.GetRequiredService<ZImage.Runtime.Pipeline.ImagePipeline>().GetHealth().Data["queued"] is int n ? n : -1;

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The condition was never met.");
            await Task.Delay(10);
        }
    }
}
