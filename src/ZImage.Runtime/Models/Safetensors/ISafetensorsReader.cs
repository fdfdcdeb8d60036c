namespace ZImage.Runtime.Models.Safetensors;

/// <summary>
/// Read access to the tensors of one safetensors file or of a sharded checkpoint. Spans returned by
/// <see cref="GetBytes"/> point into a memory mapping and are valid only until the reader is disposed.
/// </summary>
public interface ISafetensorsReader : IDisposable
{
    /// <summary>All tensor names (ordinal order).</summary>
    IReadOnlyList<string> TensorNames { get; }

    /// <summary>True when the tensor exists.</summary>
    bool Contains(string name);

    /// <summary>Header entry of a tensor; <see cref="KeyNotFoundException"/> naming the tensor and file when absent.</summary>
    SafetensorsTensorInfo GetInfo(string name);

    /// <summary>Header entry of a tensor, or false when absent.</summary>
    bool TryGetInfo(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafetensorsTensorInfo? info);

    /// <summary>The raw little-endian payload of a tensor, straight from the memory mapping (no copy).</summary>
    ReadOnlySpan<byte> GetBytes(string name);
}

/// <summary>Element-converting reads shared by every <see cref="ISafetensorsReader"/>.</summary>
public static class SafetensorsReaderExtensions
{
    /// <summary>Copies a tensor into <paramref name="destination"/> as float32, converting from any dtype.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> length differs from the element count.</exception>
    public static void CopyTo(this ISafetensorsReader reader, string name, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(reader);
        SafetensorsTensorInfo info = reader.GetInfo(name);
        if (destination.Length != info.ElementCount)
            throw new ArgumentException($"Tensor '{name}' {info.ShapeText} has {info.ElementCount} elements but the destination holds {destination.Length}.", nameof(destination));
        SafetensorsConvert.ToSingle(reader.GetBytes(name), info.DType, destination);
    }

    /// <summary>Reads a tensor as a new float32 array (converting from any dtype).</summary>
    public static float[] ReadSingles(this ISafetensorsReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var result = new float[checked((int)reader.GetInfo(name).ElementCount)];
        reader.CopyTo(name, result);
        return result;
    }

    /// <summary>Reads an integer or boolean tensor as int64.</summary>
    public static long[] ReadInt64(this ISafetensorsReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        SafetensorsTensorInfo info = reader.GetInfo(name);
        var result = new long[checked((int)info.ElementCount)];
        SafetensorsConvert.ToInt64(reader.GetBytes(name), info.DType, result);
        return result;
    }

    /// <summary>Reads an integer or boolean tensor as int32; values outside the int32 range throw <see cref="OverflowException"/>.</summary>
    public static int[] ReadInt32(this ISafetensorsReader reader, string name)
    {
        long[] wide = reader.ReadInt64(name);
        var result = new int[wide.Length];
        for (int i = 0; i < wide.Length; i++) result[i] = checked((int)wide[i]);
        return result;
    }

    /// <summary>Copies the raw payload of a tensor into a new byte array (e.g. a U8 image).</summary>
    public static byte[] ReadBytes(this ISafetensorsReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return reader.GetBytes(name).ToArray();
    }
}
