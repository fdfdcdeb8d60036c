using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server;

/// <summary>
/// The server-sent events hub behind <c>GET /v1/events</c>: <c>memory</c> (the three-segment snapshot, on every
/// change seen by a 200 ms sampler and with every progress report), <c>queue</c> (the running job and every waiting
/// job's position), <c>progress</c> (stage and step i/N) and <c>preview</c> (the step preview as PNG data). Each
/// subscriber has a bounded channel that drops its oldest events if it cannot keep up.
/// </summary>
public sealed class ServerEvents(IImagePipeline pipeline, ILogger<ServerEvents> logger) : BackgroundService
{
    private readonly object _gate = new();
    private readonly List<Channel<string>> _subscribers = [];
    private readonly Dictionary<string, Job> _jobs = [];
    private MemorySnapshot? _lastMemory;
    private LoadProgress? _lastLoad;
    private long _nextJob;
    private double _lastRunSeconds = 1;

    /// <summary>A generation as the events see it; it is the <see cref="IProgress{T}"/> handed to the pipeline.</summary>
    public sealed class Job : IProgress<GenerationProgress>
    {
        private readonly ServerEvents _hub;
        private readonly DateTime _created = DateTime.UtcNow;

        internal Job(ServerEvents hub, string id, string client) { _hub = hub; Id = id; Client = client; }

        /// <summary>The job id (in the response and every event of the job).</summary>
        public string Id { get; }
        /// <summary>The page that submitted it (its <c>X-ZImage-Client</c> header), or empty.</summary>
        public string Client { get; }
        /// <summary>While waiting, 1 = next; 0 once running.</summary>
        public int Position { get; private set; } = -1;
        /// <summary>Whether it runs on the device now.</summary>
        public bool Running { get; private set; }

        /// <inheritdoc />
        // Called on the device thread (and, for queue positions, on the submitting thread); the hub serialises.
        public void Report(GenerationProgress value)
        {
            bool queueChanged;
            lock (_hub._gate)
            {
                bool running = value.Stage != GenerationStage.Queued;
                int position = running ? 0 : value.QueuePosition;
                queueChanged = running != Running || position != Position;
                Running = running;
                Position = position;
            }
            if (queueChanged) _hub.PublishQueue();
            if (value.Stage != GenerationStage.Queued)
            {
                _hub.Publish("progress", new
                {
                    job = Id, client = Client, stage = value.Stage, step = value.Step, total_steps = value.TotalSteps,
                    image = value.ImageIndex, image_count = value.ImageCount, elapsed_ms = (long)value.Elapsed.TotalMilliseconds,
                });
                _hub.PublishMemory(force: true);
            }
            if (value.Preview is { } preview)
                _hub.Publish("preview", new { job = Id, client = Client, step = value.Step, png = Convert.ToBase64String(PngMetadata.Encode(preview, [])) });
        }

        /// <summary>Removes the job from the queue state.</summary>
        public void Finish()
        {
            lock (_hub._gate)
            {
                _hub._jobs.Remove(Id);
                if (Running) _hub._lastRunSeconds = (DateTime.UtcNow - _created).TotalSeconds;
            }
            _hub.PublishQueue();
            _hub.PublishMemory(force: true);
        }
    }

    /// <summary>Registers a new job submitted by <paramref name="client"/>.</summary>
    public Job NewJob(string client)
    {
        lock (_gate)
        {
            var job = new Job(this, "job-" + (++_nextJob).ToString(System.Globalization.CultureInfo.InvariantCulture), client);
            _jobs[job.Id] = job;
            return job;
        }
    }

    /// <summary>Seconds a refused client should wait: the last generation's duration, at least 1.</summary>
    public int RetryAfterSeconds() { lock (_gate) return Math.Max(1, (int)Math.Ceiling(_lastRunSeconds)); }

    /// <summary>The <c>/v1/memory</c> body: the snapshot, its state and the queue.</summary>
    public object MemoryMessage()
    {
        var s = pipeline.Memory;
        return new
        {
            total_bytes = s.TotalBytes, system_reserve_bytes = s.SystemReserveBytes, base_bytes = s.BaseBytes,
            inference_limit_bytes = s.InferenceLimitBytes, inference_in_use_bytes = s.InferenceInUseBytes,
            buffer_bytes = s.BufferBytes, buffer_in_use_bytes = s.BufferInUseBytes, free_bytes = s.FreeBytes,
            device_used_bytes = s.DeviceUsedBytes, out_of_memory_seen = s.OutOfMemorySeen, state = s.State,
            model = pipeline.Model.ModelName, device = pipeline.Model.DeviceName, demo_model = pipeline.Model.IsDemoModel,
            demo_notice = pipeline.Model.IsDemoModel ? ServerInfo.DemoNotice : null,
            pipeline_state = pipeline.State,
            load = pipeline.LastLoadProgress is { } l
                ? new { stage = l.Stage, completed = l.CompletedStages, total = LoadProgress.TotalStages, resident_bytes = l.ResidentBytes, elapsed_ms = (long)l.Elapsed.TotalMilliseconds }
                : null,
        };
    }

    private object QueueMessage()
    {
        lock (_gate)
        {
            var running = _jobs.Values.FirstOrDefault(j => j.Running);
            return new
            {
                running = running is null ? null : new { job = running.Id, client = running.Client },
                waiting = _jobs.Values.Where(j => !j.Running && j.Position > 0).OrderBy(j => j.Position)
                    .Select(j => new { job = j.Id, client = j.Client, position = j.Position }).ToList(),
            };
        }
    }

    private void PublishQueue() => Publish("queue", QueueMessage());

    private void PublishMemory(bool force)
    {
        var s = pipeline.Memory;
        var load = pipeline.LastLoadProgress;
        lock (_gate)
        {
            if (!force && s == _lastMemory && load == _lastLoad) return;
            _lastMemory = s;
            _lastLoad = load;
        }
        Publish("memory", MemoryMessage());
    }

    private void Publish(string name, object payload)
    {
        string message = $"event: {name}\ndata: {JsonSerializer.Serialize(payload, ServerJson.Options)}\n\n";
        lock (_gate)
            foreach (var c in _subscribers) c.Writer.TryWrite(message);
    }

    /// <summary>Streams events to <paramref name="context"/> until the client goes away.</summary>
    public async Task StreamAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        context.Response.Headers.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        lock (_gate) _subscribers.Add(channel);
        try
        {
            var first = $"retry: 1000\n\nevent: memory\ndata: {JsonSerializer.Serialize(MemoryMessage(), ServerJson.Options)}\n\nevent: queue\ndata: {JsonSerializer.Serialize(QueueMessage(), ServerJson.Options)}\n\n";
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(first), ct);
            await context.Response.Body.FlushAsync(ct);
            await foreach (var message in channel.Reader.ReadAllAsync(ct))
            {
                await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(message), ct);
                await context.Response.Body.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
        }
        finally
        {
            lock (_gate) _subscribers.Remove(channel);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try { PublishMemory(force: false); }
                catch (Exception e) when (e is not OperationCanceledException) { ServerLog.SamplerFailed(logger, e); }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}

internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Warning, "The memory sampler failed")]
    public static partial void SamplerFailed(ILogger logger, Exception exception);
}
