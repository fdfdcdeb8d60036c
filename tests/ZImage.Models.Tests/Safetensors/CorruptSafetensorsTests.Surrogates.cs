using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Models.Tests.Safetensors;

/// <summary>
/// JSON escapes of lone UTF-16 surrogates parse in System.Text.Json but cannot be read as text; the reference
/// (serde_json) rejects them. Fuzz regression (zimage-fuzz, safetensors target): they escaped as an untyped
/// InvalidOperationException from <c>GetString</c>.
/// </summary>
public sealed partial class CorruptSafetensorsTests
{
    // The escapes are ASCII in the source (a lone surrogate in a C# literal would become U+FFFD in [InlineData]).
    [Theory]
    [InlineData("{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")] // tensor name
    [InlineData("{\"__metadata__\":{\"format\":\"p\\udc00t\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")] // metadata value
    [InlineData("{\"__metadata__\":{\"\\ud800\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")] // metadata key
    [InlineData("{\"a\":{\"dtype\":\"F3\\ud83d\",\"shape\":[1],\"data_offsets\":[0,4]}}")] // dtype, high surrogate without its pair
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\\udc31\\ud83d\":1}}")] // reversed pair, unknown field
    public void AnEscapedLoneSurrogateInTheHeaderIsASafetensorsFormatErrorNamingTheOffset(string header)
    {
        string path = WriteRaw(header, 4);
        var ex = OpenFails(path);
        Assert.Contains("lone UTF-16 surrogate", ex.Message);
        // The string token starts at the quote before the escape (the headers are ASCII, so chars are bytes).
        int tokenStart = header.LastIndexOf('"', header.IndexOf("\\u", StringComparison.Ordinal));
        Assert.Contains($"byte offset {tokenStart} ", ex.Message);
    }

    [Fact]
    public void AnEscapedSurrogatePairInTheHeaderIsText()
    {
        string path = WriteRaw("{\"cat\\ud83d\\udc31\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(["cat\U0001F431"], f.TensorNames);
    }

    [Fact]
    public void AnEscapedLoneSurrogateInTheShardIndexIsASafetensorsFormatError()
    {
        string dir = WriteShards("surrogate", "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\\ud800\":\"b.safetensors\"}}");
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(dir).Dispose());
        Assert.EndsWith("model.safetensors.index.json", ex.FilePath);
        Assert.Contains("lone UTF-16 surrogate", ex.Message);
    }
}
