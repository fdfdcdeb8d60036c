using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels;

namespace ZImage.Runtime.Compute;

/// <summary>
/// Weight-only 8-bit quantisation at load (<c>--weights int8|fp8</c>). Which weights are quantised: the 2-D matrices
/// of <see cref="IComputeOps.Linear"/> layers inside the repeated blocks (text-encoder decoder layers, DiT noise/context
/// refiners and main layers); the embedders (<c>t_embedder</c>, <c>x_embedder</c>, <c>cap_embedder</c>), the final
/// layer, every bias, norm weight, embedding table and all VAE weights stay full precision. Formats: int8 symmetric per
/// output channel (<c>s = max|w_row| / 127</c>, round to nearest even, clamp ±127) and fp8 e4m3fn with a per-row scale
/// (<c>s = max|w_row| / 448</c>), both from <see cref="Quant8"/>. A quantised matrix <c>[N,K]</c> is one block: the
/// <c>N·K</c> codes, padded to 16 B, then <c>N</c> float32 scales. Quantisation runs on the host floats of a weight
/// after it is materialised (converted from the checkpoint dtype, and after any merge of LoRA deltas into those floats),
/// as a separate last step, so both compose.
/// </summary>
public static class WeightQuantization
{
    /// <summary>Alignment of the scales after the codes, in bytes.</summary>
    public const int ScaleAlignment = 16;

    /// <summary>Whether <paramref name="dtype"/> is one of the 8-bit weight formats (<see cref="TensorDType.I8"/>, <see cref="TensorDType.F8E4M3"/>).</summary>
    public static bool IsQuantized(TensorDType dtype) => dtype is TensorDType.I8 or TensorDType.F8E4M3;

    /// <summary>Byte offset of the scales after <paramref name="codes"/> one-byte codes.</summary>
    public static long ScaleOffset(long codes) => (codes + ScaleAlignment - 1) / ScaleAlignment * ScaleAlignment;

    /// <summary>
    /// Whether weight <paramref name="name"/> of <paramref name="shape"/> is quantised when 8-bit weights are on: 2-D, of a
    /// repeated block (<c>layers.</c>, <c>noise_refiner.</c>, <c>context_refiner.</c>), not an embedder or the final layer.
    /// </summary>
    public static bool Quantizes(string name, IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Count != 2) return false;
        if (name.Contains("embedder", StringComparison.Ordinal) || name.Contains("final_layer", StringComparison.Ordinal)) return false;
        return name.StartsWith("layers.", StringComparison.Ordinal) || name.Contains(".layers.", StringComparison.Ordinal)
            || name.StartsWith("noise_refiner.", StringComparison.Ordinal) || name.StartsWith("context_refiner.", StringComparison.Ordinal);
    }

    /// <summary>The device dtype of matrix <paramref name="name"/>: <paramref name="quantized"/> where <see cref="Quantizes"/> says so, else <paramref name="floatDType"/>.</summary>
    public static TensorDType DTypeFor(string name, IReadOnlyList<int> shape, TensorDType floatDType, TensorDType? quantized) =>
        quantized is { } q && Quantizes(name, shape) ? q : floatDType;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="dtype"/> is null, I8 or F8E4M3.</summary>
    public static TensorDType? Validate(TensorDType? dtype, string paramName) =>
        dtype is null || IsQuantized(dtype.Value)
            ? dtype
            : throw new ArgumentOutOfRangeException(paramName, dtype, "The quantised weight format must be I8 or F8E4M3 (or null for none).");

    /// <summary>
    /// Quantises rows <c>[rows, cols]</c> of host floats into <paramref name="codes"/> (one byte each) and <paramref name="scales"/> (one per row).
    /// </summary>
    /// <exception cref="ArgumentException">A weight is not finite, or the spans are too small.</exception>
    public static void Quantize(TensorDType dtype, ReadOnlySpan<float> w, int rows, int cols, Span<byte> codes, Span<float> scales)
    {
        if (dtype == TensorDType.I8) Quant8.QuantizeInt8(w, rows, cols, MemoryMarshal.Cast<byte, sbyte>(codes), scales);
        else if (dtype == TensorDType.F8E4M3) Quant8.QuantizeFp8E4M3(w, rows, cols, codes, scales);
        else throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Only I8 and F8E4M3 are quantised formats.");
    }

    /// <summary>The float value of every weight of a quantised matrix as it was stored (code × scale), for tests and diagnostics.</summary>
    public static float Dequantize(TensorDType dtype, byte code, float scale) =>
        dtype == TensorDType.I8 ? (sbyte)code * scale : Quant8.Fp8E4M3ToFloat(code) * scale;

    /// <summary>
    /// Materialises a quantised matrix on the device: <paramref name="readRows"/> fills host floats for a range of rows
    /// (the caller's conversion, plus any LoRA merge), then each chunk of rows is quantised and its codes written;
    /// the scales are written last. Works in chunks of about <paramref name="chunkElements"/> weights so no second
    /// full-size host copy is needed.
    /// </summary>
    /// <param name="destination">A quantised <c>[N,K]</c> tensor (may be a ring-slot view).</param>
    /// <param name="readRows">Fills <c>rowCount·K</c> floats for rows <c>start .. start+rowCount-1</c>.</param>
    /// <param name="chunkElements">Weights per chunk (at least one row).</param>
    public static void Write(Tensor destination, ReadRows readRows, int chunkElements = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(readRows);
        if (!IsQuantized(destination.DType)) throw new ArgumentException($"{destination} is not a quantised matrix.", nameof(destination));
        int rows = destination.Shape[0], cols = destination.Shape[1];
        if (rows == 0 || cols == 0) return;
        int chunkRows = Math.Max(1, Math.Min(rows, chunkElements / cols));
        var floats = new float[(long)chunkRows * cols];
        var codes = new byte[floats.Length];
        var scales = new float[rows];
        ArrayView<byte> codeView = destination.Allocation.GetView<byte>(destination.ElementOffset + destination.ElementCount)
            .SubView(destination.ElementOffset, destination.ElementCount);
        for (int start = 0; start < rows; start += chunkRows)
        {
            int n = Math.Min(chunkRows, rows - start);
            var f = floats.AsSpan(0, n * cols);
            readRows(start, n, f);
            Quantize(destination.DType, f, n, cols, codes.AsSpan(0, n * cols), scales.AsSpan(start, n));
            codeView.SubView((long)start * cols, (long)n * cols).CopyFromCPU(new ReadOnlySpan<byte>(codes, 0, n * cols));
        }
        destination.QuantScales.CopyFromCPU(scales);
    }

    /// <summary>
    /// Writes a weight of <paramref name="shape"/> in its device layout as <paramref name="dtype"/> into host bytes
    /// (a ring's staging buffer): F32 as is, BF16 round-to-nearest-even, F16, or for the 8-bit formats codes (padded to
    /// 16 B) then scales, quantised per row from the floats <paramref name="readRows"/> supplies (rows of the last
    /// dimension; a vector is one row). The same bytes as the device path of the providers.
    /// </summary>
    public static void WriteHost(TensorDType dtype, IReadOnlyList<int> shape, ReadRows readRows, Span<byte> destination, int chunkElements = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(readRows);
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n == 0) return;
        int cols = shape.Count == 0 ? 1 : shape[^1];
        int rows = checked((int)(n / cols));
        if (destination.Length < Tensor.StorageBytes(dtype, shape))
            throw new ArgumentException($"{destination.Length} B cannot hold a [{string.Join(",", shape)}] {dtype} weight ({Tensor.StorageBytes(dtype, shape)} B).", nameof(destination));
        int chunkRows = Math.Max(1, Math.Min(rows, chunkElements / cols));
        var floats = new float[(long)chunkRows * cols];
        bool quantized = IsQuantized(dtype);
        Span<float> scales = quantized ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(destination.Slice(checked((int)ScaleOffset(n)), 4 * rows)) : default;
        for (int start = 0; start < rows; start += chunkRows)
        {
            int r = Math.Min(chunkRows, rows - start);
            var f = floats.AsSpan(0, r * cols);
            readRows(start, r, f);
            long at = (long)start * cols;
            switch (dtype)
            {
                case TensorDType.F32:
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(f).CopyTo(destination.Slice(checked((int)(at * 4))));
                    break;
                case TensorDType.BF16:
                    var bf = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(destination.Slice(checked((int)(at * 2)), f.Length * 2));
                    for (int i = 0; i < f.Length; i++) bf[i] = Models.Safetensors.SafetensorsConvert.SingleToBFloat16(f[i]);
                    break;
                case TensorDType.F16:
                    var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(destination.Slice(checked((int)(at * 2)), f.Length * 2));
                    for (int i = 0; i < f.Length; i++) h[i] = BitConverter.HalfToUInt16Bits((System.Half)f[i]);
                    break;
                default:
                    if (!quantized) throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Weights are stored as F32, BF16, F16, I8 or F8E4M3.");
                    Quantize(dtype, f, r, cols, destination.Slice(checked((int)at), f.Length), scales.Slice(start, r));
                    break;
            }
        }
    }

    /// <summary>Fills <paramref name="destination"/> (<c>rowCount·K</c> floats) with rows <paramref name="start"/> .. of a weight.</summary>
    public delegate void ReadRows(int start, int rowCount, Span<float> destination);
}

/// <summary>
/// An op received a weight in a format it has no kernel for (e.g. an 8-bit quantised matrix in a convolution): the
/// message names the op, the weight's format and the formats the op takes.
/// </summary>
public sealed class WeightFormatNotSupportedException : ArgumentException
{
    /// <summary>Creates the error.</summary>
    /// <param name="op">The op (e.g. <c>Conv2d</c>).</param>
    /// <param name="dtype">The weight's dtype.</param>
    /// <param name="allowed">The dtypes the op takes.</param>
    /// <param name="paramName">The weight argument.</param>
    public WeightFormatNotSupportedException(string op, TensorDType dtype, string allowed, string? paramName)
        : base($"{op} has no kernel for {dtype} weights (8-bit weights are only for Linear layers); allowed: {allowed}.", paramName)
    {
        Op = op;
        DType = dtype;
        Allowed = allowed;
    }

    /// <summary>The op.</summary>
    public string Op { get; }

    /// <summary>The weight dtype it got.</summary>
    public TensorDType DType { get; }

    /// <summary>The dtypes it takes.</summary>
    public string Allowed { get; }
}
