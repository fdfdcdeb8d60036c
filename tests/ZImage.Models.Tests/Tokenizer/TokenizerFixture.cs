using ZImage.Runtime.Models.Tokenization;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Tokenizer;

/// <summary>One tokenizer load shared by every test (parsing the 5 MB tokenizer.json once).</summary>
public static class TokenizerFixture
{
    private static readonly Lazy<Qwen2Tokenizer> Lazy = new(() => Qwen2Tokenizer.Load(Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer")));

    /// <summary>The fixture checkpoint's tokenizer.</summary>
    public static Qwen2Tokenizer Tokenizer => Lazy.Value;
}
