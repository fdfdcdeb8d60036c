using System.Diagnostics;
using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Pipeline;

/// <summary>Measured timing and workspace peak of a stage.</summary>
internal sealed class StageMeasure(string name)
{
    public string Name { get; } = name;
    public TimeSpan Duration { get; set; }
    public long PeakBytes { get; set; }
}

/// <summary>What a run produced.</summary>
internal sealed record RunOutput(IReadOnlyList<RgbImage> Images, IReadOnlyList<StageMeasure> Stages);

/// <summary>
/// The Z-Image loop over an <see cref="IGenerationEngine"/>: tokenise, encode, per image seeded noise →
/// N Euler steps (with CFG, truncation and normalisation) → VAE decode. img2img and inpaint are optional steps of the
/// same loop (diffusers' <c>ZImageImg2ImgPipeline</c>/<c>ZImageInpaintPipeline</c>): a <c>vae-encode</c> stage
/// encodes the init image and noises it to the first remaining sigma (the first <c>int(N − N·strength)</c> steps
/// are skipped), and with a mask every step ends with the blend towards the re-noised image latents. The same code runs for real and for plans, so
/// both make the same allocations; every stage is a peak window of its own.
/// </summary>
internal static class GenerationRunner
{
    public const string TextEncoderStage = "text-encoder";
    public const string VaeStage = "vae-decode";
    public const string VaeEncodeStage = "vae-encode";
    public static string StepStage(int step) => "denoise-step-" + step.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="request"/> on <paramref name="engine"/>.</summary>
    /// <param name="engine">The engine (real or planning).</param>
    /// <param name="request">The resolved request.</param>
    /// <param name="initialLatents">Latents replacing the seeded noise, or null.</param>
    /// <param name="maxPromptTokens">Right truncation of the templated prompt (512 in Z-Image).</param>
    /// <param name="promptIdsOverride">Token ids to use instead of tokenising (plans for a given prompt length).</param>
    /// <param name="report">Progress sink (stage, step, image index, preview), or null.</param>
    /// <param name="previews">Whether to compute latent previews after each step.</param>
    /// <param name="cancellationToken">Checked between stages and steps; everything allocated is released on cancellation.</param>
    /// <param name="edit">The init image/mask/posterior draws when <see cref="GenerationParameters.Strength"/> is set; null
    /// there plans the same run with a blank image and an all-keep mask of the request's size.</param>
    public static RunOutput Run(IGenerationEngine engine, GenerationParameters request, LatentTensor? initialLatents, int maxPromptTokens,
        (int[] Prompt, int[]? Negative)? promptIdsOverride, Action<GenerationStage, int, int, RgbImage?>? report, bool previews,
        CancellationToken cancellationToken, EditInputs? edit = null)
    {
        var stages = new Dictionary<string, StageMeasure>(StringComparer.Ordinal);
        var order = new List<StageMeasure>();
        var images = new List<RgbImage>(request.NumImages);
        int h = request.Height / 8, w = request.Width / 8;

        T Stage<T>(string name, Func<T> body)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!stages.TryGetValue(name, out var m))
            {
                stages[name] = m = new StageMeasure(name);
                order.Add(m);
            }
            engine.ResetPeakStats();
            long start = Stopwatch.GetTimestamp();
            T result = body();
            m.Duration += Stopwatch.GetElapsedTime(start);
            m.PeakBytes = Math.Max(m.PeakBytes, engine.GetMemoryStats().PeakWorkspaceBytes);
            if (cancellationToken.IsCancellationRequested)
            {
                // Cancelled while the stage ran: drop what it produced and leave through the same cleanup path.
                (result as IDisposable)?.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
            }
            return result;
        }

        bool cfg = request.UsesCfg;
        int[] ids = promptIdsOverride?.Prompt ?? engine.Tokenize(request.Prompt, maxPromptTokens);
        int[]? negIds = !cfg ? null : promptIdsOverride?.Negative ?? engine.Tokenize(request.NegativePrompt ?? "", maxPromptTokens);

        Tensor? cap = null, capNeg = null;
        try
        {
            report?.Invoke(GenerationStage.EncodingPrompt, 0, 0, null);
            Stage(TextEncoderStage, () =>
            {
                cap = engine.EncodePrompt(ids);
                if (negIds is not null) capNeg = engine.EncodePrompt(negIds);
                return 0;
            });

            float[] sigmas = engine.Sigmas(request.Steps);
            int count = 16 * h * w;
            bool editing = request.Strength is not null, masked = editing && request.MaskGiven;
            int start = editing ? ImageEditing.StartStep(request.Steps, request.Strength!.Value) : 0;
            for (int img = 0; img < request.NumImages; img++)
            {
                float[] noise, eps = [];
                if (editing)
                {
                    // One generator, diffusers' draw order: the VAE posterior's eps first, then the noise.
                    float[] draws = initialLatents is not null && edit?.PosteriorNoise is not null ? [] : SeededNoise.Create(request.Seed + img, 2 * count);
                    eps = edit?.PosteriorNoise is { } pn ? pn.Item(img).ToArray() : draws[..count];
                    noise = initialLatents is not null ? initialLatents.Item(img).ToArray() : draws[count..];
                }
                else
                {
                    noise = initialLatents is not null ? initialLatents.Item(img).ToArray() : SeededNoise.Create(request.Seed + img, count);
                }
                Tensor? latents = null, imageLatents = null, noiseLatents = null, mask = null;
                try
                {
                    if (editing)
                    {
                        Stage(VaeEncodeStage, () =>
                        {
                            imageLatents = engine.EncodeImage(edit?.Image ?? new RgbImage(request.Width, request.Height, new byte[request.Width * request.Height * 3]), eps);
                            latents = engine.CreateLatents(noise, h, w);
                            if (masked)
                            {
                                noiseLatents = engine.CreateLatents(noise, h, w);
                                mask = engine.CreateMask(edit?.Mask is { } m ? ImageEditing.MaskToLatent(m, 8) : new float[h * w], h, w);
                            }
                            engine.AddNoise(imageLatents, latents, sigmas[start]);
                            if (!masked)
                            {
                                // img2img needs the image latents only to noise the start.
                                imageLatents.Dispose();
                                imageLatents = null;
                            }
                            return 0;
                        });
                    }
                    for (int i = start; i < request.Steps; i++)
                    {
                        if (i == start) report?.Invoke(GenerationStage.Denoising, start, img, null);
                        int step = i;
                        Stage(StepStage(i + 1), () =>
                        {
                            latents ??= engine.CreateLatents(noise, h, w);
                            float t = engine.ModelTime(sigmas[step]);
                            // diffusers: guidance is dropped on steps whose model time exceeds the truncation threshold.
                            bool guide = cfg && !(request.CfgTruncation <= 1f && t > request.CfgTruncation);
                            if (guide)
                            {
                                var (pos, neg) = engine.PredictGuided(latents, t, cap!, capNeg!);
                                using (pos)
                                using (neg)
                                {
                                    engine.CombineGuidance(pos, neg, request.Guidance, request.CfgNormalization);
                                    neg.Dispose();
                                    engine.EulerStep(latents, pos, sigmas[step + 1] - sigmas[step]);
                                }
                                return 0;
                            }
                            using var pred = engine.Predict(latents, t, cap!);
                            engine.EulerStep(latents, pred, sigmas[step + 1] - sigmas[step]);
                            // Inpaint: keep the unmasked region on the image's own noising path (clean after the last step).
                            if (mask is not null) engine.BlendMasked(latents, imageLatents!, noiseLatents!, mask, sigmas[step + 1]);
                            return 0;
                        });
                        RgbImage? preview = previews && report is not null ? engine.Preview(latents!) : null;
                        report?.Invoke(GenerationStage.Denoising, i + 1, img, preview);
                    }
                    if (img == request.NumImages - 1)
                    {
                        // The captions are not needed for the last decode; freeing them first lowers its peak.
                        cap?.Dispose(); cap = null;
                        capNeg?.Dispose(); capNeg = null;
                    }
                    report?.Invoke(GenerationStage.Decoding, request.Steps, img, null);
                    latents ??= engine.CreateLatents(noise, h, w);
                    images.Add(Stage(VaeStage, () => engine.Decode(latents)));
                }
                finally
                {
                    latents?.Dispose();
                    imageLatents?.Dispose();
                    noiseLatents?.Dispose();
                    mask?.Dispose();
                }
            }
        }
        finally
        {
            cap?.Dispose();
            capNeg?.Dispose();
        }
        return new RunOutput(images, order);
    }
}
