using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Models.Tokenization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>One thing wrong (or worth knowing) about a checkpoint folder.</summary>
/// <param name="Component">Where: <c>model_index</c>, <c>config</c>, <c>transformer</c>, <c>text_encoder</c>, <c>vae</c> or <c>tokenizer</c>.</param>
/// <param name="Kind">What: <c>config</c>, <c>file_layout</c>, <c>missing_key</c>, <c>unexpected_key</c>, <c>shape_mismatch</c>, <c>tokenizer</c>.</param>
/// <param name="Message">A one-line description naming the file, key or value.</param>
public sealed record CheckpointProblem(string Component, string Kind, string Message);

/// <summary>The outcome of <see cref="CheckpointCheck.Run"/>.</summary>
/// <param name="Directory">The checked folder (full path).</param>
/// <param name="Problems">Everything that makes the folder unusable; empty when it is valid.</param>
/// <param name="Notes">Facts that do not make it invalid (e.g. no tokenizer.json: the byte-level fallback is used).</param>
/// <param name="Weights">The per-component weight report, when the configs and files could be read.</param>
public sealed record CheckpointCheckReport(string Directory, IReadOnlyList<CheckpointProblem> Problems, IReadOnlyList<string> Notes,
    CheckpointValidationReport? Weights)
{
    /// <summary>True when nothing is wrong.</summary>
    public bool IsValid => Problems.Count == 0;

    /// <summary>Tensor count and stored bytes per component, when the files could be read.</summary>
    public IReadOnlyList<(string Component, int Tensors, long Bytes)> Components { get; init; } = [];
}

/// <summary>
/// Checks a checkpoint folder without loading anything to a device: <c>model_index.json</c> and the component
/// configs, the safetensors layout of every component (headers, offsets, shard index), every tensor key, shape and
/// dtype against the configs, and the tokenizer. The weight files are memory-mapped, never read in full.
/// </summary>
public static class CheckpointCheck
{
    /// <summary>Checks <paramref name="directory"/> and reports every problem found; it throws only for a null or empty path.</summary>
    public static CheckpointCheckReport Run(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = Path.GetFullPath(directory);
        var problems = new List<CheckpointProblem>();
        var notes = new List<string>();
        CheckTokenizer(dir, problems, notes);
        CheckpointFolder folder;
        try
        {
            folder = CheckpointFolder.Open(dir, validateWeights: false);
        }
        catch (CheckpointConfigurationException e)
        {
            problems.Insert(0, new CheckpointProblem(Path.GetFileName(e.ConfigSource) == "model_index.json" ? "model_index" : "config", "config", e.Message));
            return new CheckpointCheckReport(dir, problems, notes, null);
        }
        // SafetensorsFormatException, FileNotFoundException (no weights), an unreadable file, or whatever a corrupt
        // header makes the reader throw: each is a problem of the file layout, reported with its message.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problems.Insert(0, new CheckpointProblem(ComponentOf(dir, e is SafetensorsFormatException s ? s.FilePath : e.Message), "file_layout", e.Message));
            return new CheckpointCheckReport(dir, problems, notes, null);
        }
        using (folder)
        {
            CheckpointValidationReport weights = folder.ValidateWeights();
            foreach (ComponentValidationResult c in weights.Components)
            {
                problems.AddRange(c.Missing.Select(k => new CheckpointProblem(c.Component, "missing_key", $"{c.Component}: tensor '{k}' is missing.")));
                problems.AddRange(c.Unexpected.Select(k => new CheckpointProblem(c.Component, "unexpected_key", $"{c.Component}: tensor '{k}' is not part of the architecture.")));
                problems.AddRange(c.Mismatches.Select(m => new CheckpointProblem(c.Component, "shape_mismatch", m.ToString() + ".")));
                if (c.KnownUnused.Count > 0) notes.Add($"{c.Component}: {c.KnownUnused.Count} stored tensors are known but unused for text-to-image.");
            }
            return new CheckpointCheckReport(dir, problems, notes, weights)
            {
                Components =
                [
                    (ZImageConfig.TransformerFolder, folder.Transformer.TensorNames.Count, folder.Transformer.TotalBytes),
                    (ZImageConfig.TextEncoderFolder, folder.TextEncoder.TensorNames.Count, folder.TextEncoder.TotalBytes),
                    (ZImageConfig.VaeFolder, folder.Vae.TensorNames.Count, folder.Vae.TotalBytes),
                ],
            };
        }
    }

    private static void CheckTokenizer(string dir, List<CheckpointProblem> problems, List<string> notes)
    {
        string tokDir = Path.Combine(dir, ZImageConfig.TokenizerFolder);
        if (!File.Exists(Path.Combine(tokDir, "tokenizer.json")))
        {
            notes.Add($"no {ZImageConfig.TokenizerFolder}/tokenizer.json: prompts use the byte-level fallback tokenizer.");
            return;
        }
        try
        {
            _ = Qwen2Tokenizer.Load(tokDir);
        }
        catch (TokenizerFormatException e)
        {
            problems.Add(new CheckpointProblem("tokenizer", "tokenizer", e.Message));
        }
    }

    private static string ComponentOf(string dir, string pathOrMessage)
    {
        foreach (string c in new[] { ZImageConfig.TransformerFolder, ZImageConfig.TextEncoderFolder, ZImageConfig.VaeFolder })
            if (pathOrMessage.Contains(Path.Combine(dir, c), StringComparison.Ordinal)) return c;
        return "file_layout";
    }
}
