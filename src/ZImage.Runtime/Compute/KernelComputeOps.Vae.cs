using ILGPU;
using ZImage.Kernels;

namespace ZImage.Runtime.Compute;

public sealed partial class KernelComputeOps
{
    // Created on first use: this partial file cannot add to the constructor that compiles the other families, so the
    // (small) transpose kernel compiles on the first VAE decode unless WarmUpModelKernels ran earlier.
    private ModelKernels? _modelKernels;

    /// <summary>The transpose kernels used by the VAE mid-block attention.</summary>
    internal ModelKernels ModelKernels => Volatile.Read(ref _modelKernels) ?? CreateModelKernels();

    /// <summary>Compiles the VAE/text-encoder helper kernels now, so that the first decode pays no compile time.</summary>
    public void WarmUpModelKernels() => _ = ModelKernels;

    /// <inheritdoc />
    public void Conv2d(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var (cin, h, wd, cout, k) = VaeOpValidation.Conv2d(x, w, bias, y);
        LaunchConv(x, w, bias, y, cin, h, wd, cout, k, upsample: false);
    }

    /// <inheritdoc />
    public void Upsample2xConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var (cin, h, wd, cout, k) = VaeOpValidation.Conv2d(x, w, bias, y, upsample: true);
        LaunchConv(x, w, bias, y, cin, h, wd, cout, k, upsample: true);
    }

    /// <inheritdoc />
    public void Transpose2d(Tensor x, Tensor y)
    {
        var (rows, cols) = VaeOpValidation.Transpose2d(x, y);
        ModelKernels.Transpose2d(x.F32, y.F32, rows, cols);
    }

    private void LaunchConv(Tensor x, Tensor w, Tensor? bias, Tensor y, int cin, int h, int wd, int cout, int k, bool upsample)
    {
        ArrayView<float> b = bias is null ? default : bias.F32;
        switch (w.DType)
        {
            case TensorDType.F32: Conv.Conv2d(x.F32, w.F32, b, y.F32, cin, cout, h, wd, k, upsample); break;
            case TensorDType.BF16: Conv.Conv2dBf16(x.F32, w.BF16, b, y.F32, cin, cout, h, wd, k, upsample); break;
            default: Conv.Conv2d(x.F32, w.F16, b, y.F32, cin, cout, h, wd, k, upsample); break;
        }
    }

    private ModelKernels CreateModelKernels()
    {
        // A race compiles twice at worst; one instance wins and both are equivalent.
        var kernels = new ModelKernels(Context);
        return Interlocked.CompareExchange(ref _modelKernels, kernels, null) ?? kernels;
    }
}
