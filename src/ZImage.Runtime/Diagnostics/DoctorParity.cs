using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Runtime.Diagnostics;

/// <summary>One reference case the doctor ran.</summary>
/// <param name="Case">The manifest's case name, e.g. <c>e2e_64x64</c>.</param>
/// <param name="Kind">The manifest's kind (<c>text_encoder</c>, <c>vae_decode</c>, <c>e2e</c>).</param>
/// <param name="Ok">Whether every compared value is within the manifest's tolerance.</param>
/// <param name="MaxError">Largest |ours − reference| (for the e2e image: in uint8 steps).</param>
/// <param name="Tolerance">The manifest's recommended bound for <see cref="MaxError"/> (never loosened).</param>
/// <param name="Seconds">Wall time of the case.</param>
/// <param name="Detail">What failed, or what was compared.</param>
internal sealed record DoctorParityCase(string Case, string Kind, bool Ok, double MaxError, double Tolerance, double Seconds, string? Detail);

/// <summary>The doctor's <c>parity</c> section.</summary>
/// <param name="Ran">Whether the reference cases were found and run.</param>
/// <param name="Reason">Why not (only when <see cref="Ran"/> is false).</param>
/// <param name="Fixtures">The fixtures folder used or looked for.</param>
/// <param name="Cases">One row per case.</param>
internal sealed record DoctorParity(bool Ran, string? Reason, string? Fixtures, IReadOnlyList<DoctorParityCase> Cases)
{
    /// <summary>True when nothing ran (absent fixtures are not a failure) or every case passed.</summary>
    public bool Ok => !Ran || (Cases.Count > 0 && Cases.All(c => c.Ok));
}

/// <summary>
/// The doctor's parity section: the tiny-checkpoint reference cases of <c>shared/fixtures/tiny-zimage-reference</c>
/// (the prompt embeddings of the text-encoder cases, the VAE decode cases and the end-to-end text-to-image runs) on the
/// selected device, in float32, against the manifest's recommended tolerances.
/// </summary>
internal static class DoctorParityCheck
{
    /// <summary>The reference folder inside a fixtures folder.</summary>
    public const string ReferenceFolder = "tiny-zimage-reference";

    /// <summary>The checkpoint folder inside a fixtures folder.</summary>
    public const string CheckpointFolder = "tiny-zimage";

    /// <summary>
    /// The fixtures folder: <paramref name="explicitDir"/>, else <c>ZIMAGE_FIXTURES</c>, else the first <c>shared/fixtures</c>
    /// beside an ancestor of the current directory or of the executable (a checkout keeps it at <c>../shared/fixtures</c>).
    /// </summary>
    /// <returns>The folder, or null with the places looked at in <paramref name="looked"/>.</returns>
    public static string? FindFixtures(string? explicitDir, out string looked)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(explicitDir)) candidates.Add(Path.GetFullPath(explicitDir));
        else
        {
            if (Environment.GetEnvironmentVariable("ZIMAGE_FIXTURES") is { Length: > 0 } env) candidates.Add(Path.GetFullPath(env));
            foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            {
                for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                    candidates.Add(Path.Combine(d.FullName, "shared", "fixtures"));
            }
        }
        looked = string.Join(", ", candidates.Distinct().Take(6)) + (candidates.Count > 6 ? ", ..." : "");
        return candidates.FirstOrDefault(c => File.Exists(Path.Combine(c, ReferenceFolder, "manifest.json")) && Directory.Exists(Path.Combine(c, CheckpointFolder)));
    }

    /// <summary>Runs every text-encoder, VAE-decode and end-to-end case found under <paramref name="fixtures"/>.</summary>
    /// <param name="fixtures">The fixtures folder, or null to report the section as not run.</param>
    /// <param name="forceCpu">Run on ILGPU's CPU accelerator.</param>
    /// <param name="deviceIndex">The CUDA device ordinal otherwise.</param>
    /// <param name="notFoundReason">The reason shown when <paramref name="fixtures"/> is null.</param>
    /// <param name="cancellationToken">Cancels between cases.</param>
    public static async Task<DoctorParity> RunAsync(string? fixtures, bool forceCpu, int deviceIndex, string notFoundReason, CancellationToken cancellationToken = default)
    {
        if (fixtures is null) return new DoctorParity(false, notFoundReason, null, []);
        string referenceDir = Path.Combine(fixtures, ReferenceFolder), checkpoint = Path.Combine(fixtures, CheckpointFolder);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(referenceDir, "manifest.json")));
        var cases = manifest.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToList();
        var rows = new List<DoctorParityCase>();
        var options = new ZImageOptions
        {
            ModelDirectory = checkpoint,
            Device = forceCpu ? DevicePreference.Cpu : DevicePreference.Auto,
            DeviceIndex = deviceIndex,
            WeightDType = TensorDType.F32,
        };
        options.Budget.DeviceMemory = "4GiB";
        options.Budget.SystemReserve = "0";
        options.Budget.SizingWidth = 64;
        options.Budget.SizingHeight = 80;
        options.Presets.DefaultResolution = null;
        var engine = ZImageEngine.Open(checkpoint, new ZImageEngineOptions { ForceCpu = forceCpu, DeviceIndex = deviceIndex, WeightDType = TensorDType.F32 });
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync(cancellationToken).ConfigureAwait(false);
        foreach (JsonElement c in cases)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = c.GetProperty("name").GetString()!, kind = c.GetProperty("kind").GetString()!;
            if (kind is not ("text_encoder" or "vae_decode" or "e2e")) continue;
            var sw = Stopwatch.StartNew();
            DoctorParityCase row;
            try
            {
                using var file = SafetensorsFile.Open(Path.Combine(referenceDir, c.GetProperty("file").GetString()!));
                row = kind switch
                {
                    "text_encoder" => TextEncoderCase(engine, file, name, c),
                    "vae_decode" => VaeCase(engine, file, name, c),
                    _ => await EndToEndCaseAsync(pipeline, file, name, c, cancellationToken).ConfigureAwait(false),
                };
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
            {
                row = new DoctorParityCase(name, kind, false, double.NaN, 0, 0, ex.GetType().Name + ": " + ex.Message);
            }
            rows.Add(row with { Seconds = sw.Elapsed.TotalSeconds });
        }
        return new DoctorParity(true, null, fixtures, rows);
    }

    private static double Tolerance(JsonElement c, string field = "recommended_max_abs") => c.GetProperty("tolerance").GetProperty(field).GetDouble();

    private static DoctorParityCase Compare(string name, string kind, string what, float[] ours, float[] reference, double tolerance)
    {
        if (ours.Length != reference.Length)
            return new DoctorParityCase(name, kind, false, double.NaN, tolerance, 0, $"{what}: {ours.Length} values, the reference has {reference.Length}");
        double max = 0;
        for (int i = 0; i < ours.Length; i++) max = Math.Max(max, Math.Abs((double)ours[i] - reference[i]));
        bool ok = max <= tolerance; // NaN fails
        return new DoctorParityCase(name, kind, ok, max, tolerance, 0, ok ? what : $"{what}: max |diff| {max:G3} > {tolerance:G3}");
    }

    private static DoctorParityCase TextEncoderCase(ZImageEngine engine, SafetensorsFile file, string name, JsonElement c)
    {
        int[] ids = [.. MemoryMarshal.Cast<byte, long>(file.GetBytes("input_ids")).ToArray().Select(v => (int)v)];
        using var hidden = engine.EncodePrompt(ids);
        return Compare(name, "text_encoder", "hidden_states_m2", engine.ReadValues(hidden), file.ReadSingles("hidden_states_m2"), Tolerance(c));
    }

    private static DoctorParityCase VaeCase(ZImageEngine engine, SafetensorsFile file, string name, JsonElement c)
    {
        var input = file.GetInfo("latents");
        int h = input.Shape[^2], w = input.Shape[^1];
        using var latents = engine.CreateLatents(file.ReadSingles("latents"), h, w);
        return Compare(name, "vae_decode", "image", engine.DecodeValues(latents), file.ReadSingles("image"), Tolerance(c));
    }

    private static async Task<DoctorParityCase> EndToEndCaseAsync(ImagePipeline pipeline, SafetensorsFile file, string name, JsonElement c, CancellationToken ct)
    {
        JsonElement p = c.GetProperty("params");
        float g = p.GetProperty("guidance_scale").GetSingle();
        var latents = file.GetInfo("initial_latents");
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = p.GetProperty("prompt").GetString()!,
            NegativePrompt = p.TryGetProperty("negative_prompt", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null,
            Width = p.GetProperty("W").GetInt32(),
            Height = p.GetProperty("H").GetInt32(),
            Steps = p.GetProperty("num_inference_steps").GetInt32(),
            Guidance = g,
            Mode = g > 0 ? GenerationMode.Standard : GenerationMode.Turbo,
            InitialLatents = new LatentTensor(file.ReadSingles("initial_latents"), latents.Shape),
        }, null, ct).ConfigureAwait(false);
        byte[] ours = result.Images[0].Pixels, reference = file.GetBytes("image_uint8").ToArray();
        JsonElement tol = c.GetProperty("tolerance").GetProperty("image_uint8");
        double maxDiff = tol.GetProperty("recommended_max_abs_diff").GetDouble(), maxFraction = tol.GetProperty("recommended_max_fraction_differing").GetDouble();
        if (ours.Length != reference.Length)
            return new DoctorParityCase(name, "e2e", false, double.NaN, maxDiff, 0, $"image: {ours.Length} bytes, the reference has {reference.Length}");
        int worst = 0, differing = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            int d = Math.Abs(ours[i] - reference[i]);
            worst = Math.Max(worst, d);
            if (d > 0) differing++;
        }
        bool ok = worst <= maxDiff && differing <= maxFraction * ours.Length;
        return new DoctorParityCase(name, "e2e", ok, worst, maxDiff, 0,
            $"image_uint8: {differing} of {ours.Length} values differ (allowed {maxFraction:P0})" + (ok ? "" : " - outside the manifest's tolerance"));
    }
}
