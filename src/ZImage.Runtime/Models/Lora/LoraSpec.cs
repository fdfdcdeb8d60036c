using System.Globalization;

namespace ZImage.Runtime.Models.Lora;

/// <summary>
/// A LoRA to merge into the transformer and its strength: <c>FILE</c> or <c>FILE:SCALE</c> on the command line,
/// <c>{ "Path": ..., "Scale": ... }</c> in configuration (<c>ZImage:Loras</c>).
/// </summary>
public sealed record LoraSpec
{
    /// <summary>An empty spec (configuration binding).</summary>
    public LoraSpec() { }

    /// <summary>A spec for <paramref name="path"/> at <paramref name="scale"/>.</summary>
    public LoraSpec(string path, double scale = 1.0)
    {
        Path = path;
        Scale = scale;
    }

    /// <summary>The <c>.safetensors</c> file (diffusers/PEFT, kohya or <c>diffusion_model.</c> key format).</summary>
    public string Path { get; set; } = "";

    /// <summary>diffusers' <c>lora_scale</c> (<c>fuse_lora(lora_scale=…)</c>): the update is <c>Scale·(alpha/r)·B·A</c>. Default 1; any finite value (negative inverts the LoRA).</summary>
    public double Scale { get; set; } = 1.0;

    /// <summary>Parses <c>FILE</c> or <c>FILE:SCALE</c>: the text after the last colon is the scale when it is not part of a path.</summary>
    /// <exception cref="FormatException">The scale is not a finite number, or the file part is empty.</exception>
    public static LoraSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.LastIndexOf(':');
        // "C:\x.safetensors" and "/a/b:c/x.safetensors" keep their colon: a scale never holds a path separator.
        if (colon > 1 && colon < text.Length - 1 && text.IndexOfAny(['/', '\\'], colon) < 0)
        {
            string tail = text[(colon + 1)..];
            if (!double.TryParse(tail, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !double.IsFinite(s))
                throw new FormatException($"LoRA scale '{tail}' in '{text}' is not a finite number; allowed: FILE or FILE:SCALE, e.g. style.safetensors:0.8.");
            return new LoraSpec(text[..colon], s);
        }
        if (text.Length == 0 || text.EndsWith(':'))
            throw new FormatException($"LoRA '{text}' names no file; allowed: FILE or FILE:SCALE, e.g. style.safetensors:0.8.");
        return new LoraSpec(text);
    }

    /// <summary>The metadata form: <c>file-name:scale</c> (no folder).</summary>
    public override string ToString() => $"{System.IO.Path.GetFileName(Path)}:{Scale.ToString("0.###", CultureInfo.InvariantCulture)}";

    /// <summary>The metadata form of several LoRAs (<c>a.safetensors:0.8, b.safetensors:1</c>), or null when there are none.</summary>
    public static string? Describe(IReadOnlyList<LoraSpec> loras)
    {
        ArgumentNullException.ThrowIfNull(loras);
        return loras.Count == 0 ? null : string.Join(", ", loras);
    }
}
