namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>
/// The documented fallback when no Qwen2 <c>tokenizer.json</c> is available (the in-memory demo model, and plans for the
/// embedded Turbo config without a checkpoint): the chat template's special and literal tokens take their real Qwen3
/// ids, and every UTF-8 byte of the prompt becomes one id equal to the byte value (0..255, inside every Qwen vocabulary).
/// A byte-level split never yields fewer tokens than the real BPE, so plans made with it are conservative.
/// </summary>
public static class ByteLevelFallbackTokenizer
{
    /// <summary><c>&lt;|im_start|&gt;</c>.</summary>
    public const int ImStart = 151644;
    /// <summary><c>&lt;|im_end|&gt;</c>.</summary>
    public const int ImEnd = 151645;

    // "<|im_start|>user\n" and "<|im_end|>\n<|im_start|>assistant\n" in the real Qwen3 vocabulary.
    private static readonly int[] Prefix = [ImStart, 872, 198];
    private static readonly int[] Suffix = [ImEnd, 198, ImStart, 77091, 198];

    /// <summary>The chat-templated ids of <paramref name="prompt"/>, right-truncated to <paramref name="maxLength"/>.</summary>
    /// <exception cref="Models.Tokenization.MalformedTextException">The prompt holds a lone surrogate (UTF-8 would silently replace it).</exception>
    public static int[] EncodeChat(string prompt, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        Models.Tokenization.MalformedTextException.ThrowIfMalformed(prompt, nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        var bytes = System.Text.Encoding.UTF8.GetBytes(prompt);
        var ids = new int[Prefix.Length + bytes.Length + Suffix.Length];
        Prefix.CopyTo(ids, 0);
        for (int i = 0; i < bytes.Length; i++) ids[Prefix.Length + i] = bytes[i];
        Suffix.CopyTo(ids, Prefix.Length + bytes.Length);
        return ids.Length <= maxLength ? ids : ids[..maxLength];
    }
}
