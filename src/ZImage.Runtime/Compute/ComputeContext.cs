using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Compute;

/// <summary>
/// What a model forward needs: an allocator for activations and the ops that fill them. The same model code runs
/// for real (kernel ops over an accelerator-backed allocator) and in planning mode (no-op ops over a simulated
/// device), so both make the identical sequence of allocations.
/// </summary>
public sealed class ComputeContext
{
    /// <summary>Creates a context.</summary>
    public ComputeContext(IDeviceAllocator allocator, IComputeOps ops)
    {
        Allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        Ops = ops ?? throw new ArgumentNullException(nameof(ops));
    }

    /// <summary>Where activations come from.</summary>
    public IDeviceAllocator Allocator { get; }

    /// <summary>The operations (kernels, or no-ops when planning).</summary>
    public IComputeOps Ops { get; }

    /// <summary>Whether this is a planning run (no kernels, no data).</summary>
    public bool IsPlanning => Ops.IsPlanning;

    /// <summary>Allocates an uninitialised F32 activation tensor with the given tag.</summary>
    public Tensor Empty(string tag, params int[] shape) => Empty(tag, TensorDType.F32, shape);

    /// <summary>Allocates an uninitialised tensor of any dtype with the given tag.</summary>
    public Tensor Empty(string tag, TensorDType dtype, params int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        var block = Allocator.Allocate(Math.Max(1, n) * Tensor.ElementSize(dtype), tag);
        try
        {
            return new Tensor(block, dtype, shape);
        }
        catch
        {
            block.Dispose();
            throw;
        }
    }
}
