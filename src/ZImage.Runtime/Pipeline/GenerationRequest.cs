namespace ZImage.Runtime.Pipeline;

/// <summary>A mode preset: how many denoising steps and how much classifier-free guidance.</summary>
public enum GenerationMode
{
    /// <summary>The distilled Turbo recipe: 8 steps, guidance 0 (no CFG).</summary>
    Turbo,
    /// <summary>25 steps, guidance 4.0.</summary>
    Standard,
    /// <summary>50 steps, guidance 5.0.</summary>
    Quality,
}

/// <summary>Named output sizes (all multiples of 16).</summary>
public enum ResolutionPreset
{
    /// <summary>512×512.</summary>
    Square512,
    /// <summary>768×768.</summary>
    Square768,
    /// <summary>1024×1024.</summary>
    Square1024,
    /// <summary>16:9 landscape, 1024×576 by default.</summary>
    Landscape16x9,
    /// <summary>9:16 portrait, 576×1024 by default.</summary>
    Portrait9x16,
}

/// <summary>
/// One text-to-image request. Unset values come from the <see cref="Mode"/> preset and the configured defaults; the
/// values that were actually used are reported in <see cref="GenerationResult.Parameters"/>.
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>
    /// The prompt (any language the Qwen3 tokenizer covers). Truncated to 512 tokens after the chat template. It must be
    /// well-formed UTF-16: a lone surrogate (e.g. <c>"a\uD800b"</c>) is rejected with
    /// <see cref="InvalidGenerationRequestException"/> naming its UTF-16 index, never silently replaced.
    /// </summary>
    public required string Prompt { get; init; }

    /// <summary>The negative prompt; used only when guidance is above 0 (null then means the empty prompt, as diffusers does). Well-formed UTF-16, as <see cref="Prompt"/>.</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>The steps/guidance preset. Explicit <see cref="Steps"/> and <see cref="Guidance"/> override it.</summary>
    public GenerationMode Mode { get; init; } = GenerationMode.Turbo;

    /// <summary>A named size; explicit <see cref="Width"/>/<see cref="Height"/> override it.</summary>
    public ResolutionPreset? Resolution { get; init; }

    /// <summary>Output width in pixels (a multiple of 16), or null for the preset/default.</summary>
    public int? Width { get; init; }

    /// <summary>Output height in pixels (a multiple of 16), or null for the preset/default.</summary>
    public int? Height { get; init; }

    /// <summary>Denoising steps, or null for the mode preset.</summary>
    public int? Steps { get; init; }

    /// <summary>Guidance scale in diffusers' convention (<c>pred = pos + g·(pos − neg)</c>; 0 disables CFG), or null for the mode preset.</summary>
    public float? Guidance { get; init; }

    /// <summary>CFG truncation: steps whose model time <c>1 − σ</c> exceeds this value skip guidance. 1.0 (default) never truncates.</summary>
    public float CfgTruncation { get; init; } = 1.0f;

    /// <summary>CFG normalisation: when above 0, the guided prediction's L2 norm is capped at this multiple of the positive prediction's. 0 (default) is off.</summary>
    public float CfgNormalization { get; init; }

    /// <summary>The seed of the host-side noise generator (<see cref="SeededNoise"/>); null picks a random seed, reported in the result.</summary>
    public long? Seed { get; init; }

    /// <summary>
    /// How many images to generate (image <c>i</c> uses seed <c>Seed + i</c>; a seed whose last image would overflow,
    /// above <c>long.MaxValue − (NumImages − 1)</c>, is rejected rather than wrapped).
    /// </summary>
    public int NumImages { get; init; } = 1;

    /// <summary>
    /// Initial latents instead of seeded noise, as diffusers' <c>latents=</c>: shape <c>[NumImages,16,H/8,W/8]</c>, finite values only.
    /// With <see cref="InitImage"/> these are the noise mixed into the encoded image (diffusers' second draw).
    /// </summary>
    public LatentTensor? InitialLatents { get; init; }

    /// <summary>
    /// img2img: the image to start from (diffusers' <c>ZImageImg2ImgPipeline</c>); with <see cref="Mask"/> inpaint
    /// (<c>ZImageInpaintPipeline</c>). Its size is the output size (Width/Height default to it and must match it).
    /// </summary>
    public RgbImage? InitImage { get; init; }

    /// <summary>
    /// How much of the schedule runs on the init image, in (0, 1]: the first <c>int(N − N·strength)</c> of the N steps are
    /// skipped and the image is noised to the first remaining sigma. Null = <see cref="ImageEditing.DefaultStrength"/>
    /// (0.6, diffusers' default). Only with <see cref="InitImage"/>.
    /// </summary>
    public float? Strength { get; init; }

    /// <summary>Inpaint mask, the init image's size: pixels ≥ 128 are repainted, the rest kept. Only with <see cref="InitImage"/>.</summary>
    public MaskImage? Mask { get; init; }

    /// <summary>Draws replacing the seeded VAE posterior noise (diffusers' first draw): <c>[NumImages,16,H/8,W/8]</c>. Only with <see cref="InitImage"/>.</summary>
    public LatentTensor? PosteriorNoise { get; init; }
}

/// <summary>A host float tensor of initial latents, <c>[batch, channels, height/8, width/8]</c>, row-major.</summary>
public sealed class LatentTensor
{
    /// <summary>
    /// Wraps <paramref name="data"/> (not copied) with a copy of <paramref name="shape"/>; the element count must match.
    /// Changing the caller's shape array afterwards does not change <see cref="Shape"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The shape is not 4-D or does not match the data length.</exception>
    public LatentTensor(float[] data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length != 4)
            throw new ArgumentException($"Latents must be 4-D [batch,channels,height,width]; got [{string.Join(",", shape)}].", nameof(shape));
        long n = 1;
        foreach (int d in shape)
        {
            if (d <= 0) throw new ArgumentException($"Latent dimensions must be positive; got [{string.Join(",", shape)}].", nameof(shape));
            n *= d;
        }
        if (n != data.Length)
            throw new ArgumentException($"Latent shape [{string.Join(",", shape)}] needs {n} values but {data.Length} were given.", nameof(data));
        Data = data;
        Shape = Array.AsReadOnly(shape.ToArray());
    }

    /// <summary>The values, row-major.</summary>
    public float[] Data { get; }

    /// <summary><c>[batch, channels, height, width]</c>: a read-only copy of the shape given to the constructor.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The values of batch item <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Item(int index)
    {
        int per = Shape[1] * Shape[2] * Shape[3];
        return Data.AsSpan(index * per, per);
    }
}
