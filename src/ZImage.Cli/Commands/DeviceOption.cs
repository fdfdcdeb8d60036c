using System.CommandLine;
using System.Globalization;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Hosting;

namespace ZImage.Cli.Commands;

/// <summary>A parsed <c>--device</c> value.</summary>
/// <param name="Preference">auto, cpu or cuda.</param>
/// <param name="Index">The CUDA device ordinal (0 unless <c>cuda:N</c>).</param>
internal readonly record struct DeviceChoice(DevicePreference Preference, int Index)
{
    /// <summary>The device selector's options for this choice.</summary>
    public DeviceOptions ToDeviceOptions() => new()
    {
        ForceCpu = Preference == DevicePreference.Cpu,
        RequireCuda = Preference == DevicePreference.Cuda,
        DeviceIndex = Index,
    };

    /// <inheritdoc />
    public override string ToString() => Preference switch
    {
        DevicePreference.Cpu => "cpu",
        DevicePreference.Cuda => "cuda:" + Index.ToString(CultureInfo.InvariantCulture),
        _ => Index == 0 ? "auto" : "auto (cuda:" + Index.ToString(CultureInfo.InvariantCulture) + ")",
    };
}

/// <summary>
/// <c>--device</c>, the same name and values in every command that picks an accelerator (generate, plan, info, doctor):
/// <c>auto</c> (the first CUDA GPU, else ILGPU's CPU accelerator), <c>cpu</c>, <c>cuda</c> (the first CUDA GPU; fail
/// without one) or <c>cuda:N</c> (CUDA device N; fail without it).
/// </summary>
internal static class DeviceOption
{
    /// <summary>The accepted values, as help and errors list them.</summary>
    public const string Allowed = "auto, cpu, cuda, cuda:N (N = CUDA device ordinal 0, 1, ...)";

    /// <summary>A fresh <c>--device</c> option (default auto).</summary>
    public static Option<string> Create() => new("--device")
    {
        Description = "auto (CUDA if present, else CPU), cpu, cuda (a CUDA GPU; fail without one) or cuda:N (CUDA device N).",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>Parses a <c>--device</c> value (case-insensitive).</summary>
    /// <exception cref="CliInputException">Not one of <see cref="Allowed"/>.</exception>
    public static DeviceChoice Parse(string? text)
    {
        string v = (text ?? "auto").Trim().ToLowerInvariant();
        switch (v)
        {
            case "auto": return new(DevicePreference.Auto, 0);
            case "cpu": return new(DevicePreference.Cpu, 0);
            case "cuda": return new(DevicePreference.Cuda, 0);
        }
        if (v.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(v.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            return new(DevicePreference.Cuda, index);
        string hint = int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0 ? $" (for CUDA device {n} write cuda:{n})" : "";
        throw new CliInputException("--device", $"--device '{text}' is not a device{hint}; allowed: {Allowed}.");
    }
}
