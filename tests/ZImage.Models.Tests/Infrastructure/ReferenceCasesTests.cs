using Xunit.Sdk;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>The manifest reader enumerates every case, resolves every tolerance and loads every declared tensor.</summary>
public class ReferenceCasesTests
{
    public static TheoryData<string> AllCaseNames()
    {
        var data = new TheoryData<string>();
        foreach (ReferenceCase c in ReferenceCases.All) data.Add(c.Name);
        return data;
    }

    [Fact]
    public void ManifestListsUniqueCasesWithExistingFiles()
    {
        Assert.NotEmpty(ReferenceCases.All);
        Assert.Equal(ReferenceCases.All.Count, ReferenceCases.All.Select(c => c.Name).Distinct().Count());
        Assert.All(ReferenceCases.All, c => Assert.True(File.Exists(c.FullPath), c.FullPath));
        Assert.All(ReferenceCases.Kinds, k => Assert.NotEmpty(ReferenceCases.Names(k)));
        Assert.Throws<InvalidOperationException>(() => ReferenceCases.Names("no_such_kind"));
    }

    [Theory]
    [MemberData(nameof(AllCaseNames))]
    public void DeclaredTensorsExistWithTheirShapeDTypeAndTolerance(string name)
    {
        ReferenceCase c = ReferenceCases.Get(name);
        if (c.Tensors.Count == 0)
        {
            // JSON-only cases (tokenizer) carry their data in the JSON file instead.
            Assert.NotEqual(System.Text.Json.JsonValueKind.Undefined, c.ReadJson().ValueKind);
            Assert.True(c.ToleranceFor("ids_raw").Exact);
            return;
        }
        using SafetensorsFile f = c.OpenTensors();
        foreach (ReferenceTensorSpec spec in c.Tensors.Values)
        {
            SafetensorsTensorInfo info = f.GetInfo(spec.Name);
            Assert.Equal(spec.Shape, info.Shape);
            Assert.Equal(spec.DType, info.DType.ToString());
        }
        foreach (ReferenceTensorSpec output in c.Outputs)
        {
            ReferenceTolerance tol = c.ToleranceFor(output.Name);
            Assert.InRange(tol.RecommendedMaxAbs, 1e-9, 2);
            Assert.True(tol.StrictOrRecommended <= tol.RecommendedMaxAbs);
        }
    }

    [Fact]
    public void PatternKeysResolveToTheMatchingEntry()
    {
        // Every e2e case resolves per-step tensors through "step.*.…" keys and images through their own keys.
        foreach (ReferenceCase c in ReferenceCases.OfKind("e2e"))
        {
            string step = c.Outputs.First(o => o.Name.EndsWith(".latents_after", StringComparison.Ordinal)).Name;
            Assert.Equal(c.ToleranceFor("final_latents"), c.ToleranceFor(step));
            Assert.NotNull(c.ToleranceFor("image_uint8").MaxFractionDiffering);
            Assert.NotEqual(c.ToleranceFor("sigmas"), c.ToleranceFor("timesteps"));
        }
        foreach (ReferenceCase c in ReferenceCases.OfKind("scheduler"))
            Assert.Equal(c.ToleranceFor("sigmas"), c.ToleranceFor(c.Outputs.First(o => o.Name.EndsWith(".sigmas", StringComparison.Ordinal)).Name));
    }

    [Fact]
    public void LoadsFloatIntegerAndByteTensors()
    {
        ReferenceCase e2e = ReferenceCases.OfKind("e2e")[0];
        ReferenceTensor<long> ids = e2e.LoadInt64("prompt_ids");
        Assert.Equal(e2e.Tensors["prompt_ids"].Shape, ids.Shape);
        Assert.Equal(ids.Data.Select(v => (int)v), e2e.LoadInt32("prompt_ids").Data);
        ReferenceTensor<byte> img = e2e.LoadBytes("image_uint8");
        Assert.Equal(img.Shape.Aggregate(1, (a, d) => a * d), img.Data.Length);
        ReferenceCase tr = ReferenceCases.OfKind("transformer_forward")[0];
        ReferenceTensorSpec posIds = tr.Intermediates.First(t => t.DType == "I32");
        Assert.Equal(posIds.Shape.Aggregate(1, (a, d) => a * d), tr.LoadInt32(posIds.Name).Data.Length);
        Assert.Throws<KeyNotFoundException>(() => tr.LoadFloat("no/such/tensor"));
    }

    public static TheoryData<string> TiledDecodeCaseNames() => EditReferenceManifest.Names("vae_decode_tiled");

    [Theory]
    [MemberData(nameof(TiledDecodeCaseNames))]
    public void EditManifestTiledDecodeCasesDeclareStoredTensorsWithTolerances(string name)
    {
        ReferenceCase c = EditReferenceManifest.Get(name);
        Assert.True(File.Exists(c.FullPath), c.FullPath);
        Assert.StartsWith(FixturePaths.EditReferenceDir, c.FullPath, StringComparison.Ordinal);
        using SafetensorsFile f = c.OpenTensors();
        Assert.NotEmpty(c.Tensors);
        foreach (ReferenceTensorSpec spec in c.Tensors.Values)
        {
            SafetensorsTensorInfo info = f.GetInfo(spec.Name);
            Assert.Equal(spec.Shape, info.Shape);
            Assert.Equal(spec.DType, info.DType.ToString());
        }
        Assert.All(c.Outputs.Concat(c.Intermediates), o => Assert.InRange(c.ToleranceFor(o.Name).RecommendedMaxAbs, 1e-9, 2));
    }

    [Fact]
    public void EditManifestIsSeparateFromTheSharedManifest()
    {
        Assert.NotEmpty(EditReferenceManifest.Names("vae_decode_tiled"));
        Assert.DoesNotContain(ReferenceCases.All, c => c.Kind == "vae_decode_tiled");
        Assert.Equal(EditReferenceManifest.All.Count, EditReferenceManifest.All.Select(c => c.Name).Distinct().Count());
    }

    [Fact]
    public void TensorAssertReportsTheWorstElement()
    {
        float[] expected = [0f, 1f, 2f, 3f, 4f, 5f];
        float[] actual = [0f, 1f, 2.5f, 3f, 4.1f, 5f];
        Assert.Equal(0, TensorAssert.Close(expected, expected, 0, "same"));
        var ex = Assert.Throws<XunitException>(() => TensorAssert.Close(expected, actual, 0.2, "x", [2, 3]));
        Assert.Contains("index 2 [0,2]", ex.Message);
        Assert.Contains("expected 2", ex.Message);
        Assert.Contains("actual 2.5", ex.Message);
        Assert.Contains("1 of 6", ex.Message);
        Assert.Throws<XunitException>(() => TensorAssert.Close(expected, [0f, 1f, float.NaN, 3f, 4f, 5f], 1, "nan"));
        Assert.Throws<XunitException>(() => TensorAssert.Close(expected, actual.AsSpan(1), 1, "length"));
        var eq = Assert.Throws<XunitException>(() => TensorAssert.Equal<int>([1, 2, 3], [1, 2, 4], "ids"));
        Assert.Contains("index 2", eq.Message);
    }
}
