using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;

namespace ZImage.Kernels.Tests.Norm;

[Collection(NormConvCollection.Name)]
public sealed class RowNormTests(NormConvFixture fx)
{
    public static TheoryData<KernelBackend, int, int> Shapes()
    {
        var portable = new TheoryData<int, int> { { 1, 1 }, { 3, 7 }, { 2, 33 }, { 5, 130 }, { 4, 600 } };

        // The simulated GPU variant costs ~ms per 256-thread group barrier here: keep rows few.
        // 600 is wider than one group, so each thread strides over several elements.
        var gpu = new TheoryData<int, int> { { 1, 1 }, { 3, 7 }, { 2, 33 }, { 2, 130 }, { 1, 600 } };
        return KernelBackends.Matrix(portable, gpu);
    }

    private static double[] RmsRef(float[] x, float[]? w, float[]? scale, int rows, int dim, double eps)
    {
        var y = new double[rows * dim];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
            double inv = 1 / Math.Sqrt(ss / dim + eps);
            for (int i = 0; i < dim; i++)
            {
                double v = x[r * dim + i] * inv * (w is null ? 1 : w[i]);
                y[r * dim + i] = scale is null ? v : v * (1 + (double)scale[i]);
            }
        }

        return y;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RmsNormMatchesReferenceWithAndWithoutWeight(KernelBackend backend, int rows, int dim)
    {
        var acc = fx.For(backend).Accelerator;
        var x = Random(dim * 31 + rows, rows * dim, 3f);
        var w = Random(dim + 7, dim);
        using var bx = Upload(acc, x);
        using var bw = Upload(acc, w);
        using var by = Upload(acc, Poison(rows * dim));
        using var by2 = Upload(acc, Poison(rows * dim));
        fx.Norm(backend).RmsNorm(bx.View, bw.View, 1e-5f, by.View, rows, dim);
        fx.Norm(backend).RmsNorm(bx.View, default, 1e-6f, by2.View, rows, dim);
        AssertClose(RmsRef(x, w, null, rows, dim, 1e-5), Download(acc, by), what: "weighted");
        AssertClose(RmsRef(x, null, null, rows, dim, 1e-6), Download(acc, by2), what: "unweighted");
    }

    [Theory]
    [MemberData(nameof(KernelBackends.All), MemberType = typeof(KernelBackends))]
    public void RmsNormInPlaceMatchesReference(KernelBackend backend)
    {
        const int rows = 3, dim = 33;
        var acc = fx.For(backend).Accelerator;
        var x = Random(5, rows * dim, 2f);
        var w = Random(6, dim);
        using var bx = Upload(acc, x);
        using var bw = Upload(acc, w);
        fx.Norm(backend).RmsNorm(bx.View, bw.View, 1e-5f, bx.View, rows, dim);
        AssertClose(RmsRef(x, w, null, rows, dim, 1e-5), Download(acc, bx));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RmsNormModulateAppliesOnePlusScale(KernelBackend backend, int rows, int dim)
    {
        var acc = fx.For(backend).Accelerator;
        var x = Random(dim * 3 + rows, rows * dim, 2f);
        var w = Random(dim + 1, dim);
        var s = Random(dim + 2, dim, 0.5f);
        using var bx = Upload(acc, x);
        using var bw = Upload(acc, w);
        using var bs = Upload(acc, s);
        using var by = Upload(acc, Poison(rows * dim));
        fx.Norm(backend).RmsNormModulate(bx.View, bw.View, bs.View, 1e-5f, by.View, rows, dim);
        AssertClose(RmsRef(x, w, s, rows, dim, 1e-5), Download(acc, by));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RmsNormGatedResidualAddsTanhGatedNormalisedBranch(KernelBackend backend, int rows, int dim)
    {
        var acc = fx.For(backend).Accelerator;
        var branch = Random(dim * 5 + rows, rows * dim, 4f);
        var w = Random(dim + 3, dim);
        var gate = Random(dim + 4, dim, 2f);
        var res = Random(dim + 5, rows * dim);
        var norm = RmsRef(branch, w, null, rows, dim, 1e-5);
        var expectedGated = new double[rows * dim];
        var expectedUngated = new double[rows * dim];
        for (int i = 0; i < expectedGated.Length; i++)
        {
            expectedGated[i] = res[i] + Math.Tanh(gate[i % dim]) * norm[i];
            expectedUngated[i] = res[i] + norm[i];
        }

        using var bb = Upload(acc, branch);
        using var bw = Upload(acc, w);
        using var bg = Upload(acc, gate);
        using var br = Upload(acc, res);
        using var br2 = Upload(acc, res);
        fx.Norm(backend).RmsNormGatedResidual(bb.View, bw.View, bg.View, 1e-5f, br.View, rows, dim);
        fx.Norm(backend).RmsNormGatedResidual(bb.View, bw.View, default, 1e-5f, br2.View, rows, dim);
        AssertClose(expectedGated, Download(acc, br), what: "gated");
        AssertClose(expectedUngated, Download(acc, br2), what: "ungated");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LayerNormWithoutAffineMatchesReference(KernelBackend backend, int rows, int dim)
    {
        var acc = fx.For(backend).Accelerator;
        // An offset mean checks the centred (two-pass) variance.
        var x = Random(dim * 7 + rows, rows * dim, 2f);
        for (int i = 0; i < x.Length; i++) x[i] += 3f;
        var s = Random(dim + 9, dim, 0.5f);
        var plain = new double[rows * dim];
        var scaled = new double[rows * dim];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < dim; i++) mean += x[r * dim + i];
            mean /= dim;
            for (int i = 0; i < dim; i++) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
            double inv = 1 / Math.Sqrt(var / dim + 1e-6);
            for (int i = 0; i < dim; i++)
            {
                plain[r * dim + i] = (x[r * dim + i] - mean) * inv;
                scaled[r * dim + i] = plain[r * dim + i] * (1 + (double)s[i]);
            }
        }

        using var bx = Upload(acc, x);
        using var bs = Upload(acc, s);
        using var by = Upload(acc, Poison(rows * dim));
        using var by2 = Upload(acc, Poison(rows * dim));
        fx.Norm(backend).LayerNorm(bx.View, default, 1e-6f, by.View, rows, dim);
        fx.Norm(backend).LayerNorm(bx.View, bs.View, 1e-6f, by2.View, rows, dim);
        // dim 1 normalises to exactly 0; fp32 mean of an offset row costs a few ulps of the offset.
        AssertClose(plain, Download(acc, by), atol: 2e-4, rtol: 1e-4, what: "plain");
        AssertClose(scaled, Download(acc, by2), atol: 2e-4, rtol: 1e-4, what: "scaled");
    }

    [Fact]
    public void RejectsBadArguments()
    {
        var acc = fx.Portable.Accelerator;
        using var b = acc.Allocate1D<float>(8);
        var norm = fx.Norm(false);
        Assert.Throws<ArgumentOutOfRangeException>(() => norm.RmsNorm(b.View, default, 1e-5f, b.View, 2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => norm.RmsNorm(b.View, default, -1f, b.View, 2, 4));
        Assert.Throws<ArgumentException>(() => norm.RmsNorm(b.View, default, 1e-5f, b.View, 3, 4));
        Assert.Throws<ArgumentException>(() => norm.RmsNorm(b.View, b.View.SubView(0, 3), 1e-5f, b.View, 2, 4));
        Assert.Throws<ArgumentException>(() => norm.RmsNormModulate(b.View, default, b.View.SubView(0, 3), 1e-5f, b.View, 2, 4));
    }
}
