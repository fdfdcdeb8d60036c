namespace ZImage.Runtime.Models.Lora;

/// <summary>
/// A LoRA that cannot be used with this model: the file is missing or unreadable, it is not a Z-Image transformer
/// LoRA (a LoRA for another model), it has keys for modules the model does not have, or matrices whose rank or shape
/// do not fit. <see cref="Keys"/> lists the offending keys or modules.
/// </summary>
public sealed class LoraFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="file"/>.</summary>
    public LoraFormatException(string file, string problem, IReadOnlyList<string> keys, Exception? inner = null)
        : base(Format(file, problem, keys), inner)
    {
        File = file;
        Keys = keys;
    }

    /// <summary>Creates the exception.</summary>
    public LoraFormatException(string message) : base(message)
    {
        File = "";
        Keys = [];
    }

    /// <summary>Creates the exception.</summary>
    public LoraFormatException() : this("The LoRA does not fit the model.") { }

    /// <summary>Creates the exception.</summary>
    public LoraFormatException(string message, Exception inner) : base(message, inner)
    {
        File = "";
        Keys = [];
    }

    /// <summary>The LoRA file.</summary>
    public string File { get; }

    /// <summary>The offending keys (or modules with their shapes).</summary>
    public IReadOnlyList<string> Keys { get; }

    private static string Format(string file, string problem, IReadOnlyList<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        const int Shown = 8;
        string list = keys.Count == 0 ? "" : $" ({keys.Count}): {string.Join(", ", keys.Take(Shown))}{(keys.Count > Shown ? $", … (+{keys.Count - Shown} more)" : "")}";
        return $"LoRA '{file}' {problem}{list}";
    }
}
