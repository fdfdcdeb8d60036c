using System.Runtime.CompilerServices;
using ILGPU;

namespace ZImage.Kernels;

/// <summary>
/// The 8-bit weight formats, weight-only and per output channel: a weight row j is stored as 8-bit codes q[j,·] and one
/// float32 scale s[j], and dequantizes to w[j,t] = s[j]·decode(q[j,t]). <b>int8</b>: symmetric, decode(q) = q with
/// q ∈ [−127, 127], s = max|w[j,·]|/127. <b>fp8 e4m3</b> (the OCP "e4m3fn" format of <c>torch.float8_e4m3fn</c>: 1 sign,
/// 4 exponent bits with bias 7, 3 mantissa bits, no infinities, 0x7F/0xFF = NaN, largest finite 448):
/// s = max|w[j,·]|/448. Quantizers round to nearest, ties to even. Decoders are usable inside kernels.
/// </summary>
public static class Quant8
{
    /// <summary>Largest int8 code used (symmetric range).</summary>
    public const int Int8Max = 127;

    /// <summary>Largest finite fp8 e4m3fn value.</summary>
    public const float Fp8E4M3Max = 448f;

    private static readonly float[] PositiveFp8 = BuildPositiveFp8();

    /// <summary>Decodes fp8 e4m3fn bits to float32 (exact; 0x7F/0xFF give NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Fp8E4M3ToFloat(byte bits)
    {
        uint sign = ((uint)bits & 0x80u) << 24;
        uint e = ((uint)bits >> 3) & 0xFu;
        uint m = (uint)bits & 0x7u;
        if (e == 0xFu && m == 0x7u) return Interop.IntAsFloat(sign | 0x7FC0_0000u);
        if (e == 0)
        {
            // Subnormal: m · 2^-9.
            float v = m * (1f / 512f);
            return sign != 0 ? -v : v;
        }
        return Interop.IntAsFloat(sign | ((e + 120u) << 23) | (m << 20));
    }

    /// <summary>Encodes a float32 as fp8 e4m3fn, round to nearest, ties to even; values beyond ±448 saturate to ±448, NaN gives 0x7F.</summary>
    public static byte FloatToFp8E4M3(float value)
    {
        if (float.IsNaN(value)) return 0x7F;
        byte sign = value < 0 || (value == 0 && float.IsNegative(value)) ? (byte)0x80 : (byte)0;
        float a = MathF.Abs(value);
        float[] t = PositiveFp8;
        if (a >= t[^1]) return (byte)(sign | (t.Length - 1));
        int hi = Array.BinarySearch(t, a);
        if (hi >= 0) return (byte)(sign | hi);
        hi = ~hi;
        int lo = hi - 1;
        double dl = a - (double)t[lo], dh = t[hi] - (double)a;
        int code = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
        return (byte)(sign | code);
    }

    /// <summary>Rounds to nearest, ties to even, and clamps to [−127, 127].</summary>
    public static sbyte FloatToInt8(float value) =>
        (sbyte)Math.Clamp(MathF.Round(value, MidpointRounding.ToEven), -Int8Max, Int8Max);

    /// <summary>
    /// Quantizes a row-major [rows, cols] float32 matrix per row (output channel) to int8 codes and scales.
    /// A row of zeros gets scale 0 and codes 0.
    /// </summary>
    public static void QuantizeInt8(ReadOnlySpan<float> w, int rows, int cols, Span<sbyte> codes, Span<float> scales)
    {
        Check(w, rows, cols, codes.Length, scales.Length);
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float s = AbsMax(row) / Int8Max;
            scales[r] = s;
            var q = codes.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++) q[c] = s == 0 ? (sbyte)0 : FloatToInt8(row[c] / s);
        }
    }

    /// <summary>Quantizes a row-major [rows, cols] float32 matrix per row to fp8 e4m3fn codes and scales (row max ↦ 448).</summary>
    public static void QuantizeFp8E4M3(ReadOnlySpan<float> w, int rows, int cols, Span<byte> codes, Span<float> scales)
    {
        Check(w, rows, cols, codes.Length, scales.Length);
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float s = AbsMax(row) / Fp8E4M3Max;
            scales[r] = s;
            var q = codes.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++) q[c] = s == 0 ? (byte)0 : FloatToFp8E4M3(row[c] / s);
        }
    }

    private static float AbsMax(ReadOnlySpan<float> row)
    {
        float m = 0;
        foreach (float v in row)
        {
            if (!float.IsFinite(v)) throw new ArgumentException($"Cannot quantize a non-finite weight ({v}).", nameof(row));
            m = MathF.Max(m, MathF.Abs(v));
        }
        return m;
    }

    private static void Check(ReadOnlySpan<float> w, int rows, int cols, int codes, int scales)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be ≥ 1.");
        if (cols < 1) throw new ArgumentOutOfRangeException(nameof(cols), cols, "cols must be ≥ 1.");
        long n = (long)rows * cols;
        if (w.Length < n || codes < n || scales < rows)
            throw new ArgumentException($"A {rows}×{cols} matrix needs {n} weights and codes and {rows} scales (got {w.Length}, {codes}, {scales}).", nameof(w));
    }

    private static float[] BuildPositiveFp8()
    {
        // Codes 0x00..0x7E are the non-negative finite values, increasing with the code.
        var t = new float[0x7F];
        for (int i = 0; i < t.Length; i++) t[i] = Fp8E4M3ToFloat((byte)i);
        return t;
    }
}

/// <summary>int8 weight codes: the code itself (the per-channel scale is applied in the GEMM epilogue).</summary>
internal readonly struct Int8Widener : IWeightWidener<sbyte>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Widen(sbyte value) => value;
}

/// <summary>fp8 e4m3fn weight codes: exact decode (the per-channel scale is applied in the GEMM epilogue).</summary>
internal readonly struct Fp8E4M3Widener : IWeightWidener<byte>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Widen(byte value) => Quant8.Fp8E4M3ToFloat(value);
}
