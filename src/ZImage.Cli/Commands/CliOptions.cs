using System.CommandLine;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Commands;

/// <summary>Options shared by <c>generate</c> and <c>plan</c>.</summary>
internal static class CliOptions
{
    public static Option<int?> Width() => new("--width") { Description = "Width in pixels (multiple of 16)." };
    public static Option<int?> Height() => new("--height") { Description = "Height in pixels (multiple of 16)." };
    public static Option<int?> Steps() => new("--steps") { Description = "Denoising steps (default: the mode preset)." };
    public static Option<float?> Guidance() => new("--guidance") { Description = "Guidance scale, 0 = no CFG (default: the mode preset)." };
    public static Option<GenerationMode> Mode() => new("--mode") { Description = "Preset: turbo (8 steps, g 0), standard (25, 4.0), quality (50, 5.0).", DefaultValueFactory = _ => GenerationMode.Turbo };
    public static Option<string?> Model() => new("--model") { Description = "A diffusers-format Z-Image checkpoint folder. Without it a tiny random-weight model is built in memory." };
    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object instead of bars and tables." };
    public static Option<string?> DeviceBytes() => new("--device-bytes") { Description = "Device capacity to plan for, e.g. 24GiB (default: what the device reports)." };
    public static Option<string?> Inference() => new("--inference") { Description = "Inference segment, e.g. 4GiB (default: the plan of the sizing request, 1024x1024 with CFG)." };
    public static Option<string?> SystemReserve() => new("--system-reserve") { Description = "System reserve, e.g. 512MiB." };
    public static Option<string?> Buffer() => new("--buffer") { Description = "Buffer above the inference segment (default 0.7GiB)." };
    public static Option<string?> Allocator() => new("--allocator") { Description = "Allocator settings in PYTORCH_CUDA_ALLOC_CONF syntax, e.g. max_split_size_mb:128." };

    /// <summary>Validates a byte-size option early so the message names the option (and an overflow is a bad value, not a crash).</summary>
    public static string? Size(string option, string? value)
    {
        if (value is null) return null;
        ParseSize(option, value);
        return value;
    }

    /// <summary>Parses a byte-size option; the error names the option and the allowed range.</summary>
    /// <exception cref="CliInputException">Not a size, negative, or larger than 8 EiB.</exception>
    public static long ParseSize(string option, string value)
    {
        try { return ByteSize.Parse(value); }
        catch (FormatException e) { throw new CliInputException(option, $"{option}: {e.Message}", e); }
        catch (OverflowException e) { throw new CliInputException(option, $"{option}: '{value}' is too large; allowed: 0 to 8 EiB (e.g. 24GiB).", e); }
    }
}
