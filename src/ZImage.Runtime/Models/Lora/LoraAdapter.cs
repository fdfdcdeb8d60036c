using System.Numerics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Lora;

/// <summary>The key layout of a LoRA file.</summary>
public enum LoraKeyFormat
{
    /// <summary>diffusers/PEFT (<c>ZImageLoraLoaderMixin.save_lora_weights</c>): <c>transformer.&lt;module&gt;.lora_A.weight</c> [r,in] and <c>.lora_B.weight</c> [out,r]; alpha in the <c>lora_adapter_metadata</c> JSON (else alpha = r).</summary>
    Diffusers,
    /// <summary>kohya: <c>lora_unet_&lt;module path with _&gt;.lora_down.weight</c> (A), <c>.lora_up.weight</c> (B), <c>.alpha</c>.</summary>
    Kohya,
    /// <summary>ComfyUI/original trainer: <c>diffusion_model.&lt;module&gt;.lora_A.weight</c>, <c>.lora_B.weight</c>, <c>.alpha</c>.</summary>
    DiffusionModel,
}

/// <summary>One low-rank update of a linear weight: <c>ΔW = Scaling·(B @ A)</c> before the user's scale.</summary>
/// <param name="Weight">The model weight it updates, e.g. <c>layers.0.attention.to_q.weight</c>.</param>
/// <param name="A">A <c>[Rank, In]</c>, row-major (alpha already folded in for kohya and diffusion_model files).</param>
/// <param name="B">B <c>[Out, Rank]</c>, row-major.</param>
/// <param name="Rank">r.</param>
/// <param name="In">Input features.</param>
/// <param name="Out">Output features.</param>
/// <param name="Scaling">PEFT's <c>lora_alpha / r</c> (<c>/ √r</c> with rsLoRA).</param>
public sealed record LoraModule(string Weight, float[] A, float[] B, int Rank, int In, int Out, double Scaling);

/// <summary>
/// A LoRA file read and checked against the checkpoint it is for, in diffusers' semantics
/// (<c>ZImageLoraLoaderMixin.lora_state_dict</c>, <c>_convert_non_diffusers_z_image_lora_to_diffusers</c>,
/// <c>get_peft_kwargs</c>): the three key formats of <see cref="LoraKeyFormat"/>. For kohya and diffusion_model files
/// the alpha is folded into A and B at load (<c>s = alpha/r</c>; scale_down = s, scale_up = 1; while
/// scale_down·2 &lt; scale_up: scale_down ·= 2, scale_up /= 2), after which the scaling is 1 (lora_alpha = r); for
/// diffusers files the scaling is <c>lora_alpha/r</c> from the <c>lora_adapter_metadata</c> JSON
/// (<c>transformer.lora_alpha</c>, <c>transformer.r</c>, <c>alpha_pattern</c>/<c>rank_pattern</c>,
/// <c>use_rslora</c>), or 1 without metadata. Every key must name a 2-D weight of the model with matching shapes;
/// anything else is a <see cref="LoraFormatException"/> that lists the offending keys.
/// </summary>
public sealed class LoraAdapter
{
    private static readonly Regex DiffusersKey = new(@"^transformer\.(.+)\.lora_(A|B)\.weight$", RegexOptions.CultureInvariant);
    private static readonly Regex KohyaKey = new(@"^lora_unet_(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$", RegexOptions.CultureInvariant);
    private static readonly Regex DiffusionModelKey = new(@"^diffusion_model\.(.+)\.(lora_A\.weight|lora_B\.weight|alpha)$", RegexOptions.CultureInvariant);

    private LoraAdapter(string file, LoraKeyFormat format, IReadOnlyDictionary<string, LoraModule> modules)
    {
        File = file;
        Format = format;
        Modules = modules;
    }

    /// <summary>The file it was read from.</summary>
    public string File { get; }

    /// <summary>The key format found.</summary>
    public LoraKeyFormat Format { get; }

    /// <summary>The updates, by the model weight they change (<c>….weight</c>).</summary>
    public IReadOnlyDictionary<string, LoraModule> Modules { get; }

    /// <summary>Reads <paramref name="path"/> and checks it against the transformer weights in <paramref name="model"/>.</summary>
    /// <exception cref="LoraFormatException">The file is missing or unreadable, not a Z-Image transformer LoRA, or its keys/shapes do not fit the model.</exception>
    public static LoraAdapter Load(string path, ISafetensorsReader model)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        if (Directory.Exists(path)) throw new LoraFormatException(path, "is a directory; allowed: a LoRA .safetensors file", []);
        if (!System.IO.File.Exists(path)) throw new LoraFormatException(path, "does not exist; allowed: a LoRA .safetensors file", []);
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (Exception e) when (e is SafetensorsFormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new LoraFormatException(path, $"is not a readable safetensors file: {e.Message.Split('\n')[0]}", [], e);
        }
        using (file) return Read(file, file.Metadata, path, model);
    }

    /// <summary>As <see cref="Load"/>, over an open LoRA reader and its <c>__metadata__</c>.</summary>
    /// <exception cref="LoraFormatException">Not a Z-Image transformer LoRA, or keys/shapes that do not fit the model.</exception>
    public static LoraAdapter Read(ISafetensorsReader lora, IReadOnlyDictionary<string, string> metadata, string name, ISafetensorsReader model)
    {
        ArgumentNullException.ThrowIfNull(lora);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(model);
        var keys = lora.TensorNames;
        (LoraKeyFormat format, Regex pattern) =
            keys.Any(k => k.StartsWith("lora_unet_", StringComparison.Ordinal)) ? (LoraKeyFormat.Kohya, KohyaKey)
            : keys.Any(k => k.StartsWith("diffusion_model.", StringComparison.Ordinal)) ? (LoraKeyFormat.DiffusionModel, DiffusionModelKey)
            : keys.Any(DiffusersKey.IsMatch) ? (LoraKeyFormat.Diffusers, DiffusersKey)
            : throw new LoraFormatException(name, "is not a Z-Image transformer LoRA (no transformer.*.lora_A/lora_B, lora_unet_* or diffusion_model.* keys; a LoRA for another model?); its keys",
                keys.Take(20).ToList());

        // The model's linear modules: every 2-D weight. kohya flattens the module path's dots to underscores.
        var weights = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var flat = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string n in model.TensorNames)
        {
            if (!n.EndsWith(".weight", StringComparison.Ordinal)) continue;
            var info = model.GetInfo(n);
            if (info.Shape.Length != 2) continue;
            string module = n[..^".weight".Length];
            weights[module] = info.Shape;
            flat[module.Replace('.', '_')] = module;
        }

        var parts = new SortedDictionary<string, (string? A, string? B, string? Alpha)>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (string k in keys)
        {
            var m = pattern.Match(k);
            string? module = !m.Success ? null : format == LoraKeyFormat.Kohya ? KohyaModule(m.Groups[1].Value, flat) : m.Groups[1].Value;
            if (module is null || !weights.ContainsKey(module))
            {
                unknown.Add(k);
                continue;
            }
            var p = parts.GetValueOrDefault(module);
            switch (m.Groups[2].Value)
            {
                case "A" or "lora_down.weight" or "lora_A.weight": p.A = k; break;
                case "B" or "lora_up.weight" or "lora_B.weight": p.B = k; break;
                default: p.Alpha = k; break;
            }
            parts[module] = p;
        }
        if (unknown.Count > 0)
            throw new LoraFormatException(name, $"has keys for modules this model does not have (format {format}; a LoRA for another model?)", unknown);

        var config = DiffusersConfig.From(metadata, name);
        var modules = new Dictionary<string, LoraModule>(StringComparer.Ordinal);
        var mismatched = new List<string>();
        foreach (var (module, p) in parts)
        {
            if (p.A is null || p.B is null)
            {
                mismatched.Add($"{module} (no {(p.A is null ? "down/A" : "up/B")} matrix)");
                continue;
            }
            var ai = lora.GetInfo(p.A);
            var bi = lora.GetInfo(p.B);
            int[] w = weights[module];
            if (ai.Shape.Length != 2 || bi.Shape.Length != 2 || ai.Shape[0] != bi.Shape[1] || ai.Shape[1] != w[1] || bi.Shape[0] != w[0] || ai.Shape[0] < 1)
            {
                mismatched.Add($"{module}: A {ai.ShapeText}, B {bi.ShapeText} do not fit the weight [{w[0]},{w[1]}] (need A [r,{w[1]}], B [{w[0]},r])");
                continue;
            }
            int r = ai.Shape[0];
            float[] a = lora.ReadSingles(p.A), b = lora.ReadSingles(p.B);
            double scaling;
            if (format == LoraKeyFormat.Diffusers)
            {
                if (config.RankFor(module) is { } expected && expected != r)
                {
                    mismatched.Add($"{module}: rank {r} but the metadata says r = {expected}");
                    continue;
                }
                double alpha = config.AlphaFor(module) ?? r;
                scaling = config.RsLora ? alpha / Math.Sqrt(r) : alpha / r;
            }
            else
            {
                float[] alphaValue = p.Alpha is null ? [r] : lora.ReadSingles(p.Alpha);
                if (alphaValue.Length != 1 || !float.IsFinite(alphaValue[0]))
                {
                    mismatched.Add($"{module}: alpha {lora.GetInfo(p.Alpha!).ShapeText} is not one finite number");
                    continue;
                }
                FoldAlpha(alphaValue[0], r, a, b);
                scaling = 1.0;
            }
            modules[module + ".weight"] = new LoraModule(module + ".weight", a, b, r, w[1], w[0], scaling);
        }
        if (mismatched.Count > 0)
            throw new LoraFormatException(name, "has matrices whose rank or shape does not fit the model", mismatched);
        if (modules.Count == 0)
            throw new LoraFormatException(name, "has no LoRA matrices", []);
        return new LoraAdapter(name, format, modules);
    }

    // diffusers' conversion of non-diffusers files: alpha/r folded into A and B (powers of two moved to B), then lora_alpha = r.
    private static void FoldAlpha(float alpha, int rank, float[] a, float[] b)
    {
        double s = alpha / (double)rank, down = s, up = 1.0;
        while (down * 2 < up)
        {
            down *= 2;
            up /= 2;
        }
        float fd = (float)down, fu = (float)up;
        for (int i = 0; i < a.Length; i++) a[i] *= fd;
        for (int i = 0; i < b.Length; i++) b[i] *= fu;
    }

    // kohya keys are the module path with '.' → '_': matched against the model's own modules, plus diffusers'
    // 'attention_out' alias for 'attention.to_out.0'.
    private static string? KohyaModule(string flatName, Dictionary<string, string> flat) =>
        flat.TryGetValue(flatName, out var m) ? m
        : flatName.EndsWith("_attention_out", StringComparison.Ordinal) && flat.TryGetValue(flatName[..^"_out".Length] + "_to_out_0", out var o) ? o
        : null;

    /// <summary>
    /// PEFT's merge in float32: <c>W += (B @ A)·(float)(scaling·scale)</c>, the rank summed in order for each element
    /// (vectorised over the input features and parallel over the output rows; no fused multiply-add, so every
    /// element sees exactly the scalar sequence of roundings).
    /// </summary>
    /// <param name="module">The update.</param>
    /// <param name="weight">The weight <c>[out, in]</c>, row-major, updated in place.</param>
    /// <param name="scale">The user's <c>lora_scale</c>.</param>
    /// <exception cref="ArgumentException">The weight does not have <c>Out·In</c> values.</exception>
    public static void Merge(LoraModule module, float[] weight, double scale)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Length != (long)module.Out * module.In)
            throw new ArgumentException($"The weight has {weight.Length} values; {module.Weight} needs [{module.Out},{module.In}].", nameof(weight));
        float s = (float)(module.Scaling * scale);
        int r = module.Rank, n = module.In;
        float[] a = module.A, b = module.B;
        Parallel.For(0, module.Out, () => new float[n], (o, _, delta) =>
        {
            Array.Clear(delta);
            for (int k = 0; k < r; k++)
            {
                float bk = b[o * r + k];
                AddScaled(delta, a.AsSpan(k * n, n), bk);
            }
            var row = weight.AsSpan(o * n, n);
            AddScaled(row, delta, s);
            return delta;
        }, _ => { });
    }

    // dst[i] += x[i]·c, as separate multiply and add.
    private static void AddScaled(Span<float> dst, ReadOnlySpan<float> x, float c)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && dst.Length >= Vector<float>.Count)
        {
            var vc = new Vector<float>(c);
            var d = MemoryMarshal.Cast<float, Vector<float>>(dst);
            var v = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int j = 0; j < d.Length; j++) d[j] += v[j] * vc;
            i = d.Length * Vector<float>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += x[i] * c;
    }

    // The LoraConfig diffusers saves with a diffusers-format file ('transformer.'-prefixed keys).
    private sealed record DiffusersConfig(double? Alpha, int? Rank, bool RsLora, IReadOnlyDictionary<string, double> AlphaPattern, IReadOnlyDictionary<string, int> RankPattern)
    {
        public static DiffusersConfig From(IReadOnlyDictionary<string, string> metadata, string file)
        {
            if (!metadata.TryGetValue("lora_adapter_metadata", out var json)) return new(null, null, false, new Dictionary<string, double>(), new Dictionary<string, int>());
            try
            {
                using var doc = JsonDocument.Parse(json);
                var root = doc.RootElement;
                JsonElement Get(string key) => root.TryGetProperty("transformer." + key, out var v) ? v : root.TryGetProperty(key, out var u) ? u : default;
                double? alpha = Get("lora_alpha") is { ValueKind: JsonValueKind.Number } a ? a.GetDouble() : null;
                int? rank = Get("r") is { ValueKind: JsonValueKind.Number } r ? r.GetInt32() : null;
                bool rs = Get("use_rslora").ValueKind == JsonValueKind.True;
                var ap = Get("alpha_pattern") is { ValueKind: JsonValueKind.Object } apo ? apo.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble()) : [];
                var rp = Get("rank_pattern") is { ValueKind: JsonValueKind.Object } rpo ? rpo.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32()) : [];
                return new(alpha, rank, rs, ap, rp);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new LoraFormatException(file, $"has an unreadable lora_adapter_metadata ({e.Message})", [], e);
            }
        }

        // PEFT matches pattern keys against the end of the module name (regex "(.*\.)?key$").
        private static T? Match<T>(IReadOnlyDictionary<string, T> pattern, string module) where T : struct =>
            pattern.FirstOrDefault(p => module == p.Key || module.EndsWith("." + p.Key, StringComparison.Ordinal)) is { Key: not null } hit ? hit.Value : null;

        public double? AlphaFor(string module) => Match(AlphaPattern, module) ?? Alpha;

        public int? RankFor(string module) => Match(RankPattern, module) ?? Rank;
    }
}
