namespace ZImage.Runtime.Models.Configuration;

/// <summary>
/// A checkpoint configuration file (<c>model_index.json</c>, a component's <c>config.json</c>) is missing, is not
/// valid JSON, or holds a value outside the range this runtime supports. The message names the file, the field and
/// the allowed range.
/// </summary>
public sealed class CheckpointConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The file (or a description such as <c>ZImageConfig.Turbo</c>) holding the bad value.</param>
    /// <param name="field">The JSON field, or null for file-level problems.</param>
    /// <param name="problem">What is wrong, including the bad value and the allowed range.</param>
    /// <param name="innerException">The parser error, when there is one.</param>
    public CheckpointConfigurationException(string source, string? field, string problem, Exception? innerException = null)
        : base(field is null ? $"Invalid configuration '{source}': {problem}" : $"Invalid configuration '{source}', field '{field}': {problem}", innerException)
    {
        ConfigSource = source;
        Field = field;
        Problem = problem;
    }

    /// <summary>The file or description that holds the bad value.</summary>
    public string ConfigSource { get; }

    /// <summary>The offending JSON field, or null.</summary>
    public string? Field { get; }

    /// <summary>The problem text without the source prefix.</summary>
    public string Problem { get; }
}
