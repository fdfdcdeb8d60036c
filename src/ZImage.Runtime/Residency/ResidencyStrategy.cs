using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Residency;

/// <summary>Which weights live in host memory and are streamed through device slots (<c>--offload</c>).</summary>
public enum OffloadMode
{
    /// <summary>Choose the fastest rung whose exact plan fits (the default).</summary>
    Auto,
    /// <summary>Everything resident on the device.</summary>
    None,
    /// <summary>Text-encoder layers streamed; the DiT and VAE stay resident.</summary>
    TextEncoder,
    /// <summary>Text-encoder layers and DiT blocks streamed (double-buffered); the VAE stays resident.</summary>
    All,
}

/// <summary>The device format of weight matrices (<c>--weights</c>).</summary>
public enum WeightFormat
{
    /// <summary>The lossless default (<see cref="Hosting.ZImageOptions.WeightDType"/>, bf16 unless configured).</summary>
    Auto,
    /// <summary>float32.</summary>
    F32,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>float16.</summary>
    F16,
    /// <summary>int8 symmetric per output channel (quantised at load).</summary>
    Int8,
    /// <summary>fp8 e4m3 with a per-channel scale (quantised at load).</summary>
    Fp8,
}

/// <summary>The dtype of activations (<c>--activations</c>).</summary>
public enum ActivationFormat
{
    /// <summary>float32 (the default).</summary>
    F32,
    /// <summary>bfloat16.</summary>
    BF16,
}

/// <summary>VAE tiled decode (<c>--vae-tiling</c>).</summary>
public enum VaeTilingMode
{
    /// <summary>Tile only when the untiled decode does not fit.</summary>
    Auto,
    /// <summary>Always tile.</summary>
    On,
    /// <summary>Never tile.</summary>
    Off,
}

/// <summary>
/// A resolved rung of the memory ladder: where weights live, their format, the activation dtype, VAE tiling, and why
/// it was chosen. JSON output carries it as <c>"strategy": {"offload","weights","activations","vae_tiling","reason"}</c>.
/// </summary>
/// <param name="Offload">None, TextEncoder or All (never Auto).</param>
/// <param name="Weights">F32, BF16, F16, Int8 or Fp8 (never Auto).</param>
/// <param name="Activations">F32 or BF16.</param>
/// <param name="VaeTiling">Whether the VAE decode is tiled.</param>
/// <param name="Reason">Why this rung (e.g. "everything resident fits").</param>
public sealed record ResidencyStrategy(OffloadMode Offload, WeightFormat Weights, ActivationFormat Activations, bool VaeTiling, string Reason)
{
    /// <summary>Everything resident in bf16, f32 activations, no tiling.</summary>
    public static ResidencyStrategy Resident { get; } = new(OffloadMode.None, WeightFormat.BF16, ActivationFormat.F32, false, "everything resident");

    /// <summary>The CLI spelling of <see cref="Offload"/>: <c>none</c>, <c>text-encoder</c> or <c>all</c>.</summary>
    public string OffloadName => ResidencyNames.Name(Offload);

    /// <summary>The CLI spelling of <see cref="Weights"/> (<c>bf16</c>, <c>int8</c>, ...).</summary>
    public string WeightsName => ResidencyNames.Name(Weights);

    /// <summary>The CLI spelling of <see cref="Activations"/>.</summary>
    public string ActivationsName => ResidencyNames.Name(Activations);

    /// <summary>
    /// The device dtype of weight matrices for the float formats; for the 8-bit formats, the dtype of the matrices that
    /// stay full precision (embedders, final layer, VAE): BF16.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The format is <see cref="WeightFormat.Auto"/> (not resolved).</exception>
    public TensorDType MatrixDType => Weights switch
    {
        WeightFormat.F32 => TensorDType.F32,
        WeightFormat.F16 => TensorDType.F16,
        WeightFormat.BF16 or WeightFormat.Int8 or WeightFormat.Fp8 => TensorDType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(Weights), Weights, "A resolved strategy has weights f32, bf16, f16, int8 or fp8."),
    };

    /// <summary>The 8-bit dtype of the quantised Linear matrices (<see cref="TensorDType.I8"/>, <see cref="TensorDType.F8E4M3"/>), or null for the float formats.</summary>
    public TensorDType? QuantizedDType => Weights switch
    {
        WeightFormat.Int8 => TensorDType.I8,
        WeightFormat.Fp8 => TensorDType.F8E4M3,
        _ => null,
    };

    /// <summary>Whether the weights are quantised (lossy).</summary>
    public bool IsLossy => QuantizedDType is not null;

    /// <summary>The default VAE tile size in pixels (64 latents; diffusers' tile for a 512-sample VAE).</summary>
    public const int DefaultVaeTileSize = 512;

    /// <summary>The VAE tile size in pixels when <see cref="VaeTiling"/> is on (diffusers' <c>tile_sample_min_size</c>; overlap 0.25).</summary>
    public int VaeTileSize { get; init; } = DefaultVaeTileSize;

    /// <summary>The tiled-decode settings of this rung (null when the decode is untiled).</summary>
    /// <exception cref="Models.Vae.VaeTileSizeException"><see cref="VaeTileSize"/> is below the latent minimum or does not tile.</exception>
    public Models.Vae.VaeTileSettings? VaeTiles => VaeTiling ? Models.Vae.VaeTileSettings.FromSampleSize(VaeTileSize) : null;

    /// <summary>Where text-encoder layers live.</summary>
    public LayerPlacement TextEncoderPlacement => Offload is OffloadMode.TextEncoder or OffloadMode.All ? LayerPlacement.Streamed : LayerPlacement.Resident;

    /// <summary>Where DiT blocks live.</summary>
    public LayerPlacement TransformerPlacement => Offload == OffloadMode.All ? LayerPlacement.Streamed : LayerPlacement.Resident;

    /// <summary>One line, e.g. <c>offload text-encoder, weights bf16, activations f32, vae tiling off (resident needs 2.1 GiB more)</c>.</summary>
    public string Describe() => $"offload {OffloadName}, weights {WeightsName}, activations {ActivationsName}, vae tiling {(VaeTiling ? $"on ({VaeTileSize} px tiles)" : "off")} ({Reason})";
}

/// <summary>A rung value that exists but whose mechanism has not landed yet (8-bit weights, bf16 activations, VAE tiling).</summary>
public sealed class RungNotAvailableException : NotSupportedException
{
    /// <summary>Creates the error for <paramref name="option"/> = <paramref name="value"/>.</summary>
    public RungNotAvailableException(string option, string value)
        : base($"{option} {value} is not available yet: its kernels have not landed in this build. Available now: {AvailableFor(option)}.")
    {
        Option = option;
        Value = value;
    }

    /// <summary>The option (e.g. <c>--weights</c>).</summary>
    public string Option { get; }

    /// <summary>The value asked for (e.g. <c>int8</c>).</summary>
    public string Value { get; }

    private static string AvailableFor(string option) => option switch
    {
        "--activations" => "f32",
        "--dtype" => "f32 (bf16/f16 set the activations too, which need bf16 activations)",
        _ => "see zimage plan --help",
    };
}

/// <summary>The CLI/config spellings of the rung values and their typed parsing.</summary>
public static class ResidencyNames
{
    /// <summary>Allowed <c>--offload</c> values.</summary>
    public const string OffloadValues = "none, text-encoder, all, auto";
    /// <summary>Allowed <c>--weights</c> values.</summary>
    public const string WeightValues = "auto, f32, bf16, f16, int8, fp8";
    /// <summary>Allowed <c>--activations</c> values.</summary>
    public const string ActivationValues = "f32, bf16";
    /// <summary>Allowed <c>--vae-tiling</c> values.</summary>
    public const string TilingValues = "auto, on, off";
    /// <summary>Allowed <c>--dtype</c> values.</summary>
    public const string DTypeValues = "f32, bf16, f16";

    /// <summary>Parses <c>--offload</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of <see cref="OffloadValues"/>.</exception>
    public static OffloadMode ParseOffload(string value) => Norm(value) switch
    {
        "auto" => OffloadMode.Auto,
        "none" => OffloadMode.None,
        "text-encoder" or "textencoder" => OffloadMode.TextEncoder,
        "all" => OffloadMode.All,
        _ => throw Bad("--offload", value, OffloadValues),
    };

    /// <summary>Parses <c>--weights</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of <see cref="WeightValues"/>.</exception>
    public static WeightFormat ParseWeights(string value) => Norm(value) switch
    {
        "auto" => WeightFormat.Auto,
        "f32" => WeightFormat.F32,
        "bf16" => WeightFormat.BF16,
        "f16" => WeightFormat.F16,
        "int8" => WeightFormat.Int8,
        "fp8" => WeightFormat.Fp8,
        _ => throw Bad("--weights", value, WeightValues),
    };

    /// <summary>Parses <c>--activations</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of <see cref="ActivationValues"/>.</exception>
    public static ActivationFormat ParseActivations(string value) => Norm(value) switch
    {
        "f32" => ActivationFormat.F32,
        "bf16" => ActivationFormat.BF16,
        _ => throw Bad("--activations", value, ActivationValues),
    };

    /// <summary>Parses <c>--vae-tiling</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of <see cref="TilingValues"/>.</exception>
    public static VaeTilingMode ParseTiling(string value) => Norm(value) switch
    {
        "auto" => VaeTilingMode.Auto,
        "on" => VaeTilingMode.On,
        "off" => VaeTilingMode.Off,
        _ => throw Bad("--vae-tiling", value, TilingValues),
    };

    /// <summary>Parses <c>--dtype</c> into the weight and activation formats it sets (as diffusers' <c>torch_dtype</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of <see cref="DTypeValues"/>.</exception>
    public static (WeightFormat Weights, ActivationFormat Activations) ParseDType(string value) => Norm(value) switch
    {
        "f32" or "float32" => (WeightFormat.F32, ActivationFormat.F32),
        "bf16" or "bfloat16" => (WeightFormat.BF16, ActivationFormat.BF16),
        "f16" or "float16" => throw new RungNotAvailableException("--dtype", value),
        _ => throw Bad("--dtype", value, DTypeValues),
    };

    /// <summary>The CLI spelling.</summary>
    public static string Name(OffloadMode m) => m switch { OffloadMode.TextEncoder => "text-encoder", _ => m.ToString().ToLowerInvariant() };
    /// <summary>The CLI spelling.</summary>
    public static string Name(WeightFormat w) => w.ToString().ToLowerInvariant();
    /// <summary>The CLI spelling.</summary>
    public static string Name(ActivationFormat a) => a.ToString().ToLowerInvariant();

    private static string Norm(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant();
    }

    private static ArgumentOutOfRangeException Bad(string option, string value, string allowed) =>
        new(option, value, $"{option} '{value}' is not a known value; allowed: {allowed}.");
}
