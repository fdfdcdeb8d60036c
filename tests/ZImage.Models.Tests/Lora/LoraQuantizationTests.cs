using ILGPU;
using ILGPU.Runtime;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Models.Tests.Transformer;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Lora;

/// <summary>
/// A merged LoRA and 8-bit weights compose: the LoRA is merged into the float weights as they are materialized and
/// quantise-at-load runs on those merged floats, so the device codes and per-channel scales are exactly those of the
/// host-side quantisation of <c>W + scale·(alpha/r)·B·A</c>, and differ from the codes of the unmerged weight.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class LoraQuantizationTests(ComputeFixture fx)
{
    public static TheoryData<string> Formats() => new() { nameof(TensorDType.I8), nameof(TensorDType.F8E4M3) };

    [Theory]
    [MemberData(nameof(Formats))]
    public void EightBitWeightsAreTheQuantisedLoraMergedFloats(string format)
    {
        var q = Enum.Parse<TensorDType>(format);
        const double scale = 0.7;
        var c = EditReferenceManifest.OfKind("lora").First(k => LoraParityTests.Variant(k) == "transformer_forward");
        string file = Path.Combine(c.ReferenceDir, c.Raw.GetProperty("lora_file").GetString()!);
        using var model = LoraParityTests.OpenTransformer();
        var adapter = LoraAdapter.Load(file, model);
        string name = adapter.Modules.Keys.Order(StringComparer.Ordinal)
            .First(k => WeightQuantization.Quantizes(k, model.GetInfo(k).Shape));
        int[] shape = model.GetInfo(name).Shape;
        int rows = shape[0], cols = shape[1];

        float[] merged = model.ReadSingles(name);
        LoraAdapter.Merge(adapter.Modules[name], merged, scale);
        var (mergedCodes, mergedScales) = HostQuantize(q, merged, rows, cols);
        var (plainCodes, _) = HostQuantize(q, model.ReadSingles(name), rows, cols);
        Assert.NotEqual(plainCodes, mergedCodes); // the LoRA changes this weight enough to move its codes

        using var dit = new TinyTransformer(fx, TensorDType.F32, quantized: q, wrapReader: r => LoraMerge.Wrap(r, [new LoraSpec(file, scale)]));
        var w = dit.Weights.Matrix(name, shape);
        Assert.Equal(q, w.DType);
        byte[] deviceCodes = q == TensorDType.I8
            ? ((ArrayView1D<sbyte, Stride1D.Dense>)w.I8).GetAsArray1D().Select(v => unchecked((byte)v)).ToArray()
            : ((ArrayView1D<byte, Stride1D.Dense>)w.F8E4M3).GetAsArray1D();
        float[] deviceScales = ((ArrayView1D<float, Stride1D.Dense>)w.QuantScales).GetAsArray1D();
        Assert.Equal(mergedCodes, deviceCodes[..mergedCodes.Length]);
        Assert.Equal(mergedScales, deviceScales[..rows]);
    }

    private static (byte[] Codes, float[] Scales) HostQuantize(TensorDType q, float[] w, int rows, int cols)
    {
        var codes = new byte[rows * cols];
        var scales = new float[rows];
        WeightQuantization.Quantize(q, w, rows, cols, codes, scales);
        return (codes, scales);
    }
}
