using System.Security.Cryptography;
using System.Text.Json;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Safetensors;

/// <summary>Reads the real tiny checkpoint files.</summary>
public class FixtureSafetensorsTests
{
    private static string Component(string name) => Path.Combine(FixturePaths.TinyCheckpoint, name);

    [Fact]
    public void ShardedTransformerExposesEveryWeightMapEntry()
    {
        using var ckpt = SafetensorsCheckpoint.Open(Component("transformer"));
        Assert.True(ckpt.IsSharded);
        Assert.Equal(2, ckpt.Files.Count);
        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(ckpt.IndexPath!));
        string[] mapped = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(mapped, ckpt.TensorNames);
        // The index's total_size is the sum of the payloads (all F32 here).
        Assert.Equal(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), ckpt.TotalBytes);
        Assert.All(ckpt.TensorNames, n => Assert.Equal(SafetensorsDType.F32, ckpt.GetInfo(n).DType));
    }

    [Fact]
    public void SingleFileComponentsOpenFromTheirFolder()
    {
        using var te = SafetensorsCheckpoint.Open(Component("text_encoder"));
        using var vae = SafetensorsCheckpoint.Open(Component("vae"));
        Assert.False(te.IsSharded);
        Assert.All(te.TensorNames, n => Assert.StartsWith("model.", n));
        Assert.All(te.TensorNames.Concat(vae.TensorNames), n => Assert.Equal(SafetensorsDType.BF16, (te.Contains(n) ? te : vae).GetInfo(n).DType));
        Assert.Equal(te.TensorNames.Count, te.TensorNames.Distinct().Count());
        Assert.Contains(vae.TensorNames, n => n.StartsWith("encoder.", StringComparison.Ordinal));
        Assert.Contains(vae.TensorNames, n => n.StartsWith("decoder.", StringComparison.Ordinal));
    }

    [Fact]
    public void WeightFilesMatchTheManifestHashes()
    {
        using JsonDocument manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.ReferenceDir, "manifest.json")));
        JsonElement hashes = manifest.RootElement.GetProperty("checkpoint").GetProperty("weights_sha256");
        Assert.NotEmpty(hashes.EnumerateObject());
        foreach (JsonProperty h in hashes.EnumerateObject())
        {
            using FileStream s = File.OpenRead(Path.Combine(FixturePaths.TinyCheckpoint, h.Name));
            Assert.Equal(h.Value.GetString(), Convert.ToHexStringLower(SHA256.HashData(s)));
        }
    }

    [Fact]
    public void Bf16NormWeightsDecodeNearOne()
    {
        // The fixture draws norm weights as 1 + N(0, 0.15^2); a wrong byte order or shift would land far from 1.
        using var te = SafetensorsCheckpoint.Open(Component("text_encoder"));
        string[] norms = te.TensorNames.Where(n => n.EndsWith("layernorm.weight", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(norms);
        foreach (string n in norms)
        {
            float[] w = te.ReadSingles(n);
            Assert.InRange(w.Average(), 0.8, 1.2);
            Assert.All(w, v => Assert.InRange(v, 0.2f, 1.8f));
        }
    }

    [Fact]
    public void Bf16EmbeddingTableDecodesAsStandardNormal()
    {
        using var te = SafetensorsCheckpoint.Open(Component("text_encoder"));
        SafetensorsTensorInfo info = te.GetInfo("model.embed_tokens.weight");
        Assert.Equal(info.ElementCount * 2, te.GetBytes(info.Name).Length);
        float[] table = te.ReadSingles(info.Name);
        double mean = table.Average(v => (double)v);
        double var = table.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(var, 0.95, 1.05);
    }

    [Fact]
    public void ReferenceFilesExposeIntegerAndByteTensors()
    {
        // e2e files hold I64 prompt ids, U8 images and F32 tensors side by side.
        string[] files = Directory.GetFiles(Path.Combine(FixturePaths.ReferenceDir, "e2e"), "*.safetensors");
        Assert.NotEmpty(files);
        using var f = SafetensorsFile.Open(files[0]);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(SafetensorsDType.I64, f.GetInfo("prompt_ids").DType);
        Assert.Equal(SafetensorsDType.U8, f.GetInfo("image_uint8").DType);
        int[] ids = f.ReadInt32("prompt_ids");
        Assert.All(ids, id => Assert.InRange(id, 0, 151935));
        byte[] image = f.ReadBytes("image_uint8");
        float[] image01 = f.ReadSingles("image_float01");
        Assert.Equal(image.Length, image01.Length);
        for (int i = 0; i < image.Length; i++) Assert.InRange(image[i] - image01[i] * 255f, -0.5001f, 0.5001f);
    }

    [Fact]
    public void DataSectionsAreAlignedToTheirElementSize()
    {
        foreach (string dir in new[] { "transformer", "text_encoder", "vae" })
        {
            using var ckpt = SafetensorsCheckpoint.Open(Component(dir));
            foreach (string n in ckpt.TensorNames)
            {
                SafetensorsTensorInfo i = ckpt.GetInfo(n);
                Assert.Equal(0, i.DataOffset % i.DType.ElementSize());
            }
        }
    }

    [Fact]
    public void SpansAreRejectedAfterDispose()
    {
        var te = SafetensorsCheckpoint.Open(Component("text_encoder"));
        string first = te.TensorNames[0];
        te.Dispose();
        Assert.Throws<ObjectDisposedException>(() => te.GetBytes(first).Length);
    }
}
