using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels.Mma;

/// <summary>What the mma GEMM applies to <c>v = x·wᵀ + bias</c> before it stores <c>y</c>.</summary>
public enum MmaEpilogue
{
    /// <summary><c>y = v</c>.</summary>
    None,
    /// <summary><c>y = silu(v)</c>.</summary>
    Silu,
    /// <summary><c>y = silu(v) · aux</c> (SwiGLU with the up projection in <c>aux[M,N]</c>).</summary>
    SwiGlu,
    /// <summary><c>y = aux + tanh(gate[n]) · v</c> (the DiT's tanh-gated residual; <c>aux</c> may be <c>y</c> itself).</summary>
    GatedResidual,
}

/// <summary>Block tiling of one mma GEMM launch: <c>WarpsM × WarpsN</c> warps, each a 32×64 tile.</summary>
/// <param name="WarpsM">Warps along M (1..4).</param>
/// <param name="WarpsN">Warps along N (1..2).</param>
public readonly record struct MmaTiling(int WarpsM, int WarpsN)
{
    /// <summary>What CUDA runs: 8 warps, 128×128 block tiles (3 stages of 16 KiB in shared memory).</summary>
    public static MmaTiling Gpu => new(4, 2);

    /// <summary>What the CPU emulator runs by default: one warp, 32×64 block tiles (the simulator pays per thread).</summary>
    public static MmaTiling SingleWarp => new(1, 1);
}

/// <summary>Problem size, tiling and addresses of one mma GEMM launch.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MmaGemmShape
{
    public int M, N, K;
    public int HasBias, HasScale, Epilogue;
    public int WarpsM, WarpsN;
    /// <summary>1 when the operand is staged with cp.async (bf16, K % 8 == 0, 16-byte aligned base), else element by element.</summary>
    public int AsyncX, AsyncW;
    public ulong XAddress, WAddress;
}

/// <summary>Stages 8 consecutive activations (one 16-byte shared chunk) of one row.</summary>
internal interface IMmaActivation<T>
    where T : unmanaged
{
    /// <summary>Fills shared elements dst..dst+7 from x[src..src+valid) and zeros; <paramref name="async"/> 1 allows cp.async from <paramref name="address"/>.</summary>
    void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<T> x, int async, ulong address, int src, int valid)
        where TMma : struct, IWarpMma;
}

/// <summary>fp32 activations: loaded, rounded to bf16 (nearest even) and stored to shared memory by the thread.</summary>
internal readonly struct F32Activation : IMmaActivation<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<float> x, int async, ulong address, int src, int valid)
        where TMma : struct, IWarpMma
    {
        for (int i = 0; i < 8; i++)
            sh[dst + i] = i < valid ? Bf16.FromFloat(x[src + i]) : (ushort)0;
    }
}

/// <summary>bf16 activations: cp.async when aligned, else copied element by element.</summary>
internal readonly struct Bf16Activation : IMmaActivation<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<ushort> x, int async, ulong address, int src, int valid)
        where TMma : struct, IWarpMma
    {
        if (async != 0) mma.CpAsync16(sh, sb, dst, x, address, src, valid);
        else MmaGemmKernels.CopyChunk(sh, dst, x, src, valid);
    }
}

/// <summary>Stages 8 consecutive weights (one 16-byte shared chunk) of one output row as bf16.</summary>
internal interface IMmaWeight<T>
    where T : unmanaged
{
    /// <summary>Fills shared elements dst..dst+7 from w[src..src+valid) and zeros.</summary>
    void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<T> w, in MmaGemmShape s, int src, int valid)
        where TMma : struct, IWarpMma;
}

/// <summary>bf16 weights: cp.async when K % 8 == 0 and the base is 16-byte aligned.</summary>
internal readonly struct Bf16Weight : IMmaWeight<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<ushort> w, in MmaGemmShape s, int src, int valid)
        where TMma : struct, IWarpMma
    {
        if (s.AsyncW != 0) mma.CpAsync16(sh, sb, dst, w, s.WAddress, src, valid);
        else MmaGemmKernels.CopyChunk(sh, dst, w, src, valid);
    }
}

/// <summary>
/// 8-bit weight codes (int8, fp8 e4m3fn) dequantized in registers while staged: every code is exactly a bf16 value,
/// so the tensor cores multiply the codes exactly and the per-channel scale is applied in the epilogue.
/// </summary>
internal readonly struct CodeWeight<T, TWiden> : IMmaWeight<T>
    where T : unmanaged
    where TWiden : struct, IWeightWidener<T>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stage<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int dst, ArrayView<T> w, in MmaGemmShape s, int src, int valid)
        where TMma : struct, IWarpMma
    {
        TWiden widen = default;
        for (int i = 0; i < 8; i++)
            sh[dst + i] = i < valid ? Bf16.FromFloat(widen.Widen(w[src + i])) : (ushort)0;
    }
}

/// <summary>Writes one output element.</summary>
internal interface IMmaOutput<T>
    where T : unmanaged
{
    void Store(ArrayView<T> y, int index, float value);
}

/// <summary>fp32 output.</summary>
internal readonly struct F32Output : IMmaOutput<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<float> y, int index, float value) => y[index] = value;
}

/// <summary>bf16 output (round to nearest even).</summary>
internal readonly struct Bf16Output : IMmaOutput<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<ushort> y, int index, float value) => y[index] = Bf16.FromFloat(value);
}

/// <summary>
/// Dense layer GEMM on the tensor cores, <c>y[M,N] = epilogue(x[M,K] · w[N,K]ᵀ + bias[N])</c>, with bf16 weights
/// (<see cref="ushort"/> bits), fp32 or bf16 activations, fp32 accumulation and fp32 or bf16 output. Row-major,
/// dense views; fp32 activations are rounded to bf16 while staged (what a bf16 GEMM does), so results carry bf16
/// input rounding (relative error ~2⁻⁹ per product, averaging out over K).
/// <para>
/// Design: block tiles of <see cref="MmaTiling"/> warps (128×128 with 8 warps on CUDA), each warp a 32×64 tile of
/// 2×8 <c>mma.m16n8k16</c> accumulators; K advances 32 at a time through a 3-stage shared-memory ring filled with
/// <c>cp.async</c> (16-byte chunks, zero-filled at ragged M/N/K edges) while the previous stages are computed;
/// fragments come from shared memory with <c>ldmatrix.x4</c>, whose 8-row reads are bank-conflict free thanks to an
/// XOR swizzle of the four 16-byte chunks of each 64-byte row (<see cref="Swizzle"/>). Operands that cp.async cannot
/// copy (fp32 activations, K not a multiple of 8, unaligned bases) are staged element by element into the same ring.
/// The epilogue reads bias/gate/aux and writes <c>y</c> straight from the accumulator fragments.
/// </para>
/// The kernels need explicitly grouped launches with 32-lane warps: CUDA, or ILGPU's CPU accelerator with a
/// GPU-shaped device (<see cref="KernelContext.CreateGpuShapedCpuAccelerator"/>), where <see cref="TensorCoreMma"/>
/// runs the exact fragment emulator. In a <see cref="KernelVariant.Portable"/> context nothing is compiled and
/// <see cref="IsAvailable"/> is false.
/// </summary>
public sealed class MmaGemmKernels : IDisposable
{
    internal const int BlockK = 32, Stages = 3;
    /// <summary>Shared ring for the largest tiling (128+128 rows × 32 bf16 × 3 stages = 48 KiB, the static limit).</summary>
    internal const int SharedElements = Stages * (128 + 128) * BlockK;

    private readonly KernelContext _ctx;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _dummy;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>? _f32F32;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, MmaGemmShape>? _f32Bf16;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>? _bf16F32;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, MmaGemmShape>? _bf16Bf16;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>? _int8;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>? _fp8;

    /// <summary>Compiles the four bf16-weight activation/output dtype combinations and the int8/fp8-weight kernels when <paramref name="context"/> is a GPU-variant context with 32-lane warps.</summary>
    /// <param name="context">Accelerator and variant.</param>
    public MmaGemmKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator acc = context.Accelerator;
        IsAvailable = context.Variant == KernelVariant.Gpu && acc.WarpSize == 32 && acc.MaxNumThreadsPerGroup >= 32;
        Tiling = acc.AcceleratorType == AcceleratorType.CPU ? MmaTiling.SingleWarp : MmaTiling.Gpu;
        if (!IsAvailable) return;
        _dummy = acc.Allocate1D<float>(1);
        _f32F32 = acc.LoadKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>(
            GemmKernel<float, F32Activation, ushort, Bf16Weight, float, F32Output, TensorCoreMma>);
        _f32Bf16 = acc.LoadKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, MmaGemmShape>(
            GemmKernel<float, F32Activation, ushort, Bf16Weight, ushort, Bf16Output, TensorCoreMma>);
        _bf16F32 = acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>(
            GemmKernel<ushort, Bf16Activation, ushort, Bf16Weight, float, F32Output, TensorCoreMma>);
        _bf16Bf16 = acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, MmaGemmShape>(
            GemmKernel<ushort, Bf16Activation, ushort, Bf16Weight, ushort, Bf16Output, TensorCoreMma>);
        _int8 = acc.LoadKernel<ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>(
            GemmKernel<float, F32Activation, sbyte, CodeWeight<sbyte, Int8Widener>, float, F32Output, TensorCoreMma>);
        _fp8 = acc.LoadKernel<ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>(
            GemmKernel<float, F32Activation, byte, CodeWeight<byte, Fp8E4M3Widener>, float, F32Output, TensorCoreMma>);
    }

    /// <summary>Whether the kernels were compiled (GPU variant, 32-lane warps).</summary>
    public bool IsAvailable { get; }

    /// <summary>The block tiling launches use: <see cref="MmaTiling.Gpu"/> on a GPU, <see cref="MmaTiling.SingleWarp"/> on the CPU emulator.</summary>
    public MmaTiling Tiling { get; set; }

    /// <summary>The context the kernels were compiled for.</summary>
    public KernelContext Context => _ctx;

    /// <summary>y = epilogue(x·wᵀ + bias) with fp32 activations and fp32 output.</summary>
    /// <param name="x">Activations [M,K] (rounded to bf16 as staged).</param>
    /// <param name="w">bf16 weight bits [N,K].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output [M,N]; fully overwritten.</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    /// <param name="epilogue">What to apply before storing.</param>
    /// <param name="gate">Gate [N] for <see cref="MmaEpilogue.GatedResidual"/>, else empty.</param>
    /// <param name="aux">[M,N]: the up projection for <see cref="MmaEpilogue.SwiGlu"/>, the residual for <see cref="MmaEpilogue.GatedResidual"/>, else empty.</param>
    public void Linear(ArrayView<float> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k,
        MmaEpilogue epilogue = MmaEpilogue.None, ArrayView<float> gate = default, ArrayView<float> aux = default)
    {
        var s = Prepare(x.Length, 0, w.Length, Address(w), default, bias, y.Length, m, n, k, epilogue, gate, aux);
        _f32F32!(_ctx.Stream, Config(s), x, w, Or(default), Or(bias), Or(gate), Or(aux), y, s);
    }

    /// <summary>y = epilogue(x·wᵀ + bias) with fp32 activations and bf16 output (see the fp32-output overload).</summary>
    public void Linear(ArrayView<float> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<ushort> y, int m, int n, int k,
        MmaEpilogue epilogue = MmaEpilogue.None, ArrayView<float> gate = default, ArrayView<float> aux = default)
    {
        var s = Prepare(x.Length, 0, w.Length, Address(w), default, bias, y.Length, m, n, k, epilogue, gate, aux);
        _f32Bf16!(_ctx.Stream, Config(s), x, w, Or(default), Or(bias), Or(gate), Or(aux), y, s);
    }

    /// <summary>y = epilogue(x·wᵀ + bias) with bf16 activations (staged with cp.async) and fp32 output.</summary>
    public void Linear(ArrayView<ushort> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k,
        MmaEpilogue epilogue = MmaEpilogue.None, ArrayView<float> gate = default, ArrayView<float> aux = default)
    {
        var s = Prepare(x.Length, Address(x), w.Length, Address(w), default, bias, y.Length, m, n, k, epilogue, gate, aux);
        _bf16F32!(_ctx.Stream, Config(s), x, w, Or(default), Or(bias), Or(gate), Or(aux), y, s);
    }

    /// <summary>y = epilogue(x·wᵀ + bias) with bf16 activations and bf16 output.</summary>
    public void Linear(ArrayView<ushort> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<ushort> y, int m, int n, int k,
        MmaEpilogue epilogue = MmaEpilogue.None, ArrayView<float> gate = default, ArrayView<float> aux = default)
    {
        var s = Prepare(x.Length, Address(x), w.Length, Address(w), default, bias, y.Length, m, n, k, epilogue, gate, aux);
        _bf16Bf16!(_ctx.Stream, Config(s), x, w, Or(default), Or(bias), Or(gate), Or(aux), y, s);
    }

    /// <inheritdoc />
    public void Dispose() => _dummy?.Dispose();

    /// <summary>Launches a caller-loaded instantiation of <see cref="GemmKernel"/> (tests substitute other <see cref="IWarpMma"/> layouts).</summary>
    internal void LaunchF32(Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape> kernel,
        ArrayView<float> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        var s = Prepare(x.Length, 0, w.Length, Address(w), default, bias, y.Length, m, n, k, MmaEpilogue.None, default, default);
        kernel(_ctx.Stream, Config(s), x, w, Or(default), Or(bias), Or(default), Or(default), y, s);
    }

    /// <summary>y = (x · codesᵀ) ⊙ scale + bias with int8 codes [N,K] (as <see cref="QuantGemmKernels.LinearInt8"/>), on the tensor cores.</summary>
    /// <param name="x">Activations [M,K] (rounded to bf16 as staged).</param>
    /// <param name="q">int8 codes [N,K]; dequantized to bf16 (exactly) in registers while staged.</param>
    /// <param name="scale">Per-output-channel scales [N].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output [M,N]; fully overwritten.</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void LinearInt8(ArrayView<float> x, ArrayView<sbyte> q, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        var s = PrepareQuant(x.Length, q.Length, scale, bias, y.Length, m, n, k);
        _int8!(_ctx.Stream, Config(s), x, q, scale, Or(bias), Or(default), Or(default), y, s);
    }

    /// <summary>y = (x · decode(codes)ᵀ) ⊙ scale + bias with fp8 e4m3fn codes [N,K], on the tensor cores.</summary>
    /// <param name="x">Activations [M,K] (rounded to bf16 as staged).</param>
    /// <param name="q">fp8 e4m3fn bits [N,K]; every code is exactly a bf16 value.</param>
    /// <param name="scale">Per-output-channel scales [N].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output [M,N]; fully overwritten.</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void LinearFp8E4M3(ArrayView<float> x, ArrayView<byte> q, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        var s = PrepareQuant(x.Length, q.Length, scale, bias, y.Length, m, n, k);
        _fp8!(_ctx.Stream, Config(s), x, q, scale, Or(bias), Or(default), Or(default), y, s);
    }

    private MmaGemmShape PrepareQuant(long xLength, long qLength, ArrayView<float> scale, ArrayView<float> bias, long yLength, int m, int n, int k)
    {
        GemmGuard.InRange(n, 1, int.MaxValue);
        GemmGuard.Holds(scale.Length, n, nameof(scale));
        return Prepare(xLength, 0, qLength, 0, scale, bias, yLength, m, n, k, MmaEpilogue.None, default, default);
    }

    internal KernelConfig Config(in MmaGemmShape s) => new(
        new Index2D((s.N + 64 * s.WarpsN - 1) / (64 * s.WarpsN), (s.M + 32 * s.WarpsM - 1) / (32 * s.WarpsM)),
        new Index2D(32 * s.WarpsM * s.WarpsN, 1));

    internal ArrayView<float> Or(ArrayView<float> view) => view.Length > 0 ? view : _dummy!.View;

    internal static ulong Address<T>(ArrayView<T> view)
        where T : unmanaged =>
        view.Length > 0 ? (ulong)view.LoadEffectiveAddressAsPtr().ToInt64() : 0ul;

    internal MmaGemmShape Prepare(long xLength, ulong xAddress, long wLength, ulong wAddress, ArrayView<float> scale, ArrayView<float> bias, long yLength, int m, int n, int k,
        MmaEpilogue epilogue, ArrayView<float> gate, ArrayView<float> aux)
    {
        if (!IsAvailable)
            throw new InvalidOperationException($"The mma GEMM needs a GPU-variant context with 32-lane warps; this one is {_ctx.Variant} on {_ctx.Accelerator.AcceleratorType} (warp {_ctx.Accelerator.WarpSize}).");
        GemmGuard.InRange(m, 1, int.MaxValue);
        GemmGuard.InRange(n, 1, int.MaxValue);
        GemmGuard.InRange(k, 1, int.MaxValue);
        GemmGuard.InRange((int)epilogue, (int)MmaEpilogue.None, (int)MmaEpilogue.GatedResidual, nameof(epilogue));
        GemmGuard.InRange(Tiling.WarpsM, 1, 4, "Tiling.WarpsM");
        GemmGuard.InRange(Tiling.WarpsN, 1, 2, "Tiling.WarpsN");
        GemmGuard.FitsInt32((long)m * k, "x");
        GemmGuard.FitsInt32((long)n * k, "w");
        GemmGuard.FitsInt32((long)m * n, "y");
        GemmGuard.Holds(xLength, (long)m * k, "x");
        GemmGuard.Holds(wLength, (long)n * k, "w");
        GemmGuard.Holds(yLength, (long)m * n, "y");
        if (bias.Length > 0) GemmGuard.Holds(bias.Length, n, nameof(bias));
        if (scale.Length > 0) GemmGuard.Holds(scale.Length, n, nameof(scale));
        if (epilogue == MmaEpilogue.GatedResidual) GemmGuard.Holds(gate.Length, n, nameof(gate));
        if (epilogue is MmaEpilogue.SwiGlu or MmaEpilogue.GatedResidual) GemmGuard.Holds(aux.Length, (long)m * n, nameof(aux));
        bool kAligned = k % 8 == 0;
        return new MmaGemmShape
        {
            M = m, N = n, K = k, HasBias = bias.Length > 0 ? 1 : 0, HasScale = scale.Length > 0 ? 1 : 0, Epilogue = (int)epilogue,
            WarpsM = Tiling.WarpsM, WarpsN = Tiling.WarpsN,
            AsyncX = kAligned && xAddress != 0 && xAddress % 16 == 0 ? 1 : 0,
            AsyncW = kAligned && wAddress % 16 == 0 ? 1 : 0,
            XAddress = xAddress, WAddress = wAddress,
        };
    }

    /// <summary>Element offset of 16-byte chunk <paramref name="chunk"/> (0..3) of <paramref name="row"/> in a stage tile of 32-element rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Swizzle(int row, int chunk) => row * BlockK + ((chunk ^ ((row >> 1) & 3)) << 3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyChunk(ArrayView<ushort> sh, int dst, ArrayView<ushort> src, int from, int valid)
    {
        for (int i = 0; i < 8; i++)
            sh[dst + i] = i < valid ? src[from + i] : (ushort)0;
    }

    internal static void GemmKernel<TA, TAStage, TW, TWStage, TOut, TOutStore, TMma>(ArrayView<TA> x, ArrayView<TW> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> aux, ArrayView<TOut> y, MmaGemmShape s)
        where TA : unmanaged
        where TAStage : struct, IMmaActivation<TA>
        where TW : unmanaged
        where TWStage : struct, IMmaWeight<TW>
        where TOut : unmanaged
        where TOutStore : struct, IMmaOutput<TOut>
        where TMma : struct, IWarpMma
    {
        ArrayView<ushort> sh = SharedMemory.Allocate<ushort>(SharedElements);
        TMma mma = default;
        uint sb = mma.SharedBase();
        int tid = Group.IdxX, threads = Group.DimX;
        int lane = tid & 31, warp = tid >> 5;
        int wm = warp % s.WarpsM, wn = warp / s.WarpsM;
        int bm = 32 * s.WarpsM, bn = 64 * s.WarpsN;
        int m0 = Grid.IdxY * bm, n0 = Grid.IdxX * bn;
        int stageElems = (bm + bn) * BlockK;
        int kTiles = (s.K + BlockK - 1) / BlockK;
        var acc = default(MmaWarpTile32x64);

        // Prologue: tiles 0 and 1 in flight. One commit per tile (empty groups included) keeps "group i = tile i".
        for (int p = 0; p < Stages - 1; p++)
        {
            if (p < kTiles) LoadTile<TA, TAStage, TW, TWStage, TMma>(mma, sh, sb, x, w, s, p * stageElems, bm, bn, m0, n0, p * BlockK, tid, threads);
            mma.CommitGroup();
        }

        for (int kt = 0; kt < kTiles; kt++)
        {
            mma.WaitGroupAllButOne();   // tile kt has landed for this thread ...
            Group.Barrier();            // ... and for all; everyone is done computing tile kt-1, whose stage is refilled next
            int next = kt + Stages - 1;
            if (next < kTiles)
                LoadTile<TA, TAStage, TW, TWStage, TMma>(mma, sh, sb, x, w, s, (next % Stages) * stageElems, bm, bn, m0, n0, next * BlockK, tid, threads);
            mma.CommitGroup();
            int stage = (kt % Stages) * stageElems;
            int aBase = stage + wm * 32 * BlockK, bBase = stage + bm * BlockK + wn * 64 * BlockK;
            acc.Step(mma, sh, sb, aBase, bBase, 0, lane);
            acc.Step(mma, sh, sb, aBase, bBase, 1, lane);
        }
        mma.WaitAll();

        acc.Store<TOut, TOutStore>(scale, bias, gate, aux, y, s, m0 + wm * 32, n0 + wn * 64, lane);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadTile<TA, TAStage, TW, TWStage, TMma>(TMma mma, ArrayView<ushort> sh, uint sb, ArrayView<TA> x, ArrayView<TW> w, in MmaGemmShape s,
        int stage, int bm, int bn, int m0, int n0, int k0, int tid, int threads)
        where TA : unmanaged
        where TAStage : struct, IMmaActivation<TA>
        where TW : unmanaged
        where TWStage : struct, IMmaWeight<TW>
        where TMma : struct, IWarpMma
    {
        TAStage stager = default;
        TWStage wStager = default;
        int k = s.K;
        // 4 chunks of 8 bf16 per 32-wide row; consecutive threads take consecutive chunks of a row.
        for (int c = tid; c < bm * 4; c += threads)
        {
            int row = c >> 2, ch = c & 3;
            int gm = m0 + row, gk = k0 + ch * 8;
            int valid = gm < s.M ? Math.Max(0, Math.Min(8, k - gk)) : 0;
            stager.Stage(mma, sh, sb, stage + Swizzle(row, ch), x, s.AsyncX, s.XAddress, valid > 0 ? gm * k + gk : 0, valid);
        }
        int wStage = stage + bm * BlockK;
        for (int c = tid; c < bn * 4; c += threads)
        {
            int row = c >> 2, ch = c & 3;
            int gn = n0 + row, gk = k0 + ch * 8;
            int valid = gn < s.N ? Math.Max(0, Math.Min(8, k - gk)) : 0;
            int src = valid > 0 ? gn * k + gk : 0;
            wStager.Stage(mma, sh, sb, wStage + Swizzle(row, ch), w, s, src, valid);
        }
    }

    /// <summary>Epilogue of two horizontally adjacent accumulators (row, col) and (row, col+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePair<TOut, TOutStore>(ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> aux, ArrayView<TOut> y, in MmaGemmShape s,
        int row, int col, float v0, float v1)
        where TOut : unmanaged
        where TOutStore : struct, IMmaOutput<TOut>
    {
        if (row >= s.M) return;
        StoreOne<TOut, TOutStore>(scale, bias, gate, aux, y, s, row, col, v0);
        StoreOne<TOut, TOutStore>(scale, bias, gate, aux, y, s, row, col + 1, v1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne<TOut, TOutStore>(ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> aux, ArrayView<TOut> y, in MmaGemmShape s,
        int row, int col, float v)
        where TOut : unmanaged
        where TOutStore : struct, IMmaOutput<TOut>
    {
        if (col >= s.N) return;
        TOutStore store = default;
        int i = row * s.N + col;
        if (s.HasScale != 0) v *= scale[col];
        if (s.HasBias != 0) v += bias[col];
        if (s.Epilogue == (int)MmaEpilogue.Silu) v = ElementwiseKernels.SiluOf(v);
        else if (s.Epilogue == (int)MmaEpilogue.SwiGlu) v = ElementwiseKernels.SiluOf(v) * aux[i];
        else if (s.Epilogue == (int)MmaEpilogue.GatedResidual) v = aux[i] + KernelMath.Tanh(gate[col]) * v;
        store.Store(y, i, v);
    }
}
