using System.Globalization;
using Microsoft.Extensions.Options;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>Validates <see cref="ZImageOptions"/> at start; every message names the setting, its value and the allowed range.</summary>
public sealed class ZImageOptionsValidator : IValidateOptions<ZImageOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ZImageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        var inv = CultureInfo.InvariantCulture;
        void Range(string setting, long value, long min, long max)
        {
            if (value < min || value > max) errors.Add(string.Create(inv, $"ZImage:{setting} = {value} is out of range; allowed {min}..{max}."));
        }
        void Size(string setting, string? value, bool required)
        {
            if (value is null or "") { if (required) errors.Add($"ZImage:{setting} is required; give a byte size such as 512MiB."); return; }
            try { if (ByteSize.Parse(value) < 0) errors.Add($"ZImage:{setting} = {value} must not be negative."); }
            catch (Exception e) when (e is FormatException or OverflowException) { errors.Add($"ZImage:{setting} = '{value}' is not a byte size; use e.g. 24GiB, 512MiB or 4096."); }
        }

        if (options.ModelDirectory is { Length: > 0 } dir && !Directory.Exists(dir))
            errors.Add($"ZImage:ModelDirectory = '{dir}' does not exist; give a diffusers-format Z-Image folder, or leave it empty for the tiny random demo model.");
        for (int i = 0; i < options.Loras.Count; i++)
            if (Models.Lora.LoraMerge.Problem(options.Loras[i]) is { } problem) errors.Add($"ZImage:Loras:{i} {problem}");
        if (!Enum.IsDefined(options.MemoryBackend))
            errors.Add($"ZImage:MemoryBackend = {options.MemoryBackend} is invalid; allowed Accelerator, StreamOrderedPool.");
        if (!Enum.IsDefined(options.Device))
            errors.Add($"ZImage:Device = {options.Device} is invalid; allowed Auto, Cpu, Cuda.");
        if (options.DeviceIndex < 0)
            errors.Add($"ZImage:DeviceIndex = {options.DeviceIndex} is invalid; allowed 0 or more (the CUDA device ordinal).");
        if (!Enum.IsDefined(options.WeightDType))
            errors.Add($"ZImage:WeightDType = {options.WeightDType} is invalid; allowed {string.Join(", ", Enum.GetNames<TensorDType>())}.");
        if (!Memory.AllocatorSettings.TryParse(options.AllocatorSettings ?? "", out _))
        {
            string why;
            try { Memory.AllocatorSettings.Parse(options.AllocatorSettings); why = ""; }
            catch (FormatException e) { why = e.Message; }
            errors.Add($"ZImage:AllocatorSettings = '{options.AllocatorSettings}' is invalid: {why}");
        }

        var b = options.Budget;
        Size("Budget:DeviceMemory", b.DeviceMemory, false);
        Size("Budget:SystemReserve", b.SystemReserve, false);
        Size("Budget:Inference", b.Inference, false);
        Size("Budget:Buffer", b.Buffer, true);

        var l = options.Limits;
        Range("Limits:MinSteps", l.MinSteps, 1, 1000);
        Range("Limits:MaxSteps", l.MaxSteps, Math.Max(1, l.MinSteps), 1000);
        if (!(float.IsFinite(l.MinGuidance) && l.MinGuidance >= 0))
            errors.Add(string.Create(inv, $"ZImage:Limits:MinGuidance = {l.MinGuidance} is out of range; allowed a finite value >= 0."));
        if (!(float.IsFinite(l.MaxGuidance) && l.MaxGuidance >= l.MinGuidance && l.MaxGuidance <= 100))
            errors.Add(string.Create(inv, $"ZImage:Limits:MaxGuidance = {l.MaxGuidance} is out of range; allowed {l.MinGuidance}..100."));
        foreach (var (setting, v) in new[] { ("Limits:MinDimension", l.MinDimension), ("Limits:MaxDimension", l.MaxDimension) })
            if (v % 16 != 0 || v < 16 || v > 16384)
                errors.Add(string.Create(inv, $"ZImage:{setting} = {v} is invalid; allowed a multiple of 16 in 16..16384."));
        if (l.MaxDimension < l.MinDimension)
            errors.Add(string.Create(inv, $"ZImage:Limits:MaxDimension = {l.MaxDimension} is below Limits:MinDimension = {l.MinDimension}."));
        Range("Limits:MaxImagesPerRequest", l.MaxImagesPerRequest, 1, 64);
        if (!Enum.IsDefined(l.OutOfRange)) errors.Add($"ZImage:Limits:OutOfRange = {l.OutOfRange} is invalid; allowed Reject, ResetToStandard.");
        if (!Enum.IsDefined(l.OverBudget)) errors.Add($"ZImage:Limits:OverBudget = {l.OverBudget} is invalid; allowed Reject, Downscale.");

        foreach (var mode in Enum.GetValues<GenerationMode>())
        {
            var m = options.Presets.For(mode);
            if (m.Steps < l.MinSteps || m.Steps > l.MaxSteps)
                errors.Add(string.Create(inv, $"ZImage:Presets:{mode}:Steps = {m.Steps} is out of range; allowed {l.MinSteps}..{l.MaxSteps} (Limits)."));
            if (!(m.Guidance >= l.MinGuidance && m.Guidance <= l.MaxGuidance))
                errors.Add(string.Create(inv, $"ZImage:Presets:{mode}:Guidance = {m.Guidance} is out of range; allowed {l.MinGuidance}..{l.MaxGuidance} (Limits)."));
        }
        foreach (var preset in Enum.GetValues<ResolutionPreset>())
        {
            var s = options.Presets.For(preset);
            foreach (var (axis, v) in new[] { ("Width", s.Width), ("Height", s.Height) })
                if (v % 16 != 0 || v < l.MinDimension || v > l.MaxDimension)
                    errors.Add(string.Create(inv, $"ZImage:Presets:{preset}:{axis} = {v} is invalid; allowed a multiple of 16 in {l.MinDimension}..{l.MaxDimension}."));
        }
        if (b.SizingWidth % 16 != 0 || b.SizingWidth < 16 || b.SizingHeight % 16 != 0 || b.SizingHeight < 16)
            errors.Add(string.Create(inv, $"ZImage:Budget:SizingWidth/SizingHeight = {b.SizingWidth}x{b.SizingHeight} is invalid; allowed multiples of 16, at least 16."));

        Range("Queue:Capacity", options.Queue.Capacity, 1, 100_000);
        if (!Enum.IsDefined(options.Queue.FullPolicy)) errors.Add($"ZImage:Queue:FullPolicy = {options.Queue.FullPolicy} is invalid; allowed Wait, Reject.");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
