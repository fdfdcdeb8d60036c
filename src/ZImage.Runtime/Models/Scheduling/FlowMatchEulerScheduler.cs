using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Models.Scheduling;

/// <summary>How the N sigmas of a run are chosen.</summary>
public enum SigmaSchedule
{
    /// <summary>
    /// The current <c>ZImagePipeline</c> default: <c>set_timesteps(sigmas = torch.linspace(1, 1/N, N))</c> with the
    /// linspace and the shift evaluated in float32. For N = 8: 1, 0.954545, 0.9, 0.833333, 0.75, 0.642857, 0.5, 0.3.
    /// </summary>
    PipelineDefault,

    /// <summary>
    /// The earlier Turbo recipe: <c>scheduler.sigma_min = 0; set_timesteps(N)</c>, i.e. the shift of
    /// <c>numpy.linspace(1, 0, N)</c> in float64, rounded once to float32 (the last sigma is 0, a wasted step).
    /// </summary>
    LegacySigmaMinZero,
}

/// <summary>The sigmas (N + 1, ending with 0) and timesteps (N) of one run.</summary>
/// <param name="Sigmas">Noise levels σ₀ … σ_N, σ_N = 0.</param>
/// <param name="Timesteps">σᵢ · num_train_timesteps for i &lt; N (float32).</param>
public sealed record FlowMatchSchedule(float[] Sigmas, float[] Timesteps)
{
    /// <summary>Number of denoising steps N.</summary>
    public int Steps => Timesteps.Length;

    /// <summary>The transformer's time input at step <paramref name="step"/>, <c>(1000 − timestep)/1000</c> in float32.</summary>
    public float ModelTime(int step) => FlowMatchEulerScheduler.ModelTimeFromTimestep(Timesteps[step]);

    /// <summary>All N model times.</summary>
    public float[] ModelTimes() => Timesteps.Select(FlowMatchEulerScheduler.ModelTimeFromTimestep).ToArray();
}

/// <summary>
/// diffusers' <c>FlowMatchEulerDiscreteScheduler</c> for static or dynamic shifting, reproducing torch's float32
/// arithmetic so that sigmas and model times match the reference bit for bit where the reference is float32.
/// </summary>
public sealed class FlowMatchEulerScheduler
{
    /// <summary>Fewest steps accepted.</summary>
    public const int MinSteps = 1;

    /// <summary>Creates the scheduler after validating <paramref name="config"/>.</summary>
    /// <exception cref="CheckpointConfigurationException">The config selects an unsupported option.</exception>
    public FlowMatchEulerScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config.Validate("SchedulerConfig");
    }

    /// <summary>The configuration.</summary>
    public SchedulerConfig Config { get; }

    /// <summary>Most steps accepted (<c>num_train_timesteps</c>, 1000 for Z-Image).</summary>
    public int MaxSteps => Config.NumTrainTimesteps;

    /// <summary>
    /// Sigmas σ₀ … σ_N (N + 1 float32 values, the last 0) for <paramref name="steps"/> steps.
    /// </summary>
    /// <param name="steps">N, in [<see cref="MinSteps"/>, <see cref="MaxSteps"/>].</param>
    /// <param name="schedule">Which recipe chooses the unshifted sigmas.</param>
    /// <param name="mu">The resolution shift (see <see cref="CalculateShift"/>); required iff <c>use_dynamic_shifting</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is out of range.</exception>
    /// <exception cref="ArgumentException"><paramref name="mu"/> is missing with dynamic shifting.</exception>
    public float[] Sigmas(int steps, SigmaSchedule schedule = SigmaSchedule.PipelineDefault, double? mu = null)
    {
        if (steps < MinSteps || steps > MaxSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"The number of inference steps must be in [{MinSteps}, {MaxSteps}].");
        if (Config.UseDynamicShifting && mu is null)
            throw new ArgumentException("use_dynamic_shifting is true, so mu (from CalculateShift(imageSeqLen)) is required.", nameof(mu));
        if (mu is { } m && !double.IsFinite(m))
            throw new ArgumentOutOfRangeException(nameof(mu), mu, "mu must be a finite number.");
        var sigmas = new float[steps + 1];
        switch (schedule)
        {
            case SigmaSchedule.PipelineDefault:
            {
                float[] s = LinspaceF32(1f, (float)(1.0 / steps), steps);
                for (int i = 0; i < steps; i++) sigmas[i] = ShiftF32(s[i], mu);
                break;
            }
            case SigmaSchedule.LegacySigmaMinZero:
            {
                // numpy: linspace(sigma_max·T, 0·T, N) / T in float64, shifted in float64, then one cast to float32.
                double t = Config.NumTrainTimesteps;
                double[] ts = LinspaceF64(1.0 * t, 0.0, steps);
                for (int i = 0; i < steps; i++) sigmas[i] = (float)ShiftF64(ts[i] / t, mu);
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "Unknown sigma schedule.");
        }
        sigmas[steps] = 0f;
        return sigmas;
    }

    /// <summary>Sigmas and timesteps together (see <see cref="Sigmas"/>).</summary>
    public FlowMatchSchedule Schedule(int steps, SigmaSchedule schedule = SigmaSchedule.PipelineDefault, double? mu = null)
    {
        float[] sigmas = Sigmas(steps, schedule, mu);
        var timesteps = new float[steps];
        float scale = Config.NumTrainTimesteps;
        for (int i = 0; i < steps; i++) timesteps[i] = sigmas[i] * scale;
        return new FlowMatchSchedule(sigmas, timesteps);
    }

    /// <summary>
    /// diffusers' <c>calculate_shift</c>: mu linear in the image token count, from base_shift at base_image_seq_len
    /// to max_shift at max_image_seq_len.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="imageSeqLen"/> is below 1.</exception>
    public double CalculateShift(int imageSeqLen)
    {
        if (imageSeqLen < 1) throw new ArgumentOutOfRangeException(nameof(imageSeqLen), imageSeqLen, $"The image sequence length must be in [1, {int.MaxValue}].");
        double m = (Config.MaxShift - Config.BaseShift) / (Config.MaxImageSeqLen - Config.BaseImageSeqLen);
        double b = Config.BaseShift - m * Config.BaseImageSeqLen;
        return imageSeqLen * m + b;
    }

    /// <summary>
    /// The transformer's time input for noise level <paramref name="sigma"/>: <c>(1000 − float32(σ·1000)) / 1000</c>,
    /// every operation in float32 as the pipeline does (0 = pure noise, 1 = clean).
    /// </summary>
    public static float ModelTime(float sigma) => ModelTimeFromTimestep(sigma * 1000f);

    /// <summary>The transformer's time input for a scheduler timestep: <c>(1000 − timestep) / 1000</c> in float32.</summary>
    public static float ModelTimeFromTimestep(float timestep) => (1000f - timestep) / 1000f;

    /// <summary>
    /// One Euler step on host data, in float32 like the reference: <c>latents[i] += (σ_next − σ) · (−modelOutput[i])</c>
    /// (the Z-Image transformer predicts the negated velocity).
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static void EulerStep(Span<float> latents, ReadOnlySpan<float> modelOutput, float sigma, float sigmaNext)
    {
        if (latents.Length != modelOutput.Length)
            throw new ArgumentException($"The model output has {modelOutput.Length} elements but the latents have {latents.Length}.", nameof(modelOutput));
        float dt = sigmaNext - sigma;
        for (int i = 0; i < latents.Length; i++)
        {
            float v = -modelOutput[i];
            float delta = dt * v;
            latents[i] += delta;
        }
    }

    /// <summary>
    /// <c>torch.linspace(start, end, steps)</c> for float32 on the CPU, bit for bit as torch's AVX2 kernel computes it:
    /// step = (end − start)/(steps − 1) in float32; element i is <c>fma(step, i, start)</c> in the first half and
    /// <c>fma(−step, steps−1−i, end)</c> in the second; while at least 16 elements remain they are produced as two
    /// 8-lane vectors <c>base + k·step</c> (k·step rounded, then added) from the scalar value at the vector's start.
    /// Verified against the reference's <c>input_sigmas</c> for N = 1, 8, 9, 25, 50 (a plain scalar formula differs by
    /// one ulp in up to 15 of 50 values).
    /// </summary>
    public static float[] LinspaceF32(float start, float end, int steps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var result = new float[steps];
        if (steps == 0) return result;
        if (steps == 1)
        {
            result[0] = start;
            return result;
        }
        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;
        float Scalar(int i) => i < halfway ? MathF.FusedMultiplyAdd(step, i, start) : MathF.FusedMultiplyAdd(-step, steps - i - 1, end);
        const int lanes = 8;
        int idx = 0;
        // torch's vectorized_loop emits two vectors per iteration while 2·lanes elements remain.
        for (; idx <= steps - 2 * lanes; idx += 2 * lanes)
        {
            for (int v = idx; v < idx + 2 * lanes; v += lanes)
            {
                float baseValue = Scalar(v);
                for (int k = 0; k < lanes; k++)
                {
                    float offset = k * step;
                    result[v + k] = baseValue + offset;
                }
            }
        }
        for (; idx < steps; idx++) result[idx] = Scalar(idx);
        return result;
    }

    /// <summary><c>numpy.linspace(start, stop, num)</c> in float64 (the last value is exactly <paramref name="stop"/>).</summary>
    public static double[] LinspaceF64(double start, double stop, int num)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(num);
        var y = new double[num];
        if (num == 0) return y;
        if (num == 1)
        {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    private float ShiftF32(float s, double? mu)
    {
        if (Config.UseDynamicShifting)
        {
            // time_shift(mu, 1.0, s): a Python float combined with a float32 array stays float32.
            float e = Config.TimeShiftType == "exponential" ? (float)Math.Exp(mu!.Value) : (float)mu!.Value;
            return e / (e + (1f / s - 1f));
        }
        float shift = (float)Config.Shift;
        return shift * s / (1f + (shift - 1f) * s);
    }

    private double ShiftF64(double s, double? mu)
    {
        if (Config.UseDynamicShifting)
        {
            double e = Config.TimeShiftType == "exponential" ? Math.Exp(mu!.Value) : mu!.Value;
            return e / (e + (1.0 / s - 1.0));
        }
        return Config.Shift * s / (1.0 + (Config.Shift - 1.0) * s);
    }
}
