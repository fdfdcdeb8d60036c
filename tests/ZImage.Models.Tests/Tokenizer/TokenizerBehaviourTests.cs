using System.Text.Json;
using System.Text.RegularExpressions;
using CsCheck;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Tokenizer;

/// <summary>Pre-tokenizer semantics, special tokens, surrogate pairs and argument validation.</summary>
public class TokenizerBehaviourTests
{
    private static Qwen2Tokenizer Tok => TokenizerFixture.Tokenizer;

    // Characters chosen to exercise every alternative of the split pattern (contractions, prefixed letters, digits,
    // punctuation runs, CR/LF, Unicode spaces, other letters and numbers).
    private const string Alphabet = "abcSTdlmrvexyz'''   \t\n\r\r\n!?.,-_#0123456789\u00a0\u3000\u2003\u200b\u00e9\u4e00\u4e8c\u0661\u2163\u00bd";

    [Fact]
    public void SplitMatchesDotNetRegexOnBmpText()
    {
        var regex = new Regex(Qwen2PreTokenizer.Pattern, RegexOptions.CultureInvariant);
        Gen.Char[Alphabet].Array[0, 24].Select(cs => new string(cs)).Sample(text =>
        {
            string[] expected = regex.Matches(text).Select(m => m.Value).ToArray();
            string[] actual = Qwen2PreTokenizer.SplitToStrings(text).ToArray();
            return expected.SequenceEqual(actual);
        }, iter: 4000);
    }

    [Theory]
    [InlineData("𝔥𝔢𝔩𝔩𝔬", new[] { "𝔥𝔢𝔩𝔩𝔬" })]
    [InlineData("x 𝔥𝔢", new[] { "x", " 𝔥𝔢" })]
    [InlineData("🐱abc", new[] { "🐱abc" })]
    [InlineData("𝟙𝟚𝟛", new[] { "𝟙", "𝟚", "𝟛" })]
    [InlineData(" 🐱🚀✨", new[] { " 🐱🚀✨" })]
    [InlineData("don't", new[] { "don", "'t" })]
    [InlineData("WE'RE", new[] { "WE", "'RE" })]
    [InlineData("a  b", new[] { "a", " ", " b" })]
    [InlineData("x\n\n y", new[] { "x", "\n\n", " y" })]
    [InlineData("end   ", new[] { "end", "   " })]
    public void SurrogatePairsAndWhitespaceSplitByCodePoint(string text, string[] expected) =>
        Assert.Equal(expected, Qwen2PreTokenizer.SplitToStrings(text));

    [Theory]
    [InlineData("a\uFFFEb")] // fuzz regression (zimage-fuzz, tokenizer target): .NET's Normalize threw ArgumentException
    [InlineData("\uFFFF")]
    [InlineData("e\u0301\uFFFEe\u0301 \uFDD0 \U0001FFFE \U0010FFFF")]
    public void NoncharactersAreEncodedAsTheirBytesAndTheRestIsStillNfc(string text)
    {
        int[] ids = Tok.Encode(text);
        Assert.Equal(text.Replace("e\u0301", "\u00e9", StringComparison.Ordinal), Tok.Decode(ids));
    }

    [Fact]
    public void SpecialTokenIdsComeFromTheFile()
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer", "tokenizer.json")));
        var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        Assert.Equal(added["<|endoftext|>"], Tok.EndOfTextId);
        Assert.Equal(added["<|im_start|>"], Tok.ImStartId);
        Assert.Equal(added["<|im_end|>"], Tok.ImEndId);
        Assert.Equal(Tok.EndOfTextId, Tok.PadTokenId);
        Assert.Equal(added.Count, Tok.AddedTokens.Count);
        Assert.Equal(added.Values.Max() + 1, Tok.VocabSize);
        Assert.Equal([Tok.ImStartId], Tok.Encode("<|im_start|>"));
        Assert.Equal("<|im_end|>", Tok.Decode([Tok.ImEndId]));
        Assert.Equal("", Tok.Decode([Tok.ImEndId], skipSpecialTokens: true));
    }

    [Fact]
    public void TemplateWrapsThePromptInEightTokens()
    {
        int[] empty = Tok.EncodeChat("");
        int[] hello = Tok.EncodeChat("Hello");
        Assert.Equal(Tok.Encode("Hello").Length + empty.Length, hello.Length);
        Assert.Equal(Tok.ImStartId, hello[0]);
        Assert.Equal(empty[..3], hello[..3]);
        Assert.Equal(empty[3..], hello[^5..]);
        Assert.Equal(hello[..4], Tok.EncodeChat("Hello", 4));
    }

    [Fact]
    public void InvalidArgumentsNameTheValueAndRange()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Tok.EncodeChat("x", 0));
        Assert.Contains("[1,", ex.Message);
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Decode([Tok.VocabSize]));
        Assert.Equal(Tok.VocabSize, bad.ActualValue);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Decode([-1]));
    }

    [Fact]
    public void ArbitraryUnicodeRoundTrips() =>
        Gen.String[Gen.Char.Where(c => !char.IsSurrogate(c)), 0, 40].Sample(s =>
            Tok.Decode(Tok.Encode(s)) == s.Normalize(System.Text.NormalizationForm.FormC), iter: 300);

    [Fact]
    public void UnsupportedPreTokenizerIsRejected()
    {
        using var tmp = new TempDirectory();
        string json = File.ReadAllText(Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer", "tokenizer.json"));
        File.WriteAllText(tmp.File("tokenizer.json"), json.Replace("\\\\s+(?!\\\\S)|", "", StringComparison.Ordinal));
        var ex = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.Load(tmp.Path));
        Assert.Contains("pre_tokenizer", ex.Message);
        Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.Load(Path.Combine(tmp.Path, "missing")));
    }

    [Fact]
    public void ForeignChatTemplateIsRejected()
    {
        using var tmp = new TempDirectory();
        File.Copy(Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer", "tokenizer.json"), tmp.File("tokenizer.json"));
        File.WriteAllText(tmp.File("tokenizer_config.json"), "{\"chat_template\": \"{{ bos_token }}{{ messages[0].content }}\"}");
        var ex = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.Load(tmp.Path));
        Assert.Contains("chat_template", ex.Message);
    }
}
