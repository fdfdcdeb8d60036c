using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>
/// A deterministic stand-in for the model stages: it keeps tensor data on the host, counts allocated bytes per tag
/// exactly like an allocator would, can block inside a stage (to cancel there) and can fail the Nth allocation.
/// Sizes are tiny but proportional to the real ones (caption ∝ tokens, DiT workspace ∝ latent pixels, VAE ∝ pixels).
/// </summary>
public sealed class FakeEngine : IGenerationEngine
{
    private readonly object _lock = new();
    private readonly Dictionary<DeviceAllocation, float[]> _data = new(ReferenceEqualityComparer.Instance);
    private long _allocated, _weights, _peak, _reserved, _nextId, _allocCount, _ooms;
    private readonly List<FakeAllocation> _weightBlocks = new();

    public FakeEngine(long deviceBytes = 1L << 30, bool planning = false)
    {
        DeviceBytes = deviceBytes;
        IsPlanning = planning;
    }

    public long DeviceBytes { get; }
    public long WeightBytesToLoad { get; init; } = 1 << 20;
    /// <summary>What the device reports free (others' usage = DeviceBytes − this); -1 = unknown.</summary>
    public long DeviceFreeBytes { get; init; } = -1;
    public bool IsPlanning { get; }
    public EngineDescription Description => new("fake", IsPlanning ? "simulated" : "fake-device", false, "fake tokenizer: one id per character");

    /// <summary>Stage gates: when set for a stage name, the engine signals Entered and waits for Release inside that stage.</summary>
    public StageGate? Gate { get; set; }
    /// <summary>Fail the allocation with this 1-based index (counted from the first generation allocation) with a device OOM.</summary>
    public long? FailAllocationNumber { get; set; }
    /// <summary>Leak one block per generation (to test drift detection).</summary>
    public bool LeakOnePerGeneration { get; set; }
    public int LoadCount { get; private set; }
    public int DecodeCount { get; private set; }

    public void Load(ZImage.Runtime.Budget.BudgetGuard? budget, CancellationToken cancellationToken)
    {
        LoadCount++;
        _weightBlocks.Add(Alloc(WeightBytesToLoad, AllocationTags.Weights));
    }

    public EngineMemoryStats GetMemoryStats()
    {
        lock (_lock) return new(DeviceBytes, _weights, _allocated, _reserved, _peak - _weights, 0, _ooms, DeviceFreeBytes);
    }

    public void ResetPeakStats() { lock (_lock) _peak = _allocated; }
    public void EmptyCache() { lock (_lock) _reserved = _allocated; }

    public int[] Tokenize(string prompt, int maxLength)
    {
        var ids = new List<int> { 151644, 872, 198 };
        ids.AddRange(prompt.Select(c => (int)c));
        ids.AddRange([151645, 198, 151644, 77091, 198]);
        return ids.Take(maxLength).ToArray();
    }

    public Tensor EncodePrompt(int[] tokenIds)
    {
        Enter("text-encoder");
        using var scratch = Tensor(AllocationTags.TextEncoder, tokenIds.Length * 64); // transient activations
        var cap = Tensor(AllocationTags.TextEncoder, tokenIds.Length * 8);
        var d = Data(cap);
        for (int i = 0; i < d.Length; i++) d[i] = (tokenIds[i / 8] % 97) / 97f;
        return cap;
    }

    public Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width)
    {
        var t = TensorShaped(AllocationTags.Latents, 16, height, width);
        values.CopyTo(Data(t));
        return t;
    }

    public float[] Sigmas(int steps)
    {
        var s = new float[steps + 1];
        for (int i = 0; i < steps; i++) { float x = 1f - (float)i / steps; s[i] = 3 * x / (1 + 2 * x); }
        return s;
    }

    public float ModelTime(float sigma) => (1000f - sigma * 1000f) / 1000f;

    private int _stepCalls;
    public Tensor Predict(Tensor latents, float modelTime, Tensor caption)
    {
        Enter("denoise-step-" + (Interlocked.Increment(ref _stepCalls)));
        using var scratch = Tensor(AllocationTags.Transformer, (int)latents.ElementCount * 4);
        var o = TensorShaped(AllocationTags.Transformer, latents.Shape);
        var x = Data(latents); var c = Data(caption); var y = Data(o);
        float cm = c.Length == 0 ? 0 : c.Average();
        for (int i = 0; i < y.Length; i++) y[i] = 0.5f * x[i] + modelTime - cm;
        return o;
    }

    public void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization)
    {
        var p = Data(positive); var n = Data(negative);
        for (int i = 0; i < p.Length; i++) p[i] = p[i] + guidance * (p[i] - n[i]);
    }

    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        var x = Data(latents); var v = Data(modelOutput);
        for (int i = 0; i < x.Length; i++) x[i] += dt * -v[i];
    }

    public RgbImage Decode(Tensor latents)
    {
        Enter("vae-decode");
        DecodeCount++;
        int hl = latents.Shape[1], wl = latents.Shape[2];
        using var scratch = Tensor(AllocationTags.Vae, 3 * 64 * hl * wl * 2);
        if (LeakOnePerGeneration) Tensor(AllocationTags.Vae, 16);
        var x = Data(latents);
        var chw = new float[3 * 64 * hl * wl];
        int W = wl * 8, H = hl * 8;
        for (int c = 0; c < 3; c++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++)
                    chw[c * H * W + yy * W + xx] = MathF.Tanh(x[c * hl * wl + (yy / 8) * wl + xx / 8]);
        return RgbImage.FromChw(chw, W, H);
    }

    public RgbImage? Preview(Tensor latents) => IsPlanning ? null : new RgbImage(latents.Shape[2], latents.Shape[1], new byte[latents.Shape[1] * latents.Shape[2] * 3]);

    public IGenerationEngine CreatePlanner(long deviceBytes) => new FakeEngine(deviceBytes, planning: true) { WeightBytesToLoad = WeightBytesToLoad };

    public void Dispose() { foreach (var w in _weightBlocks) w.Dispose(); }

    private void Enter(string stage) => Gate?.Enter(stage);

    private float[] Data(Tensor t) { lock (_lock) return _data[t.Allocation]; }

    private Tensor Tensor(string tag, int elements, params int[] shape)
    {
        var a = Alloc((long)elements * 4, tag);
        lock (_lock) _data[a] = new float[elements];
        return new Tensor(a, TensorDType.F32, shape.Length > 0 ? shape : [elements]);
    }

    internal Tensor TensorShaped(string tag, params int[] shape) => Tensor(tag, shape.Aggregate(1, (a, b) => a * b), shape);

    private FakeAllocation Alloc(long bytes, string tag)
    {
        long size = (bytes + 511) / 512 * 512;
        lock (_lock)
        {
            if (tag != AllocationTags.Weights && FailAllocationNumber is { } n && ++_allocCount == n)
            {
                _ooms++;
                throw new DeviceOutOfMemoryException(size, _allocated, _reserved, DeviceBytes - _reserved, DeviceBytes, tag, "injected fault");
            }
            _allocated += size;
            if (tag == AllocationTags.Weights) _weights += size;
            _peak = Math.Max(_peak, _allocated);
            _reserved = Math.Max(_reserved, _allocated);
            return new FakeAllocation(this, ++_nextId, tag, bytes, size);
        }
    }

    private void Free(FakeAllocation a)
    {
        lock (_lock)
        {
            _allocated -= a.Size;
            if (a.Tag == AllocationTags.Weights) _weights -= a.Size;
            _data.Remove(a);
        }
    }

    private sealed class FakeAllocation(FakeEngine owner, long id, string tag, long requested, long size) : DeviceAllocation
    {
        private bool _disposed;
        public override long Id => id;
        public override string Tag => tag;
        public override long RequestedBytes => requested;
        public override long Size => size;
        public override DeviceSegment Segment => throw new NotSupportedException("The fake engine has no device segments.");
        public override long Offset => 0;
        public override bool IsDisposed => _disposed;
        public override void Dispose()
        {
            if (_disposed) throw new ObjectDisposedException($"DeviceAllocation#{Id}({Tag})");
            _disposed = true;
            owner.Free(this);
        }
    }
}

/// <summary>Blocks the engine inside a named stage until released, so a test can cancel exactly there.</summary>
public sealed class StageGate(string stagePrefix)
{
    public string StagePrefix { get; } = stagePrefix;
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public ManualResetEventSlim Release { get; } = new(false);

    public void Enter(string stage)
    {
        if (!stage.StartsWith(StagePrefix, StringComparison.Ordinal)) return;
        Entered.TrySetResult();
        if (!Release.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException("The test never released the gate.");
    }
}
