using ZImage.Cli.Commands;
using ZImage.Runtime.Hosting;

namespace ZImage.Cli.Tests;

/// <summary>
/// <c>--device</c> has one name and one value syntax in every command that picks an accelerator (generate, plan, info,
/// doctor): auto, cpu, cuda, cuda:N. Before, info took <c>--device N</c> (an ordinal) and <c>--cpu</c>, doctor
/// <c>--cpu</c> and <c>--require-cuda</c>, and generate <c>--device auto|cpu</c>.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class DeviceOptionTests
{
    [Theory]
    [InlineData("auto", DevicePreference.Auto, 0)]
    [InlineData("cpu", DevicePreference.Cpu, 0)]
    [InlineData("CPU", DevicePreference.Cpu, 0)]
    [InlineData("cuda", DevicePreference.Cuda, 0)]
    [InlineData("cuda:0", DevicePreference.Cuda, 0)]
    [InlineData("cuda:3", DevicePreference.Cuda, 3)]
    public void EveryAcceptedValueParses(string text, DevicePreference preference, int index)
    {
        var choice = DeviceOption.Parse(text);
        Assert.Equal((preference, index), (choice.Preference, choice.Index));
        var options = choice.ToDeviceOptions();
        Assert.Equal(preference == DevicePreference.Cpu, options.ForceCpu);
        Assert.Equal(preference == DevicePreference.Cuda, options.RequireCuda);
        Assert.Equal(index, options.DeviceIndex);
    }

    public static TheoryData<string[]> Commands() => new()
    {
        { ["generate", "--prompt", "x"] },
        { ["plan", "--device-bytes", "24GiB"] },
        { ["info"] },
        { ["doctor", "--quick"] },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task EveryCommandRejectsTheSameBadValuesWithTheSameLine(string[] command)
    {
        foreach (string bad in new[] { "tpu", "1", "cuda:", "cuda:-1", "cuda:x", "gpu0" })
        {
            var run = await CliRunner.RunAsync([.. command, "--device", bad, "--json"]);
            Assert.Equal(2, run.ExitCode);
            var error = run.Json().GetProperty("error");
            Assert.Equal("--device", error.GetProperty("parameter").GetString());
            string message = error.GetProperty("message").GetString()!;
            Assert.StartsWith($"--device '{bad}' is not a device", message, StringComparison.Ordinal);
            Assert.EndsWith("allowed: " + DeviceOption.Allowed + ".", message, StringComparison.Ordinal);
            if (bad == "1") Assert.Contains("write cuda:1", message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("info", "--cpu")]
    [InlineData("doctor", "--cpu")]
    [InlineData("doctor", "--require-cuda")]
    public async Task TheOldDeviceSpellingsAreUnknownOptions(string command, string old)
    {
        var run = await CliRunner.RunAsync(command, old);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(old, run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InfoWithCudaExitsOneExactlyWhenThatGpuIsMissing()
    {
        var auto = await CliRunner.RunAsync("info", "--device", "auto", "--json");
        Assert.Equal(0, auto.ExitCode);
        bool hasCuda = auto.Json().GetProperty("kind").GetString() == "cuda";
        var cuda = await CliRunner.RunAsync("info", "--device", "cuda", "--json");
        Assert.Equal(hasCuda ? 0 : 1, cuda.ExitCode);
        // The report still says why there is no GPU.
        Assert.False(string.IsNullOrEmpty(cuda.Json().GetProperty("cuda_reason").GetString()));
        var cpu = await CliRunner.RunAsync("info", "--device", "cpu", "--json");
        Assert.Equal(0, cpu.ExitCode);
        Assert.Equal("cpu", cpu.Json().GetProperty("kind").GetString());
    }
}
