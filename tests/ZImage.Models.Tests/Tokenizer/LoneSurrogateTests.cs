using ZImage.Runtime.Models.Tokenization;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Models.Tests.Tokenizer;

/// <summary>Text that is not well-formed UTF-16 is a typed error naming the index, in both tokenizers; pairs still encode.</summary>
public class LoneSurrogateTests
{
    // Built at run time: attribute arguments are stored as UTF-8, which would turn a lone surrogate into U+FFFD.
    private static readonly string[] Prompts =
    [
        "a\uD800b",
        "\uDC00",
        "ok \uD83D\uDE00 then \uD83D", // a pair, then a high surrogate at the end
        "x\uDE00\uD83D",               // reversed pair: the low one comes first
    ];

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 0)]
    [InlineData(2, 11)]
    [InlineData(3, 1)]
    public void ALoneSurrogateIsAMalformedTextErrorNamingItsIndex(int caseIndex, int index)
    {
        string prompt = Prompts[caseIndex];
        var e = Assert.Throws<MalformedTextException>(() => TokenizerFixture.Tokenizer.EncodeChat(prompt));
        Assert.Equal(index, e.Index);
        Assert.Equal("prompt", e.ParamName);
        Assert.Contains($"UTF-16 index {index}", e.Message);
        Assert.Equal(index, Assert.Throws<MalformedTextException>(() => TokenizerFixture.Tokenizer.Encode(prompt)).Index);
        Assert.Equal(index, Assert.Throws<MalformedTextException>(() => ByteLevelFallbackTokenizer.EncodeChat(prompt, 512)).Index);
    }

    [Fact]
    public void SurrogatePairsAreWellFormedAndEncode()
    {
        Assert.Null(MalformedTextException.FindLoneSurrogate("a \uD83D\uDE00 b"));
        Assert.NotEmpty(TokenizerFixture.Tokenizer.EncodeChat("a \uD83D\uDE00 b"));
    }
}
