using System.Text;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>A weight whose stored shape (or dtype) is not one the architecture accepts.</summary>
/// <param name="Component">Component folder (transformer, text_encoder, vae).</param>
/// <param name="Name">Tensor key.</param>
/// <param name="ExpectedShapes">Accepted shapes (the first is the canonical one).</param>
/// <param name="ActualShape">Stored shape.</param>
/// <param name="ActualDType">Stored dtype.</param>
public sealed record WeightShapeMismatch(string Component, string Name, IReadOnlyList<int[]> ExpectedShapes, int[] ActualShape, SafetensorsDType ActualDType)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Component}: {Name} is {ActualDType} {SafetensorsTensorInfo.FormatShape(ActualShape)}, expected a float tensor of shape {string.Join(" or ", ExpectedShapes.Select(SafetensorsTensorInfo.FormatShape))}";
}

/// <summary>Outcome of checking one component's tensors against the names and shapes its config implies.</summary>
/// <param name="Component">Component folder.</param>
/// <param name="Missing">Expected keys that are absent.</param>
/// <param name="Unexpected">Stored keys the architecture does not know.</param>
/// <param name="Mismatches">Keys with a wrong shape or a non-float dtype.</param>
/// <param name="KnownUnused">Stored keys that are recognised but not used for text-to-image (e.g. the VAE encoder).</param>
public sealed record ComponentValidationResult(string Component, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected,
    IReadOnlyList<WeightShapeMismatch> Mismatches, IReadOnlyList<string> KnownUnused)
{
    /// <summary>True when nothing is missing, unexpected or mismatched.</summary>
    public bool IsValid => Missing.Count == 0 && Unexpected.Count == 0 && Mismatches.Count == 0;
}

/// <summary>The per-component results of validating a checkpoint's weights.</summary>
/// <param name="Components">One result per validated component.</param>
public sealed record CheckpointValidationReport(IReadOnlyList<ComponentValidationResult> Components)
{
    /// <summary>True when every component is valid.</summary>
    public bool IsValid => Components.All(c => c.IsValid);

    /// <summary>Throws <see cref="CheckpointValidationException"/> unless <see cref="IsValid"/>.</summary>
    public void ThrowIfInvalid(string checkpoint)
    {
        if (!IsValid) throw new CheckpointValidationException(checkpoint, this);
    }
}

/// <summary>
/// A checkpoint's tensors do not match its configuration: the message and the properties list the missing keys,
/// the unexpected keys and the shape mismatches per component.
/// </summary>
public sealed class CheckpointValidationException : Exception
{
    private const int MaxListed = 20;

    /// <summary>Creates the exception from a failed report.</summary>
    public CheckpointValidationException(string checkpoint, CheckpointValidationReport report)
        : base(Compose(checkpoint, report ?? throw new ArgumentNullException(nameof(report))))
    {
        Checkpoint = checkpoint;
        Report = report;
    }

    /// <summary>The checkpoint folder.</summary>
    public string Checkpoint { get; }

    /// <summary>The full report.</summary>
    public CheckpointValidationReport Report { get; }

    /// <summary>Missing keys as <c>component/key</c>.</summary>
    public IReadOnlyList<string> MissingKeys => Report.Components.SelectMany(c => c.Missing.Select(k => $"{c.Component}/{k}")).ToArray();

    /// <summary>Unexpected keys as <c>component/key</c>.</summary>
    public IReadOnlyList<string> UnexpectedKeys => Report.Components.SelectMany(c => c.Unexpected.Select(k => $"{c.Component}/{k}")).ToArray();

    /// <summary>Every shape or dtype mismatch.</summary>
    public IReadOnlyList<WeightShapeMismatch> ShapeMismatches => Report.Components.SelectMany(c => c.Mismatches).ToArray();

    private static string Compose(string checkpoint, CheckpointValidationReport report)
    {
        var sb = new StringBuilder($"Checkpoint '{checkpoint}' does not match its configuration.");
        foreach (ComponentValidationResult c in report.Components.Where(c => !c.IsValid))
        {
            sb.Append($"\n{c.Component}: {c.Missing.Count} missing, {c.Unexpected.Count} unexpected, {c.Mismatches.Count} shape mismatches.");
            Append(sb, "missing", c.Missing);
            Append(sb, "unexpected", c.Unexpected);
            Append(sb, "mismatch", c.Mismatches.Select(m => m.ToString()).ToArray());
        }
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, string label, IReadOnlyList<string> items)
    {
        foreach (string s in items.Take(MaxListed)) sb.Append($"\n  {label}: {s}");
        if (items.Count > MaxListed) sb.Append($"\n  … and {items.Count - MaxListed} more {label}");
    }
}
