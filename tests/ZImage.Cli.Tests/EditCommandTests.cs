using System.Text.Json;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Cli.Tests;

/// <summary>
/// <c>generate</c>'s edit flags: <c>--init-image/--strength/--mask</c> on the demo model, <c>--lora</c> on the tiny
/// checkpoint, <c>--two-stage</c>; and their bad inputs, each exit code 2 with one line naming the option and the
/// value (or one JSON error object with <c>--json</c>), found before the model loads.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class EditCommandTests
{
    private static readonly string Scratch = Path.Combine(Path.GetTempPath(), "zimage-cli-edit-" + Environment.ProcessId);
    private static readonly Lazy<bool> Files = new(WriteFiles);

    private static string S(string name)
    {
        _ = Files.Value;
        return Path.Combine(Scratch, name);
    }

    private static string Lora(string name) => Path.Combine(FixturePaths.EditReferenceDir, "lora", name);

    private static bool WriteFiles()
    {
        Directory.CreateDirectory(Scratch);
        static byte[] Pixels(int w, int h, Func<int, int, byte> f) =>
            Enumerable.Range(0, w * h).SelectMany(i => Enumerable.Repeat(f(i % w, i / w), 3)).ToArray();
        File.WriteAllBytes(Path.Combine(Scratch, "init16.png"), PngMetadata.Encode(new RgbImage(16, 16, Pixels(16, 16, (x, y) => (byte)(x * 16))), []));
        File.WriteAllBytes(Path.Combine(Scratch, "mask16.png"), PngMetadata.Encode(new RgbImage(16, 16, Pixels(16, 16, (x, _) => x < 8 ? (byte)0 : (byte)255)), []));
        File.WriteAllBytes(Path.Combine(Scratch, "mask32.png"), PngMetadata.Encode(new RgbImage(32, 32, Pixels(32, 32, (_, _) => 255)), []));
        File.WriteAllText(Path.Combine(Scratch, "not-an-image.png"), "plain text, not an image");
        File.WriteAllText(Path.Combine(Scratch, "corrupt.safetensors"), "plain text, not a safetensors file");
        // A rank-4 update whose A has 32 inputs where the tiny DiT's to_q takes 64.
        SafetensorsWriter.Write(Path.Combine(Scratch, "wrong-shape.safetensors"),
        [
            SafetensorsEntry.FromSingles("transformer.layers.0.attention.to_q.lora_A.weight", [4, 32], new float[4 * 32]),
            SafetensorsEntry.FromSingles("transformer.layers.0.attention.to_q.lora_B.weight", [64, 4], new float[64 * 4]),
        ]);
        // An SD-style kohya LoRA: modules this model does not have.
        SafetensorsWriter.Write(Path.Combine(Scratch, "other-model.safetensors"),
        [
            SafetensorsEntry.FromSingles("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", [4, 32], new float[4 * 32]),
            SafetensorsEntry.FromSingles("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", [32, 4], new float[32 * 4]),
        ]);
        return true;
    }

    private static string[] Generate(params string[] extra) =>
        ["generate", "--prompt", "a lighthouse", "--steps", "1", "--seed", "3", "--device", "cpu", "--out", Path.Combine(Scratch, "out", "x.png"), .. extra];

    [Fact]
    public async Task InitImageStrengthAndMask_OnTheDemoModel_RunInpaintPlannedExactly()
    {
        var run = await CliRunner.RunAsync(Generate("--init-image", S("init16.png"), "--strength", "0.5", "--mask", S("mask16.png"), "--json"));

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var p = run.Json().GetProperty("parameters");
        Assert.Equal((16, 16, 0.5f, true), (p.GetProperty("width").GetInt32(), p.GetProperty("height").GetInt32(), p.GetProperty("strength").GetSingle(), p.GetProperty("mask").GetBoolean()));
        // The image is encoded, then the step runs with the per-step mask blend; every stage planned exactly.
        AssertPlannedEqualsMeasured(run.Json().GetProperty("stages"), "vae-encode");
        var meta = PngMetadata.ReadParameters(File.ReadAllBytes(run.Json().GetProperty("output").GetString()!))!;
        Assert.Equal((0.5f, true), (meta.Strength, meta.MaskGiven));
    }

    [Fact]
    public async Task Lora_OnTheTinyCheckpoint_MergesEachWithItsScaleAndThePngRecordsThem()
    {
        var run = await CliRunner.RunAsync(Generate("--model", FixturePaths.TinyCheckpoint, "--width", "16", "--height", "16",
            "--lora", Lora("lora_diffusers.safetensors") + ":0.8", "--lora", Lora("lora_kohya.safetensors"), "--json"));

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        const string Expected = "lora_diffusers.safetensors:0.8, lora_kohya.safetensors:1";
        Assert.Equal(Expected, run.Json().GetProperty("parameters").GetProperty("loras").GetString());
        AssertPlannedEqualsMeasured(run.Json().GetProperty("stages"), "denoise-step-1");
        byte[] png = File.ReadAllBytes(run.Json().GetProperty("output").GetString()!);
        Assert.Equal(Expected, PngMetadata.ReadParameters(png)!.Loras);
        Assert.Contains("LoRA: " + Expected, PngMetadata.ReadText(png)[PngMetadata.ParametersTextKey], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoStage_OnTheDemoModel_WritesBothImagesAndPlansBothPasses()
    {
        var run = await CliRunner.RunAsync(Generate("--width", "32", "--height", "32", "--two-stage", "--json"));

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var json = run.Json();
        var ts = json.GetProperty("two_stage");
        Assert.Equal((16, 16, 0.5f, 3L), (ts.GetProperty("explore_width").GetInt32(), ts.GetProperty("explore_height").GetInt32(),
            ts.GetProperty("refine_strength").GetSingle(), ts.GetProperty("seed").GetInt64()));
        var explore = PngMetadata.Decode(File.ReadAllBytes(ts.GetProperty("explore_output").GetString()!));
        var final = PngMetadata.Decode(File.ReadAllBytes(json.GetProperty("output").GetString()!));
        Assert.Equal((16, 16, 32, 32), (explore.Width, explore.Height, final.Width, final.Height));
        var stages = ts.GetProperty("stages");
        AssertPlannedEqualsMeasured(stages, "refine/vae-encode");
        Assert.Contains(stages.EnumerateArray(), s => s.GetProperty("name").GetString() == "explore/denoise-step-1");
        Assert.Equal(stages.EnumerateArray().Max(s => s.GetProperty("measured_peak_bytes").GetInt64()), ts.GetProperty("request_peak_bytes").GetInt64());
    }

    [Fact]
    public async Task PlanTwoStage_OnTheTurboConfig_ListsBothPassesAndTakesTheLargerPeak()
    {
        var run = await CliRunner.RunAsync("plan", "--two-stage", "--width", "1024", "--height", "1024", "--device-bytes", "24GiB", "--json");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var stages = run.Json().GetProperty("stages").EnumerateArray().Select(s => (Name: s.GetProperty("name").GetString()!, Peak: s.GetProperty("peak_bytes").GetInt64())).ToArray();
        Assert.Equal("explore/text-encoder", stages[0].Name);
        Assert.Contains(stages, s => s.Name == "refine/vae-encode");
        // Turbo's 8 steps at the default strength 0.5: the refine runs steps 5..8.
        Assert.Equal(["refine/denoise-step-5", "refine/denoise-step-6", "refine/denoise-step-7", "refine/denoise-step-8"],
            stages.Where(s => s.Name.StartsWith("refine/denoise", StringComparison.Ordinal)).Select(s => s.Name));
        Assert.Equal(stages.Max(s => s.Peak), run.Json().GetProperty("request_peak_bytes").GetInt64());
    }

    private static void AssertPlannedEqualsMeasured(JsonElement stages, string mustHave)
    {
        Assert.Contains(stages.EnumerateArray(), s => s.GetProperty("name").GetString() == mustHave);
        foreach (var s in stages.EnumerateArray())
            Assert.True(s.GetProperty("planned_peak_bytes").GetInt64() == s.GetProperty("measured_peak_bytes").GetInt64(), s.ToString());
    }

    /// <summary>args after <c>generate</c>'s common ones, the option the error must name, a text the message must contain.</summary>
    public static TheoryData<string[], string, string> BadEdits() => new()
    {
        { ["--init-image", S("missing.png")], "--init-image", "does not exist" },
        { ["--init-image", S("not-an-image.png")], "--init-image", "not an image" },
        { ["--init-image", Scratch], "--init-image", "is a directory" },
        { ["--init-image", S("init16.png"), "--width", "32", "--height", "32"], "--init-image", "16x16" },
        { ["--init-image", S("init16.png"), "--mask", S("mask32.png")], "--mask", "32x32" },
        { ["--init-image", S("init16.png"), "--mask", S("not-an-image.png")], "--mask", "not an image" },
        { ["--mask", S("mask16.png")], "--mask", "only used with --init-image" },
        { ["--init-image", S("init16.png"), "--strength", "0"], "--strength", "(0, 1]" },
        { ["--init-image", S("init16.png"), "--strength", "1.5"], "--strength", "1.5" },
        { ["--init-image", S("init16.png"), "--strength", "-0.2"], "--strength", "-0.2" },
        { ["--strength", "0.5"], "--strength", "only used with --init-image" },
        { ["--model", FixturePaths.TinyCheckpoint, "--lora", S("missing.safetensors")], "--lora", "does not exist" },
        { ["--model", FixturePaths.TinyCheckpoint, "--lora", S("corrupt.safetensors")], "--lora", "not a readable safetensors file" },
        { ["--model", FixturePaths.TinyCheckpoint, "--lora", S("wrong-shape.safetensors")], "--lora", "A [4,32]" },
        { ["--model", FixturePaths.TinyCheckpoint, "--lora", S("other-model.safetensors")], "--lora", "another model" },
        { ["--model", FixturePaths.TinyCheckpoint, "--lora", Lora("lora_diffusers.safetensors") + ":strong"], "--lora", "'strong'" },
        { ["--lora", Lora("lora_diffusers.safetensors")], "--lora", "needs --model" },
        { ["--refine-strength", "0.4"], "--refine-strength", "only used with --two-stage" },
        { ["--two-stage"], "--width", "--two-stage needs the final size" },
        { ["--two-stage", "--width", "32", "--height", "32", "--refine-strength", "2"], "--refine-strength", "(0, 1]" },
    };

    [Theory]
    [MemberData(nameof(BadEdits))]
    public async Task BadEditInput_ExitsWith2AndOneLineNamingTheOptionAndValue(string[] args, string parameter, string mentions)
    {
        var run = await CliRunner.RunAsync(Generate(args));

        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("zimage generate: " + parameter, line, StringComparison.Ordinal);
        Assert.Contains(mentions, line, StringComparison.Ordinal);
        BadInputTests.AssertNoStackTrace(run);
    }

    // Every case without a model folder (milliseconds each) and one LoRA case: the --model checks cost about a second a run.
    public static TheoryData<string[], string, string> BadEditsForJson()
    {
        var data = new TheoryData<string[], string, string>();
        bool loraCase = false;
        foreach (var row in BadEdits())
        {
            var args = (string[])row[0];
            if (args.Contains("--model") && loraCase) continue;
            loraCase |= args.Contains("--model");
            data.Add(args, (string)row[1], (string)row[2]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BadEditsForJson))]
    public async Task BadEditInput_WithJson_WritesOneErrorObjectNamingTheOption(string[] args, string parameter, string mentions)
    {
        var run = await CliRunner.RunAsync(Generate([.. args, "--json"]));

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stderr);
        var error = run.Json().GetProperty("error");
        Assert.Equal(parameter, error.GetProperty("parameter").GetString());
        Assert.Contains(mentions, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        BadInputTests.AssertNoStackTrace(run);
    }
}
