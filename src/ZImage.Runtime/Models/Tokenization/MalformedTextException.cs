namespace ZImage.Runtime.Models.Tokenization;

/// <summary>
/// Text given to a tokenizer is not well-formed UTF-16: it holds a lone surrogate (a high surrogate not followed by
/// a low one, or a low surrogate on its own), which has no UTF-8 encoding. The message names the code unit and its
/// UTF-16 index. The tokenizers reject such text rather than replacing the code unit with U+FFFD.
/// </summary>
public sealed class MalformedTextException : ArgumentException
{
    /// <summary>Creates the exception for the lone surrogate at <paramref name="index"/> of <paramref name="paramName"/>.</summary>
    public MalformedTextException(string paramName, int index, char codeUnit)
        : base($"{paramName} holds a lone surrogate U+{(int)codeUnit:X4} at UTF-16 index {index}; text must be well-formed UTF-16 (every surrogate in a high+low pair).", paramName)
    {
        Index = index;
        CodeUnit = codeUnit;
    }

    /// <summary>The UTF-16 index of the lone surrogate.</summary>
    public int Index { get; }

    /// <summary>The lone surrogate code unit.</summary>
    public char CodeUnit { get; }

    /// <summary>The UTF-16 index of the first unpaired surrogate in <paramref name="text"/>, or null when the text is well-formed.</summary>
    public static int? FindLoneSurrogate(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            return i;
        }
        return null;
    }

    /// <summary>Throws when <paramref name="text"/> holds a lone surrogate.</summary>
    /// <exception cref="MalformedTextException">The first lone surrogate.</exception>
    public static void ThrowIfMalformed(string text, string paramName)
    {
        if (FindLoneSurrogate(text) is { } i)
            throw new MalformedTextException(paramName, i, text[i]);
    }
}
