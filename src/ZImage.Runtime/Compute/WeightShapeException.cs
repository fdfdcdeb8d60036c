namespace ZImage.Runtime.Compute;

/// <summary>A checkpoint tensor does not have the shape (or a usable dtype) the architecture expects.</summary>
public sealed class WeightShapeException : Exception
{
    /// <summary>Creates the exception; the message names the key and both shapes.</summary>
    public WeightShapeException(string key, IReadOnlyList<int> expectedShape, IReadOnlyList<int> actualShape, string? detail = null)
        : base($"Weight '{key}' has shape [{string.Join(",", actualShape)}] but the model expects [{string.Join(",", expectedShape)}].{(detail is null ? "" : " " + detail)}")
    {
        Key = key;
        ExpectedShape = expectedShape;
        ActualShape = actualShape;
    }

    /// <summary>The checkpoint key.</summary>
    public string Key { get; }
    /// <summary>The shape the architecture expects.</summary>
    public IReadOnlyList<int> ExpectedShape { get; }
    /// <summary>The shape stored in the checkpoint.</summary>
    public IReadOnlyList<int> ActualShape { get; }
}
