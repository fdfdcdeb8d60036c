using System.CommandLine;
using System.Globalization;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Commands;

/// <summary>
/// The edit options of <c>generate</c> beyond <c>--init-image/--strength/--mask</c> (LoRAs, two-stage generation) and the
/// preflight checks of every edit input: each bad value is a <see cref="CliInputException"/> naming the option (exit 2),
/// found before the model is loaded.
/// </summary>
internal sealed class EditCliOptions
{
    public Option<string[]> Lora { get; } = new("--lora")
    {
        Description = "Merge a LoRA into the transformer at load: FILE or FILE:SCALE (diffusers/PEFT, kohya or diffusion_model keys; repeatable, merged in order; needs --model).",
        Arity = ArgumentArity.OneOrMore,
    };

    public Option<bool> TwoStage { get; } = new("--two-stage")
    {
        Description = "Explore at a small size, then finish the same seed at --width x --height through img2img (writes OUT-explore.png too).",
    };

    public Option<int?> ExploreWidth { get; } = new("--explore-width") { Description = "--two-stage: width of the explore pass (default half of --width, a multiple of 16)." };

    public Option<int?> ExploreHeight { get; } = new("--explore-height") { Description = "--two-stage: height of the explore pass (default half of --height)." };

    public Option<float?> RefineStrength { get; } = new("--refine-strength") { Description = "--two-stage: img2img strength of the refine pass in (0, 1] (default 0.5: the second half of the schedule)." };

    public IEnumerable<Option> All => [Lora, .. TwoStageOptions];

    /// <summary>The options <c>plan</c> shares (LoRAs do not change a plan: shapes and device bytes are the base model's).</summary>
    public IEnumerable<Option> TwoStageOptions => [TwoStage, ExploreWidth, ExploreHeight, RefineStrength];

    /// <summary>Whether the engine must load the VAE encoder: an init image or a two-stage run.</summary>
    public bool NeedsImageEditing(ParseResult parse, string? initImage) => initImage is not null || parse.GetValue(TwoStage);

    /// <summary>The LoRAs of <c>--lora</c>, checked: each parses, exists and is a file; they need <c>--model</c>.</summary>
    public List<LoraSpec> Loras(ParseResult parse, string? modelDir)
    {
        var specs = new List<LoraSpec>();
        foreach (string text in parse.GetValue(Lora) ?? [])
        {
            LoraSpec spec;
            try { spec = LoraSpec.Parse(text); }
            catch (FormatException e) { throw new CliInputException("--lora", $"--lora: {e.Message}", e); }
            if (LoraMerge.Problem(spec) is { } problem) throw new CliInputException("--lora", $"--lora: {problem}");
            specs.Add(spec);
        }
        if (specs.Count == 0) return specs;
        if (modelDir is null)
            throw new CliInputException("--lora", "--lora needs --model: the tiny random demo model has no trained weights to adapt; allowed: --model DIR --lora FILE[:SCALE].");
        // Read each LoRA against the checkpoint's transformer now (headers and the small A/B matrices only), so a corrupt
        // or mismatched file fails before the model loads; the engine reads them again when it merges.
        using var transformer = SafetensorsCheckpoint.Open(Path.Combine(modelDir, ZImageConfig.TransformerFolder));
        foreach (var spec in specs) _ = LoraAdapter.Load(spec.Path, transformer);
        return specs;
    }

    /// <summary>The two-stage request around <paramref name="request"/>, or null without <c>--two-stage</c>.</summary>
    public TwoStageRequest? TwoStageRequest(ParseResult parse, GenerationRequest request)
    {
        bool on = parse.GetValue(TwoStage);
        if (!on)
        {
            foreach (var o in new Option[] { ExploreWidth, ExploreHeight, RefineStrength })
                if (parse.GetResult(o) is { Implicit: false })
                    throw new CliInputException(o.Name, $"{o.Name} is only used with --two-stage.");
            return null;
        }
        if (request.Width is null || request.Height is null)
            throw new CliInputException(request.Width is null ? "--width" : "--height", $"{(request.Width is null ? "--width" : "--height")}: --two-stage needs the final size; give --width and --height (multiples of 16).");
        var strength = parse.GetValue(RefineStrength) ?? Runtime.Pipeline.TwoStageRequest.DefaultRefineStrength;
        CheckStrength("--refine-strength", strength);
        return new TwoStageRequest
        {
            Request = request,
            ExploreWidth = parse.GetValue(ExploreWidth),
            ExploreHeight = parse.GetValue(ExploreHeight),
            RefineStrength = strength,
        };
    }

    /// <summary>Reads <c>--init-image</c>; an unreadable or non-image file names the option.</summary>
    public static RgbImage LoadInitImage(string file) => Load("--init-image", file, ImageEditing.LoadImage);

    /// <summary>Reads <c>--mask</c>; an unreadable or non-image file names the option.</summary>
    public static MaskImage LoadMask(string file) => Load("--mask", file, ImageEditing.LoadMask);

    /// <summary>
    /// The checks the pipeline would make after loading, made before it: <c>--strength</c>/<c>--mask</c> need
    /// <c>--init-image</c>, the init image has the output size (<c>--width/--height</c> when given), the mask the init image's.
    /// </summary>
    public static void CheckSizes(RgbImage? init, MaskImage? mask, float? strength, int? width, int? height)
    {
        if (init is null)
        {
            if (mask is not null) throw new CliInputException("--mask", "--mask is only used with --init-image (inpaint repaints part of an init image).");
            if (strength is not null) throw new CliInputException("--strength", "--strength is only used with --init-image (img2img/inpaint).");
            return;
        }
        if ((width ?? init.Width) != init.Width || (height ?? init.Height) != init.Height)
            throw new CliInputException("--init-image", $"--init-image is {init.Width}x{init.Height} but the output is {width ?? init.Width}x{height ?? init.Height}; allowed: an image of the output size (init images are not resized; omit --width/--height to use its size).");
        if (mask is not null && (mask.Width != init.Width || mask.Height != init.Height))
            throw new CliInputException("--mask", $"--mask is {mask.Width}x{mask.Height} but --init-image is {init.Width}x{init.Height}; allowed: a mask of the init image's size.");
    }

    /// <summary>Checks a strength option against (0, 1].</summary>
    public static float? CheckStrength(string option, float? strength)
    {
        if (strength is { } s && !(s > 0f && s <= 1f))
            throw new CliInputException(option, string.Create(CultureInfo.InvariantCulture, $"{option} {s} is out of range; allowed: (0, 1], e.g. 0.6."));
        return strength;
    }

    private static T Load<T>(string option, string file, Func<string, T> load)
    {
        const string Allowed = "allowed: a PNG, JPEG, BMP, TGA or GIF file";
        if (Directory.Exists(file)) throw new CliInputException(option, $"{option} '{file}' is a directory; {Allowed}.");
        if (!File.Exists(file)) throw new CliInputException(option, $"{option} '{file}' does not exist; {Allowed}.");
        try { return load(file); }
        catch (InvalidImageException e) { throw new CliInputException(option, $"{option}: {e.Message.Split('\n')[0]} ({Allowed}).", e); }
    }
}
