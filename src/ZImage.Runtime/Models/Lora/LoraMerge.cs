using System.Globalization;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Lora;

/// <summary>
/// Where LoRAs meet the engine: the checks of a LoRA list before anything is loaded, and the wrapping of the
/// transformer checkpoint so that every weight is merged as it is materialized (<see cref="LoraMergedReader"/>).
/// </summary>
public static class LoraMerge
{
    /// <summary>What is wrong with <paramref name="spec"/> before its file is read (empty path, non-finite scale, missing file), or null.</summary>
    public static string? Problem(LoraSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrWhiteSpace(spec.Path)) return "Path is empty; allowed: a LoRA .safetensors file.";
        if (!double.IsFinite(spec.Scale))
            return string.Create(CultureInfo.InvariantCulture, $"Scale = {spec.Scale} for '{spec.Path}' is not allowed; allowed: a finite number (1 = full strength).");
        if (Directory.Exists(spec.Path)) return $"Path '{spec.Path}' is a directory; allowed: a LoRA .safetensors file.";
        if (!File.Exists(spec.Path)) return $"Path '{spec.Path}' does not exist; allowed: a LoRA .safetensors file.";
        return null;
    }

    /// <summary>Checks the LoRAs of an engine about to open <paramref name="checkpointDir"/>; returns a copy.</summary>
    /// <exception cref="LoraFormatException">LoRAs without a checkpoint (the demo model), or a spec with a <see cref="Problem"/>.</exception>
    public static IReadOnlyList<LoraSpec> Check(IReadOnlyList<LoraSpec>? loras, string? checkpointDir)
    {
        if (loras is null || loras.Count == 0) return [];
        if (checkpointDir is null)
            throw new LoraFormatException(loras[0].Path, "needs a Z-Image checkpoint (a model directory): the tiny random demo model has no trained weights to adapt", []);
        foreach (var spec in loras)
            if (Problem(spec) is { } problem) throw new LoraFormatException(spec.Path, problem, []);
        return loras.ToArray();
    }

    /// <summary>
    /// <paramref name="transformer"/> itself when there are no LoRAs, else a <see cref="LoraMergedReader"/> over it with
    /// each LoRA read and checked against it (in order, with its scale).
    /// </summary>
    /// <exception cref="LoraFormatException">A LoRA does not fit the checkpoint (the exception lists the keys).</exception>
    public static ISafetensorsReader Wrap(ISafetensorsReader transformer, IReadOnlyList<LoraSpec> loras)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        ArgumentNullException.ThrowIfNull(loras);
        if (loras.Count == 0) return transformer;
        return new LoraMergedReader(transformer, loras.Select(l => (LoraAdapter.Load(l.Path, transformer), l.Scale)).ToArray());
    }
}
