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
}

/// <summary>
/// A dense row-major device tensor: a shape, a dtype and a <see cref="DeviceAllocation"/> from the caching allocator.
/// In planning mode the allocation has no backing store (simulated device) and views throw; shapes and sizes are real.
/// Dispose returns the block to the pool.
/// </summary>
public sealed class Tensor : IDisposable
{
    /// <summary>Wraps an allocation that is large enough for <paramref name="shape"/> in <paramref name="dtype"/>.</summary>
    public Tensor(DeviceAllocation allocation, TensorDType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(allocation);
        Allocation = allocation;
        DType = dtype;
        Shape = shape;
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), d, "Tensor dimensions must be non-negative.");
            n *= d;
        }
        ElementCount = n;
        if (n * ElementSize(dtype) > allocation.Size)
            throw new ArgumentException($"Shape [{string.Join(",", shape)}] {dtype} needs {n * ElementSize(dtype)} B but the block has {allocation.Size} B.", nameof(shape));
    }

    /// <summary>The device block.</summary>
    public DeviceAllocation Allocation { get; }
    /// <summary>Element type.</summary>
    public TensorDType DType { get; }
    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>Product of the dimensions.</summary>
    public long ElementCount { get; }
    /// <summary>Bytes of payload (<see cref="ElementCount"/> × element size).</summary>
    public long ByteCount => ElementCount * ElementSize(DType);

    /// <summary>Float32 view; throws for other dtypes.</summary>
    public ArrayView<float> F32 => DType == TensorDType.F32 ? Allocation.GetView<float>(ElementCount) : throw WrongType(TensorDType.F32);
    /// <summary>bfloat16 bits view; throws for other dtypes.</summary>
    public ArrayView<ushort> BF16 => DType == TensorDType.BF16 ? Allocation.GetView<ushort>(ElementCount) : throw WrongType(TensorDType.BF16);
    /// <summary>float16 view; throws for other dtypes.</summary>
    public ArrayView<ILGPU.Half> F16 => DType == TensorDType.F16 ? Allocation.GetView<ILGPU.Half>(ElementCount) : throw WrongType(TensorDType.F16);

    /// <summary>Size in bytes of one element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(TensorDType dtype) => dtype == TensorDType.F32 ? 4 : 2;

    /// <summary>Dimension <paramref name="i"/> (negative counts from the end).</summary>
    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];

    /// <inheritdoc />
    public override string ToString() => $"Tensor[{string.Join(",", Shape)}] {DType} ({Allocation.Tag})";

    /// <inheritdoc />
    public void Dispose() => Allocation.Dispose();

    private InvalidOperationException WrongType(TensorDType wanted) => new($"{this} is {DType}, not {wanted}.");
}
