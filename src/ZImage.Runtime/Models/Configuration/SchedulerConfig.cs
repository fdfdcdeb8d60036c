using System.Text.Json.Serialization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary><c>scheduler/scheduler_config.json</c> of <c>FlowMatchEulerDiscreteScheduler</c>. Absent fields take the diffusers class defaults.</summary>
public sealed record SchedulerConfig
{
    /// <summary><c>_class_name</c> (FlowMatchEulerDiscreteScheduler).</summary>
    [JsonPropertyName("_class_name")] public string? ClassName { get; init; }

    /// <summary><c>num_train_timesteps</c>: timesteps are sigmas × this.</summary>
    [JsonPropertyName("num_train_timesteps")] public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary><c>shift</c>: static shift σ' = shift·σ / (1 + (shift − 1)·σ).</summary>
    [JsonPropertyName("shift")] public double Shift { get; init; } = 1.0;

    /// <summary><c>use_dynamic_shifting</c>: resolution-dependent shift from <c>mu</c> instead of <see cref="Shift"/>.</summary>
    [JsonPropertyName("use_dynamic_shifting")] public bool UseDynamicShifting { get; init; }

    /// <summary><c>base_shift</c>: mu at <see cref="BaseImageSeqLen"/>.</summary>
    [JsonPropertyName("base_shift")] public double BaseShift { get; init; } = 0.5;

    /// <summary><c>max_shift</c>: mu at <see cref="MaxImageSeqLen"/>.</summary>
    [JsonPropertyName("max_shift")] public double MaxShift { get; init; } = 1.15;

    /// <summary><c>base_image_seq_len</c>.</summary>
    [JsonPropertyName("base_image_seq_len")] public int BaseImageSeqLen { get; init; } = 256;

    /// <summary><c>max_image_seq_len</c>.</summary>
    [JsonPropertyName("max_image_seq_len")] public int MaxImageSeqLen { get; init; } = 4096;

    /// <summary><c>invert_sigmas</c> (unsupported when true).</summary>
    [JsonPropertyName("invert_sigmas")] public bool InvertSigmas { get; init; }

    /// <summary><c>shift_terminal</c> (unsupported when set).</summary>
    [JsonPropertyName("shift_terminal")] public double? ShiftTerminal { get; init; }

    /// <summary><c>use_karras_sigmas</c> (unsupported when true).</summary>
    [JsonPropertyName("use_karras_sigmas")] public bool UseKarrasSigmas { get; init; }

    /// <summary><c>use_exponential_sigmas</c> (unsupported when true).</summary>
    [JsonPropertyName("use_exponential_sigmas")] public bool UseExponentialSigmas { get; init; }

    /// <summary><c>use_beta_sigmas</c> (unsupported when true).</summary>
    [JsonPropertyName("use_beta_sigmas")] public bool UseBetaSigmas { get; init; }

    /// <summary><c>time_shift_type</c>: "exponential" (supported) or "linear".</summary>
    [JsonPropertyName("time_shift_type")] public string TimeShiftType { get; init; } = "exponential";

    /// <summary><c>stochastic_sampling</c> (unsupported when true).</summary>
    [JsonPropertyName("stochastic_sampling")] public bool StochasticSampling { get; init; }

    /// <summary>Checks that the values are supported; throws naming the field, the value and the allowed range.</summary>
    /// <exception cref="CheckpointConfigurationException">A value is out of range or selects an unimplemented option.</exception>
    public SchedulerConfig Validate(string source = "scheduler/scheduler_config.json")
    {
        ConfigJson.RequireRange(NumTrainTimesteps, 1, 1_000_000, source, "num_train_timesteps");
        ConfigJson.RequirePositive(Shift, source, "shift");
        ConfigJson.Require(!InvertSigmas, source, "invert_sigmas", "value true is not supported; only false.");
        ConfigJson.Require(ShiftTerminal is null, source, "shift_terminal", $"value {ShiftTerminal} is not supported; only null.");
        ConfigJson.Require(!UseKarrasSigmas, source, "use_karras_sigmas", "value true is not supported; only false.");
        ConfigJson.Require(!UseExponentialSigmas, source, "use_exponential_sigmas", "value true is not supported; only false.");
        ConfigJson.Require(!UseBetaSigmas, source, "use_beta_sigmas", "value true is not supported; only false.");
        ConfigJson.Require(!StochasticSampling, source, "stochastic_sampling", "value true is not supported; only false.");
        ConfigJson.Require(TimeShiftType is "exponential" or "linear", source, "time_shift_type", $"value '{TimeShiftType}' is not supported; allowed 'exponential' or 'linear'.");
        ConfigJson.Require(MaxImageSeqLen > BaseImageSeqLen, source, "max_image_seq_len", $"value {MaxImageSeqLen} must exceed base_image_seq_len {BaseImageSeqLen}.");
        return this;
    }
}
