using ILGPU.Runtime;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Attention;

/// <summary>
/// Both attention variants match a float64 softmax reference on every backend: self and cross attention, causal masks, grouped-query
/// heads, head dims 16/32/128/512 (and one above the tiled kernel's limit), sequence lengths that are not tile multiples.
/// </summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class AttentionCorrectnessTests(GemmAcceleratorFixture fx)
{
    /// <summary>(Sq, Sk, Hq, Hkv, Dh, causal) for the portable variant.</summary>
    public static TheoryData<int, int, int, int, int, bool> PortableCases() => new()
    {
        { 1, 1, 1, 1, 16, false },
        { 33, 33, 2, 2, 16, false },
        { 37, 37, 4, 2, 32, true },
        { 29, 29, 6, 2, 16, true },
        { 5, 70, 3, 1, 16, false },
        { 70, 5, 2, 2, 32, false },
        { 20, 20, 2, 1, 128, true },
        { 6, 9, 1, 1, 512, false },
    };

    /// <summary>
    /// (Sq, Sk, Hq, Hkv, Dh, causal) around the portable kernel's blocking (4 query rows × 8 keys, single rows for
    /// the Sq remainder): Sq below, at and above multiples of 4, Sk with and without an 8-key tail, causal blocks
    /// whose diagonal falls inside a full 8-key block and inside the tail, and GQA with several query heads per KV head.
    /// </summary>
    public static TheoryData<int, int, int, int, int, bool> PortableBlockingCases() => new()
    {
        { 3, 3, 1, 1, 8, true },
        { 4, 4, 1, 1, 8, true },
        { 4, 8, 2, 1, 8, false },
        { 5, 5, 2, 1, 8, true },
        { 8, 8, 3, 3, 4, true },
        { 9, 16, 4, 2, 12, false },
        { 12, 12, 2, 2, 8, true },
        { 16, 16, 4, 1, 8, true },
        { 19, 19, 2, 1, 24, true },
        { 24, 17, 2, 2, 8, false },
        { 26, 26, 3, 1, 5, true },
        { 15, 15, 2, 1, 8, true },
        { 14, 21, 2, 2, 8, false },
    };

    /// <summary>Tiny cases for the (simulated) GPU variant; 2100 exceeds the tiled limit and takes the fallback.</summary>
    public static TheoryData<int, int, int, int, int, bool> GpuCases() => new()
    {
        { 20, 20, 2, 2, 16, false },
        { 12, 12, 4, 2, 32, true },
        { 5, 40, 2, 1, 16, false },
        { 17, 17, 1, 1, 128, true },
        { 5, 6, 1, 1, 512, false },
        { 2, 3, 1, 1, 2100, false },
    };

    /// <summary>Every backend: portable cases on the CPU, tiny cases on the GPU-shaped CPU, all of them on CUDA if present.</summary>
    public static TheoryData<KernelBackend, int, int, int, int, int, bool> Cases() => KernelBackends.Matrix(PortableCases(), GpuCases());

    /// <summary>The portable blocking edges on the CPU, and on CUDA if present (where the GPU variant runs them).</summary>
    public static TheoryData<KernelBackend, int, int, int, int, int, bool> BlockingCases() => KernelBackends.Matrix(PortableBlockingCases(), new());

    /// <summary>Each backend's variant (the GPU one: shared-memory tiles) matches the float64 reference.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64Reference(KernelBackend backend, int sq, int sk, int hq, int hkv, int dh, bool causal) =>
        Check(backend, sq, sk, hq, hkv, dh, causal, 1f,
            backend == KernelBackend.CpuGpuShaped ? sq * 7000 + sk * 3 + dh : sq * 1000 + sk * 10 + dh);

    /// <summary>Row-block remainders, key-block tails and causal diagonals inside blocks.</summary>
    [Theory]
    [MemberData(nameof(BlockingCases))]
    public void BlockEdgesMatchFloat64Reference(KernelBackend backend, int sq, int sk, int hq, int hkv, int dh, bool causal) =>
        Check(backend, sq, sk, hq, hkv, dh, causal, 2f, sq * 3100 + sk * 17 + hq * 5 + dh);

    /// <summary>Scores in the hundreds (no exp overflow thanks to the running max) on every backend.</summary>
    [Theory]
    [MemberData(nameof(KernelBackends.All), MemberType = typeof(KernelBackends))]
    public void LargeScoresStayFiniteAndAccurate(KernelBackend backend) =>
        Check(backend, 18, 18, 2, 1, 32, causal: true, inputScale: 6f, seed: 4242);

    private void Check(KernelBackend backend, int sq, int sk, int hq, int hkv, int dh, bool causal, float inputScale, int seed)
    {
        var rng = new Random(seed);
        float[] q = GemmReference.Random(rng, sq * hq * dh, inputScale);
        float[] k = GemmReference.Random(rng, sk * hkv * dh, inputScale);
        float[] v = GemmReference.Random(rng, sk * hkv * dh);
        float scale = 1f / MathF.Sqrt(dh);
        AttentionKernels attention = fx.Attention(backend);
        var acc = attention.Context.Accelerator;
        using var qb = GemmAcceleratorFixture.Upload(acc, q);
        using var kb = GemmAcceleratorFixture.Upload(acc, k);
        using var vb = GemmAcceleratorFixture.Upload(acc, v);
        using var ob = GemmAcceleratorFixture.Poisoned(acc, sq * hq * dh);

        attention.Forward(qb.View, kb.View, vb.View, ob.View, sq, sk, hq, hkv, dh, scale, causal);
        acc.Synchronize();

        var (expected, magnitude) = AttnReference.Attention(q, k, v, sq, sk, hq, hkv, dh, scale, causal);
        GemmReference.AssertClose(expected, magnitude, ob.GetAsArray1D(), 2e-5 * inputScale * inputScale,
            $"{backend} attention Sq={sq} Sk={sk} Hq={hq} Hkv={hkv} Dh={dh} causal={causal}");
    }
}
