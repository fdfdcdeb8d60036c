using System.Buffers.Binary;
using CsCheck;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Models.Tests.Safetensors;

/// <summary>Round trips through <see cref="SafetensorsWriter"/> and the element conversions.</summary>
public sealed class SafetensorsConversionTests : IDisposable
{
    private readonly TempDirectory _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static byte[] Bytes<T>(T[] values, int size, Action<byte[], int, T> write)
    {
        var b = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++) write(b, i * size, values[i]);
        return b;
    }

    [Fact]
    public void EveryDTypeConvertsToSingle()
    {
        string path = _tmp.File("all.safetensors");
        float[] f = [0f, -1.5f, 3.25f, 65280f];
        SafetensorsEntry[] entries =
        [
            SafetensorsEntry.FromSingles("f32", [2, 2], f),
            new("f16", SafetensorsDType.F16, [4], Bytes(f, 2, (b, o, v) => BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(o), (Half)v))),
            new("bf16", SafetensorsDType.BF16, [4], Bytes(f, 2, (b, o, v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), SafetensorsConvert.SingleToBFloat16(v)))),
            new("f64", SafetensorsDType.F64, [4], Bytes(f, 8, (b, o, v) => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(o), v))),
            new("i64", SafetensorsDType.I64, [3], Bytes(new long[] { -7, 151644, 1L << 40 }, 8, (b, o, v) => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(o), v))),
            new("i32", SafetensorsDType.I32, [3], Bytes(new[] { -7, 0, 512 }, 4, (b, o, v) => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), v))),
            new("i16", SafetensorsDType.I16, [2], Bytes(new short[] { -300, 300 }, 2, (b, o, v) => BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(o), v))),
            new("i8", SafetensorsDType.I8, [2], new byte[] { 0xFF, 0x05 }),
            new("u8", SafetensorsDType.U8, [2], new byte[] { 0xFF, 0x05 }),
            new("bool", SafetensorsDType.BOOL, [3], new byte[] { 0, 1, 1 }),
            new("scalar", SafetensorsDType.F32, [], BitConverter.GetBytes(2.5f)),
        ];
        SafetensorsWriter.Write(path, entries, new Dictionary<string, string> { ["format"] = "pt" });
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(f, file.ReadSingles("f32"));
        Assert.Equal(f, file.ReadSingles("f16"));
        Assert.Equal(f, file.ReadSingles("bf16"));
        Assert.Equal(f, file.ReadSingles("f64"));
        Assert.Equal([-7L, 151644L, 1L << 40], file.ReadInt64("i64"));
        Assert.Throws<OverflowException>(() => file.ReadInt32("i64"));
        Assert.Equal([-7, 0, 512], file.ReadInt32("i32"));
        Assert.Equal([-7f, 0f, 512f], file.ReadSingles("i32"));
        Assert.Equal([-300L, 300L], file.ReadInt64("i16"));
        Assert.Equal([-1, 5], file.ReadInt32("i8"));
        Assert.Equal([255, 5], file.ReadInt32("u8"));
        Assert.Equal(new byte[] { 0xFF, 0x05 }, file.ReadBytes("u8"));
        Assert.Equal([0f, 1f, 1f], file.ReadSingles("bool"));
        Assert.Equal([2.5f], file.ReadSingles("scalar"));
        Assert.Empty(file.GetInfo("scalar").Shape);
        Assert.Throws<ArgumentException>(() => file.ReadInt64("f32"));
        Assert.Throws<ArgumentException>(() => file.CopyTo("f32", new float[3]));
        // Written largest element first, so each payload is aligned to its element size.
        Assert.All(file.TensorNames, n => Assert.Equal(0, file.GetInfo(n).DataOffset % file.GetInfo(n).DType.ElementSize()));
    }

    [Fact]
    public void Bf16RoundTripsEveryBf16Value() =>
        Gen.UShort.Where(b => !float.IsNaN(SafetensorsConvert.BFloat16ToSingle(b)))
            .Sample(b => SafetensorsConvert.SingleToBFloat16(SafetensorsConvert.BFloat16ToSingle(b)) == b);

    [Fact]
    public void Bf16RoundingIsNearestEven() =>
        Gen.Float.Where(float.IsFinite).Sample(f =>
        {
            float r = SafetensorsConvert.BFloat16ToSingle(SafetensorsConvert.SingleToBFloat16(f));
            // At most half a bf16 ulp: 2^-8 relative for normals, 2^-134 absolute in the subnormal range.
            return float.IsInfinity(r) || Math.Abs(r - (double)f) <= Math.Abs((double)f) * Math.Pow(2, -8) + Math.Pow(2, -134);
        });
}
