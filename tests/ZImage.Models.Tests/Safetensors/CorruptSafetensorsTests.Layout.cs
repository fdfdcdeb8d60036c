using System.Text;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Models.Tests.Safetensors;

/// <summary>The reference implementation's layout rules: UTF-8 header, data covered exactly; index entries stay in their folder.</summary>
public sealed partial class CorruptSafetensorsTests
{
    [Fact]
    public void AHeaderThatIsNotUtf8IsASafetensorsFormatErrorNamingTheOffset()
    {
        byte[] json = Encoding.UTF8.GetBytes("{\"aX\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
        json[3] = 0xFF; // a lone byte that starts no UTF-8 sequence, inside the tensor name
        byte[] header = new byte[8 + json.Length];
        BitConverter.TryWriteBytes(header.AsSpan(0, 8), (ulong)json.Length);
        json.CopyTo(header, 8);
        string path = _tmp.File("utf8.safetensors");
        File.WriteAllBytes(path, [.. header, 0]);
        var e = OpenFails(path);
        Assert.Contains("not valid UTF-8", e.Message);
        Assert.Contains("header offset 3", e.Message);
    }

    [Fact]
    public void AHoleBetweenTwoTensorsIsRejected()
    {
        var e = OpenFails(WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("hole of 4 bytes at [4, 8]", e.Message);
    }

    [Fact]
    public void DataThatDoesNotStartAtOffsetZeroIsRejected()
    {
        var e = OpenFails(WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));
        Assert.Contains("hole of 4 bytes at [0, 4]", e.Message);
    }

    [Fact]
    public void TrailingBytesAfterTheLastTensorAreRejected()
    {
        var e = OpenFails(WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6));
        Assert.Contains("2 trailing bytes", e.Message);
        Assert.Contains("2 trailing bytes", OpenFails(WriteRaw("{\"__metadata__\":{\"format\":\"pt\"}}", 2, "empty.safetensors")).Message);
    }

    [Fact]
    public void AZeroLengthTensorInsideAnotherTensorsSpanIsRejectedAsTheReferenceDoes()
    {
        var e = OpenFails(WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8));
        Assert.Equal("z", e.TensorName);
    }

    [Fact]
    public void ContiguousTensorsInAnyHeaderOrderWithZeroLengthOnesOpen()
    {
        string path = WriteRaw("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(["a", "b", "z"], f.TensorNames);
    }

    private string WriteShardFolder(string folder, string shardName)
    {
        string dir = _tmp.File(folder);
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, "a.safetensors"), [SafetensorsEntry.FromSingles("x", [1], [1f])]);
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), "{\"weight_map\":{\"x\":" + System.Text.Json.JsonSerializer.Serialize(shardName) + "}}");
        return dir;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AnIndexEntryThatEscapesTheFolderIsRejectedNamingTheShard(int caseIndex)
    {
        // The target exists outside the component folder, so only the name rule can stop it.
        string outside = _tmp.File("outside.safetensors");
        SafetensorsWriter.Write(outside, [SafetensorsEntry.FromSingles("x", [1], [9f])]);
        string shard = caseIndex switch
        {
            0 => "../outside.safetensors",
            1 => outside, // absolute
            2 => "sub/../../outside.safetensors",
            _ => "./../outside.safetensors",
        };
        string dir = WriteShardFolder("escape" + caseIndex, shard);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
        Assert.Equal("x", e.TensorName);
        Assert.Contains("not a plain file name", e.Message);
    }

    [Fact]
    public void ASymlinkedShardInTheFolderOpensAsInTheHuggingFaceCache()
    {
        // The Hugging Face hub cache keeps every shard as a symlink into ../../blobs: the index names an entry of its
        // own folder, which is all an index may do; where that entry points was decided by whoever made the folder.
        string blobs = _tmp.File("blobs");
        Directory.CreateDirectory(blobs);
        SafetensorsWriter.Write(Path.Combine(blobs, "abc123"), [SafetensorsEntry.FromSingles("x", [1], [5f])]);
        string dir = _tmp.File("snapshot");
        Directory.CreateDirectory(dir);
        File.CreateSymbolicLink(Path.Combine(dir, "a.safetensors"), Path.Combine("..", "blobs", "abc123"));
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), "{\"weight_map\":{\"x\":\"a.safetensors\"}}");
        using var ckpt = SafetensorsCheckpoint.Open(dir);
        Assert.Equal([5f], ckpt.ReadSingles("x"));
    }
}
