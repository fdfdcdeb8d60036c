using ILGPU;
using ZImage.Kernels;

namespace ZImage.Runtime.Compute;

public sealed partial class KernelComputeOps
{
    // Created on first use (like the model kernels): text-to-image never compiles them.
    private EditKernels? _editKernels;

    /// <summary>The image-editing kernels (compiled on first use).</summary>
    internal EditKernels EditKernels => Volatile.Read(ref _editKernels) ?? CreateEditKernels();

    /// <inheritdoc />
    public void DownsampleConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var (cin, h, wd, cout) = EditOpValidation.DownsampleConv2d(x, w, bias, y);
        ArrayView<float> b = bias is null ? default : bias.F32;
        switch (w.DType)
        {
            case TensorDType.F32: EditKernels.DownsampleConv(x.F32, w.F32, b, y.F32, cin, cout, h, wd); break;
            case TensorDType.BF16: EditKernels.DownsampleConvBf16(x.F32, w.BF16, b, y.F32, cin, cout, h, wd); break;
            default: EditKernels.DownsampleConv(x.F32, w.F16, b, y.F32, cin, cout, h, wd); break;
        }
    }

    /// <inheritdoc />
    public void PosteriorSample(Tensor moments, Tensor? eps, float scale, float shift, Tensor y, Tensor? std = null)
    {
        var (c, plane) = EditOpValidation.PosteriorSample(moments, eps, y, std);
        EditKernels.PosteriorSample(moments.F32, eps is null ? default : eps.F32, scale, shift, y.F32, std is null ? default : std.F32, c, plane);
    }

    /// <inheritdoc />
    public void ScaleNoise(Tensor x, Tensor noise, float sigma, Tensor y)
    {
        EditOpValidation.ScaleNoise(x, noise, sigma, y);
        EditKernels.ScaleNoise(x.F32, noise.F32, sigma, y.F32);
    }

    /// <inheritdoc />
    public void MaskBlend(Tensor latents, Tensor image, Tensor noise, Tensor mask, float sigma)
    {
        EditOpValidation.MaskBlend(latents, image, noise, mask, sigma);
        EditKernels.MaskBlend(latents.F32, image.F32, noise.F32, mask.F32, sigma);
    }

    private EditKernels CreateEditKernels()
    {
        var kernels = new EditKernels(Context);
        return Interlocked.CompareExchange(ref _editKernels, kernels, null) ?? kernels;
    }
}
