using System.Text.Json;
using System.Text.RegularExpressions;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Tests.Infrastructure;

/// <summary>A tensor the manifest declares for a case (input, output or debug intermediate).</summary>
/// <param name="Name">Tensor key inside the case's safetensors file.</param>
/// <param name="Shape">Declared shape.</param>
/// <param name="DType">Declared dtype (F32, I64, I32, U8).</param>
/// <param name="Role">"inputs", "outputs" or "intermediates".</param>
public sealed record ReferenceTensorSpec(string Name, int[] Shape, string DType, string Role);

/// <summary>A tensor loaded from a case file.</summary>
/// <typeparam name="T">Element type (float, long, int or byte).</typeparam>
/// <param name="Name">Tensor key.</param>
/// <param name="Data">Elements, row-major.</param>
/// <param name="Shape">Stored shape.</param>
public sealed record ReferenceTensor<T>(string Name, T[] Data, int[] Shape)
{
    /// <summary>Largest absolute value (for float tensors; 0 otherwise).</summary>
    public double MaxAbs => Data is float[] f && f.Length > 0 ? f.Max(v => Math.Abs((double)v)) : 0;
}

/// <summary>The tolerance the manifest gives one tensor of one case.</summary>
/// <param name="RecommendedMaxAbs">Recommended bound on max |yours − reference| (for uint8 images: the allowed per-value difference).</param>
/// <param name="StrictMaxAbs">The strict bound (20 × observed float32-vs-float64 error), when the manifest gives one.</param>
/// <param name="Exact">True when the case must match exactly (tokenizer).</param>
/// <param name="MaxFractionDiffering">For uint8 images: the largest fraction of values allowed to differ at all.</param>
public sealed record ReferenceTolerance(double RecommendedMaxAbs, double? StrictMaxAbs, bool Exact, double? MaxFractionDiffering)
{
    /// <summary>The strict bound when known, else the recommended one.</summary>
    public double StrictOrRecommended => StrictMaxAbs ?? RecommendedMaxAbs;
}

/// <summary>One case of <c>manifest.json</c>.</summary>
public sealed class ReferenceCase
{
    private static readonly string[] Roles = ["inputs", "outputs", "intermediates"];
    private readonly Dictionary<string, ReferenceTensorSpec> _tensors = new(StringComparer.Ordinal);

    internal ReferenceCase(string referenceDir, JsonElement raw)
    {
        ReferenceDir = referenceDir;
        Raw = raw.Clone();
        Name = Raw.GetProperty("name").GetString()!;
        Kind = Raw.GetProperty("kind").GetString()!;
        File = Raw.GetProperty("file").GetString()!;
        FullPath = Path.Combine(referenceDir, File);
        JsonFile = Raw.TryGetProperty("json_file", out JsonElement jf) ? jf.GetString() : null;
        Description = Raw.TryGetProperty("description", out JsonElement d) ? d.GetString() ?? "" : "";
        Params = Raw.TryGetProperty("params", out JsonElement p) ? p : default;
        Tolerance = Raw.TryGetProperty("tolerance", out JsonElement t) ? t : default;
        foreach (string role in Roles)
        {
            if (!Raw.TryGetProperty(role, out JsonElement group) || group.ValueKind != JsonValueKind.Object) continue;
            foreach (JsonProperty e in group.EnumerateObject())
            {
                // Tokenizer cases describe JSON fields ("int list"), not tensors; only {shape, dtype} objects are tensors.
                if (e.Value.ValueKind != JsonValueKind.Object || !e.Value.TryGetProperty("shape", out JsonElement shape)) continue;
                _tensors[e.Name] = new ReferenceTensorSpec(e.Name, shape.EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                    e.Value.GetProperty("dtype").GetString()!, role);
            }
        }
    }

    /// <summary>The reference folder the case's files are relative to.</summary>
    public string ReferenceDir { get; }

    /// <summary>Case name (unique in the manifest).</summary>
    public string Name { get; }

    /// <summary>Case kind (tokenizer, text_encoder, transformer_forward, transformer_forward_batch, vae_decode, scheduler, e2e).</summary>
    public string Kind { get; }

    /// <summary>The case file relative to the reference folder.</summary>
    public string File { get; }

    /// <summary>Absolute path of <see cref="File"/>.</summary>
    public string FullPath { get; }

    /// <summary>The companion JSON file (scheduler), relative to the reference folder, or null.</summary>
    public string? JsonFile { get; }

    /// <summary>Human description from the manifest.</summary>
    public string Description { get; }

    /// <summary>The <c>params</c> object (undefined when absent).</summary>
    public JsonElement Params { get; }

    /// <summary>The raw <c>tolerance</c> object.</summary>
    public JsonElement Tolerance { get; }

    /// <summary>The whole manifest entry.</summary>
    public JsonElement Raw { get; }

    /// <summary>Declared tensors of one role.</summary>
    public IReadOnlyList<ReferenceTensorSpec> Inputs => ByRole("inputs");

    /// <summary>Declared output tensors.</summary>
    public IReadOnlyList<ReferenceTensorSpec> Outputs => ByRole("outputs");

    /// <summary>Declared debug intermediates (<c>debug/…</c>).</summary>
    public IReadOnlyList<ReferenceTensorSpec> Intermediates => ByRole("intermediates");

    /// <summary>All declared tensors by name.</summary>
    public IReadOnlyDictionary<string, ReferenceTensorSpec> Tensors => _tensors;

    private ReferenceTensorSpec[] ByRole(string role) => _tensors.Values.Where(t => t.Role == role).ToArray();

    /// <summary>A typed <c>params</c> field, e.g. <c>Param&lt;int&gt;("caption_len")</c>.</summary>
    public T Param<T>(string name) =>
        Params.ValueKind == JsonValueKind.Object && Params.TryGetProperty(name, out JsonElement v)
            ? v.Deserialize<T>()!
            : throw new KeyNotFoundException($"Reference case '{Name}' has no params.{name}.");

    /// <summary>
    /// The tolerance for <paramref name="tensor"/>: an entry whose key (comma-separated patterns, <c>*</c> = one
    /// dotted segment) names it, or whose key is the tensor's last dotted segments (scheduler: <c>sigmas</c> for
    /// <c>pipeline_default.N8.sigmas</c>), else the case-wide bound (with <c>per_sample[i]</c>'s strict bound for
    /// a tensor named <c>….i</c>).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The manifest gives no tolerance for the tensor.</exception>
    public ReferenceTolerance ToleranceFor(string tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (Tolerance.ValueKind != JsonValueKind.Object) throw new KeyNotFoundException($"Reference case '{Name}' has no tolerance object.");
        if (Tolerance.TryGetProperty("exact", out JsonElement exact) && exact.ValueKind == JsonValueKind.True)
            return new ReferenceTolerance(0, 0, true, 0);

        JsonProperty[] keyed = Tolerance.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Object && p.Name != "per_sample").ToArray();
        foreach (JsonProperty p in keyed)
            if (Patterns(p.Name).Any(pattern => Glob(pattern).IsMatch(tensor))) return FromObject(p.Value, p.Name);
        foreach (JsonProperty p in keyed)
            if (Patterns(p.Name).Any(pattern => tensor.EndsWith("." + pattern, StringComparison.Ordinal))) return FromObject(p.Value, p.Name);

        if (Tolerance.TryGetProperty("recommended_max_abs", out _))
        {
            ReferenceTolerance flat = FromObject(Tolerance, "tolerance");
            int dot = tensor.LastIndexOf('.');
            if (Tolerance.TryGetProperty("per_sample", out JsonElement per) && per.ValueKind == JsonValueKind.Array && dot >= 0
                && int.TryParse(tensor.AsSpan(dot + 1), out int sample) && sample >= 0 && sample < per.GetArrayLength())
            {
                ReferenceTolerance s = FromObject(per[sample], $"per_sample[{sample}]");
                return flat with { StrictMaxAbs = s.StrictMaxAbs };
            }
            return flat;
        }
        throw new KeyNotFoundException($"Reference case '{Name}' gives no tolerance for '{tensor}' (tolerance keys: {string.Join(" | ", Tolerance.EnumerateObject().Select(p => p.Name))}).");
    }

    private static IEnumerable<string> Patterns(string key) => key.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private static Regex Glob(string pattern) => new("^" + Regex.Escape(pattern).Replace("\\*", "[^.]+", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);

    private ReferenceTolerance FromObject(JsonElement o, string key)
    {
        double? Num(string field) => o.TryGetProperty(field, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        double recommended = Num("recommended_max_abs") ?? Num("recommended_max_abs_diff")
            ?? throw new KeyNotFoundException($"Reference case '{Name}' tolerance '{key}' has no recommended_max_abs.");
        return new ReferenceTolerance(recommended, Num("strict_max_abs"), false, Num("recommended_max_fraction_differing"));
    }

    /// <summary>Opens the case's safetensors file (dispose it).</summary>
    public SafetensorsFile OpenTensors()
    {
        if (!FullPath.EndsWith(".safetensors", StringComparison.Ordinal))
            throw new InvalidOperationException($"Reference case '{Name}' file '{File}' is not a safetensors file.");
        return SafetensorsFile.Open(FullPath);
    }

    /// <summary>The names stored in the case's safetensors file.</summary>
    public IReadOnlyList<string> StoredTensorNames()
    {
        using SafetensorsFile f = OpenTensors();
        return f.TensorNames;
    }

    /// <summary>Loads a tensor as float32 (any stored dtype converts).</summary>
    public ReferenceTensor<float> LoadFloat(string name) => Load(name, (f, n) => f.ReadSingles(n));

    /// <summary>Loads an integer tensor (I64 token ids) as int64.</summary>
    public ReferenceTensor<long> LoadInt64(string name) => Load(name, (f, n) => f.ReadInt64(n));

    /// <summary>Loads an integer tensor (I32 position ids, I64 token ids) as int32.</summary>
    public ReferenceTensor<int> LoadInt32(string name) => Load(name, (f, n) => f.ReadInt32(n));

    /// <summary>Loads the raw bytes of a tensor (U8 images).</summary>
    public ReferenceTensor<byte> LoadBytes(string name) => Load(name, (f, n) => f.ReadBytes(n));

    private ReferenceTensor<T> Load<T>(string name, Func<SafetensorsFile, string, T[]> read)
    {
        using SafetensorsFile f = OpenTensors();
        if (!f.Contains(name))
            throw new KeyNotFoundException($"Reference case '{Name}' file '{File}' has no tensor '{name}' (has: {string.Join(", ", f.TensorNames.Take(12))}…).");
        return new ReferenceTensor<T>(name, read(f, name), f.GetInfo(name).Shape);
    }

    /// <summary>Parses the case's JSON file (<see cref="JsonFile"/> or a <c>.json</c> <see cref="File"/>).</summary>
    public JsonElement ReadJson()
    {
        string rel = JsonFile ?? (File.EndsWith(".json", StringComparison.Ordinal) ? File : throw new InvalidOperationException($"Reference case '{Name}' has no JSON file."));
        using JsonDocument doc = JsonDocument.Parse(System.IO.File.ReadAllText(Path.Combine(ReferenceDir, rel)));
        return doc.RootElement.Clone();
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>
/// One reference folder's <c>manifest.json</c> (read once, lazily): the cases, their kinds and xunit theory data.
/// <see cref="ReferenceCases"/> reads the shared <c>tiny-zimage-reference</c>; <see cref="EditReferenceManifest"/>
/// reads <c>tiny-zimage-edit-reference</c>. Nothing here knows case names or counts; they come from the manifest.
/// </summary>
public sealed class ReferenceManifest
{
    private readonly Lazy<(ReferenceCase[] Cases, JsonElement Root)> _loaded;
    private readonly Func<string> _dir;

    /// <summary>A manifest in the folder <paramref name="dir"/> returns (evaluated on first use).</summary>
    public ReferenceManifest(Func<string> dir)
    {
        _dir = dir;
        _loaded = new(() =>
        {
            string d = _dir();
            using JsonDocument doc = JsonDocument.Parse(System.IO.File.ReadAllText(Path.Combine(d, "manifest.json")));
            JsonElement root = doc.RootElement.Clone();
            return (root.GetProperty("cases").EnumerateArray().Select(c => new ReferenceCase(d, c)).ToArray(), root);
        });
    }

    /// <summary>Path of the manifest.</summary>
    public string ManifestPath => Path.Combine(_dir(), "manifest.json");

    /// <summary>The whole manifest (checkpoint hashes, conventions, cases).</summary>
    public JsonElement Manifest => _loaded.Value.Root;

    /// <summary>Every case in manifest order.</summary>
    public IReadOnlyList<ReferenceCase> All => _loaded.Value.Cases;

    /// <summary>The distinct kinds.</summary>
    public IReadOnlyList<string> Kinds => All.Select(c => c.Kind).Distinct().ToArray();

    /// <summary>Cases of one kind.</summary>
    public IReadOnlyList<ReferenceCase> OfKind(string kind) => All.Where(c => c.Kind == kind).ToArray();

    /// <summary>The case called <paramref name="name"/>.</summary>
    public ReferenceCase Get(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"No reference case '{name}' in {ManifestPath}.");

    /// <summary>Case names of one kind as xunit theory data (fails loudly when the kind has no case).</summary>
    public TheoryData<string> Names(string kind)
    {
        var data = new TheoryData<string>();
        foreach (ReferenceCase c in OfKind(kind)) data.Add(c.Name);
        if (data.Count == 0) throw new InvalidOperationException($"The manifest {ManifestPath} has no case of kind '{kind}'.");
        return data;
    }

    /// <summary>(case name, tensor name) pairs of every declared output of one kind, as theory data.</summary>
    public TheoryData<string, string> Outputs(string kind)
    {
        var data = new TheoryData<string, string>();
        foreach (ReferenceCase c in OfKind(kind))
            foreach (ReferenceTensorSpec t in c.Outputs) data.Add(c.Name, t.Name);
        if (data.Count == 0) throw new InvalidOperationException($"The manifest {ManifestPath} has no output tensors of kind '{kind}'.");
        return data;
    }
}

/// <summary>
/// The cases of <c>manifest.json</c> under <see cref="FixturePaths.ReferenceDir"/>, for xunit theories:
/// <c>[MemberData(nameof(ReferenceCases.Names), "transformer_forward", MemberType = typeof(ReferenceCases))]</c>
/// then <c>ReferenceCases.Get(name)</c>. Nothing here knows case names or counts; they come from the manifest.
/// </summary>
public static class ReferenceCases
{
    /// <summary>The manifest behind these helpers.</summary>
    public static ReferenceManifest Reader { get; } = new(() => FixturePaths.ReferenceDir);

    /// <summary>Path of the manifest.</summary>
    public static string ManifestPath => Reader.ManifestPath;

    /// <summary>The whole manifest (checkpoint hashes, conventions, cases).</summary>
    public static JsonElement Manifest => Reader.Manifest;

    /// <summary>Every case in manifest order.</summary>
    public static IReadOnlyList<ReferenceCase> All => Reader.All;

    /// <summary>The distinct kinds.</summary>
    public static IReadOnlyList<string> Kinds => Reader.Kinds;

    /// <summary>Cases of one kind.</summary>
    public static IReadOnlyList<ReferenceCase> OfKind(string kind) => Reader.OfKind(kind);

    /// <summary>The case called <paramref name="name"/>.</summary>
    public static ReferenceCase Get(string name) => Reader.Get(name);

    /// <summary>Case names of one kind as xunit theory data (fails loudly when the kind has no case).</summary>
    public static TheoryData<string> Names(string kind) => Reader.Names(kind);

    /// <summary>(case name, tensor name) pairs of every declared output of one kind, as theory data.</summary>
    public static TheoryData<string, string> Outputs(string kind) => Reader.Outputs(kind);
}

/// <summary>
/// The cases of the edit references (<c>tiny-zimage-edit-reference/manifest.json</c>, or the folder named by
/// <c>ZIMAGE_EDIT_REFERENCE_DIR</c>, see <see cref="FixturePaths.EditReferenceDir"/>): <c>vae_encode</c>,
/// <c>vae_decode_tiled</c>, <c>img2img_e2e</c>, <c>inpaint_e2e</c>, <c>lora</c>. Same API as
/// <see cref="ReferenceCases"/>: <c>[MemberData(nameof(EditReferenceManifest.Names), "vae_decode_tiled", MemberType = typeof(EditReferenceManifest))]</c>
/// then <c>EditReferenceManifest.Get(name)</c>.
/// </summary>
public static class EditReferenceManifest
{
    /// <summary>The manifest behind these helpers.</summary>
    public static ReferenceManifest Reader { get; } = new(() => FixturePaths.EditReferenceDir);

    /// <summary>Path of the manifest.</summary>
    public static string ManifestPath => Reader.ManifestPath;

    /// <summary>The whole manifest (checkpoint hashes, conventions, cases).</summary>
    public static JsonElement Manifest => Reader.Manifest;

    /// <summary>Every case in manifest order.</summary>
    public static IReadOnlyList<ReferenceCase> All => Reader.All;

    /// <summary>Cases of one kind.</summary>
    public static IReadOnlyList<ReferenceCase> OfKind(string kind) => Reader.OfKind(kind);

    /// <summary>The case called <paramref name="name"/>.</summary>
    public static ReferenceCase Get(string name) => Reader.Get(name);

    /// <summary>Case names of one kind as xunit theory data (fails loudly when the kind has no case).</summary>
    public static TheoryData<string> Names(string kind) => Reader.Names(kind);

    /// <summary>(case name, tensor name) pairs of every declared output of one kind, as theory data.</summary>
    public static TheoryData<string, string> Outputs(string kind) => Reader.Outputs(kind);
}
