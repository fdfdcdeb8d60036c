using Microsoft.Extensions.Diagnostics.HealthChecks;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>
/// Reports the pipeline's memory state: Unhealthy before the model is loaded, after a failed or cancelled load (with
/// the reason), or when the carve-up over-commits the
/// device or the budget is in its red state, Degraded when workspace did not return to the baseline after a
/// generation or the budget is in its gray state, Healthy otherwise. The data carries the carve-up in bytes.
/// </summary>
public sealed class ZImageHealthCheck : IHealthCheck
{
    private readonly ImagePipeline _pipeline;

    /// <summary>Creates the check for the registered pipeline.</summary>
    public ZImageHealthCheck(ImagePipeline pipeline) => _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!_pipeline.IsStarted)
        {
            return Task.FromResult(_pipeline.StartFailure is { } failure
                ? HealthCheckResult.Unhealthy($"Loading the ZImage model failed ({failure.GetType().Name}: {failure.Message}); the next start or request retries it.", failure)
                : HealthCheckResult.Unhealthy("The ZImage model is not loaded yet."));
        }
        var h = _pipeline.GetHealth();
        var data = new Dictionary<string, object>(h.Data);
        var result = h.Status switch
        {
            HealthStatus.Healthy => HealthCheckResult.Healthy(h.Description, data),
            HealthStatus.Degraded => HealthCheckResult.Degraded(h.Description, data: data),
            _ => HealthCheckResult.Unhealthy(h.Description, data: data),
        };
        return Task.FromResult(result);
    }
}
