using System.Text;

namespace ZImage.Runtime.Models.Tokenization;

/// <summary>
/// The Qwen2 pre-tokenizer split, i.e. the matches of
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>,
/// evaluated per Unicode code point. .NET's Regex classifies UTF-16 code units, so a surrogate pair (emoji,
/// mathematical letters such as 𝔥 or 𝟙) would be seen as two "other" units and split in half; this hand-written
/// matcher follows the alternatives in order with the same greedy/backtracking outcome, on whole code points.
/// </summary>
public static class Qwen2PreTokenizer
{
    /// <summary>The regular expression this matcher implements (as stored in Qwen's tokenizer.json).</summary>
    public const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private enum Cls : byte { Letter, Number, Space, Other }

    /// <summary>Splits <paramref name="text"/> into contiguous pieces (start, length) in UTF-16 units; together they cover the text.</summary>
    public static List<(int Start, int Length)> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            int end = MatchAt(text, i);
            pieces.Add((i, end - i));
            i = end;
        }
        return pieces;
    }

    /// <summary>The pieces as strings.</summary>
    public static IEnumerable<string> SplitToStrings(string text) => Split(text).Select(p => text.Substring(p.Start, p.Length));

    private static (Cls Cls, int Len, int Value) At(string s, int i)
    {
        if (i >= s.Length) return (Cls.Other, 0, -1);
        Rune.DecodeFromUtf16(s.AsSpan(i), out Rune r, out int len);
        // A lone surrogate decodes as U+FFFD; it belongs to no category of interest, like the replacement char.
        Cls c = Rune.IsLetter(r) ? Cls.Letter : Rune.IsNumber(r) ? Cls.Number : Rune.IsWhiteSpace(r) ? Cls.Space : Cls.Other;
        return (c, len, r.Value);
    }

    private static bool IsCrLf(int v) => v is '\r' or '\n';

    private static int MatchAt(string s, int i)
    {
        var (cls, len, value) = At(s, i);

        // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (value == '\'')
        {
            int m = MatchContraction(s, i + 1);
            if (m > 0) return i + 1 + m;
        }

        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if (cls == Cls.Letter) return SkipLetters(s, i);
        if (cls != Cls.Number && !IsCrLf(value) && At(s, i + len).Cls == Cls.Letter) return SkipLetters(s, i + len);

        // 3. \p{N}
        if (cls == Cls.Number) return i + len;

        // 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
        int j = value == ' ' ? i + 1 : i;
        if (At(s, j).Cls == Cls.Other && j < s.Length)
        {
            while (j < s.Length && At(s, j) is { Cls: Cls.Other } o) j += o.Len;
            while (j < s.Length && IsCrLf(s[j])) j++;
            return j;
        }

        // 5-7 start with whitespace; nothing else is left (class Other was handled by 4).
        int runEnd = i, lastCrLf = -1, lastLen = 0;
        while (runEnd < s.Length && At(s, runEnd) is { Cls: Cls.Space } w)
        {
            if (IsCrLf(w.Value)) lastCrLf = runEnd;
            lastLen = w.Len;
            runEnd += w.Len;
        }
        // 5. \s*[\r\n]+ : backtracking leaves the match ending just after the run's last CR/LF.
        if (lastCrLf >= 0) return lastCrLf + 1;
        // 6. \s+(?!\S) : the whole run at the end of the text, else the run minus its last character.
        if (runEnd == s.Length) return runEnd;
        if (runEnd - lastLen > i) return runEnd - lastLen;
        // 7. \s+
        return runEnd;
    }

    private static int SkipLetters(string s, int j)
    {
        while (j < s.Length && At(s, j) is { Cls: Cls.Letter } l) j += l.Len;
        return j;
    }

    private static int MatchContraction(string s, int j)
    {
        static bool Eq(string s, int k, char lower) =>
            k < s.Length && (char.ToLowerInvariant(s[k]) == lower || (lower == 's' && s[k] == '\u017F'));
        if (Eq(s, j, 's') || Eq(s, j, 't') || Eq(s, j, 'm') || Eq(s, j, 'd')) return 1;
        if ((Eq(s, j, 'r') || Eq(s, j, 'v')) && Eq(s, j + 1, 'e')) return 2;
        if (Eq(s, j, 'l') && Eq(s, j + 1, 'l')) return 2;
        return 0;
    }
}
