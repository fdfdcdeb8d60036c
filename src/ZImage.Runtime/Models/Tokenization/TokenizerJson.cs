using System.Text.Json;

namespace ZImage.Runtime.Models.Tokenization;

/// <summary>
/// Typed access to the fields of a tokenizer JSON file: every missing field or wrong JSON type becomes a
/// <see cref="TokenizerFormatException"/> naming the file and the field path (<c>model.vocab['x']</c>), never a raw
/// <see cref="KeyNotFoundException"/> or <see cref="InvalidOperationException"/> from System.Text.Json.
/// </summary>
internal readonly struct TokenizerJson(string path)
{
    private const int MaxRawChars = 120;

    public string Path { get; } = path;

    /// <summary>Reads and parses <paramref name="path"/> (a UTF-8 BOM is skipped) and checks every string is readable.</summary>
    public static JsonDocument Parse(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerFormatException(path, $"the file cannot be read ({ex.Message}).", ex);
        }
        ReadOnlyMemory<byte> json = bytes.AsMemory(bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0);
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
            throw new TokenizerFormatException(path, "the file is not valid UTF-8.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new TokenizerFormatException(path, $"not valid JSON ({ex.Message}).", ex);
        }
        if (JsonStrings.TryFindUnreadableString(json.Span, default, out long offset, out string problem))
        {
            doc.Dispose();
            throw new TokenizerFormatException(path, JsonStrings.Describe(offset, problem) + ".");
        }
        return doc;
    }

    /// <summary>A short form of an element's JSON text for messages.</summary>
    public static string Raw(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length <= MaxRawChars ? raw : raw[..MaxRawChars] + "…";
    }

    public JsonElement Root(JsonDocument doc) => ObjectValue(doc.RootElement, "the root");

    public JsonElement Required(JsonElement parent, string name, string field) =>
        parent.TryGetProperty(name, out JsonElement v) ? v : throw Error($"{field} is missing.");

    public JsonElement Object(JsonElement parent, string name, string field) => ObjectValue(Required(parent, name, field), field);

    public JsonElement ObjectValue(JsonElement e, string field) => Kind(e, JsonValueKind.Object, field, "an object");

    public JsonElement Array(JsonElement parent, string name, string field) => ArrayValue(Required(parent, name, field), field);

    public JsonElement ArrayValue(JsonElement e, string field) => Kind(e, JsonValueKind.Array, field, "an array");

    public string String(JsonElement parent, string name, string field) =>
        Kind(Required(parent, name, field), JsonValueKind.String, field, "a string").GetString()!;

    /// <summary>An optional boolean: absent or null is false.</summary>
    public bool OptionalBool(JsonElement parent, string name, string field)
    {
        if (!parent.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"{field} = {Raw(v)} is a {v.ValueKind}, not a boolean."),
        };
    }

    /// <summary>A token id: an integer in [0, <see cref="Qwen2Tokenizer.MaxTokenId"/>].</summary>
    public int Id(JsonElement e, string field)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id) || id < 0 || id > Qwen2Tokenizer.MaxTokenId)
            throw Error($"{field} = {Raw(e)} is not a token id (an integer in [0, {Qwen2Tokenizer.MaxTokenId}]).");
        return (int)id;
    }

    private JsonElement Kind(JsonElement e, JsonValueKind kind, string field, string what) =>
        e.ValueKind == kind ? e : throw Error($"{field} is {Describe(e)}, not {what}.");

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null => "null",
        JsonValueKind.Array or JsonValueKind.Object => $"a JSON {e.ValueKind.ToString().ToLowerInvariant()}",
        _ => $"{Raw(e)} (a JSON {e.ValueKind.ToString().ToLowerInvariant()})",
    };

    private TokenizerFormatException Error(string problem) => new(Path, problem);
}
