using ZImage.Fuzz;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// Short CI runs of the fuzz targets and the fault soak of <c>fuzz/ZImage.Fuzz</c> (the long runs and their figures
/// are in its README and the closing note): the same deterministic mutation loop and the same checks, fewer inputs.
/// </summary>
public class FuzzAndSoakTests
{
    private const int Inputs = 2500;

    public static TheoryData<string> Targets => new(FuzzTargets.Names);

    [Theory]
    [MemberData(nameof(Targets))]
    public void ReaderSurvivesThousandsOfMutatedInputsWithOnlyDocumentedExceptions(string name)
    {
        using var tmp = new TempFolder();
        var target = FuzzTargets.Create(name, tmp.Path, Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer"));
        var report = MutationFuzzer.Run(target, Inputs, seed: 20261204, TimeSpan.FromSeconds(10));
        Assert.True(report.Crashes.Count == 0, string.Join(Environment.NewLine + Environment.NewLine, report.Crashes.Select(c => $"{c.Signature}: {Convert.ToHexString(c.Input)}{Environment.NewLine}{c.Details}")));
        Assert.Equal(Inputs, report.Inputs);
        Assert.True(report.Accepted > 0, $"{name}: no mutated input was accepted, so the mutator never reached the parser's success path");
    }

    [Fact]
    public async Task ThirtyGenerationsWithRandomDeviceFaultsFailOnlyTheFaultedOnesAndNeverDrift()
    {
        var report = await FaultSoak.RunAsync(30, seed: 20261204);
        Assert.True(report.Clean, report + Environment.NewLine + string.Join(Environment.NewLine, report.Problems));
        Assert.InRange(report.Faulted, 5, 25);
        Assert.Equal(30, report.Faulted + report.Succeeded);
    }

    private sealed class TempFolder : IDisposable
    {
        // tmpfs where there is one: the safetensors target writes each input to a file.
        public string Path { get; } = (Directory.Exists("/dev/shm") ? Directory.CreateDirectory(System.IO.Path.Combine("/dev/shm", "zimage-fuzz-" + Guid.NewGuid().ToString("N")[..8])) : Directory.CreateTempSubdirectory("zimage-fuzz-")).FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
