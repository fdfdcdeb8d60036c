using ILGPU;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Compute;

/// <summary>Element type of a tensor on the device. Activations are always <see cref="F32"/>; weights may be any.</summary>
public enum TensorDType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16 (<c>ILGPU.Half</c> on the device).</summary>
    F16,
    /// <summary>bfloat16, stored as <c>ushort</c> bits (ILGPU 1.5.3 has no bf16 type).</summary>
    BF16,
    /// <summary>Unsigned byte (RGB8 images, previews).</summary>
    U8,
    /// <summary>
    /// int8 codes of a weight matrix <c>[N,K]</c> quantised symmetrically per output channel, followed in the same block by
    /// the <c>N</c> float32 scales (<see cref="WeightQuantization"/>). Only <see cref="IComputeOps.Linear"/> takes it.
    /// </summary>
    I8,
    /// <summary>fp8 e4m3fn codes of a weight matrix <c>[N,K]</c> with a per-output-channel float32 scale, laid out as <see cref="I8"/>.</summary>
    F8E4M3,
}

/// <summary>
/// A dense row-major device tensor: a shape, a dtype and a <see cref="DeviceAllocation"/> from the caching allocator.
/// In planning mode the allocation has no backing store (simulated device) and views throw; shapes and sizes are real.
/// Dispose returns the block to the pool. <see cref="Reshape"/> and <see cref="Rows"/> give non-owning views over
/// the same block (disposing a view does nothing; the owner must outlive it).
/// </summary>
public sealed class Tensor : IDisposable
{
    /// <summary>Wraps an allocation that is large enough for <paramref name="shape"/> in <paramref name="dtype"/>.</summary>
    public Tensor(DeviceAllocation allocation, TensorDType dtype, params int[] shape)
        : this(allocation, dtype, 0, ownsAllocation: true, shape)
    {
    }

    private Tensor(DeviceAllocation allocation, TensorDType dtype, long elementOffset, bool ownsAllocation, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(allocation);
        ArgumentNullException.ThrowIfNull(shape);
        Allocation = allocation;
        DType = dtype;
        Shape = shape;
        ElementOffset = elementOffset;
        OwnsAllocation = ownsAllocation;
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), d, "Tensor dimensions must be non-negative.");
            n *= d;
        }
        ElementCount = n;
        if (WeightQuantization.IsQuantized(dtype) && shape.Length != 2)
            throw new ArgumentException($"A quantised ({dtype}) tensor is a [N,K] weight matrix, not [{string.Join(",", shape)}].", nameof(shape));
        long needed = elementOffset * ElementSize(dtype) + StorageBytes(dtype, shape);
        if (needed > allocation.Size)
            throw new ArgumentException($"Shape [{string.Join(",", shape)}] {dtype} at element offset {elementOffset} needs {needed} B but the block has {allocation.Size} B.", nameof(shape));
    }

    /// <summary>A non-owning <paramref name="dtype"/> view of <paramref name="shape"/> at <paramref name="elementOffset"/> elements into a block (residency slots).</summary>
    internal static Tensor View(DeviceAllocation allocation, TensorDType dtype, long elementOffset, int[] shape) =>
        new(allocation, dtype, elementOffset, ownsAllocation: false, shape);

    /// <summary>The device block.</summary>
    public DeviceAllocation Allocation { get; }
    /// <summary>Element type.</summary>
    public TensorDType DType { get; }
    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>Product of the dimensions.</summary>
    public long ElementCount { get; }
    /// <summary>Bytes of payload (<see cref="ElementCount"/> × element size; for quantised matrices the codes, their padding and the scales).</summary>
    public long ByteCount => StorageBytes(DType, Shape);

    /// <summary>
    /// Bytes a tensor of <paramref name="shape"/> in <paramref name="dtype"/> occupies: elements × element size, and for
    /// the quantised dtypes the codes rounded up to 16 B followed by one float32 scale per row.
    /// </summary>
    public static long StorageBytes(TensorDType dtype, IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (int d in shape) n *= d;
        return WeightQuantization.IsQuantized(dtype) && shape.Count == 2
            ? WeightQuantization.ScaleOffset(n) + 4L * shape[0]
            : n * ElementSize(dtype);
    }

    /// <summary>Where this tensor starts within its block, in elements (non-zero only for <see cref="Rows"/> views).</summary>
    public long ElementOffset { get; }
    /// <summary>Whether disposing this tensor returns the block (false for views).</summary>
    public bool OwnsAllocation { get; }

    /// <summary>Float32 view; throws for other dtypes.</summary>
    public ArrayView<float> F32 => DType == TensorDType.F32 ? TypedView<float>() : throw WrongType(TensorDType.F32);
    /// <summary>bfloat16 bits view; throws for other dtypes.</summary>
    public ArrayView<ushort> BF16 => DType == TensorDType.BF16 ? TypedView<ushort>() : throw WrongType(TensorDType.BF16);
    /// <summary>float16 view; throws for other dtypes.</summary>
    public ArrayView<ILGPU.Half> F16 => DType == TensorDType.F16 ? TypedView<ILGPU.Half>() : throw WrongType(TensorDType.F16);
    /// <summary>Byte view; throws for other dtypes.</summary>
    public ArrayView<byte> U8 => DType == TensorDType.U8 ? TypedView<byte>() : throw WrongType(TensorDType.U8);
    /// <summary>int8 codes view of a quantised matrix; throws for other dtypes.</summary>
    public ArrayView<sbyte> I8 => DType == TensorDType.I8 ? TypedView<sbyte>() : throw WrongType(TensorDType.I8);
    /// <summary>fp8 e4m3fn bits view of a quantised matrix; throws for other dtypes.</summary>
    public ArrayView<byte> F8E4M3 => DType == TensorDType.F8E4M3 ? TypedView<byte>() : throw WrongType(TensorDType.F8E4M3);

    /// <summary>The per-row float32 scales of a quantised matrix (stored after its codes); throws for other dtypes.</summary>
    public ArrayView<float> QuantScales
    {
        get
        {
            if (!WeightQuantization.IsQuantized(DType)) throw new InvalidOperationException($"{this} is not a quantised matrix.");
            long start = ElementOffset + WeightQuantization.ScaleOffset(ElementCount);
            return Allocation.GetView<byte>(start + 4L * Shape[0]).SubView(start, 4L * Shape[0]).Cast<float>();
        }
    }

    /// <summary>Size in bytes of one element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => 4,
        TensorDType.U8 or TensorDType.I8 or TensorDType.F8E4M3 => 1,
        _ => 2,
    };

    /// <summary>
    /// A non-owning view with another shape of the same element count (e.g. <c>[S, H·Dh]</c> as <c>[S, H, Dh]</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The element counts differ.</exception>
    public Tensor Reshape(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (int d in shape) n *= d;
        if (WeightQuantization.IsQuantized(DType)) throw new InvalidOperationException($"{this} is a quantised matrix (codes then scales) and cannot be reshaped.");
        if (n != ElementCount)
            throw new ArgumentException($"Cannot reshape {this} ({ElementCount} elements) to [{string.Join(",", shape)}] ({n} elements).", nameof(shape));
        return new Tensor(Allocation, DType, ElementOffset, ownsAllocation: false, shape);
    }

    /// <summary>A non-owning view of rows <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>-1 of the first dimension.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside <c>[0, Shape[0]]</c>.</exception>
    public Tensor Rows(int start, int count)
    {
        if (Shape.Length == 0)
            throw new InvalidOperationException($"{this} has no rows to slice.");
        if (WeightQuantization.IsQuantized(DType)) throw new InvalidOperationException($"{this} is a quantised matrix (codes then scales) and cannot be sliced.");
        if (start < 0 || count < 0 || start + count > Shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows {start}..{start + count} are outside 0..{Shape[0]} of {this}.");
        long rowElements = Shape[0] == 0 ? 0 : ElementCount / Shape[0];
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new Tensor(Allocation, DType, ElementOffset + start * rowElements, ownsAllocation: false, shape);
    }

    /// <summary>Dimension <paramref name="i"/> (negative counts from the end).</summary>
    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];

    /// <inheritdoc />
    public override string ToString() => $"Tensor[{string.Join(",", Shape)}] {DType} ({Allocation.Tag})";

    /// <inheritdoc />
    /// <remarks>Idempotent, so a tensor can be freed early inside a <c>using</c> scope that also covers error paths.</remarks>
    public void Dispose()
    {
        if (!OwnsAllocation || _disposed) return;
        _disposed = true;
        Allocation.Dispose();
    }

    private bool _disposed;

    private ArrayView<T> TypedView<T>() where T : unmanaged =>
        ElementOffset == 0 ? Allocation.GetView<T>(ElementCount) : Allocation.GetView<T>(ElementOffset + ElementCount).SubView(ElementOffset, ElementCount);

    private InvalidOperationException WrongType(TensorDType wanted) => new($"{this} is {DType}, not {wanted}.");
}
