using System.CommandLine;
using Spectre.Console;
using ZImage.Cli.Rendering;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage plan</c>: the exact memory plan of a request without running it: the pipeline runs in planning mode on a
/// simulated device with the real allocator policy. Without <c>--model</c> it uses the embedded Z-Image-Turbo config, so
/// plans need no weights.
/// </summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var prompt = new Option<string>("--prompt") { Description = "The prompt (its token count sizes the text-encoder and DiT stages).", DefaultValueFactory = _ => "" };
        var negative = new Option<string?>("--negative") { Description = "Negative prompt (used with guidance > 0)." };
        var width = CliOptions.Width();
        var height = CliOptions.Height();
        var steps = CliOptions.Steps();
        var guidance = CliOptions.Guidance();
        var mode = CliOptions.Mode();
        var model = CliOptions.Model();
        var deviceBytes = CliOptions.DeviceBytes();
        var inference = CliOptions.Inference();
        var reserve = CliOptions.SystemReserve();
        var buffer = CliOptions.Buffer();
        var allocator = CliOptions.Allocator();
        var json = CliOptions.Json();
        var ladder = new ResidencyCliOptions();
        var recommend = new Option<bool>("--recommend") { Description = "For 6, 8, 12, 16, 24 and 48 GiB cards: the largest resolution per mode and the rungs used, from exact plans." };
        var device = DeviceOption.Create();
        device.Description = "The device whose capacity is planned for when --device-bytes is not given: " + DeviceOption.Allowed + ".";
        var command = new Command("plan", "Show the exact memory plan of a request (per-stage peaks, carve-up, fits or how much more it needs).")
        {
            prompt, negative, width, height, steps, guidance, mode, model, deviceBytes, inference, reserve, buffer, allocator, json, recommend,
        };
        var onOutOfRange = OutOfRangeOption.Create();
        command.Options.Add(onOutOfRange);
        command.Options.Add(device);
        foreach (var o in ladder.All) command.Options.Add(o);
        var edit = new EditCliOptions();
        foreach (var o in edit.TwoStageOptions) command.Options.Add(o);
        // Errors are mapped to exit codes and messages in one place (CliError).
        command.SetAction(Run);
        return command;

        int Run(ParseResult parse)
        {
            var options = new ZImageOptions { AllocatorSettings = parse.GetValue(allocator) ?? "" };
            options.Budget.DeviceMemory = CliOptions.Size("--device-bytes", parse.GetValue(deviceBytes));
            options.Budget.Inference = CliOptions.Size("--inference", parse.GetValue(inference));
            if (CliOptions.Size("--system-reserve", parse.GetValue(reserve)) is { } r) options.Budget.SystemReserve = r;
            if (CliOptions.Size("--buffer", parse.GetValue(buffer)) is { } b) options.Budget.Buffer = b;
            options.Presets.DefaultResolution = ResolutionPreset.Square1024;
            options.Limits.OutOfRange = OutOfRangeOption.Policy(parse.GetValue(onOutOfRange));
            var deviceChoice = DeviceOption.Parse(parse.GetValue(device));
            long deviceCapacity = options.Budget.DeviceMemory is { } d ? CliOptions.ParseSize("--device-bytes", d) : DetectDeviceBytes(deviceChoice);
            string? dir = parse.GetValue(model);
            var config = dir is null ? ZImageConfig.Turbo : ZImageConfig.Load(dir);
            string tokDir = dir is null ? "" : Path.Combine(dir, ZImageConfig.TokenizerFolder);
            var tokenizer = dir is not null && File.Exists(Path.Combine(tokDir, "tokenizer.json")) ? Qwen2Tokenizer.Load(tokDir) : null;
            ladder.Apply(parse, options.Residency);
            string modelName = dir is null ? "Z-Image-Turbo (embedded config)" : new DirectoryInfo(dir).Name;
            var settings = AllocatorSettings.Parse(options.AllocatorSettings);
            TwoStageRequest? twoStage = null;
            MemoryPlan PlanWith(Runtime.Residency.ResidencyStrategy s, GenerationRequest r, long deviceBytes, bool sizeForRequest = false)
            {
                var b = options.Budget;
                var budget = new MemoryBudgetOptions
                {
                    DeviceMemory = deviceBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), SystemReserve = b.SystemReserve, Inference = b.Inference,
                    Buffer = b.Buffer, SizingWidth = sizeForRequest ? r.Width ?? b.SizingWidth : b.SizingWidth, SizingHeight = sizeForRequest ? r.Height ?? b.SizingHeight : b.SizingHeight,
                };
                var o = new ZImageOptions { AllocatorSettings = options.AllocatorSettings, Budget = budget, Presets = options.Presets, Limits = options.Limits, Residency = options.Residency };
                using var p = new ImagePipeline(ZImageEngine.CreatePlanning(config, deviceBytes, settings, s.MatrixDType, tokenizer, modelName, s, imageEditing: twoStage is not null), o);
                return twoStage is null ? p.Plan(r) : p.Plan(twoStage);
            }
            if (parse.GetValue(recommend))
                return PlanRecommend.Run(options, (s, r, d) => PlanWith(s, r, d, sizeForRequest: true), parse.GetValue(json), modelName);
            var request = new GenerationRequest
            {
                Prompt = parse.GetValue(prompt) ?? "",
                NegativePrompt = parse.GetValue(negative),
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Steps = parse.GetValue(steps),
                Guidance = parse.GetValue(guidance),
                Mode = parse.GetValue(mode),
            };
            twoStage = edit.TwoStageRequest(parse, request);
            var (strategy, plan) = Runtime.Residency.StrategyChooser.Choose(options.Residency, Runtime.Residency.WeightFormat.BF16, s => PlanWith(s, request, deviceCapacity));
            if (parse.GetValue(json))
            {
                JsonOut.Write(new
                {
                    model = modelName,
                    tokenizer = tokenizer is not null ? $"Qwen2 byte-level BPE ({tokenizer.Source})" : "byte-level fallback",
                    strategy = ResidencyCliOptions.Json(strategy),
                    host_bytes = plan.HostBytes,
                    uploaded_bytes_per_step = plan.UploadedBytesPerStep,
                    device_bytes = plan.DeviceBytes,
                    system_reserve_bytes = plan.SystemReserveBytes,
                    base_bytes = plan.BaseBytes,
                    inference_bytes = plan.InferenceBytes,
                    buffer_bytes = plan.BufferBytes,
                    free_bytes = plan.FreeBytes,
                    request_peak_bytes = plan.RequestPeakBytes,
                    fits = plan.Fits,
                    needs_more_bytes = plan.NeedsMoreBytes,
                    message = plan.Describe(),
                    fitting_alternatives = plan.FittingAlternatives,
                    stages = plan.Stages.Select(s => new { name = s.Name, peak_bytes = s.PeakBytes }),
                });
                return plan.Fits ? 0 : 2;
            }
            AnsiConsole.MarkupLine($"[bold]Plan[/] for {Markup.Escape(modelName)} on a {ByteSize.Format(plan.DeviceBytes)} device (simulated, allocator policy {Markup.Escape(options.AllocatorSettings is { Length: > 0 } s ? s : "default")})");
            AnsiConsole.MarkupLine("[bold]strategy[/] " + Markup.Escape(strategy.Describe()));
            AnsiConsole.MarkupLine($"host memory (streamed weights, staging, prompt cache) {ByteSize.Format(plan.HostBytes)} | uploaded per step {ByteSize.Format(plan.UploadedBytesPerStep)}");
            AnsiConsole.Write(MemoryView.Bar(plan));
            AnsiConsole.MarkupLine($"system reserve {ByteSize.Format(plan.SystemReserveBytes)} | base {ByteSize.Format(plan.BaseBytes)} | inference {ByteSize.Format(plan.InferenceBytes)} | buffer {ByteSize.Format(plan.BufferBytes)} | free {ByteSize.Format(plan.FreeBytes)}");
            AnsiConsole.Write(MemoryView.Stages(plan.Stages.Select(s => (s.Name, s.PeakBytes, (long?)null, (TimeSpan?)null))));
            AnsiConsole.MarkupLine((plan.Fits ? "[green]" : "[red]") + Markup.Escape(plan.Describe()) + "[/]");
            return plan.Fits ? 0 : 2;
        }
    }

    private static long DetectDeviceBytes(DeviceChoice choice)
    {
        using var device = DeviceSelector.Select(choice.ToDeviceOptions());
        return device.GetMemoryInfo().TotalBytes;
    }
}
