using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Compute;

/// <summary>
/// What a model forward needs: an allocator for activations and the ops that fill them. The same model code runs
/// for real (kernel ops over an accelerator-backed allocator) and in planning mode (no-op ops over a simulated
/// device), so both make the identical sequence of allocations.
/// </summary>
public sealed class ComputeContext
{
    /// <summary>Creates a context with float32 activations.</summary>
    public ComputeContext(IDeviceAllocator allocator, IComputeOps ops)
        : this(allocator, ops, TensorDType.F32)
    {
    }

    /// <summary>Creates a context whose model activations are stored as <paramref name="activations"/>.</summary>
    /// <param name="allocator">Where activations come from.</param>
    /// <param name="ops">The operations.</param>
    /// <param name="activations"><see cref="TensorDType.F32"/> or <see cref="TensorDType.BF16"/> (computed in float32, stored as bf16).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="activations"/> is neither F32 nor BF16.</exception>
    public ComputeContext(IDeviceAllocator allocator, IComputeOps ops, TensorDType activations)
    {
        Allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        Ops = ops ?? throw new ArgumentNullException(nameof(ops));
        if (activations is not (TensorDType.F32 or TensorDType.BF16))
            throw new ArgumentOutOfRangeException(nameof(activations), activations, $"Activations are stored as F32 or BF16, not {activations}.");
        Activations = activations;
    }

    /// <summary>The storage format of model activations (<see cref="Activation"/>): F32, or BF16 to halve the workspace.</summary>
    public TensorDType Activations { get; }

    /// <summary>Where activations come from.</summary>
    public IDeviceAllocator Allocator { get; }

    /// <summary>The operations (kernels, or no-ops when planning).</summary>
    public IComputeOps Ops { get; }

    /// <summary>Whether this is a planning run (no kernels, no data).</summary>
    public bool IsPlanning => Ops.IsPlanning;

    /// <summary>Allocates an uninitialised F32 tensor with the given tag (pipeline-level data: latents, noise, tables).</summary>
    public Tensor Empty(string tag, params int[] shape) => Empty(tag, TensorDType.F32, shape);

    /// <summary>Allocates an uninitialised model activation in <see cref="Activations"/> with the given tag.</summary>
    public Tensor Activation(string tag, params int[] shape) => Empty(tag, Activations, shape);

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
