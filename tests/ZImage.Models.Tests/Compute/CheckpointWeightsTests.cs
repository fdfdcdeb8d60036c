using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Compute;

/// <summary>Uploading checkpoint tensors: dtype conversion, shape checks, caching, host gathers, planning sizes.</summary>
[Collection(ComputeCollection.Name)]
public sealed class CheckpointWeightsTests(ComputeFixture fx)
{
    private const string MatrixKey = "layers.0.feed_forward.w1.weight";
    private const string VectorKey = "layers.0.attention_norm1.weight";

    private static SafetensorsCheckpoint OpenTransformer() => SafetensorsCheckpoint.Open(Path.Combine(FixturePaths.TinyCheckpoint, "transformer"));

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.BF16)]
    [InlineData(TensorDType.F16)]
    public void MatricesTakeTheConfiguredDTypeAndVectorsStayF32(TensorDType dtype)
    {
        using var reader = OpenTransformer();
        using var alloc = fx.CreateAllocator();
        using var weights = new CheckpointWeights(reader, alloc, new CheckpointWeightsOptions { MatrixDType = dtype });
        int[] shape = reader.GetInfo(MatrixKey).Shape;
        float[] stored = reader.ReadSingles(MatrixKey);

        var m = weights.Matrix(MatrixKey, shape);
        Assert.Equal(dtype, m.DType);
        Assert.Equal(AllocationTags.Weights, m.Allocation.Tag);
        float[] expected = dtype switch
        {
            TensorDType.F32 => stored,
            TensorDType.BF16 => stored.Select(v => SafetensorsConvert.BFloat16ToSingle(SafetensorsConvert.SingleToBFloat16(v))).ToArray(),
            _ => stored.Select(v => (float)(System.Half)v).ToArray(),
        };
        Assert.Equal(expected, HostReferenceOps.Get(m));
        Assert.Same(m, weights.Matrix(MatrixKey, shape));

        var v = weights.Vector(VectorKey, reader.GetInfo(VectorKey).Shape);
        Assert.Equal(TensorDType.F32, v.DType);
        Assert.Equal(reader.ReadSingles(VectorKey), fx.Ops.Download(v));
    }

    [Fact]
    public void AShapeMismatchNamesTheKeyAndBothShapes()
    {
        using var reader = OpenTransformer();
        using var alloc = fx.CreateAllocator();
        using var weights = new CheckpointWeights(reader, alloc);
        var e = Assert.Throws<WeightShapeException>(() => weights.Matrix(MatrixKey, 64, 170));
        Assert.Equal(MatrixKey, e.Key);
        Assert.Contains(MatrixKey, e.Message);
        Assert.Contains("[170,64]", e.Message);
        Assert.Contains("[64,170]", e.Message);
        Assert.Equal(0, alloc.AllocatedBytes);
        Assert.Throws<KeyNotFoundException>(() => weights.Vector("no.such.weight", 4));
    }

    [Fact]
    public void GatherRowsReadsHostRowsWithoutUploading()
    {
        using var reader = SafetensorsCheckpoint.Open(Path.Combine(FixturePaths.TinyCheckpoint, "text_encoder"));
        using var alloc = fx.CreateAllocator();
        using var weights = new CheckpointWeights(reader, alloc);
        const string table = "model.embed_tokens.weight";
        int dim = reader.GetInfo(table).Shape[1];
        int[] rows = [151644, 0, 872, 151644];
        float[] got = weights.GatherRows(table, rows, dim);
        Assert.Equal(0, alloc.AllocatedBytes);
        var info = reader.GetInfo(table);
        for (int i = 0; i < rows.Length; i++)
        {
            var expected = new float[dim];
            SafetensorsConvert.ToSingle(reader.GetBytes(table).Slice(rows[i] * dim * 2, dim * 2), info.DType, expected);
            Assert.Equal(expected, got.AsSpan(i * dim, dim).ToArray());
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => weights.GatherRows(table, [info.Shape[0]], dim));
        Assert.Throws<WeightShapeException>(() => weights.GatherRows(table, [0], dim + 1));
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.BF16)]
    public void PlanningWeightsAllocateTheSameBytesAsTheCheckpoint(TensorDType dtype)
    {
        using var reader = OpenTransformer();
        using var real = fx.CreateAllocator();
        using var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), ownsBackend: true);
        using var weights = new CheckpointWeights(reader, real, new CheckpointWeightsOptions { MatrixDType = dtype });
        using var planned = new PlanningWeights(sim, dtype);
        foreach (string name in reader.TensorNames)
        {
            int[] shape = reader.GetInfo(name).Shape;
            bool matrix = shape.Length == 2 && shape[0] > 1;
            var a = matrix ? weights.Matrix(name, shape) : weights.Vector(name, shape);
            var b = matrix ? planned.Matrix(name, shape) : planned.Vector(name, shape);
            Assert.Equal(a.ByteCount, b.ByteCount);
        }
        Assert.Equal(weights.TotalBytes, planned.TotalBytes);
        Assert.Equal(real.AllocatedBytes, sim.AllocatedBytes);
        Assert.Equal(new float[6], planned.GatherRows("any", [1, 2], 3));
    }
}
