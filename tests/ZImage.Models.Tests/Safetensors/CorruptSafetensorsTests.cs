using System.Buffers.Binary;
using System.Text;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Safetensors;

/// <summary>Hand-made broken files must fail on open with a typed error naming the file and, where relevant, the tensor.</summary>
public sealed partial class CorruptSafetensorsTests : IDisposable
{
    private readonly TempDirectory _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private string WriteRaw(string headerJson, int dataBytes, string name = "t.safetensors")
    {
        string path = _tmp.File(name);
        byte[] header = SafetensorsWriter.EncodeHeader(headerJson);
        using var f = File.Create(path);
        f.Write(header);
        f.Write(new byte[dataBytes]);
        return path;
    }

    private SafetensorsFormatException OpenFails(string path)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(Path.GetFullPath(path), ex.FilePath);
        Assert.Contains(Path.GetFullPath(path), ex.Message);
        return ex;
    }

    [Theory]
    [InlineData("[16,{}]")] // fuzz regression (zimage-fuzz, safetensors target): used to escape as InvalidOperationException from JsonElement
    [InlineData("[\"0\",4]")]
    [InlineData("[0,null]")]
    [InlineData("[[0],4]")]
    public void DataOffsetsThatAreNotNumbersAreATypedError(string offsets)
    {
        string path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", 4);
        var ex = OpenFails(path);
        Assert.Equal("a", ex.TensorName);
        Assert.Contains("data_offsets", ex.Message);
    }

    [Fact]
    public void FileShorterThanTheLengthPrefix()
    {
        string path = _tmp.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("truncated", OpenFails(path).Message);
    }

    [Fact]
    public void HeaderLengthPastTheEndOfTheFile()
    {
        string path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..20]);
        Assert.Contains("past the end", OpenFails(path).Message);
    }

    [Fact]
    public void HeaderLengthAboveTheLimit()
    {
        string path = _tmp.File("huge.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue / 2);
        File.WriteAllBytes(path, bytes);
        SafetensorsFormatException ex = OpenFails(path);
        Assert.Contains(SafetensorsFile.DefaultMaxHeaderBytes.ToString(), ex.Message);
    }

    [Fact]
    public void HeaderThatIsNotJson() =>
        Assert.Contains("not valid JSON", OpenFails(WriteRaw("{\"a\": {\"dtype\": \"F32\",", 0)).Message);

    [Fact]
    public void HeaderThatIsNotAnObject() => Assert.Contains("not an object", OpenFails(WriteRaw("[1, 2, 3]  ", 0)).Message);

    [Fact]
    public void OverlappingOffsets()
    {
        string path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        SafetensorsFormatException ex = OpenFails(path);
        Assert.Equal("b", ex.TensorName);
        Assert.Contains("overlap tensor 'a'", ex.Message);
    }

    [Fact]
    public void OffsetsPastTheDataSection()
    {
        SafetensorsFormatException ex = OpenFails(WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12));
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("'w'", ex.Message);
        Assert.Contains("12-byte data section", ex.Message);
    }

    [Theory]
    [InlineData("[8,0]")]
    [InlineData("[-4,0]")]
    [InlineData("[0]")]
    [InlineData("\"0,4\"")]
    public void MalformedOffsets(string offsets) =>
        Assert.Equal("w", OpenFails(WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", 16)).TensorName);

    [Fact]
    public void ShapeThatDisagreesWithTheByteSpan()
    {
        SafetensorsFormatException ex = OpenFails(WriteRaw("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[0,8]}}", 8));
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("needs 12 bytes", ex.Message);
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[1.5]")]
    [InlineData("[\"a\"]")]
    [InlineData("3")]
    public void InvalidShape(string shape) =>
        Assert.Equal("w", OpenFails(WriteRaw("{\"w\":{\"dtype\":\"U8\",\"shape\":" + shape + ",\"data_offsets\":[0,1]}}", 1)).TensorName);

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("f32")]
    [InlineData("Q4")]
    public void UnknownDType(string dtype)
    {
        SafetensorsFormatException ex = OpenFails(WriteRaw("{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1));
        Assert.Equal("w", ex.TensorName);
        Assert.Contains(dtype, ex.Message);
        Assert.Contains("BF16", ex.Message);
    }

    [Fact]
    public void DuplicateTensorNames() =>
        Assert.Equal("w", OpenFails(WriteRaw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2)).TensorName);

    [Fact]
    public void MetadataWithNonStringValues() =>
        Assert.Contains("__metadata__", OpenFails(WriteRaw("{\"__metadata__\":{\"format\":1}}", 0)).Message);

    [Fact]
    public void TruncatedRealFileNamesTheCutTensor()
    {
        string copy = _tmp.File("vae.safetensors");
        byte[] bytes = File.ReadAllBytes(Path.Combine(FixturePaths.TinyCheckpoint, "vae", "diffusion_pytorch_model.safetensors"));
        File.WriteAllBytes(copy, bytes[..^100]);
        SafetensorsFormatException ex = OpenFails(copy);
        Assert.NotNull(ex.TensorName);
        Assert.Contains("past the end", ex.Message);
    }

    [Fact]
    public void EmptyDataSectionWithNoTensorsOpens()
    {
        using var f = SafetensorsFile.Open(WriteRaw("{\"__metadata__\":{\"format\":\"pt\"}}", 0));
        Assert.Empty(f.TensorNames);
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Fact]
    public void MissingTensorIsAKeyNotFoundNamingTheFile()
    {
        string path = WriteRaw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        using var f = SafetensorsFile.Open(path);
        var ex = Assert.Throws<KeyNotFoundException>(() => f.GetInfo("nope"));
        Assert.Contains("nope", ex.Message);
        Assert.Contains(Path.GetFullPath(path), ex.Message);
    }

    private string WriteShards(string folder, string indexJson)
    {
        string dir = _tmp.File(folder);
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, "a.safetensors"), [SafetensorsEntry.FromSingles("x", [2], [1f, 2f])]);
        SafetensorsWriter.Write(Path.Combine(dir, "b.safetensors"), [SafetensorsEntry.FromSingles("y", [1], [3f])]);
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), indexJson, Encoding.UTF8);
        return dir;
    }

    [Fact]
    public void ShardedFolderReadsAcrossShards()
    {
        string dir = WriteShards("ok", "{\"metadata\":{},\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}");
        using var ckpt = SafetensorsCheckpoint.Open(dir);
        Assert.Equal(["x", "y"], ckpt.TensorNames);
        Assert.Equal([1f, 2f], ckpt.ReadSingles("x"));
        Assert.Equal([3f], ckpt.ReadSingles("y"));
    }

    [Fact]
    public void MissingShardIsNamed()
    {
        string dir = WriteShards("missing", "{\"weight_map\":{\"x\":\"a.safetensors\",\"z\":\"c.safetensors\"}}");
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
        Assert.Equal("z", ex.TensorName);
        Assert.Contains("c.safetensors", ex.Message);
        Assert.EndsWith("model.safetensors.index.json", ex.FilePath);
    }

    [Fact]
    public void WeightMapEntryAbsentFromItsShard()
    {
        string dir = WriteShards("wrongshard", "{\"weight_map\":{\"x\":\"b.safetensors\"}}");
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
        Assert.Equal("x", ex.TensorName);
    }

    [Theory]
    [InlineData("{\"weight_map\":{\"x\":\"../a.safetensors\"}}")]
    [InlineData("{\"weight_map\":{\"x\":3}}")]
    [InlineData("{\"metadata\":{}}")]
    [InlineData("{\"weight_map\":")]
    public void InvalidIndex(string indexJson)
    {
        string dir = WriteShards("bad" + Math.Abs(indexJson.GetHashCode()), indexJson);
        Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
    }

    [Fact]
    public void FolderWithSeveralFilesAndNoIndexIsAmbiguous()
    {
        string dir = WriteShards("noindex", "{}");
        File.Delete(Path.Combine(dir, "model.safetensors.index.json"));
        Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
    }
}
