namespace ZImage.Runtime.Models.Safetensors;

/// <summary>One header entry of a safetensors file, validated against the file size.</summary>
/// <param name="Name">Tensor key.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first (empty for a scalar).</param>
/// <param name="DataOffset">Start of the payload relative to the start of the data section (after the header).</param>
/// <param name="ByteLength">Payload size in bytes (= element count × element size).</param>
/// <param name="FilePath">The file holding the payload.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, int[] Shape, long DataOffset, long ByteLength, string FilePath)
{
    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return n;
        }
    }

    /// <summary>The shape as <c>[a,b,c]</c>, for messages.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Formats a shape as <c>[a,b,c]</c>.</summary>
    public static string FormatShape(IEnumerable<int> shape) => "[" + string.Join(",", shape) + "]";

    /// <inheritdoc />
    public override string ToString() => $"{Name} {DType} {ShapeText}";
}
