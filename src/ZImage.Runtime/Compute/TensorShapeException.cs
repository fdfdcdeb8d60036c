namespace ZImage.Runtime.Compute;

/// <summary>An op or weight received a tensor whose shape or dtype does not fit; the message names the argument, what it got and what is allowed.</summary>
public sealed class TensorShapeException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the actual and the allowed shapes/dtypes.</param>
    /// <param name="paramName">The offending argument or weight key.</param>
    public TensorShapeException(string message, string? paramName)
        : base(message, paramName)
    {
    }
}
