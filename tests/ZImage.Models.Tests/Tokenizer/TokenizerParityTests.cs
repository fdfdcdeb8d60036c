using System.Text;
using System.Text.Json;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Tokenizer;

/// <summary>Exact id parity with the reference tokenizer on every prompt of every tokenizer case in the manifest.</summary>
[Trait("Category", "Parity")]
public class TokenizerParityTests
{
    public static TheoryData<string, int> Prompts()
    {
        var data = new TheoryData<string, int>();
        foreach (ReferenceCase c in ReferenceCases.OfKind("tokenizer"))
        {
            int n = c.ReadJson().GetProperty("cases").GetArrayLength();
            for (int i = 0; i < n; i++) data.Add(c.Name, i);
        }
        return data;
    }

    private static JsonElement Prompt(string caseName, int index) => ReferenceCases.Get(caseName).ReadJson().GetProperty("cases")[index];

    private static int[] Ids(JsonElement e, string field) => e.GetProperty(field).EnumerateArray().Select(x => x.GetInt32()).ToArray();

    [Theory]
    [MemberData(nameof(Prompts))]
    public void RawTextIdsMatch(string caseName, int index)
    {
        JsonElement p = Prompt(caseName, index);
        TensorAssert.Equal<int>(Ids(p, "ids_raw"), TokenizerFixture.Tokenizer.Encode(p.GetProperty("text").GetString()!), $"ids_raw of prompt {index}");
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void TemplatedIdsMatch(string caseName, int index)
    {
        JsonElement p = Prompt(caseName, index);
        string text = p.GetProperty("text").GetString()!;
        Assert.Equal(p.GetProperty("templated_text").GetString(), Qwen2Tokenizer.ApplyChatTemplate(text));
        TensorAssert.Equal<int>(Ids(p, "ids_templated"), TokenizerFixture.Tokenizer.EncodeChat(text, int.MaxValue), $"ids_templated of prompt {index}");
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void PipelineIdsMatchAfterTruncation(string caseName, int index)
    {
        JsonElement file = ReferenceCases.Get(caseName).ReadJson();
        JsonElement p = file.GetProperty("cases")[index];
        int max = file.GetProperty("max_sequence_length").GetInt32();
        int[] ids = TokenizerFixture.Tokenizer.EncodeChat(p.GetProperty("text").GetString()!, max);
        TensorAssert.Equal<int>(Ids(p, "ids_pipeline"), ids, $"ids_pipeline of prompt {index}");
        Assert.Equal(p.GetProperty("truncated_by_pipeline").GetBoolean(), Ids(p, "ids_templated").Length > max);
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void DecodeRestoresTheNormalisedText(string caseName, int index)
    {
        string text = Prompt(caseName, index).GetProperty("text").GetString()!;
        Qwen2Tokenizer tok = TokenizerFixture.Tokenizer;
        Assert.Equal(text.Normalize(NormalizationForm.FormC), tok.Decode(tok.Encode(text)));
    }

    [Fact]
    public void E2ePromptIdsMatchTheTemplatedEncoding()
    {
        // The end-to-end cases store the ids they fed the text encoder; they must be this tokenizer's output.
        foreach (ReferenceCase c in ReferenceCases.OfKind("e2e"))
        {
            int[] ids = c.LoadInt32("prompt_ids").Data;
            TensorAssert.Equal<int>(ids, TokenizerFixture.Tokenizer.EncodeChat(c.Param<string>("prompt")), $"{c.Name} prompt_ids");
            if (c.Tensors.ContainsKey("negative_prompt_ids"))
                TensorAssert.Equal<int>(c.LoadInt32("negative_prompt_ids").Data, TokenizerFixture.Tokenizer.EncodeChat(c.Param<string>("negative_prompt")), $"{c.Name} negative_prompt_ids");
        }
    }
}
