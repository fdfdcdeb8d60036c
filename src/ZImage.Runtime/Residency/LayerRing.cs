using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Residency;

/// <summary>
/// Streams a model's repeated layers through a small ring of device slots instead of keeping them resident. Each slot
/// is one allocation (tag <see cref="AllocationTags.Weights"/>, so it counts in the base) sized for the largest layer;
/// a layer's weights are views into its slot, written from the host by <see cref="IStreamableWeights.LoadInto"/>.
/// <see cref="Get"/> returns layer <c>i</c> (loading it if the slot holds another) and then loads layer <c>i + 1</c>
/// into the next slot, so with two slots the upload of the next layer is issued before the current layer's compute
/// (double buffering). The slots are allocated once, in the constructor, through the same allocator in real and
/// planning mode, so the planning twin sees exactly the same bytes; <see cref="UploadedBytes"/> counts what was
/// written (the planning twin counts the same).
/// </summary>
/// <typeparam name="T">What a layer's weights are bundled as (the model's own layer record).</typeparam>
public sealed class LayerRing<T> : IDisposable where T : class
{
    // Each weight inside a slot starts at a multiple of this many bytes (the allocator's minimum block rounding).
    internal const int Alignment = 512;

    private readonly IStreamableWeights _source;
    private readonly Func<IWeightProvider, int, T> _build;
    private readonly DeviceAllocation[] _slots;
    private readonly int[] _slotLayer;
    private readonly T?[] _slotValue;
    private readonly long[] _layerBytes;
    private readonly SlotUploader? _uploader;
    private long _uploaded;
    private bool _disposed;

    /// <summary>Sizes the layers (by building each against a sizing provider, no allocation) and allocates the slots.</summary>
    /// <param name="source">Where the layer weights come from.</param>
    /// <param name="allocator">Where the slots are allocated (tag <see cref="AllocationTags.Weights"/>).</param>
    /// <param name="layerCount">How many layers the ring serves, in execution order.</param>
    /// <param name="build">Builds layer <c>i</c> by requesting its weights from the provider it is given (the model's usual code).</param>
    /// <param name="slots">Device slots (at least 1; 2 double-buffers).</param>
    /// <param name="ops">
    /// The model's ops: with kernel ops the layers are staged in host buffers (pinned where the accelerator allows) and
    /// copied on a copy stream of their own, overlapping the previous layer's compute; with planning ops the same
    /// sequence runs without storage. Null: each layer is written into its slot synchronously (<see cref="IStreamableWeights.LoadInto"/>).
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layerCount"/> or <paramref name="slots"/> is below 1.</exception>
    public LayerRing(IStreamableWeights source, IDeviceAllocator allocator, int layerCount, Func<IWeightProvider, int, T> build, int slots = 2, IComputeOps? ops = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        ArgumentNullException.ThrowIfNull(allocator);
        _build = build ?? throw new ArgumentNullException(nameof(build));
        ArgumentOutOfRangeException.ThrowIfLessThan(layerCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        LayerCount = layerCount;
        _layerBytes = new long[layerCount];
        long slotBytes = 0;
        for (int i = 0; i < layerCount; i++)
        {
            var sizing = new SlotWeights(source, null, load: false);
            build(sizing, i);
            _layerBytes[i] = sizing.Payload;
            slotBytes = Math.Max(slotBytes, sizing.Used);
        }
        SlotBytes = Math.Max(Alignment, slotBytes);
        int count = Math.Min(slots, layerCount);
        _slots = new DeviceAllocation[count];
        _slotLayer = Enumerable.Repeat(-1, count).ToArray();
        _slotValue = new T?[count];
        try
        {
            for (int s = 0; s < count; s++) _slots[s] = allocator.Allocate(SlotBytes, AllocationTags.Weights);
            if (ops is not null) _uploader = SlotUploader.For(ops, count, SlotBytes);
        }
        catch
        {
            foreach (var a in _slots) a?.Dispose();
            throw;
        }
    }

    /// <summary>Host bytes of the staging buffers (one slot each; 0 when layers are written synchronously).</summary>
    public long StagingBytes => _uploader is null ? 0 : SlotBytes * _slots.Length;

    /// <summary>Whether the staging buffers are page-locked (pinned) host memory.</summary>
    public bool PinnedStaging => _uploader?.PageLocked ?? false;

    /// <summary>Called with every staging, wait, upload and hand-out, in order (tests and diagnostics; null: none).</summary>
    public Action<RingEvent>? Observer { get; set; }

    /// <summary>Layers served.</summary>
    public int LayerCount { get; }

    /// <summary>Bytes of one slot (the largest layer, weights aligned to 512 B).</summary>
    public long SlotBytes { get; }

    /// <summary>Device slots.</summary>
    public int SlotCount => _slots.Length;

    /// <summary>Bytes of all the layers' weights (what lives in host memory instead of on the device).</summary>
    public long HostBytes => _layerBytes.Sum();

    /// <summary>Bytes written into the slots so far (every load of every layer).</summary>
    public long UploadedBytes => Interlocked.Read(ref _uploaded);

    /// <summary>Layer <paramref name="index"/>'s weights, valid until the ring loads another layer into its slot; prefetches the next layer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside <c>[0, LayerCount)</c>.</exception>
    public T Get(int index)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)index >= (uint)LayerCount)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Layer index must lie in 0..{LayerCount - 1}.");
        if (_uploader is null)
        {
            var sync = Ensure(index);
            if (index + 1 < LayerCount && _slots.Length > 1) Ensure(index + 1);
            Emit(RingEventKind.Returned, index, 0);
            return sync;
        }
        // Double buffering: layer index is on the device (or in flight since the previous Get) once the copy stream
        // is drained; then layer index+1 is staged on the host while the GPU still runs layer index-1, the host waits
        // for that compute (its slot is index+1's), issues index+1's copy on the copy stream, and hands out index,
        // whose compute the model queues next: the copy of index+1 runs under the compute of index.
        int s = index % _slots.Length;
        if (_slotLayer[s] != index) Stage(index);
        _uploader.WaitUploads();
        Emit(RingEventKind.UploadWaited, index, 0);
        var value = _slotValue[s]!;
        if (index + 1 < LayerCount && _slots.Length > 1 && _slotLayer[(index + 1) % _slots.Length] != index + 1) Stage(index + 1);
        Emit(RingEventKind.Returned, index, 0);
        return value;
    }

    // Writes a layer into its slot's staging buffer, waits until the slot's previous layer is computed, and issues the copy.
    private void Stage(int index)
    {
        int s = index % _slots.Length;
        _uploader!.WaitUploads(); // the staging buffer's previous copy is done
        _slotLayer[s] = -1;
        _slotValue[s] = null;
        var stager = new SlotWeights(_source, _slots[s], load: true) { Uploader = _uploader, SlotIndex = s };
        var value = _build(stager, index);
        Emit(RingEventKind.Staged, index, stager.Payload);
        _uploader.WaitCompute();
        Emit(RingEventKind.ComputeWaited, index, 0);
        _uploader.Issue(s, _slots[s]);
        Interlocked.Add(ref _uploaded, stager.Payload);
        Emit(RingEventKind.UploadIssued, index, stager.Payload);
        _slotLayer[s] = index;
        _slotValue[s] = value;
    }

    private void Emit(RingEventKind kind, int layer, long bytes) => Observer?.Invoke(new RingEvent(kind, layer, bytes));

    private T Ensure(int index)
    {
        int s = index % _slots.Length;
        if (_slotLayer[s] == index) return _slotValue[s]!;
        _slotLayer[s] = -1;
        _slotValue[s] = null;
        var loader = new SlotWeights(_source, _slots[s], load: true);
        var value = _build(loader, index);
        Interlocked.Add(ref _uploaded, loader.Payload);
        _slotLayer[s] = index;
        _slotValue[s] = value;
        return value;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _uploader?.Dispose();
        foreach (var a in _slots) a.Dispose();
    }

    /// <summary>
    /// The provider a layer is built against inside the ring: hands out consecutive aligned views of one slot and
    /// writes each weight from the source (or, with no slot, only adds up the bytes: the sizing pass).
    /// </summary>
    private sealed class SlotWeights(IStreamableWeights source, DeviceAllocation? slot, bool load) : IWeightProvider
    {
        public long Used { get; private set; }

        // Staged loading: each weight is written in its device layout at its slot offset of this uploader's staging
        // buffer (null: straight into the slot view).
        public SlotUploader? Uploader { get; init; }

        public int SlotIndex { get; init; }

        public long Payload { get; private set; }

        public TensorDType MatrixDType => source.MatrixDType;

        public TensorDType MatrixDTypeFor(string name, IReadOnlyList<int> shape) => source.MatrixDTypeFor(name, shape);

        // 8-bit matrices take the dtype (and the codes + scales layout) the source would give them when resident.
        public Tensor Matrix(string name, params int[] shape) => Next(name, true, source.MatrixDTypeFor(name, shape), shape);

        public Tensor Vector(string name, params int[] shape) => Next(name, false, TensorDType.F32, shape);

        public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim) =>
            throw new NotSupportedException($"'{name}': a streamed layer has no gather tables.");

        public void Dispose()
        {
        }

        private Tensor Next(string name, bool matrix, TensorDType dtype, int[] shape)
        {
            ArgumentException.ThrowIfNullOrEmpty(name);
            long bytes = Tensor.StorageBytes(dtype, shape);
            int elem = Tensor.ElementSize(dtype);
            long offset = Used;
            Used = checked(offset + (bytes + Alignment - 1) / Alignment * Alignment);
            Payload += bytes;
            if (!load || slot is null)
                return null!; // sizing pass: the builder only requests, it never runs
            var view = Tensor.View(slot, dtype, offset / elem, shape);
            if (Uploader is null) source.LoadInto(name, matrix, view);
            else source.ReadInto(name, matrix, dtype, shape, Uploader.HasStorage ? Uploader.Staging(SlotIndex).Slice(checked((int)offset), checked((int)bytes)) : []);
            return view;
        }
    }
}
