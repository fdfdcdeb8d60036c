using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Lora;

/// <summary>LoRA files that do not fit (typed errors listing the keys), several LoRAs at once, and <see cref="LoraSpec"/> parsing.</summary>
public sealed class LoraAdapterTests
{
    private static ReferenceCase WeightsCase => EditReferenceManifest.OfKind("lora").First(r => LoraParityTests.Variant(r) == "weights");

    private static string DiffusersFile => Path.Combine(WeightsCase.ReferenceDir, WeightsCase.File);

    private static string OtherFile(string name) =>
        Path.Combine(WeightsCase.ReferenceDir, WeightsCase.Raw.GetProperty("other_files").EnumerateArray().Select(e => e.GetString()!).First(f => f.Contains(name, StringComparison.Ordinal)));

    [Fact]
    public void LoraForAnotherModelIsRejectedListingItsKeys()
    {
        using var lora = SafetensorsFile.Open(DiffusersFile);
        // The same file read against a model without those modules: the text encoder.
        using var other = SafetensorsCheckpoint.Open(Path.Combine(FixturePaths.TinyCheckpoint, ZImageConfig.TextEncoderFolder));
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Read(lora, lora.Metadata, "x.safetensors", other));
        Assert.Contains("another model", e.Message, StringComparison.Ordinal);
        Assert.Contains("transformer.layers.0.attention.to_q.lora_A.weight", e.Keys);
        Assert.Equal(lora.TensorNames.Count, e.Keys.Count);
    }

    [Fact]
    public void FileWithoutLoraKeysIsRejectedAsNotAZImageLora()
    {
        using var model = LoraParityTests.OpenTransformer();
        string vae = Directory.GetFiles(Path.Combine(FixturePaths.TinyCheckpoint, ZImageConfig.VaeFolder), "*.safetensors")[0];
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Load(vae, model));
        Assert.Contains("not a Z-Image transformer LoRA", e.Message, StringComparison.Ordinal);
        Assert.Contains(vae, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoraWhoseShapesDoNotFitIsRejectedNamingTheModuleAndShapes()
    {
        using var model = LoraParityTests.OpenTransformer();
        using var lora = SafetensorsFile.Open(DiffusersFile);
        var shrunk = new ShapeOverrideReader(model, "layers.0.attention.to_q.weight", [64, 32]);
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Read(lora, lora.Metadata, "x.safetensors", shrunk));
        Assert.Contains("rank or shape", e.Message, StringComparison.Ordinal);
        string key = Assert.Single(e.Keys);
        Assert.StartsWith("layers.0.attention.to_q:", key, StringComparison.Ordinal);
        Assert.Contains("[64,32]", key, StringComparison.Ordinal);
    }

    [Fact]
    public void RankThatContradictsTheMetadataIsRejectedNamingBoth()
    {
        using var model = LoraParityTests.OpenTransformer();
        using var lora = SafetensorsFile.Open(DiffusersFile);
        var metadata = new Dictionary<string, string> { ["lora_adapter_metadata"] = "{\"transformer.r\": 8, \"transformer.lora_alpha\": 8}" };
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Read(lora, metadata, "x.safetensors", model));
        Assert.Contains("rank 4 but the metadata says r = 8", e.Message, StringComparison.Ordinal);
        Assert.Equal(28, e.Keys.Count);
    }

    [Fact]
    public void UnknownKeyBesideValidOnesIsListed()
    {
        using var model = LoraParityTests.OpenTransformer();
        using var lora = SafetensorsFile.Open(DiffusersFile);
        var extra = new ExtraKeyReader(lora, "transformer.layers.9.attention.to_q.lora_A.weight");
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Read(extra, lora.Metadata, "x.safetensors", model));
        Assert.Equal(["transformer.layers.9.attention.to_q.lora_A.weight"], e.Keys);
    }

    [Fact]
    public void MissingOrCorruptFilesAreTypedErrorsNamingTheFile()
    {
        using var model = LoraParityTests.OpenTransformer();
        using var dir = new TempDirectory();
        string missing = dir.File("missing.safetensors"), corrupt = dir.File("corrupt.safetensors");
        File.WriteAllText(corrupt, "not a safetensors file");
        Assert.Contains("does not exist", Assert.Throws<LoraFormatException>(() => LoraAdapter.Load(missing, model)).Message, StringComparison.Ordinal);
        var e = Assert.Throws<LoraFormatException>(() => LoraAdapter.Load(corrupt, model));
        Assert.Contains("not a readable safetensors file", e.Message, StringComparison.Ordinal);
        Assert.Equal(corrupt, e.File);
    }

    [Fact]
    public void TwoLorasMergeInOrderEachWithItsScale()
    {
        using var model = LoraParityTests.OpenTransformer();
        var diffusers = LoraAdapter.Load(DiffusersFile, model);
        var kohya = LoraAdapter.Load(OtherFile("kohya"), model);
        using var once = new LoraMergedReader(model, [(diffusers, 1.0)]);
        using var halves = new LoraMergedReader(model, [(diffusers, 0.25), (kohya, 0.75)]);
        const string Weight = "layers.1.feed_forward.w2.weight";
        float[] full = MemoryMarshal.Cast<byte, float>(once.GetBytes(Weight)).ToArray();
        float[] split = MemoryMarshal.Cast<byte, float>(halves.GetBytes(Weight)).ToArray();
        // W + ¼Δ + ¾Δ = W + Δ up to the float32 roundings of the two merges.
        TensorAssert.Close(full, split, 2e-6, Weight);
        Assert.Equal(SafetensorsDType.F32, halves.GetInfo(Weight).DType);
        // Weights no LoRA touches pass through untouched, in their stored dtype.
        const string Untouched = "layers.1.attention.norm_q.weight";
        Assert.Equal(model.GetInfo(Untouched), halves.GetInfo(Untouched));
        Assert.True(model.GetBytes(Untouched).SequenceEqual(halves.GetBytes(Untouched)));
        Assert.Equal(28, halves.MergedWeights.Count);
    }

    [Theory]
    [InlineData("style.safetensors", "style.safetensors", 1.0)]
    [InlineData("style.safetensors:0.8", "style.safetensors", 0.8)]
    [InlineData("/a/b:c/style.safetensors:-0.5", "/a/b:c/style.safetensors", -0.5)]
    [InlineData("/a/b:c/style.safetensors", "/a/b:c/style.safetensors", 1.0)]
    [InlineData(@"C:\loras\style.safetensors", @"C:\loras\style.safetensors", 1.0)]
    public void LoraSpecParsesFileAndScale(string text, string path, double scale) =>
        Assert.Equal(new LoraSpec(path, scale), LoraSpec.Parse(text));

    [Theory]
    [InlineData("style.safetensors:strong", "not a finite number")]
    [InlineData("style.safetensors:NaN", "not a finite number")]
    [InlineData("", "names no file")]
    public void LoraSpecWithABadScaleOrNoFileIsRejected(string text, string message) =>
        Assert.Contains(message, Assert.Throws<FormatException>(() => LoraSpec.Parse(text)).Message, StringComparison.Ordinal);

    [Fact]
    public void LorasOnTheDemoModelAreATypedError() =>
        Assert.Contains("needs a Z-Image checkpoint", Assert.Throws<LoraFormatException>(() => LoraMerge.Check([new LoraSpec(DiffusersFile)], null)).Message, StringComparison.Ordinal);

    /// <summary>Reports one tensor with another shape (to test the shape check).</summary>
    private sealed class ShapeOverrideReader(ISafetensorsReader inner, string name, int[] shape) : ISafetensorsReader
    {
        public IReadOnlyList<string> TensorNames => inner.TensorNames;
        public bool Contains(string n) => inner.Contains(n);
        public SafetensorsTensorInfo GetInfo(string n) => n == name ? inner.GetInfo(n) with { Shape = shape } : inner.GetInfo(n);
        public bool TryGetInfo(string n, [NotNullWhen(true)] out SafetensorsTensorInfo? info)
        {
            if (!inner.TryGetInfo(n, out info)) return false;
            if (n == name) info = info with { Shape = shape };
            return true;
        }
        public ReadOnlySpan<byte> GetBytes(string n) => inner.GetBytes(n);
        public void Dispose() { }
    }

    /// <summary>Adds one (never read) key to a LoRA's key list.</summary>
    private sealed class ExtraKeyReader(ISafetensorsReader inner, string extra) : ISafetensorsReader
    {
        public IReadOnlyList<string> TensorNames => [.. inner.TensorNames, extra];
        public bool Contains(string n) => n == extra || inner.Contains(n);
        public SafetensorsTensorInfo GetInfo(string n) => inner.GetInfo(n);
        public bool TryGetInfo(string n, [NotNullWhen(true)] out SafetensorsTensorInfo? info) => inner.TryGetInfo(n, out info);
        public ReadOnlySpan<byte> GetBytes(string n) => inner.GetBytes(n);
        public void Dispose() { }
    }
}
