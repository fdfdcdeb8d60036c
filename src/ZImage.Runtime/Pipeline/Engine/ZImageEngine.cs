using ZImage.Kernels;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Models.Scheduling;
using ZImage.Runtime.Models.TextEncoder;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Runtime.Models.Transformer;
using ZImage.Runtime.Models.Vae;
using ZImage.Runtime.Residency;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>Where an engine's weights come from.</summary>
public enum WeightSource
{
    /// <summary>A diffusers-format checkpoint folder (safetensors).</summary>
    Checkpoint,
    /// <summary>Seeded random weights built in memory (<see cref="RandomWeights"/>): the demo model.</summary>
    Random,
    /// <summary>No data: sizes only, on a simulated device (plans).</summary>
    Planning,
}

/// <summary>
/// The real <see cref="IGenerationEngine"/>: Qwen2 tokenizer → Qwen3 text encoder → Z-Image DiT with flow-match Euler
/// → FLUX VAE decoder, over ILGPU kernels and the PyTorch-policy <see cref="CachingAllocator"/> (through a
/// <see cref="BudgetedAllocator"/> when a budget is given, and a <see cref="WorkspaceTracker"/> for exact stage peaks).
/// Its planning twin runs the identical model code with <see cref="PlanningComputeOps"/> on a
/// <see cref="SimulatedDeviceBackend"/> with the same <see cref="AllocatorSettings"/>.
/// </summary>
public sealed class ZImageEngine : IGenerationEngine
{
    private readonly ZImageConfig _config;
    private readonly WeightSource _source;
    private readonly string? _checkpointDir;
    private readonly Qwen2Tokenizer? _tokenizer;
    private readonly AllocatorSettings _settings;
    private TensorDType _matrixDType;
    private ResidencyStrategy _strategy = ResidencyStrategy.Resident;
    private string? _hostMemory;
    private readonly int _randomSeed;
    // The matrix dtype of random weights: F32 for the tiny demo model, ZImageEngineOptions.WeightDType with RandomConfig.
    private readonly TensorDType _randomMatrixDType;
    private readonly ComputeDevice? _device;
    private readonly IDeviceMemoryBackend _backend;
    private readonly CachingAllocator _caching;
    private readonly IComputeOps _ops;
    private readonly FlowMatchEulerScheduler _scheduler;
    private WorkspaceTracker? _tracker;
    private ComputeContext? _ctx;
    private CheckpointFolder? _folder;
    private readonly List<IWeightProvider> _weights = new();
    private Tensor? _previewProjection, _previewBias;
    private Qwen3TextEncoder? _textEncoder;
    private Func<IDeviceAllocator, IDeviceAllocator>? _allocatorDecorator;

    // FLUX-VAE latent→RGB approximation (ComfyUI's Flux latent format): rgb = latents·F + b, for the preview only.
    private static readonly float[] FluxLatentRgbFactors =
    [
        -0.0346f, 0.0244f, 0.0681f, 0.0034f, 0.0210f, 0.0687f, 0.0275f, -0.0668f, -0.0433f, -0.0174f, 0.0160f, 0.0617f,
        0.0859f, 0.0721f, 0.0329f, 0.0004f, 0.0383f, 0.0115f, 0.0405f, 0.0861f, 0.0915f, -0.0236f, -0.0185f, -0.0259f,
        -0.0245f, 0.0250f, 0.1180f, 0.1008f, 0.0755f, -0.0421f, -0.0515f, 0.0201f, 0.0011f, 0.0428f, -0.0012f, -0.0036f,
        0.0817f, 0.0765f, 0.0749f, -0.1264f, -0.0522f, -0.1103f, -0.0280f, -0.0881f, -0.0499f, -0.1262f, -0.0982f, -0.0778f,
    ];
    private static readonly float[] FluxLatentRgbBias = [-0.0329f, -0.0718f, -0.0851f];
    private ZImageTransformer? _transformer;
    private VaeDecoder? _vae;
    private VaeEncoder? _vaeEncoder;

    private ZImageEngine(ZImageConfig config, WeightSource source, string? checkpointDir, Qwen2Tokenizer? tokenizer, AllocatorSettings settings,
        TensorDType matrixDType, int randomSeed, ComputeDevice? device, IDeviceMemoryBackend backend, IComputeOps ops, string modelName,
        TensorDType randomMatrixDType = TensorDType.F32)
    {
        _randomMatrixDType = randomMatrixDType;
        _config = config;
        _source = source;
        _checkpointDir = checkpointDir;
        _tokenizer = tokenizer;
        _settings = settings;
        _matrixDType = source == WeightSource.Random ? randomMatrixDType : matrixDType;
        _strategy = ResidencyStrategy.Resident with { Weights = FormatOf(_matrixDType) };
        _randomSeed = randomSeed;
        _device = device;
        _backend = backend;
        _ops = ops;
        _caching = new CachingAllocator(backend, settings);
        _scheduler = new FlowMatchEulerScheduler(config.Scheduler);
        Description = new EngineDescription(modelName, backend.Name, source == WeightSource.Random || modelName == TinyRandomName,
            tokenizer is not null ? $"Qwen2 byte-level BPE ({tokenizer.Source})"
                : "byte-level fallback (no tokenizer.json): the chat template's real ids plus one id per UTF-8 byte");
    }

    /// <summary>The model name of the in-memory demo model.</summary>
    public const string TinyRandomName = "tiny-random";

    /// <summary>The model name of a random-weight engine on <see cref="ZImageEngineOptions.RandomConfig"/>.</summary>
    public const string RandomConfigName = "random weights on a full config";

    /// <summary>Opens a real engine on a checkpoint folder, or on the tiny random model when <paramref name="checkpointDir"/> is null.</summary>
    /// <param name="checkpointDir">A diffusers-format Z-Image folder, or null for the demo model.</param>
    /// <param name="options">Device, allocator settings, weight dtype, seed.</param>
    public static ZImageEngine Open(string? checkpointDir, ZImageEngineOptions? options = null)
    {
        options ??= new ZImageEngineOptions();
        if (options.Strategy is { } requested) Validate(requested);
        var loras = LoraMerge.Check(options.Loras, checkpointDir);
        var settings = AllocatorSettings.Parse(options.AllocatorSettings);
        ZImageConfig config;
        Qwen2Tokenizer? tokenizer = null;
        string name;
        if (checkpointDir is null)
        {
            config = options.RandomConfig ?? TinyZImageConfig.Config;
            name = options.RandomConfig is null ? TinyRandomName : RandomConfigName;
        }
        else
        {
            config = ZImageConfig.Load(checkpointDir);
            string tokDir = Path.Combine(checkpointDir, ZImageConfig.TokenizerFolder);
            tokenizer = File.Exists(Path.Combine(tokDir, "tokenizer.json")) ? Qwen2Tokenizer.Load(tokDir) : null;
            name = new DirectoryInfo(checkpointDir).Name;
        }
        var device = DeviceSelector.Select(new DeviceOptions { ForceCpu = options.ForceCpu, RequireCuda = options.RequireCuda, DeviceIndex = options.DeviceIndex });
        try
        {
            // The stream-ordered pool is opt-in and CUDA-only: asking for it where the driver lacks it fails the start
            // with the driver's reason rather than silently running on another backend.
            IDeviceMemoryBackend backend = options.UseStreamOrderedPool
                ? StreamOrderedPoolBackend.Create(device)
                : device.CreateAcceleratorBackend(options.CapacityBytes is { } cap ? new AcceleratorMemoryBackendOptions { CapacityBytes = cap } : null);
            if (options.BackendDecorator is { } decorate) backend = decorate(backend);
            var ops = new KernelComputeOps(new KernelContext(device.Accelerator));
            var engine = new ZImageEngine(config, checkpointDir is null ? WeightSource.Random : WeightSource.Checkpoint, checkpointDir, tokenizer, settings,
                options.WeightDType, options.RandomSeed, device, backend, ops, name,
                options.RandomConfig is null ? TensorDType.F32 : options.WeightDType)
            {
                _allocatorDecorator = options.AllocatorDecorator, _editing = options.ImageEditing, _loras = loras,
                _promptCache = options.PromptCacheBytes is long bytes and not 0 ? new PromptEmbeddingCache(bytes) : null,
            };
            if (options.Strategy is { } strategy) engine.UseStrategy(strategy, options.HostMemory);
            else engine._hostMemory = options.HostMemory;
            return engine;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>A planning-only engine for <paramref name="config"/> (e.g. <see cref="ZImageConfig.Turbo"/>) on a simulated device: plans without weights.</summary>
    public static ZImageEngine CreatePlanning(ZImageConfig config, long deviceBytes, AllocatorSettings? settings = null, TensorDType matrixDType = TensorDType.BF16,
        Qwen2Tokenizer? tokenizer = null, string modelName = "Z-Image-Turbo (embedded config)", ResidencyStrategy? strategy = null, bool imageEditing = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        var backend = new SimulatedDeviceBackend(deviceBytes);
        var engine = new ZImageEngine(config, WeightSource.Planning, null, tokenizer, settings ?? AllocatorSettings.Default, matrixDType, 0, null, backend,
            new PlanningComputeOps(), modelName) { _editing = imageEditing };
        if (strategy is not null) engine.UseStrategy(strategy);
        return engine;
    }

    /// <inheritdoc />
    public ResidencyStrategy Strategy => _strategy;

    /// <summary>Whether the engine runs on a CUDA device (false on ILGPU's CPU accelerator and for planners).</summary>
    internal bool IsCuda => _device?.IsCuda == true;

    /// <summary>Whether the weights are the demo model's (always f32).</summary>
    public bool IsDemoWeights => _source == WeightSource.Random;

    /// <summary>The DiT ring alone (uploads per step are counted from it).</summary>
    public RingReport TransformerStreaming => _transformer?.Streaming ?? default;

    /// <inheritdoc />
    public RingReport Streaming => (_textEncoder?.Streaming ?? default) + (_transformer?.Streaming ?? default);

    /// <summary>
    /// Sets the rung of the memory ladder the next <see cref="Load(BudgetGuard?, CancellationToken)"/> builds (offload, weight format; activations and
    /// tiling must be the ones that have landed). Only before loading.
    /// </summary>
    /// <exception cref="InvalidOperationException">The engine is already loaded.</exception>
    /// <exception cref="RungNotAvailableException">The strategy asks for a rung that has not landed.</exception>
    public void UseStrategy(ResidencyStrategy strategy, string? hostMemory = null)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        if (_ctx is not null) throw new InvalidOperationException("The residency strategy is fixed once the engine is loaded.");
        Validate(strategy);
        // 8-bit strategies keep the engine's float dtype for the matrices that are not quantised (embedders, final layer, VAE).
        if (strategy.QuantizedDType is null)
        {
            if (_source == WeightSource.Random) strategy = strategy with { Weights = FormatOf(_randomMatrixDType) };
            else _matrixDType = strategy.MatrixDType;
        }
        _strategy = strategy;
        _hostMemory = hostMemory;
    }

    private static void Validate(ResidencyStrategy strategy)
    {
        if (strategy.Offload == OffloadMode.Auto) throw new ArgumentOutOfRangeException(nameof(strategy), strategy.Offload, "A resolved strategy has offload none, text-encoder or all.");
        if (strategy.Activations != ActivationFormat.F32) throw new RungNotAvailableException("--activations", ResidencyNames.Name(strategy.Activations));
        _ = strategy.MatrixDType;
        _ = strategy.VaeTiles; // a tile below the latent minimum is a typed VaeTileSizeException here, before loading
    }

    /// <inheritdoc />
    public EngineDescription Description { get; }

    /// <inheritdoc />
    public bool IsPlanning => _ops.IsPlanning;

    /// <summary>The configuration the models are built from.</summary>
    public ZImageConfig Config => _config;

    /// <summary>The caching allocator (statistics, trace observers).</summary>
    public CachingAllocator Allocator => _caching;

    /// <summary>The compute ops (tests download intermediate tensors through them).</summary>
    internal IComputeOps Ops => _ops;

    /// <summary>The VAE decode as a float tensor <c>[3, H, W]</c> before the RGB8 conversion (end-to-end parity tests).</summary>
    internal Tensor DecodeToTensor(Tensor latents) => Loaded(_vae).Decode(latents);

    /// <inheritdoc />
    /// <remarks>
    /// Reserve, allocate, roll back: everything is built into locals and published only when the whole model is
    /// resident, so a load that fails or is cancelled (the token is checked between the models) frees every weight it
    /// fetched, returns the cached segments to the device and leaves the engine unloaded; calling Load again retries
    /// from scratch. A completed load makes later calls no-ops.
    /// </remarks>
    public void Load(BudgetGuard? budget, CancellationToken cancellationToken) => Load(budget, null, cancellationToken);

    /// <inheritdoc />
    public void Load(BudgetGuard? budget, Action<LoadStage>? stageStarting, CancellationToken cancellationToken)
    {
        if (_ctx is not null) return;
        IDeviceAllocator device = _allocatorDecorator?.Invoke(_caching) ?? _caching;
        IDeviceAllocator inner = budget is null ? device : new BudgetedAllocator(device, budget, _caching.RoundSize);
        var tracker = new WorkspaceTracker(inner, _caching.RoundSize);
        var ctx = new ComputeContext(tracker, _ops);
        var weights = new List<IWeightProvider>(3);
        CheckpointFolder? folder = null;
        Tensor? projection = null, bias = null;
        Qwen3TextEncoder? textEncoder = null;
        ZImageTransformer? transformer = null;
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            IWeightProvider te, tr, vae;
            switch (_source)
            {
                case WeightSource.Checkpoint:
                    folder = CheckpointFolder.Open(_checkpointDir!);
                    var o = new CheckpointWeightsOptions { MatrixDType = _matrixDType };
                    // 8-bit weights: the text encoder's and the DiT's Linear matrices are quantised at load, after any
                    // LoRA is merged into the floats they are read as; the VAE stays float.
                    var q = o with { QuantizedDType = _strategy.QuantizedDType };
                    weights.Add(te = new CheckpointWeights(folder.TextEncoder, tracker, q));
                    weights.Add(tr = new CheckpointWeights(LoraMerge.Wrap(folder.Transformer, _loras), tracker, q));
                    weights.Add(vae = new CheckpointWeights(folder.Vae, tracker, o));
                    break;
                case WeightSource.Random:
                    weights.Add(te = new RandomWeights(tracker, _ops, _randomSeed, _matrixDType, _strategy.QuantizedDType));
                    weights.Add(tr = new RandomWeights(tracker, _ops, _randomSeed + 1, _matrixDType, _strategy.QuantizedDType));
                    weights.Add(vae = new RandomWeights(tracker, _ops, _randomSeed + 2, _matrixDType));
                    break;
                default:
                    weights.Add(te = new PlanningWeights(tracker, _matrixDType, _strategy.QuantizedDType));
                    weights.Add(tr = new PlanningWeights(tracker, _matrixDType, _strategy.QuantizedDType));
                    weights.Add(vae = new PlanningWeights(tracker, _matrixDType));
                    break;
            }
            // The constructors fetch every weight, so after these lines the base is resident; building KernelComputeOps
            // (in Open) already compiled every kernel family, so no generation pays a JIT spike.
            stageStarting?.Invoke(LoadStage.TextEncoder);
            textEncoder = new Qwen3TextEncoder(_config.TextEncoder, te, ctx, placement: _strategy.TextEncoderPlacement);
            cancellationToken.ThrowIfCancellationRequested();
            stageStarting?.Invoke(LoadStage.Transformer);
            transformer = new ZImageTransformer(TransformerDimsOf(_config.Transformer), tr, ctx, _strategy.TransformerPlacement);
            cancellationToken.ThrowIfCancellationRequested();
            // Offload keeps the streamed layers in host memory: refuse, typed, before anything else is built.
            if (!IsPlanning) { var rings = textEncoder.Streaming + transformer.Streaming; HostMemory.Ensure(_strategy.Offload, rings.HostBytes + rings.StagingBytes, _hostMemory); }
            cancellationToken.ThrowIfCancellationRequested();
            stageStarting?.Invoke(LoadStage.Vae);
            var vaeDecoder = new VaeDecoder(_config.Vae, vae, ctx);
            // With image editing on, the encoder (img2img, inpaint) is resident too: the base is the same whatever the request.
            var vaeEncoder = _editing ? new VaeEncoder(_config.Vae, vae, ctx) : null;
            cancellationToken.ThrowIfCancellationRequested();
            int channels = _config.Transformer.InChannels;
            projection = ctx.Empty(AllocationTags.Weights, channels, 3);
            bias = ctx.Empty(AllocationTags.Weights, 3);
            if (channels == 16)
            {
                _ops.Upload(FluxLatentRgbFactors, projection);
                _ops.Upload(FluxLatentRgbBias, bias);
            }
            else
            {
                // Not a FLUX latent space: a grey-level mean of the channels is the most honest cheap preview.
                _ops.Upload(Enumerable.Repeat(1f / channels, channels * 3).ToArray(), projection);
                _ops.Upload(new float[3], bias);
            }
            _ops.Synchronize();

            // Publish: nothing below can fail, and _ctx goes last because it is what marks the engine loaded.
            _tracker = tracker;
            _folder = folder;
            _weights.AddRange(weights);
            _textEncoder = textEncoder;
            _transformer = transformer;
            _vae = vaeDecoder;
            _vaeEncoder = vaeEncoder;
            _previewProjection = projection;
            _previewBias = bias;
            _ctx = ctx;
        }
        catch
        {
            bias?.Dispose();
            projection?.Dispose();
            transformer?.Dispose();
            textEncoder?.Dispose();
            foreach (var w in weights) w.Dispose();
            folder?.Dispose();
            // The freed weights sit in the cache as free blocks: give the segments back so a failed load costs nothing.
            _caching.EmptyCache();
            throw;
        }
    }

    internal static TransformerDims TransformerDimsOf(TransformerConfig c) => new()
    {
        InChannels = c.InChannels,
        PatchSize = c.AllPatchSize[0],
        Dim = c.Dim,
        Heads = c.NHeads,
        Layers = c.NLayers,
        RefinerLayers = c.NRefinerLayers,
        CapFeatDim = c.CapFeatDim,
        NormEps = (float)c.NormEps,
        RopeTheta = c.RopeTheta,
        TScale = (float)c.TScale,
        AxesDims = [.. c.AxesDims],
        AxesLens = [.. c.AxesLens],
    };

    /// <inheritdoc />
    public EngineMemoryStats GetMemoryStats()
    {
        var s = _caching.GetStatistics();
        var info = _backend.GetMemoryInfo();
        return new EngineMemoryStats(info.TotalBytes, _tracker?.WeightBytes ?? 0, (_tracker?.WeightBytes ?? 0) + (_tracker?.WorkspaceBytes ?? 0),
            s.ReservedBytes.Current, _tracker?.PeakWorkspaceBytes ?? 0, s.NumAllocRetries, s.NumOoms, info.FreeBytes);
    }

    /// <inheritdoc />
    public void ResetPeakStats()
    {
        _tracker?.ResetPeak();
        _caching.ResetPeakStats();
    }

    /// <inheritdoc />
    /// <remarks>On a planning twin this also starts the next plan from the live prompt cache's current keys.</remarks>
    public void EmptyCache()
    {
        _caching.EmptyCache();
        if (IsPlanning) _planMirror = null;
    }

    /// <inheritdoc />
    public int[] Tokenize(string prompt, int maxLength) =>
        _tokenizer?.EncodeChat(prompt, maxLength) ?? ByteLevelFallbackTokenizer.EncodeChat(prompt, maxLength);

    /// <inheritdoc />
    /// <remarks>
    /// With a prompt-embedding cache (<see cref="ZImageEngineOptions.PromptCacheBytes"/>) a cached prompt is uploaded
    /// from host memory instead of encoded; the planning twin applies the same hits to a key-only mirror of the cache
    /// taken at the start of each plan (<see cref="EmptyCache"/>), so its stage peaks stay exact on a warm cache.
    /// </remarks>
    public Tensor EncodePrompt(int[] tokenIds)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        var cache = IsPlanning ? (_planMirror ??= _promptCache?.Mirror()) : _promptCache;
        if (cache is not null && cache.TryGet(tokenIds, out var values, out var shape))
        {
            var hit = Ctx.Empty(AllocationTags.TextEncoder, shape);
            try { _ops.Upload(values ?? new float[hit.ElementCount], hit); }
            catch { hit.Dispose(); throw; }
            return hit;
        }
        var result = Loaded(_textEncoder).Encode(tokenIds);
        Interlocked.Increment(ref _encoderRuns);
        if (cache is not null)
        {
            try { cache.Add(tokenIds, IsPlanning ? null : _ops.Download(result), result.Shape); }
            catch { result.Dispose(); throw; }
        }
        return result;
    }

    /// <summary>How many times the text encoder actually ran (prompt-cache hits do not count).</summary>
    public long TextEncoderRuns => Interlocked.Read(ref _encoderRuns);

    /// <summary>The prompt-embedding cache (null when off).</summary>
    public PromptEmbeddingCache? PromptCache => _promptCache;

    /// <summary>Host bytes the prompt-embedding cache may hold (its capacity; 0 when off): plans count it as host memory.</summary>
    public long PromptCacheCapacityBytes => _promptCache?.CapacityBytes ?? 0;

    private PromptEmbeddingCache? _promptCache;
    private PromptEmbeddingCache? _planMirror;
    private long _encoderRuns;

    /// <inheritdoc />
    public Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width)
    {
        var t = Ctx.Empty(AllocationTags.Latents, _config.Transformer.InChannels, height, width);
        try { _ops.Upload(values, t); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <inheritdoc />
    public float[] Sigmas(int steps) => _scheduler.Sigmas(steps);

    /// <inheritdoc />
    public float ModelTime(float sigma) => FlowMatchEulerScheduler.ModelTimeFromTimestep(sigma * _config.Scheduler.NumTrainTimesteps);

    /// <inheritdoc />
    public Tensor Predict(Tensor latents, float modelTime, Tensor caption) => Loaded(_transformer).Forward(latents, modelTime, caption);

    /// <inheritdoc />
    /// <remarks>With streamed DiT blocks both branches run block by block (one upload per block per step); resident, two forwards as before.</remarks>
    public (Tensor Positive, Tensor Negative) PredictGuided(Tensor latents, float modelTime, Tensor caption, Tensor negativeCaption)
    {
        var tr = Loaded(_transformer);
        if (tr.Placement == LayerPlacement.Resident)
        {
            var pos = tr.Forward(latents, modelTime, caption);
            try
            {
                return (pos, tr.Forward(latents, modelTime, negativeCaption));
            }
            catch
            {
                pos.Dispose();
                throw;
            }
        }
        var outs = tr.Forward(latents, modelTime, [caption, negativeCaption]);
        return (outs[0], outs[1]);
    }

    /// <inheritdoc />
    public void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization) =>
        _ops.CfgCombine(positive, negative, guidance, normalization, positive);

    /// <inheritdoc />
    public void EulerStep(Tensor latents, Tensor modelOutput, float dt) => _ops.EulerStep(latents, modelOutput, dt);

    /// <inheritdoc />
    /// <exception cref="NonFiniteOutputException">The latents (stage <c>denoise</c>) or the decoded image (stage <c>vae-decode</c>) hold NaN or infinity.</exception>
    public RgbImage Decode(Tensor latents)
    {
        // Both checks read back float data the size of the latents or the image (one copy, next to a VAE decode that
        // costs orders of magnitude more): ToRgb8 would silently turn NaN into black pixels.
        if (!IsPlanning)
            NonFiniteOutputException.ThrowIfNonFinite(_ops.Download(latents), NonFiniteOutputException.DenoiseStage, "the latents after the last step");
        // The VAE-tiling rung decodes tile by tile (diffusers' tiled_decode); the planner runs the same tiles.
        using var image = Loaded(_vae).Decode(latents, _strategy.VaeTiles);
        if (!IsPlanning)
            NonFiniteOutputException.ThrowIfNonFinite(_ops.Download(image), GenerationRunner.VaeStage, "the decoded image");
        int h = image.Shape[1], w = image.Shape[2];
        using var rgb = Ctx.Empty(AllocationTags.Vae, TensorDType.U8, h, w, 3);
        _ops.ToRgb8(image, rgb);
        return new RgbImage(w, h, IsPlanning ? new byte[w * h * 3] : _ops.DownloadBytes(rgb));
    }

    /// <inheritdoc />
    public bool SupportsImageEditing => _editing;

    // LoRAs merged into the transformer weights as they are materialized (ZImageEngineOptions.Loras); fixed per engine.
    private IReadOnlyList<LoraSpec> _loras = [];

    /// <inheritdoc />
    public IReadOnlyList<LoraSpec> Loras => _loras;

    // Whether the VAE encoder is loaded (ZImageEngineOptions.ImageEditing); planners copy it so plans stay exact.
    private bool _editing;

    /// <inheritdoc />
    public Tensor EncodeImage(RgbImage image, ReadOnlySpan<float> posteriorNoise)
    {
        ArgumentNullException.ThrowIfNull(image);
        var encoder = Loaded(_vaeEncoder);
        using var pixels = Ctx.Empty(AllocationTags.Vae, 3, image.Height, image.Width);
        _ops.Upload(IsPlanning ? new float[3 * image.Width * image.Height] : ImageEditing.ToModelInput(image), pixels);
        using var eps = Ctx.Empty(AllocationTags.Vae, _config.Vae.LatentChannels, image.Height / encoder.DownscaleFactor, image.Width / encoder.DownscaleFactor);
        _ops.Upload(posteriorNoise, eps);
        return encoder.Encode(pixels, eps);
    }

    /// <inheritdoc />
    public void AddNoise(Tensor imageLatents, Tensor latents, float sigma) => _ops.ScaleNoise(imageLatents, latents, sigma, latents);

    /// <inheritdoc />
    public Tensor CreateMask(ReadOnlySpan<float> mask, int height, int width)
    {
        var t = Ctx.Empty(AllocationTags.Latents, height, width);
        try { _ops.Upload(mask, t); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <inheritdoc />
    public void BlendMasked(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, float sigma) =>
        _ops.MaskBlend(latents, imageLatents, noise, mask, sigma);

    /// <summary>Downloads an F32 tensor (parity tests and diagnostics; synchronises the device). Empty in planning mode.</summary>
    public float[] ReadValues(Tensor tensor) => IsPlanning ? [] : _ops.Download(tensor);

    /// <summary>The VAE-decoded image <c>[3, H, W]</c> as floats before clamping (parity tests and diagnostics).</summary>
    public float[] DecodeValues(Tensor latents)
    {
        using var image = Loaded(_vae).Decode(latents);
        return ReadValues(image);
    }

    /// <inheritdoc />
    public RgbImage? Preview(Tensor latents)
    {
        if (IsPlanning) return null;
        int h = latents.Shape[1], w = latents.Shape[2];
        using var rgb = Ctx.Empty(AllocationTags.Latents, TensorDType.U8, h, w, 3);
        _ops.LatentPreview(latents, _previewProjection!, _previewBias, rgb);
        return new RgbImage(w, h, _ops.DownloadBytes(rgb));
    }

    /// <inheritdoc />
    public IGenerationEngine CreatePlanner(long deviceBytes) => CreatePlanner(deviceBytes, _strategy);

    /// <summary>A planning twin of this engine that runs <paramref name="strategy"/> (the chooser plans every rung this way).</summary>
    public ZImageEngine CreatePlanner(long deviceBytes, ResidencyStrategy strategy)
    {
        var planner = new ZImageEngine(_config, WeightSource.Planning, null, _tokenizer, _settings, _matrixDType, 0, null, new SimulatedDeviceBackend(deviceBytes),
            new PlanningComputeOps(), Description.ModelName);
        planner.UseStrategy(strategy);
        planner._editing = _editing;
        planner._promptCache = _promptCache; // read through key-only mirrors, never written
        planner._planMirror = null;
        // Random weights keep their dtype whatever the strategy says (f32 for the demo model); the twin must allocate the same.
        if (_source == WeightSource.Random) planner._matrixDType = _randomMatrixDType;
        return planner;
    }

    internal static WeightFormat FormatOf(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => WeightFormat.F32,
        TensorDType.F16 => WeightFormat.F16,
        _ => WeightFormat.BF16,
    };

    private void ReleaseModels()
    {
        _textEncoder?.Dispose();
        _transformer?.Dispose();
        _textEncoder = null;
        _transformer = null;
        _vae = null;
        foreach (var w in _weights) w.Dispose();
        _weights.Clear();
        _ctx = null;
    }

    private ComputeContext Ctx => _ctx ?? throw new InvalidOperationException("The engine is not loaded; call Load first.");

    private static T Loaded<T>(T? model) where T : class =>
        model ?? throw new InvalidOperationException("The engine is not loaded; call Load first.");

    /// <inheritdoc />
    public void Dispose()
    {
        _previewProjection?.Dispose();
        _previewBias?.Dispose();
        ReleaseModels();
        _folder?.Dispose();
        _caching.Dispose();
        (_ops as IDisposable)?.Dispose();
        _backend.Dispose();
        _device?.Dispose();
    }
}

/// <summary>Options of <see cref="ZImageEngine.Open"/>.</summary>
public sealed record ZImageEngineOptions
{
    /// <summary>Use ILGPU's CPU accelerator even when a GPU is present.</summary>
    public bool ForceCpu { get; init; }
    /// <summary>Fail (<c>CudaUnavailableException</c>) instead of falling back to the CPU accelerator.</summary>
    public bool RequireCuda { get; init; }
    /// <summary>The CUDA device ordinal.</summary>
    public int DeviceIndex { get; init; }
    /// <summary>Allocator settings (<c>PYTORCH_CUDA_ALLOC_CONF</c> syntax).</summary>
    public string AllocatorSettings { get; init; } = "";
    /// <summary>Device dtype of large weight matrices (the demo model always uses F32).</summary>
    public TensorDType WeightDType { get; init; } = TensorDType.BF16;
    /// <summary>The rung of the memory ladder (null: everything resident in <see cref="WeightDType"/>).</summary>
    public ResidencyStrategy? Strategy { get; init; }
    /// <summary>Host memory allowed for streamed weights (e.g. <c>32GiB</c>; null detects what the host has).</summary>
    public string? HostMemory { get; init; }
    /// <summary>Capacity of the host prompt-embedding cache in bytes (null or 0: off; at most <see cref="PromptEmbeddingCache.MaxCapacityBytes"/>).</summary>
    public long? PromptCacheBytes { get; init; }
    /// <summary>Seed of the demo model's random weights.</summary>
    public int RandomSeed { get; init; } = 20260101;
    /// <summary>
    /// Without a checkpoint: the config of the seeded random-weight model (e.g. <c>ZImageConfig.Turbo</c>, whose
    /// matrices then use <see cref="WeightDType"/>; the doctor's GPU generation check). Null: the tiny F32 demo model.
    /// </summary>
    public ZImageConfig? RandomConfig { get; init; }
    /// <summary>Take segments from CUDA's stream-ordered pool (<c>cuMemAllocAsync</c>) instead of ILGPU buffers.</summary>
    public bool UseStreamOrderedPool { get; init; }
    /// <summary>Load the VAE encoder too (img2img, inpaint): its weights join the resident base (about 68 MB in bf16 for the FLUX VAE).</summary>
    public bool ImageEditing { get; init; }
    /// <summary>
    /// LoRAs merged into the transformer at load, in order (diffusers' <c>load_lora_weights</c> + <c>fuse_lora(lora_scale)</c>
    /// per LoRA): each weight a LoRA updates is merged in float32 when it is materialized, before the conversion to the
    /// device format. They need a checkpoint (not the demo model); changing them means opening a new engine.
    /// </summary>
    public IReadOnlyList<LoraSpec> Loras { get; init; } = [];
    /// <summary>Caps the device capacity the allocator sees (e.g. to emulate a smaller GPU).</summary>
    public long? CapacityBytes { get; init; }
    /// <summary>Wraps the device backend (fault injection in tests, tracing).</summary>
    public Func<IDeviceMemoryBackend, IDeviceMemoryBackend>? BackendDecorator { get; init; }
    /// <summary>Wraps the caching allocator below the budget guard (fault injection at block level in tests).</summary>
    public Func<IDeviceAllocator, IDeviceAllocator>? AllocatorDecorator { get; init; }
}
