using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace ZImage.Runtime.Devices;

/// <summary>
/// An ILGPU <see cref="MemoryBuffer"/> over device memory that ILGPU did not allocate (here: <c>cuMemAllocAsync</c>),
/// so ordinary <see cref="ArrayView{T}"/>s over it work as kernel arguments and in copies (ILGPU builds kernel
/// arguments from <c>view.Buffer.NativePtr + index</c>; see allocator.md §4.3 and ILGPU#1130). Memset and copies go
/// through ILGPU's public <c>CudaMemoryBuffer.CudaMemSet/CudaCopy</c>. Disposing it does not free the memory: the
/// owning backend frees the pointer, ordered on its stream.
/// </summary>
internal sealed class CudaPoolMemoryBuffer : MemoryBuffer
{
    public CudaPoolMemoryBuffer(Accelerator accelerator, ulong devicePointer, long lengthInBytes)
        : base(accelerator, lengthInBytes, sizeof(byte))
    {
        if (devicePointer == 0)
            throw new ArgumentOutOfRangeException(nameof(devicePointer), devicePointer, "The device pointer must not be 0.");
        NativePtr = (IntPtr)(long)devicePointer;
    }

    /// <summary>The device pointer as the driver returned it.</summary>
    public ulong DevicePointer => (ulong)NativePtr.ToInt64();

    /// <summary>A byte view over the whole buffer.</summary>
    public ArrayView<byte> ByteView => new(this, 0, Length);

    protected override void MemSet(AcceleratorStream stream, byte value, in ArrayView<byte> targetView) =>
        CudaMemoryBuffer.CudaMemSet(stream as CudaStream, value, targetView);

    protected override void CopyFrom(AcceleratorStream stream, in ArrayView<byte> sourceView, in ArrayView<byte> targetView) =>
        CudaMemoryBuffer.CudaCopy(stream as CudaStream, sourceView, targetView);

    protected override void CopyTo(AcceleratorStream stream, in ArrayView<byte> sourceView, in ArrayView<byte> targetView) =>
        CudaMemoryBuffer.CudaCopy(stream as CudaStream, sourceView, targetView);

    // The pointer belongs to the pool backend, which frees it with cuMemFreeAsync; nothing to release here.
    protected override void DisposeAcceleratorObject(bool disposing) => NativePtr = IntPtr.Zero;
}
