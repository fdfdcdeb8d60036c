using System.Diagnostics;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Fuzz;

/// <summary>Figures of a fault soak.</summary>
public sealed record SoakReport(int Generations, int Faulted, int FaultedOom, int FaultedError, int Succeeded, int FailedWithoutFault,
    int WrongException, int FaultedButSucceeded, int BaselineViolations, long MaxDriftBytes, TimeSpan Elapsed, long Seed, IReadOnlyList<string> Problems)
{
    /// <summary>Whether only the faulted requests failed, each with its fault's exception, and nothing drifted.</summary>
    public bool Clean => FailedWithoutFault == 0 && WrongException == 0 && FaultedButSucceeded == 0 && BaselineViolations == 0 && MaxDriftBytes == 0;

    public override string ToString() =>
        $"soak: {Generations} generations in {Elapsed.TotalSeconds:F1} s (seed {Seed}): {Faulted} faulted ({FaultedOom} OOM, {FaultedError} device errors), " +
        $"{Succeeded} succeeded; failed without a fault {FailedWithoutFault}, wrong exception {WrongException}, faulted but succeeded {FaultedButSucceeded}, " +
        $"baseline violations {BaselineViolations}, max drift {MaxDriftBytes} B => {(Clean ? "CLEAN" : "PROBLEMS")}";
}

/// <summary>
/// Tiny real-engine generations (the tiny checkpoint, CPU accelerator) with device faults injected at random block
/// allocations below the budget guard: about half the requests get one fault (OOM or a non-OOM device error) at a
/// random position of their generation. Checks after every generation that exactly the faulted ones failed, with
/// the fault's exception, that the allocator, the device segments and the budget guard are back at baseline, and
/// that the undisturbed image of each seed is identical every time.
/// </summary>
public static class FaultSoak
{
    /// <summary>Runs <paramref name="generations"/> generations; <paramref name="log"/> gets a line every 100.</summary>
    public static async Task<SoakReport> RunAsync(int generations, long seed, Action<string>? log = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(generations);
        var rng = new Random(unchecked((int)seed));
        using var h = await TinyEngineHarness.StartAsync();
        var problems = new List<string>();
        var images = new Dictionary<long, byte[]>();
        // The number of block allocations of one generation, to draw positions inside it.
        long before = h.Blocks.Allocations;
        var first = await h.Pipeline.GenerateAsync(Request(0));
        images[0] = first.Images[0].Pixels;
        long perGeneration = h.Blocks.Allocations - before;
        int faulted = 0, oom = 0, err = 0, ok = 0, failedWithout = 0, wrong = 0, faultedOk = 0, violations = 0;
        long maxDrift = 0;
        var sw = Stopwatch.StartNew();
        for (int g = 0; g < generations; g++)
        {
            long s = rng.Next(4);
            bool inject = rng.Next(2) == 0;
            var kind = rng.Next(2) == 0 ? DeviceFaultKind.OutOfMemory : DeviceFaultKind.Error;
            long pos = 1 + rng.NextInt64(perGeneration);
            if (inject) h.Blocks.Arm(pos, kind);
            Exception? error = null;
            GenerationResult? result = null;
            try { result = await h.Pipeline.GenerateAsync(Request(s)); }
            catch (Exception e) { error = e; }
            finally { h.Blocks.Disarm(); }
            string what = inject ? $"generation {g} ({kind} at block {pos}/{perGeneration})" : $"generation {g} (no fault)";
            if (inject)
            {
                faulted++;
                if (kind == DeviceFaultKind.OutOfMemory) oom++; else err++;
                var expected = kind == DeviceFaultKind.OutOfMemory ? typeof(DeviceOutOfMemoryException) : typeof(InjectedDeviceFaultException);
                if (error is null) { faultedOk++; problems.Add($"{what}: succeeded"); }
                else if (error.GetType() != expected) { wrong++; problems.Add($"{what}: {error.GetType().Name}: {error.Message}"); }
            }
            else if (error is not null) { failedWithout++; problems.Add($"{what}: {error.GetType().Name}: {error.Message}"); }
            if (result is not null)
            {
                ok++;
                var px = result.Images[0].Pixels;
                if (images.TryGetValue(s, out var known)) { if (!known.AsSpan().SequenceEqual(px)) problems.Add($"{what}: seed {s} gave a different image"); }
                else images[s] = px;
            }
            long drift = Math.Abs(h.Engine.Allocator.AllocatedBytes - h.BaselineAllocated);
            maxDrift = Math.Max(maxDrift, drift);
            if (h.BaselineViolation() is { } v)
            {
                violations++;
                problems.Add($"{what}: {v}");
                h.Rebaseline();
            }
            if (log is not null && (g + 1) % 100 == 0) log($"  {g + 1} generations, {faulted} faulted, {problems.Count} problems, {sw.Elapsed.TotalSeconds:F0} s");
        }
        return new SoakReport(generations, faulted, oom, err, ok, failedWithout, wrong, faultedOk, violations, maxDrift, sw.Elapsed, seed, problems);
    }

    /// <summary>The soak's request: 16×16 (a 2×2 latent), 1 step, CFG, so both prompts and both predictions run.</summary>
    public static GenerationRequest Request(long seed) =>
        new() { Prompt = "a lighthouse at dusk", NegativePrompt = "fog", Width = 16, Height = 16, Steps = 1, Guidance = 2f, Mode = GenerationMode.Standard, Seed = seed };
}
