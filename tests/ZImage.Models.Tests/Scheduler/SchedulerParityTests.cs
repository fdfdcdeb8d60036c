using System.Text.Json;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Scheduling;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Scheduler;

/// <summary>Sigmas, timesteps, model times and Euler steps against every scheduler and e2e reference case.</summary>
[Trait("Category", "Parity")]
public class SchedulerParityTests
{
    private static FlowMatchEulerScheduler FixtureScheduler() =>
        new(ConfigJson.Load<SchedulerConfig>(Path.Combine(FixturePaths.TinyCheckpoint, "scheduler", "scheduler_config.json")));

    private static SigmaSchedule Variant(string name) => name switch
    {
        "pipeline_default" => SigmaSchedule.PipelineDefault,
        "legacy_sigma_min_0" => SigmaSchedule.LegacySigmaMinZero,
        _ => throw new InvalidOperationException($"Unknown scheduler variant '{name}' in the manifest; map it to a SigmaSchedule."),
    };

    /// <summary>Output names look like <c>{variant}.N{steps}.{sigmas|timesteps}</c>.</summary>
    private static (SigmaSchedule Schedule, int Steps, string Field) Parse(string output)
    {
        string[] parts = output.Split('.');
        Assert.Equal(3, parts.Length);
        Assert.StartsWith("N", parts[1]);
        return (Variant(parts[0]), int.Parse(parts[1][1..]), parts[2]);
    }

    [Theory]
    [MemberData(nameof(ReferenceCases.Outputs), "scheduler", MemberType = typeof(ReferenceCases))]
    public void ScheduleMatchesTheReference(string caseName, string output)
    {
        ReferenceCase c = ReferenceCases.Get(caseName);
        (SigmaSchedule schedule, int steps, string field) = Parse(output);
        FlowMatchSchedule s = FixtureScheduler().Schedule(steps, schedule);
        float[] actual = field switch
        {
            "sigmas" => s.Sigmas,
            "timesteps" => s.Timesteps,
            _ => throw new InvalidOperationException($"Unknown scheduler output field '{field}'."),
        };
        TensorAssert.Close(c.LoadFloat(output), actual, c.ToleranceFor(output).RecommendedMaxAbs);
    }

    [Theory]
    [MemberData(nameof(ReferenceCases.Outputs), "scheduler", MemberType = typeof(ReferenceCases))]
    public void ScheduleIsBitExact(string caseName, string output)
    {
        // Stronger than the manifest tolerance: the float32 arithmetic (torch linspace incl. its vector/FMA
        // rounding, the float32 shift, float64 legacy path) is mirrored exactly.
        (SigmaSchedule schedule, int steps, string field) = Parse(output);
        FlowMatchSchedule s = FixtureScheduler().Schedule(steps, schedule);
        float[] expected = ReferenceCases.Get(caseName).LoadFloat(output).Data;
        float[] actual = field == "sigmas" ? s.Sigmas : s.Timesteps;
        TensorAssert.Equal<int>(expected.Select(BitConverter.SingleToInt32Bits).ToArray(), actual.Select(BitConverter.SingleToInt32Bits).ToArray(), output + " (float32 bits)");
    }

    public static TheoryData<string, int> JsonCases()
    {
        var data = new TheoryData<string, int>();
        foreach (ReferenceCase c in ReferenceCases.OfKind("scheduler"))
            for (int i = 0; i < c.ReadJson().GetProperty("cases").GetArrayLength(); i++) data.Add(c.Name, i);
        return data;
    }

    [Theory]
    [MemberData(nameof(JsonCases))]
    public void ModelTimesAndLinspaceMatchTheJsonCases(string caseName, int index)
    {
        ReferenceCase c = ReferenceCases.Get(caseName);
        JsonElement e = c.ReadJson().GetProperty("cases")[index];
        int n = e.GetProperty("N").GetInt32();
        FlowMatchSchedule s = FixtureScheduler().Schedule(n, Variant(e.GetProperty("variant").GetString()!));
        float[] expectedT = e.GetProperty("t_model").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        TensorAssert.Close(expectedT, s.ModelTimes(), c.ToleranceFor("t_model").RecommendedMaxAbs, $"{e.GetProperty("variant")}.N{n}.t_model");
        Assert.Equal(s.ModelTimes(), s.Sigmas[..n].Select(FlowMatchEulerScheduler.ModelTime).ToArray());
        if (e.GetProperty("input_sigmas").ValueKind == JsonValueKind.Array)
        {
            // The pipeline's float32 linspace(1, 1/N, N), before shifting.
            float[] input = e.GetProperty("input_sigmas").EnumerateArray().Select(x => x.GetSingle()).ToArray();
            TensorAssert.Close(input, FlowMatchEulerScheduler.LinspaceF32(1f, (float)(1.0 / n), n), c.ToleranceFor("sigmas").RecommendedMaxAbs, "input_sigmas");
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceCases.Names), "e2e", MemberType = typeof(ReferenceCases))]
    public void EndToEndRunsUseThisScheduleAndEulerUpdate(string caseName)
    {
        ReferenceCase c = ReferenceCases.Get(caseName);
        int steps = c.Param<int>("num_inference_steps");
        FlowMatchSchedule s = FixtureScheduler().Schedule(steps);
        TensorAssert.Close(c.LoadFloat("sigmas"), s.Sigmas, c.ToleranceFor("sigmas").RecommendedMaxAbs);
        TensorAssert.Close(c.LoadFloat("timesteps"), s.Timesteps, c.ToleranceFor("timesteps").RecommendedMaxAbs);

        float[] latents = c.LoadFloat("initial_latents").Data;
        bool guided = c.Tensors.ContainsKey("step.0.guided_pred");
        for (int i = 0; i < steps; i++)
        {
            // With CFG the batch holds the positive and negative branch, both at the same model time.
            ReferenceTensor<float> t = c.LoadFloat($"step.{i}.t_model");
            TensorAssert.Close(t, Enumerable.Repeat(s.ModelTime(i), t.Data.Length).ToArray(), c.ToleranceFor(t.Name).RecommendedMaxAbs);
            // Replaying the stored model outputs through our Euler step must reproduce the stored latents.
            float[] pred = c.LoadFloat(guided ? $"step.{i}.guided_pred" : $"step.{i}.model_out").Data;
            FlowMatchEulerScheduler.EulerStep(latents, pred, s.Sigmas[i], s.Sigmas[i + 1]);
            ReferenceTensor<float> after = c.LoadFloat($"step.{i}.latents_after");
            TensorAssert.Close(after, latents, c.ToleranceFor(after.Name).StrictOrRecommended);
            latents = after.Data;
        }
    }
}
