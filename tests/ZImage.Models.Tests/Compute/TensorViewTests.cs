using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;

namespace ZImage.Models.Tests.Compute;

/// <summary>Reshape / Rows views share the owner's block, never free it, and the owner's dispose is idempotent.</summary>
[Collection(ComputeCollection.Name)]
public sealed class TensorViewTests(ComputeFixture fx)
{
    [Fact]
    public void RowViewsReadAndWriteTheOwnersMemory()
    {
        using var alloc = fx.CreateAllocator();
        using var t = fx.Upload(alloc, Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 4, 6);
        var rows = t.Rows(1, 2);
        Assert.Equal([2, 6], rows.Shape);
        Assert.Equal(6, rows.ElementOffset);
        Assert.Equal(Enumerable.Range(6, 12).Select(i => (float)i), fx.Ops.Download(rows));

        fx.Ops.Upload(new float[12], rows.Reshape(2, 2, 3));
        float[] all = fx.Ops.Download(t);
        Assert.Equal(new float[12], all[6..18]);
        Assert.Equal(5f, all[5]);
        Assert.Equal(18f, all[18]);

        rows.Dispose();
        Assert.False(t.Allocation.IsDisposed);
        t.Dispose();
        t.Dispose();
        Assert.True(t.Allocation.IsDisposed);
    }

    [Fact]
    public void BadViewsAreRejectedWithTheShapes()
    {
        using var alloc = fx.CreateAllocator();
        using var t = fx.Upload(alloc, new float[24], 4, 6);
        var e = Assert.Throws<ArgumentException>(() => t.Reshape(5, 5));
        Assert.Contains("[5,5]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Rows(3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Rows(-1, 1));
        Assert.Equal(1, Tensor.ElementSize(TensorDType.U8));
    }
}
