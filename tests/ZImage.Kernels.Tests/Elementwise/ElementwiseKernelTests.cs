using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;

namespace ZImage.Kernels.Tests.Elementwise;

[Collection(NormConvCollection.Name)]
public sealed class ElementwiseKernelTests(NormConvFixture fx)
{
    private static readonly TheoryData<int> Lengths = new(1, 7, 33, 130);

    private static readonly TheoryData<int, int> Shapes = new() { { 1, 1 }, { 3, 7 }, { 5, 33 }, { 2, 130 } };

    public static TheoryData<KernelBackend, int> Sizes() => KernelBackends.Matrix(Lengths, Lengths);

    public static TheoryData<KernelBackend, int, int> Matrices() => KernelBackends.Matrix(Shapes, Shapes);

    private float[] RunUnary(KernelBackend backend, float[] x, Action<ElementwiseKernels, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>> op)
    {
        var acc = fx.For(backend).Accelerator;
        using var bx = Upload(acc, x);
        using var by = Upload(acc, Poison(x.Length));
        op(fx.Elementwise(backend), bx.View, by.View);
        return Download(acc, by);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void UnaryActivationsMatchReference(KernelBackend backend, int n)
    {
        var x = Random(n, n, 6f);
        AssertClose(Array.ConvertAll(x, v => Silu(v)), RunUnary(backend, x, (k, a, b) => k.Silu(a, b, n)), atol: 1e-6, what: "silu");
        AssertClose(Array.ConvertAll(x, v => Math.Tanh(v)), RunUnary(backend, x, (k, a, b) => k.Tanh(a, b, n)), atol: 1e-6, what: "tanh");
        AssertClose(Array.ConvertAll(x, v => 0.25 * v), RunUnary(backend, x, (k, a, b) => k.Scale(a, 0.25f, b, n)), atol: 0, rtol: 0, what: "scale");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void BinaryOpsMatchReference(KernelBackend backend, int n)
    {
        var acc = fx.For(backend).Accelerator;
        var a = Random(n + 100, n, 5f);
        var b = Random(n + 200, n, 5f);
        using var ba = Upload(acc, a);
        using var bb = Upload(acc, b);
        using var sum = Upload(acc, Poison(n));
        using var glu = Upload(acc, Poison(n));
        fx.Elementwise(backend).Add(ba.View, bb.View, sum.View, n);
        fx.Elementwise(backend).SwiGlu(ba.View, bb.View, glu.View, n);
        var expSum = new double[n];
        var expGlu = new double[n];
        for (int i = 0; i < n; i++)
        {
            expSum[i] = a[i] + b[i];
            expGlu[i] = Silu(a[i]) * b[i];
        }

        AssertClose(expSum, Download(acc, sum), atol: 1e-6, what: "add");
        AssertClose(expGlu, Download(acc, glu), atol: 1e-5, what: "swiglu");

        // In place into the first operand.
        fx.Elementwise(backend).Add(ba.View, bb.View, ba.View, n);
        AssertClose(expSum, Download(acc, ba), atol: 1e-6, what: "add in place");
    }

    [Theory]
    [MemberData(nameof(Matrices))]
    public void ModulateAndGatedResidualBroadcastOverRows(KernelBackend backend, int rows, int cols)
    {
        var acc = fx.For(backend).Accelerator;
        int n = rows * cols;
        var x = Random(rows * 17 + cols, n, 3f);
        var s = Random(cols + 1, cols);
        var res = Random(cols + 2, n);
        using var bx = Upload(acc, x);
        using var bs = Upload(acc, s);
        using var by = Upload(acc, Poison(n));
        using var br = Upload(acc, res);
        fx.Elementwise(backend).Modulate(bx.View, bs.View, by.View, rows, cols);
        fx.Elementwise(backend).GatedResidual(br.View, bx.View, bs.View, rows, cols);
        var expMod = new double[n];
        var expRes = new double[n];
        for (int i = 0; i < n; i++)
        {
            expMod[i] = x[i] * (1 + (double)s[i % cols]);
            expRes[i] = res[i] + Math.Tanh(s[i % cols]) * x[i];
        }

        AssertClose(expMod, Download(acc, by), atol: 1e-6, what: "modulate");
        AssertClose(expRes, Download(acc, br), atol: 1e-6, what: "gated residual");
    }

    [Theory]
    [MemberData(nameof(Matrices))]
    public void CopyRowsAndFillRowsTouchOnlyTheirRows(KernelBackend backend, int rows, int dim)
    {
        var acc = fx.For(backend).Accelerator;
        int srcRows = rows + 2, dstRows = rows + 4;
        var src = Random(dim + rows, srcRows * dim);
        var vec = Random(dim + 50, dim);
        var dst0 = Random(dim + 60, dstRows * dim);
        using var bs = Upload(acc, src);
        using var bv = Upload(acc, vec);
        using var bd = Upload(acc, dst0);
        // Copy src rows [1, 1+rows) to dst rows [3, 3+rows); fill dst row 0 from vec (row 1, 2 untouched).
        fx.Elementwise(backend).CopyRows(bs.View, 1, bd.View, 3, rows, dim);
        fx.Elementwise(backend).FillRows(bv.View, bd.View, 0, 1, dim);
        var expected = Widen(dst0);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < dim; c++) expected[(3 + r) * dim + c] = src[(1 + r) * dim + c];
        }

        for (int c = 0; c < dim; c++) expected[c] = vec[c];
        AssertClose(expected, Download(acc, bd), atol: 0, rtol: 0);

        // Fill several rows (pad tokens).
        using var pad = Upload(acc, Poison(rows * dim));
        fx.Elementwise(backend).FillRows(bv.View, pad.View, 0, rows, dim);
        var expPad = new double[rows * dim];
        for (int i = 0; i < expPad.Length; i++) expPad[i] = vec[i % dim];
        AssertClose(expPad, Download(acc, pad), atol: 0, rtol: 0, what: "pad");
    }

    [Fact]
    public void RejectsOutOfRangeRows()
    {
        using var b = fx.Cpu.Allocate1D<float>(12);
        var k = fx.Elementwise(false);
        Assert.Throws<ArgumentException>(() => k.CopyRows(b.View, 2, b.View, 0, 2, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.CopyRows(b.View, -1, b.View, 0, 1, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.FillRows(b.View, b.View, 0, 1, 0));
        Assert.Throws<ArgumentException>(() => k.Silu(b.View, b.View, 13));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.Scale(b.View, float.NaN, b.View, 12));
    }
}
