using System.Text.Json;

namespace ZImage.Runtime.Models;

/// <summary>
/// Checks that every string of a JSON document (property names and values) can be read as a .NET string.
/// System.Text.Json parses <c>"\ud800"</c> (an escaped lone surrogate) without complaint and only throws an untyped
/// <see cref="InvalidOperationException"/> when the string is read; the readers call this after parsing so that
/// they can report such a file with their own typed error, as the reference (serde_json) rejects it at parse time.
/// </summary>
internal static class JsonStrings
{
    /// <summary>
    /// Finds the first string token of <paramref name="utf8Json"/> (already known to be valid JSON) that cannot be
    /// read as a string; returns false when every string reads.
    /// </summary>
    /// <param name="utf8Json">The document.</param>
    /// <param name="options">The options the document was parsed with (comments, trailing commas).</param>
    /// <param name="byteOffset">Offset of the token in <paramref name="utf8Json"/>.</param>
    /// <param name="problem">Why it cannot be read (System.Text.Json's message).</param>
    public static bool TryFindUnreadableString(ReadOnlySpan<byte> utf8Json, JsonReaderOptions options, out long byteOffset, out string problem)
    {
        var reader = new Utf8JsonReader(utf8Json, options);
        while (reader.Read())
        {
            // Only escaped tokens can hold a lone surrogate (raw UTF-8 is validated separately by the callers).
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                _ = reader.GetString();
            }
            catch (InvalidOperationException ex)
            {
                byteOffset = reader.TokenStartIndex;
                problem = ex.Message;
                return true;
            }
        }
        byteOffset = -1;
        problem = "";
        return false;
    }

    /// <summary>The message fragment the readers use: where the string is and why it cannot be read.</summary>
    public static string Describe(long byteOffset, string problem) =>
        $"the JSON string at byte offset {byteOffset} escapes a lone UTF-16 surrogate (e.g. \"\\ud800\" without its pair) and cannot be read as text ({problem})";
}
