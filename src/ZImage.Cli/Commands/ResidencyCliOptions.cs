using System.CommandLine;
using ZImage.Runtime.Residency;

namespace ZImage.Cli.Commands;

/// <summary>The memory-ladder options shared by <c>generate</c> and <c>plan</c>.</summary>
internal sealed class ResidencyCliOptions
{
    public Option<string> Offload { get; } = new("--offload") { Description = "Where weights live: " + ResidencyNames.OffloadValues + " (auto: the fastest rung whose exact plan fits).", DefaultValueFactory = _ => "auto" };
    public Option<string> Weights { get; } = new("--weights") { Description = "Weight format: " + ResidencyNames.WeightValues + " (auto: bf16, lossless).", DefaultValueFactory = _ => "auto" };
    public Option<string?> Activations { get; } = new("--activations") { Description = "Activation dtype: " + ResidencyNames.ActivationValues + " (default f32)." };
    public Option<string> VaeTiling { get; } = new("--vae-tiling") { Description = "VAE tiled decode: " + ResidencyNames.TilingValues + ".", DefaultValueFactory = _ => "auto" };
    public Option<string?> DType { get; } = new("--dtype") { Description = "Sets weights and activations together (as diffusers' torch_dtype): " + ResidencyNames.DTypeValues + "." };
    public Option<string?> HostMemory { get; } = new("--host-memory") { Description = "Host memory allowed for offloaded weights, e.g. 32GiB (default: what the host has available)." };

    public Option<int?> VaeTileSize { get; } = new("--vae-tile-size") { Description = "VAE tile size in pixels for tiled decode (default 512; at least 32, a multiple of 32)." };
    public Option<bool> AllowLossy { get; } = new("--allow-lossy") { Description = "Let --weights auto choose 8-bit (int8) weights when they avoid full offload." };

    public IEnumerable<Option> All => [Offload, Weights, Activations, VaeTiling, DType, HostMemory, VaeTileSize, AllowLossy];

    /// <summary>Parses the values into <paramref name="target"/>; unknown values throw naming the value and the allowed ones.</summary>
    public void Apply(ParseResult parse, ResidencyOptions target)
    {
        target.Offload = ResidencyNames.ParseOffload(parse.GetValue(Offload) ?? "auto");
        target.Weights = ResidencyNames.ParseWeights(parse.GetValue(Weights) ?? "auto");
        target.VaeTiling = ResidencyNames.ParseTiling(parse.GetValue(VaeTiling) ?? "auto");
        if (parse.GetValue(DType) is { } dtype)
        {
            var (w, a) = ResidencyNames.ParseDType(dtype);
            target.Weights = w;
            target.Activations = a;
        }
        if (parse.GetValue(Activations) is { } act) target.Activations = ResidencyNames.ParseActivations(act);
        if (CliOptions.Size("--host-memory", parse.GetValue(HostMemory)) is { } host) target.HostMemory = host;
        if (parse.GetValue(VaeTileSize) is { } tile)
        {
            _ = Runtime.Models.Vae.VaeTileSettings.FromSampleSize(tile); // typed error naming the value and the allowed range
            target.VaeTileSize = tile;
        }
        target.AllowLossy = parse.GetValue(AllowLossy);
    }

    /// <summary>The strategy as the JSON outputs carry it.</summary>
    public static object? Json(ResidencyStrategy? s) => s is null ? null : new
    {
        offload = s.OffloadName, weights = s.WeightsName, activations = s.ActivationsName, vae_tiling = s.VaeTiling, vae_tile_size = s.VaeTiling ? s.VaeTileSize : (int?)null, reason = s.Reason,
    };
}
