using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using ZImage.Cli.Rendering;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage generate</c>: one text-to-image generation through the same DI registration a host uses
/// (<c>AddZImage</c>), with a progress bar and the memory carve-up, or one JSON object with <c>--json</c>.
/// </summary>
internal static class GenerateCommand
{
    public const string DemoNotice = "No --model given: using a tiny random-weight Z-Image built in memory. This demonstrates the pipeline and the memory guard, not image quality.";

    public static Command Create()
    {
        var prompt = new Option<string>("--prompt") { Description = "The prompt.", Required = true };
        var negative = new Option<string?>("--negative") { Description = "Negative prompt (used with guidance > 0)." };
        var width = CliOptions.Width();
        var height = CliOptions.Height();
        var steps = CliOptions.Steps();
        var guidance = CliOptions.Guidance();
        var seed = new Option<long?>("--seed") { Description = "Seed of the host-side noise (default: random, reported)." };
        var mode = CliOptions.Mode();
        var output = new Option<string>("--out") { Description = "Output PNG path (parameters are written into PNG text chunks).", DefaultValueFactory = _ => "out/zimage.png" };
        var model = CliOptions.Model();
        var latents = new Option<string?>("--latents") { Description = "A .safetensors file with initial latents [1,16,H/8,W/8] (tensor 'latents', 'initial_latents' or the only tensor)." };
        var device = DeviceOption.Create();
        var deviceBytes = CliOptions.DeviceBytes();
        var inference = CliOptions.Inference();
        var allocator = CliOptions.Allocator();
        var json = CliOptions.Json();
        var onOutOfRange = OutOfRangeOption.Create();
        var ladder = new ResidencyCliOptions();
        var initImage = new Option<string?>("--init-image") { Description = "img2img: start from this image (PNG/JPEG/BMP; its size is the output size, multiples of 16)." };
        var strength = new Option<float?>("--strength") { Description = "img2img/inpaint strength in (0, 1] (default 0.6): the share of the schedule run on the init image." };
        var mask = new Option<string?>("--mask") { Description = "Inpaint mask image (the init image's size): pixels >= 128 are repainted, the rest kept." };
        var command = new Command("generate", "Generate an image.")
        {
            prompt, negative, width, height, steps, guidance, seed, mode, output, model, latents, device, deviceBytes, inference, allocator, json,
            initImage, strength, mask,
        };
        command.Options.Add(onOutOfRange);
        foreach (var o in ladder.All) command.Options.Add(o);
        var edit = new EditCliOptions();
        foreach (var o in edit.All) command.Options.Add(o);
        // Errors are mapped to exit codes and messages in one place (CliError); the token is cancelled by Ctrl+C.
        command.SetAction(RunAsync);
        return command;

        async Task<int> RunAsync(ParseResult parse, CancellationToken ct)
        {
            bool asJson = parse.GetValue(json);
            var residency = new Runtime.Residency.ResidencyOptions();
            ladder.Apply(parse, residency);
            string? dir = parse.GetValue(model);
            // Every input is checked before anything is loaded or generated: a bad --out, --model or --latents costs no run.
            string outPath = GeneratePreflight.CheckOutput(parse.GetValue(output)!);
            string? deviceMemory = CliOptions.Size("--device-bytes", parse.GetValue(deviceBytes));
            string? inferenceBytes = CliOptions.Size("--inference", parse.GetValue(inference));
            var deviceChoice = DeviceOption.Parse(parse.GetValue(device));
            if (dir is not null) GeneratePreflight.CheckModel(dir);
            LatentTensor? initial = parse.GetValue(latents) is { } file ? GeneratePreflight.ReadLatents(file) : null;
            var loras = edit.Loras(parse, dir);
            var initRgb = parse.GetValue(initImage) is { } initFile ? EditCliOptions.LoadInitImage(initFile) : null;
            var maskImage = parse.GetValue(mask) is { } maskFile ? EditCliOptions.LoadMask(maskFile) : null;
            float? strengthValue = EditCliOptions.CheckStrength("--strength", parse.GetValue(strength));
            EditCliOptions.CheckSizes(initRgb, maskImage, strengthValue, parse.GetValue(width), parse.GetValue(height));
            if (dir is null && !asJson) AnsiConsole.MarkupLine("[yellow]" + Markup.Escape(DemoNotice) + "[/]");

            var request = new GenerationRequest
            {
                Prompt = parse.GetValue(prompt)!,
                NegativePrompt = parse.GetValue(negative),
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Steps = parse.GetValue(steps),
                Guidance = parse.GetValue(guidance),
                Seed = parse.GetValue(seed),
                Mode = parse.GetValue(mode),
                InitialLatents = initial,
                InitImage = initRgb,
                Strength = strengthValue,
                Mask = maskImage,
            };
            var twoStage = edit.TwoStageRequest(parse, request);
            // The CLI reports warnings (result.Warnings) and errors (CliError) itself: console logging would repeat
            // them (and would break --json), so only ZIMAGE_LOG_LEVEL=Information|Warning|... turns it on, on stderr.
            var services = new ServiceCollection();
            services.AddLogging(b => b.AddSimpleConsole().SetMinimumLevel(GeneratePreflight.LogLevelFromEnvironment())
                .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));
            services.AddZImage(o =>
            {
                o.ModelDirectory = dir;
                o.ImageEditing = edit.NeedsImageEditing(parse, parse.GetValue(initImage));
                o.Loras = loras;
                o.Device = deviceChoice.Preference;
                o.DeviceIndex = deviceChoice.Index;
                o.AllocatorSettings = parse.GetValue(allocator) ?? "";
                o.Residency = residency;
                o.Budget.DeviceMemory = deviceMemory;
                o.Budget.Inference = inferenceBytes;
                o.Limits.OutOfRange = OutOfRangeOption.Policy(parse.GetValue(onOutOfRange));
                if (dir is null)
                {
                    // The demo model is sized for a CPU accelerator: size its inference segment for 256² rather than 1024².
                    o.Budget.SizingWidth = 256;
                    o.Budget.SizingHeight = 256;
                }
            });
            await using var provider = services.BuildServiceProvider();
            var pipeline = provider.GetRequiredService<ImagePipeline>();

            TwoStageResult? twoStageResult = null;
            async Task<GenerationResult> Run(IProgress<GenerationProgress>? progress)
            {
                if (twoStage is null) return await pipeline.GenerateAsync(request, progress, ct);
                twoStageResult = await pipeline.GenerateAsync(twoStage, progress, ct);
                return twoStageResult.Refine;
            }

            GenerationResult result;
            if (asJson)
            {
                await pipeline.StartAsync(ct);
                result = await Run(null);
            }
            else
            {
                result = await AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var load = ctx.AddTask("loading model + compiling kernels", maxValue: 1);
                        await pipeline.StartAsync(ct);
                        load.Value = 1;
                        var task = ctx.AddTask("queued", maxValue: 1);
                        var progress = new SyncProgress(p =>
                        {
                            task.MaxValue = Math.Max(1, p.TotalSteps * p.ImageCount + 2);
                            task.Description = p.Stage switch
                            {
                                GenerationStage.Queued => $"queued (position {p.QueuePosition})",
                                GenerationStage.EncodingPrompt => "text encoder",
                                GenerationStage.Denoising => $"denoising step {p.Step}/{p.TotalSteps}" + (p.ImageCount > 1 ? $" (image {p.ImageIndex + 1}/{p.ImageCount})" : ""),
                                GenerationStage.Decoding => "VAE decode",
                                _ => "done",
                            };
                            task.Value = p.Stage switch
                            {
                                GenerationStage.EncodingPrompt => 0,
                                GenerationStage.Denoising => 1 + p.ImageIndex * p.TotalSteps + p.Step,
                                GenerationStage.Decoding => 1 + (p.ImageIndex + 1) * p.TotalSteps,
                                GenerationStage.Completed => task.MaxValue,
                                _ => task.Value,
                            };
                        });
                        return await Run(progress);
                    });
            }

            var paths = new List<string>();
            for (int i = 0; i < result.Images.Count; i++)
            {
                string path = result.Images.Count == 1 ? outPath : Path.Combine(Path.GetDirectoryName(outPath) ?? "", $"{Path.GetFileNameWithoutExtension(outPath)}-{i}{Path.GetExtension(outPath)}");
                await result.SavePngAsync(path, i, ct);
                paths.Add(Path.GetFullPath(path));
            }
            string? explorePath = twoStageResult is null ? null : await TwoStageOutput.SaveExploreAsync(twoStageResult, outPath, ct);
            var snapshot = pipeline.Memory;
            if (asJson)
            {
                var p = result.Parameters;
                JsonOut.Write(new
                {
                    output = paths[0],
                    outputs = paths,
                    demo_model = pipeline.Model.IsDemoModel,
                    note = pipeline.Model.IsDemoModel ? DemoNotice : null,
                    device = pipeline.Model.DeviceName,
                    tokenizer = pipeline.Model.TokenizerNote,
                    parameters = new
                    {
                        prompt = p.Prompt, negative_prompt = p.NegativePrompt, mode = p.Mode, width = p.Width, height = p.Height, steps = p.Steps,
                        guidance = p.Guidance, cfg_truncation = p.CfgTruncation, cfg_normalization = p.CfgNormalization, seed = p.Seed,
                        num_images = p.NumImages, initial_latents = p.InitialLatentsGiven, model = p.Model,
                        strength = p.Strength, mask = p.MaskGiven, loras = p.Loras,
                    },
                    two_stage = TwoStageOutput.Json(twoStageResult, explorePath),
                    warnings = result.Warnings,
                    timings = new
                    {
                        queue_ms = result.QueueTime.TotalMilliseconds,
                        total_ms = result.TotalTime.TotalMilliseconds,
                        stages = result.Stages.Select(s => new { name = s.Name, ms = s.Duration.TotalMilliseconds }),
                    },
                    memory = new
                    {
                        state = snapshot.State,
                        total_bytes = snapshot.TotalBytes,
                        system_reserve_bytes = snapshot.SystemReserveBytes,
                        base_bytes = snapshot.BaseBytes,
                        inference_bytes = snapshot.InferenceLimitBytes,
                        inference_in_use_bytes = snapshot.InferenceInUseBytes,
                        buffer_bytes = snapshot.BufferBytes,
                        free_bytes = snapshot.FreeBytes,
                    },
                    strategy = ResidencyCliOptions.Json(result.Plan.Strategy),
                    host_bytes = result.Plan.HostBytes,
                    uploaded_bytes_per_step = result.Plan.UploadedBytesPerStep,
                    request_peak_bytes = result.Plan.RequestPeakBytes,
                    stages = result.Stages.Select(s => new { name = s.Name, planned_peak_bytes = s.PlannedPeakBytes, measured_peak_bytes = s.MeasuredPeakBytes }),
                });
                return 0;
            }
            // The demo notice was shown before the run; the pipeline's own demo warning would repeat it.
            foreach (var w in result.Warnings.Distinct().Where(w => !(dir is null && w.StartsWith("tiny random-weight demo model", StringComparison.Ordinal))))
                AnsiConsole.MarkupLine("[yellow]warning:[/] " + Markup.Escape(w));
            if (result.Plan.Strategy is { } strat) AnsiConsole.MarkupLine("[bold]strategy[/] " + Markup.Escape(strat.Describe()));
            AnsiConsole.MarkupLine($"[bold]Memory[/] ({snapshot.State}) on {Markup.Escape(pipeline.Model.DeviceName)}");
            AnsiConsole.Write(MemoryView.Bar(snapshot));
            AnsiConsole.Write(MemoryView.Stages(result.Stages.Select(s => (s.Name, s.PlannedPeakBytes, (long?)s.MeasuredPeakBytes, (TimeSpan?)s.Duration))));
            var q = result.Parameters;
            AnsiConsole.MarkupLine($"{q.Width}x{q.Height}, {q.Mode}, {q.Steps} steps, guidance {q.Guidance}, seed {q.Seed}, {result.TotalTime.TotalSeconds:0.0} s");
            if (twoStageResult is not null) AnsiConsole.MarkupLine(Markup.Escape(TwoStageOutput.Describe(twoStageResult)));
            foreach (var path in paths.Concat(explorePath is null ? [] : [explorePath])) AnsiConsole.MarkupLine("wrote [green]" + Markup.Escape(path) + "[/]");
            return 0;
        }
    }

    // Spectre's progress context must be updated synchronously from the reporting thread.
    private sealed class SyncProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
