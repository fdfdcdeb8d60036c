namespace ZImage.Runtime.Models.Safetensors;

/// <summary>
/// A safetensors file or shard index is truncated, corrupt or inconsistent. The message names the file and, when the
/// problem is tied to one tensor, the tensor.
/// </summary>
public sealed class SafetensorsFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="filePath"/> (and optionally one tensor).</summary>
    public SafetensorsFormatException(string filePath, string? tensorName, string problem, Exception? innerException = null)
        : base(Compose(filePath, tensorName, problem), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
        Problem = problem;
    }

    /// <summary>The file (safetensors or index) that is bad.</summary>
    public string FilePath { get; }

    /// <summary>The tensor the problem concerns, or null for file-level problems (header length, JSON syntax).</summary>
    public string? TensorName { get; }

    /// <summary>The problem without the file and tensor prefix.</summary>
    public string Problem { get; }

    private static string Compose(string filePath, string? tensorName, string problem) =>
        tensorName is null ? $"Invalid safetensors file '{filePath}': {problem}" : $"Invalid safetensors file '{filePath}', tensor '{tensorName}': {problem}";
}
