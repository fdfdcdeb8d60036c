using Microsoft.Extensions.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>Loads the model and compiles the kernels when the host starts, so the first request pays for neither.</summary>
public sealed class ZImageHostedService : IHostedService
{
    private readonly ImagePipeline _pipeline;

    /// <summary>Creates the service for the registered pipeline.</summary>
    public ZImageHostedService(ImagePipeline pipeline) => _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => _pipeline.StartAsync(cancellationToken);

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
