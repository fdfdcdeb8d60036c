using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// The <see cref="IImagePipeline"/> over an <see cref="IGenerationEngine"/>: presets and guards, exact plans on a
/// planning twin of the engine, admission against the inference segment, a serial FIFO device queue, progress,
/// cancellation, per-stage timings and peaks, a baseline check after every generation, logs and metrics.
/// </summary>
public sealed class ImagePipeline : IImagePipeline, IDisposable
{
    private readonly IGenerationEngine _engine;
    private readonly ZImageOptions _options;
    private readonly ILogger _logger;
    private readonly ZImageMetrics? _metrics;
    private readonly SerialDeviceQueue _queue;
    private readonly object _planLock = new();
    private readonly object _startLock = new();
    private IGenerationEngine? _planner;
    private long _plannerBaseBytes;
    private Task? _startTask;
    private volatile CarveUp? _carveUp;
    private volatile BudgetGuard? _guard;
    private CarveUp? _plannedCarveUp; // before StartAsync: base from the planner's weights
    private long _baselineAllocated;
    private long _lastRetries;
    private long _lastDriftBytes;
    private bool _disposed;

    /// <summary>The device-memory split the pipeline admits against.</summary>
    private sealed record CarveUp(long DeviceBytes, long SystemReserveBytes, long BaseBytes, long InferenceBytes, long BufferBytes);

    /// <summary>
    /// The pipeline for <paramref name="options"/> without a DI container: the checkpoint in
    /// <see cref="ZImageOptions.ModelDirectory"/> (or the tiny demo model) on the device the options select. Call
    /// <see cref="StartAsync(IProgress{LoadProgress}, CancellationToken)"/> (or just generate) and dispose it when done.
    /// A DI host uses <see cref="ZImageServiceCollectionExtensions.AddZImage(Microsoft.Extensions.DependencyInjection.IServiceCollection)"/> instead.
    /// </summary>
    /// <param name="options">The options (validated like the DI registration does).</param>
    /// <param name="loggerFactory">Where the pipeline logs; null for none.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">An option is out of range.</exception>
    public static ImagePipeline Create(ZImageOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var validation = new ZImageOptionsValidator().Validate(null, options);
        if (validation.Failed) throw new Microsoft.Extensions.Options.OptionsValidationException(nameof(ZImageOptions), typeof(ZImageOptions), validation.Failures);
        var engine = Engine.ZImageEngineFactory.Create(options);
        try
        {
            return new ImagePipeline(engine, options, loggerFactory?.CreateLogger<ImagePipeline>());
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Creates a pipeline over <paramref name="engine"/> (which it owns and disposes).</summary>
    public ImagePipeline(IGenerationEngine engine, ZImageOptions options, ILogger<ImagePipeline>? logger = null, ZImageMetrics? metrics = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = metrics;
        _queue = new SerialDeviceQueue(options.Queue.Capacity, options.Queue.FullPolicy);
        _systemReserveBytes = SystemReserve(options.Budget, engine.GetMemoryStats());
        _metrics?.ObserveMemory(GaugeValues);
    }

    /// <inheritdoc />
    public EngineDescription Model => _engine.Description;

    /// <inheritdoc />
    public bool IsStarted => _startTask is { IsCompletedSuccessfully: true };

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken = default) => StartAsync(null, cancellationToken);

    /// <inheritdoc />
    public Task StartAsync(IProgress<LoadProgress>? progress, CancellationToken cancellationToken = default)
    {
        lock (_startLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_startTask is null || _startTask.IsFaulted || _startTask.IsCanceled)
                _startTask = _queue.RunAsync(ct => { LoadRecordingFailure(progress, ct); return true; }, null, cancellationToken);
            return _startTask;
        }
    }

    /// <inheritdoc />
    public PipelineState State => Volatile.Read(ref _loading) ? PipelineState.Starting : _startTask switch
    {
        null => PipelineState.NotStarted,
        { IsCompletedSuccessfully: true } => PipelineState.Started,
        { IsFaulted: true } or { IsCanceled: true } => PipelineState.Failed,
        _ => PipelineState.Starting,
    };

    /// <inheritdoc />
    public LoadProgress? LastLoadProgress => Volatile.Read(ref _lastLoadProgress);
    private LoadProgress? _lastLoadProgress;

    /// <summary>
    /// Why the last start failed or was cancelled (null while none failed, or once a start succeeded). The engine rolls
    /// a failed load back, so the next <see cref="StartAsync(CancellationToken)"/> or <see cref="GenerateAsync"/> retries it.
    /// </summary>
    public Exception? StartFailure => Volatile.Read(ref _startFailure);
    private Exception? _startFailure;

    // True while the device thread runs a load: the load may start (and report progress) before StartAsync has
    // stored its task, so State cannot be read from the task alone.
    private bool _loading;

    private void LoadRecordingFailure(IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        Volatile.Write(ref _loading, true);
        try
        {
            Load(progress, ct);
            Volatile.Write(ref _startFailure, null);
        }
        catch (Exception e)
        {
            Volatile.Write(ref _startFailure, e);
            throw;
        }
        finally
        {
            Volatile.Write(ref _loading, false);
        }
    }

    private void Load(IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        long t0 = Stopwatch.GetTimestamp();
        // Synchronous, in order, on the device thread: the caller's progress sees each stage exactly once.
        void Report(LoadStage stage)
        {
            var report = new LoadProgress(stage, (int)stage, _engine.GetMemoryStats().ReservedBytes, Stopwatch.GetElapsedTime(t0));
            Volatile.Write(ref _lastLoadProgress, report);
            progress?.Report(report);
        }
        // The guard starts with the planned base (the planner loads the same weights on a simulated device with the
        // same allocator policy), then takes the measured one; a layout that does not fit fails the start, typed.
        var planned = CurrentCarveUp();
        var guard = new BudgetGuard(new BudgetOptions
        {
            TotalBytes = planned.DeviceBytes,
            SystemReserveBytes = planned.SystemReserveBytes,
            BaseBytes = planned.BaseBytes,
            InferenceBytes = planned.InferenceBytes,
            BufferBytes = planned.BufferBytes,
        });
        _engine.Load(guard, Report, ct);
        Report(LoadStage.Measuring);
        _engine.EmptyCache();
        var stats = _engine.GetMemoryStats();
        guard.SetBase(stats.ReservedBytes);
        _baselineAllocated = stats.AllocatedBytes;
        _lastRetries = stats.AllocRetries;
        var carve = planned with { BaseBytes = stats.ReservedBytes };
        _guard = guard;
        _carveUp = carve;
        Report(LoadStage.Ready);
        Log.PipelineStarted(_logger, _engine.Description.ModelName, _engine.Description.DeviceName, stats.WeightBytes, (long)Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        Log.CarveUp(_logger, carve.DeviceBytes, carve.SystemReserveBytes, carve.BaseBytes, carve.InferenceBytes, carve.BufferBytes,
            carve.DeviceBytes - carve.SystemReserveBytes - carve.BaseBytes - carve.InferenceBytes - carve.BufferBytes);
    }

    /// <inheritdoc />
    public MemorySnapshot Memory
    {
        get
        {
            if (_guard is { } g) return g.Snapshot;
            var c = CurrentCarveUp();
            long yellowEnd = c.SystemReserveBytes + c.BaseBytes + c.InferenceBytes;
            long free = c.DeviceBytes - yellowEnd - c.BufferBytes;
            var state = yellowEnd > c.DeviceBytes ? MemoryState.Red : free < 0 ? MemoryState.Gray : MemoryState.Green;
            return new MemorySnapshot(c.DeviceBytes, c.SystemReserveBytes, c.BaseBytes, c.InferenceBytes, 0, c.BufferBytes, Math.Max(0, free), 0, null, false, state);
        }
    }

    /// <summary>The budget guard (null until <see cref="StartAsync(CancellationToken)"/> finished).</summary>
    public BudgetGuard? Budget => _guard;

    /// <inheritdoc />
    public MemoryPlan Plan(GenerationRequest request)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var resolved = Resolve(request, countMetrics: false);
        return PlanResolved(resolved.Parameters, withAlternatives: true);
    }

    /// <inheritdoc />
    public async Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(request);
        long submitted = Stopwatch.GetTimestamp();
        await StartAsync(cancellationToken).ConfigureAwait(false);
        var resolved = Resolve(request, countMetrics: true);
        var plan = PlanResolved(resolved.Parameters, withAlternatives: true);
        if (!plan.Fits)
            (resolved, plan) = ApplyOverBudgetPolicy(request, resolved, plan);

        var p = resolved.Parameters;
        try
        {
            return await _queue.RunAsync(
                ct => RunOnDevice(resolved, plan, progress, submitted, ct),
                pos => progress?.Report(new GenerationProgress(GenerationStage.Queued, pos, 0, p.Steps, 0, p.NumImages, Stopwatch.GetElapsedTime(submitted))),
                cancellationToken).ConfigureAwait(false);
        }
        catch (PipelineBusyException e)
        {
            _metrics?.Rejected("busy");
            Log.RequestRejected(_logger, "busy", e.Message);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _metrics?.GenerationFinished("cancelled");
            throw;
        }
    }

    private ResolvedRequest Resolve(GenerationRequest request, bool countMetrics)
    {
        try
        {
            var resolved = RequestResolver.Resolve(request, _options, _engine.Description.IsDemoModel, _engine.Description.ModelName);
            if (Models.Lora.LoraSpec.Describe(_engine.Loras) is { } loras) resolved = resolved with { Parameters = resolved.Parameters with { Loras = loras } };
            if (resolved.Edit is not null && !_engine.SupportsImageEditing)
                throw new InvalidGenerationRequestException(nameof(request.InitImage), "given", "an engine with image editing enabled (ZImageOptions.ImageEditing = true loads the VAE encoder)");
            if (resolved.StepsOrGuidanceReset && countMetrics)
            {
                _metrics?.Reset();
                Log.RequestReset(_logger, resolved.Warnings[0]);
            }
            if (_engine.Description.IsDemoModel)
                resolved.Warnings.Add("tiny random-weight demo model: this shows the pipeline and the memory guard, not image quality.");
            return resolved;
        }
        catch (InvalidGenerationRequestException e) when (countMetrics)
        {
            _metrics?.Rejected("range");
            Log.RequestRejected(_logger, "range", e.Message);
            throw;
        }
    }

    private (ResolvedRequest, MemoryPlan) ApplyOverBudgetPolicy(GenerationRequest request, ResolvedRequest resolved, MemoryPlan plan)
    {
        if (_options.Limits.OverBudget == OverBudgetPolicy.Downscale && resolved.InitialLatents is null && resolved.Edit is null && FindFitting(resolved.Parameters) is { } fit)
        {
            var smaller = Resolve(request with { Width = fit.Width, Height = fit.Height, Resolution = null }, countMetrics: false);
            string why = $"{resolved.Parameters.Width}x{resolved.Parameters.Height} {plan.Describe()}; ran at {fit.Width}x{fit.Height}.";
            smaller.Warnings.Insert(0, why);
            Log.RequestDownscaled(_logger, why);
            return (smaller, PlanResolved(smaller.Parameters, withAlternatives: false));
        }
        var e = new RequestExceedsBudgetException(plan);
        _metrics?.Rejected("budget");
        Log.RequestRejected(_logger, "budget", e.Message);
        throw e;
    }

    private GenerationResult RunOnDevice(ResolvedRequest resolved, MemoryPlan plan, IProgress<GenerationProgress>? progress, long submitted, CancellationToken ct)
    {
        var p = resolved.Parameters;
        var queueTime = Stopwatch.GetElapsedTime(submitted);
        Log.GenerationStarted(_logger, p.Width, p.Height, p.Steps, p.Guidance, p.Seed, plan.RequestPeakBytes, (long)queueTime.TotalMilliseconds);
        var stage = GenerationStage.EncodingPrompt;
        long stepStart = Stopwatch.GetTimestamp();
        void Report(GenerationStage s, int step, int image, RgbImage? preview)
        {
            stage = s;
            if (s == GenerationStage.Denoising)
            {
                if (step > 0) _metrics?.StepDuration(Stopwatch.GetElapsedTime(stepStart));
                stepStart = Stopwatch.GetTimestamp();
            }
            progress?.Report(new GenerationProgress(s, 0, step, p.Steps, image, p.NumImages, Stopwatch.GetElapsedTime(submitted), preview));
        }

        RunOutput output;
        try
        {
            // Serial device: nothing else holds workspace now, so this is the plan's static verdict made by the guard.
            _guard?.EnsureAdmitted(plan.RequestPeakBytes, "generation");
            output = GenerationRunner.Run(_engine, p, resolved.InitialLatents, MaxPromptTokens, null, Report, _options.EnablePreviews, ct, resolved.Edit);
            _metrics?.GenerationFinished("completed");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Log.GenerationCancelled(_logger, stage.ToString());
            throw;
        }
        catch (DeviceOutOfMemoryException e)
        {
            // The request failed, not the device: the cache was released by the allocator's retry path.
            _guard?.ResetOutOfMemory();
            _metrics?.OutOfMemory();
            _metrics?.GenerationFinished("failed");
            Log.DeviceOutOfMemory(_logger, stage.ToString(), e.Message);
            throw;
        }
        catch (Exception e)
        {
            _metrics?.GenerationFinished("failed");
            Log.GenerationFailed(_logger, e, stage.ToString());
            throw;
        }
        finally
        {
            AfterGeneration();
        }

        var planned = plan.Stages.ToDictionary(s => s.Name, s => s.PeakBytes, StringComparer.Ordinal);
        var stages = output.Stages.Select(s => new StageReport(s.Name, s.Duration, planned.GetValueOrDefault(s.Name), s.PeakBytes)).ToList();
        progress?.Report(new GenerationProgress(GenerationStage.Completed, 0, p.Steps, p.Steps, p.NumImages - 1, p.NumImages, Stopwatch.GetElapsedTime(submitted)));
        var total = Stopwatch.GetElapsedTime(submitted);
        Log.GenerationCompleted(_logger, p.Width, p.Height, p.Steps, p.Seed, (long)total.TotalMilliseconds, stages.Count == 0 ? 0 : stages.Max(s => s.MeasuredPeakBytes));
        return new GenerationResult(output.Images, p, resolved.Warnings, stages, queueTime, total, plan);
    }

    // The workspace must be back in the pool: anything still allocated beyond the weights is a leak.
    private void AfterGeneration()
    {
        var stats = _engine.GetMemoryStats();
        Interlocked.Exchange(ref _lastDriftBytes, stats.AllocatedBytes - _baselineAllocated);
        if (stats.AllocatedBytes != _baselineAllocated)
        {
            _metrics?.Drift();
            Log.MemoryDrift(_logger, stats.AllocatedBytes, _baselineAllocated, stats.AllocatedBytes - _baselineAllocated);
        }
        _metrics?.AllocatorRetries(stats.AllocRetries - _lastRetries);
        _lastRetries = stats.AllocRetries;
        if (_options.TrimAfterGeneration)
        {
            _engine.EmptyCache();
            Log.CacheTrimmed(_logger, stats.ReservedBytes, _engine.GetMemoryStats().ReservedBytes);
        }
    }

    /// <summary>Templated prompts are right-truncated to this many tokens (Z-Image's max_sequence_length).</summary>
    public const int MaxPromptTokens = 512;

    private MemoryPlan PlanResolved(GenerationParameters p, bool withAlternatives)
    {
        var (stages, uploaded, host) = PlanStagesWithUploads(p);
        var carve = CurrentCarveUp();
        var plan = new MemoryPlan
        {
            DeviceBytes = carve.DeviceBytes,
            SystemReserveBytes = carve.SystemReserveBytes,
            BaseBytes = carve.BaseBytes,
            InferenceBytes = carve.InferenceBytes,
            BufferBytes = carve.BufferBytes,
            Stages = stages,
            Strategy = _engine.Strategy,
            HostBytes = host,
            UploadedBytesPerStep = uploaded,
        };
        if (!plan.Fits && withAlternatives)
            plan = plan with { FittingAlternatives = Alternatives(p, plan) };
        return plan;
    }

    // The stages, and the bytes the streamed DiT blocks upload per denoising step (measured on the planner's ring).
    private (IReadOnlyList<StagePlan>, long, long) PlanStagesWithUploads(GenerationParameters p)
    {
        lock (_planLock)
        {
            var planner = Planner();
            long te = StreamedUploads(planner);
            var stages = PlanStages(p, null);
            long total = StreamedUploads(planner) - te;
            // Host memory: the streamed weights, the rings' staging buffers and the prompt-embedding cache's capacity.
            long host = planner.Streaming.HostBytes + planner.Streaming.StagingBytes + (planner is Engine.ZImageEngine z ? z.PromptCacheCapacityBytes : 0);
            return (stages, p.Steps * p.NumImages == 0 ? 0 : total / (p.Steps * p.NumImages), host);
        }
    }

    private static long StreamedUploads(IGenerationEngine planner) =>
        planner is Engine.ZImageEngine z ? z.TransformerStreaming.UploadedBytes : 0;

    private IReadOnlyList<StagePlan> PlanStages(GenerationParameters p, (int[], int[]?)? ids)
    {
        lock (_planLock)
        {
            var planner = Planner();
            planner.EmptyCache();
            var run = GenerationRunner.Run(planner, p, null, MaxPromptTokens, ids, null, false, CancellationToken.None);
            return run.Stages.Select(s => new StagePlan(s.Name, s.PeakBytes)).ToList();
        }
    }

    // The planner's device is effectively unbounded so that it measures the true peak of requests that do not fit;
    // the carve-up, not the simulated capacity, decides admission.
    private IGenerationEngine Planner()
    {
        if (_planner is null)
        {
            var planner = _engine.CreatePlanner(1L << 50);
            planner.Load(null, CancellationToken.None);
            planner.EmptyCache();
            _plannerBaseBytes = planner.GetMemoryStats().ReservedBytes;
            _planner = planner;
        }
        return _planner;
    }

    // Detected once, at construction: later, our own weights and cache would count as "used by others".
    private readonly long _systemReserveBytes;

    private static long SystemReserve(MemoryBudgetOptions budget, EngineMemoryStats stats)
    {
        if (budget.SystemReserve is { Length: > 0 } configured) return ByteSize.Parse(configured);
        if (budget.DeviceMemory is { Length: > 0 } || stats.DeviceFreeBytes < 0)
            return ByteSize.Parse(MemoryBudgetOptions.DefaultPlanningSystemReserve);
        return Math.Max(0, stats.DeviceTotalBytes - stats.DeviceFreeBytes - stats.ReservedBytes);
    }

    private CarveUp CurrentCarveUp()
    {
        if (_carveUp is { } c) return c;
        lock (_planLock) return _plannedCarveUp ??= ComputeCarveUp(null);
    }

    private CarveUp ComputeCarveUp(long? measuredBase)
    {
        var b = _options.Budget;
        long device = b.DeviceMemory is { Length: > 0 } d ? ByteSize.Parse(d) : _engine.GetMemoryStats().DeviceTotalBytes;
        long reserve = _systemReserveBytes;
        long buffer = ByteSize.Parse(b.Buffer);
        long baseBytes;
        if (measuredBase is { } m) baseBytes = m;
        else lock (_planLock) { Planner(); baseBytes = _plannerBaseBytes; }
        long inference;
        if (b.Inference is { Length: > 0 } inf)
            inference = ByteSize.Parse(inf);
        else
        {
            // The largest request the host allows: the sizing size, with CFG and two full-length prompts; on engines that
            // edit images, as an inpaint run (its encode stage, and its image/noise/mask latents held through the steps).
            var sizing = new GenerationParameters("", "", GenerationMode.Standard, b.SizingWidth, b.SizingHeight, 1, 1f, 1f, 0f, 0, 1, false, "")
            {
                Strength = _engine.SupportsImageEditing ? 1f : null,
                MaskGiven = _engine.SupportsImageEditing,
            };
            var full = new int[MaxPromptTokens];
            long peak = PlanStages(sizing, (full, full)).Max(s => s.PeakBytes);
            inference = Math.Clamp(device - reserve - baseBytes - buffer, 0, peak);
        }
        return new CarveUp(device, reserve, baseBytes, inference, buffer);
    }

    private IReadOnlyList<string> Alternatives(GenerationParameters p, MemoryPlan plan)
    {
        var found = new List<string>();
        foreach (var (w, h, mode, guidance) in Candidates(p))
        {
            var c = p with { Width = w, Height = h, Mode = mode, Guidance = guidance, Steps = 1, NumImages = 1 };
            if (PlanStages(c, null).Max(s => s.PeakBytes) <= plan.InferenceBytes && plan.FreeBytes >= 0)
            {
                found.Add($"{w}×{h} {mode}");
                if (found.Count == 2) break;
            }
        }
        return found;
    }

    private (int Width, int Height)? FindFitting(GenerationParameters p)
    {
        var carve = CurrentCarveUp();
        foreach (var (w, h, mode, guidance) in Candidates(p))
        {
            if (mode != p.Mode) continue;
            var c = p with { Width = w, Height = h, Steps = 1, NumImages = 1 };
            if (PlanStages(c, null).Max(s => s.PeakBytes) <= carve.InferenceBytes) return (w, h);
        }
        return null;
    }

    // Smaller resolution presets, largest first; for each the request's own mode, then Turbo (no CFG) when it differs.
    private IEnumerable<(int, int, GenerationMode, float)> Candidates(GenerationParameters p)
    {
        var presets = _options.Presets;
        var sizes = Enum.GetValues<ResolutionPreset>().Select(r => presets.For(r))
            .Where(s => (long)s.Width * s.Height < (long)p.Width * p.Height || (s.Width <= p.Width && s.Height <= p.Height && (s.Width, s.Height) != (p.Width, p.Height)))
            .Select(s => (s.Width, s.Height)).Distinct().OrderByDescending(s => (long)s.Width * s.Height).ToList();
        foreach (var (w, h) in sizes)
        {
            yield return (w, h, p.Mode, p.Guidance);
            if (p.Mode != GenerationMode.Turbo || p.Guidance > 0)
                yield return (w, h, GenerationMode.Turbo, presets.Turbo.Guidance);
        }
    }

    /// <summary>The health of the device memory (used by <see cref="ZImageHealthCheck"/>).</summary>
    internal (Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus Status, string Description, IReadOnlyDictionary<string, object> Data) GetHealth()
    {
        var c = CurrentCarveUp();
        var s = _engine.GetMemoryStats();
        long free = c.DeviceBytes - c.SystemReserveBytes - c.BaseBytes - c.InferenceBytes - c.BufferBytes;
        long drift = Interlocked.Read(ref _lastDriftBytes);
        var data = new Dictionary<string, object>
        {
            ["device_bytes"] = c.DeviceBytes, ["system_reserve_bytes"] = c.SystemReserveBytes, ["base_bytes"] = c.BaseBytes,
            ["inference_bytes"] = c.InferenceBytes, ["buffer_bytes"] = c.BufferBytes, ["free_bytes"] = free,
            ["workspace_in_use_bytes"] = s.WorkspaceBytes, ["reserved_bytes"] = s.ReservedBytes, ["last_drift_bytes"] = drift,
            ["queued"] = _queue.PendingCount, ["device"] = _engine.Description.DeviceName, ["model"] = _engine.Description.ModelName,
        };
        var snapshot = Memory;
        data["state"] = snapshot.State.ToString();
        data["inference_in_use_bytes"] = snapshot.InferenceInUseBytes;
        var status = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy;
        string text = $"{_engine.Description.ModelName} on {_engine.Description.DeviceName}: {snapshot.State}, inference segment {ByteSize.Format(c.InferenceBytes)}, base {ByteSize.Format(c.BaseBytes)}";
        if (snapshot.State == MemoryState.Red || free < 0 || c.InferenceBytes == 0)
        {
            status = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy;
            text += snapshot.OutOfMemorySeen ? "; a device out-of-memory was seen" : $"; the carve-up over-commits the device by {ByteSize.Format(Math.Max(0, -free))} or leaves no inference segment";
        }
        else if (snapshot.State == MemoryState.Gray || drift != 0)
        {
            status = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded;
            text += drift != 0 ? $"; {ByteSize.Format(drift)} of workspace did not return to the pool after the last generation" : "; usage is eating into the buffer";
        }
        return (status, text, data);
    }

    private MemoryGaugeValues? GaugeValues()
    {
        if (_carveUp is not { } c) return null;
        var s = _engine.GetMemoryStats();
        return new MemoryGaugeValues(c.DeviceBytes, c.SystemReserveBytes, c.BaseBytes, c.InferenceBytes, c.BufferBytes,
            c.DeviceBytes - c.SystemReserveBytes - c.BaseBytes - c.InferenceBytes - c.BufferBytes, s.WorkspaceBytes, s.ReservedBytes);
    }

    /// <summary>Stops the device thread (queued requests fail with <see cref="ObjectDisposedException"/>) and disposes the engines.</summary>
    public void Dispose()
    {
        lock (_startLock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _queue.Dispose();
        _engine.Dispose();
        lock (_planLock) _planner?.Dispose();
    }
}
