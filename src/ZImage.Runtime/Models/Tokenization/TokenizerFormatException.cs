namespace ZImage.Runtime.Models.Tokenization;

/// <summary>A tokenizer file is missing, malformed, or uses a feature this tokenizer does not implement; the message names the file and the field.</summary>
public sealed class TokenizerFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TokenizerFormatException(string filePath, string problem, Exception? innerException = null)
        : base($"Unsupported or invalid tokenizer file '{filePath}': {problem}", innerException)
    {
        FilePath = filePath;
        Problem = problem;
    }

    /// <summary>The offending file.</summary>
    public string FilePath { get; }

    /// <summary>The problem without the file prefix.</summary>
    public string Problem { get; }
}
