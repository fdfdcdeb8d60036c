using System.Buffers.Binary;
using System.Runtime.InteropServices;
using ZImage.Kernels;

namespace ZImage.Runtime.Models.Safetensors;

/// <summary>Converts raw little-endian tensor payloads to float32 or integer element arrays.</summary>
public static class SafetensorsConvert
{
    /// <summary>Widens a bfloat16 bit pattern to float32 (exact). Same conversion the kernels use (<see cref="Bf16.ToFloat"/>).</summary>
    public static float BFloat16ToSingle(ushort bits) => Bf16.ToFloat(bits);

    /// <summary>
    /// Rounds a float32 to the nearest bfloat16 bit pattern (ties to even; NaN stays a quiet NaN), as torch's
    /// <c>.to(torch.bfloat16)</c> does. Same conversion the kernels use (<see cref="Bf16.FromFloat"/>).
    /// </summary>
    public static ushort SingleToBFloat16(float value) => Bf16.FromFloat(value);

    /// <summary>
    /// Converts <paramref name="source"/> (elements of <paramref name="dtype"/>) to float32. Booleans become 0/1;
    /// 64-bit integers and F64 are rounded to the nearest float32.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths do not agree.</exception>
    public static void ToSingle(ReadOnlySpan<byte> source, SafetensorsDType dtype, Span<float> destination)
    {
        int size = dtype.ElementSize();
        if (source.Length != (long)destination.Length * size)
            throw new ArgumentException($"{source.Length} bytes of {dtype} hold {source.Length / size} elements but the destination has {destination.Length}.", nameof(destination));
        switch (dtype)
        {
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian) source.CopyTo(MemoryMarshal.AsBytes(destination));
                else for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]));
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(i * 2)..]);
                break;
            case SafetensorsDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(i * 8)..]);
                break;
            case SafetensorsDType.BOOL:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i] != 0 ? 1f : 0f;
                break;
            case SafetensorsDType.U8:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i];
                break;
            case SafetensorsDType.I8:
                for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i];
                break;
            case SafetensorsDType.I16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt16LittleEndian(source[(i * 2)..]);
                break;
            case SafetensorsDType.U16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]);
                break;
            case SafetensorsDType.I32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(i * 4)..]);
                break;
            case SafetensorsDType.U32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt32LittleEndian(source[(i * 4)..]);
                break;
            case SafetensorsDType.I64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(i * 8)..]);
                break;
            case SafetensorsDType.U64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt64LittleEndian(source[(i * 8)..]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype.");
        }
    }

    /// <summary>
    /// Converts integer or boolean elements to int64. Floating-point payloads are rejected because silently truncating
    /// them would hide a wrong tensor.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths do not agree or <paramref name="dtype"/> is floating point.</exception>
    public static void ToInt64(ReadOnlySpan<byte> source, SafetensorsDType dtype, Span<long> destination)
    {
        if (dtype.IsFloatingPoint())
            throw new ArgumentException($"Cannot read {dtype} elements as integers; allowed: BOOL, U8, I8, I16, U16, I32, U32, I64, U64.", nameof(dtype));
        int size = dtype.ElementSize();
        if (source.Length != (long)destination.Length * size)
            throw new ArgumentException($"{source.Length} bytes of {dtype} hold {source.Length / size} elements but the destination has {destination.Length}.", nameof(destination));
        for (int i = 0; i < destination.Length; i++)
        {
            ReadOnlySpan<byte> s = source[(i * size)..];
            destination[i] = dtype switch
            {
                SafetensorsDType.BOOL => s[0] != 0 ? 1 : 0,
                SafetensorsDType.U8 => s[0],
                SafetensorsDType.I8 => (sbyte)s[0],
                SafetensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(s),
                SafetensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(s),
                SafetensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(s),
                SafetensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(s),
                SafetensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(s),
                SafetensorsDType.U64 => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(s)),
                _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
            };
        }
    }
}
