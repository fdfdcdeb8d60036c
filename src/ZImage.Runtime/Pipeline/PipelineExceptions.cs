using ZImage.Runtime.Hosting;

namespace ZImage.Runtime.Pipeline;

/// <summary>A request parameter is outside the configured range. The message names the value and the range.</summary>
public sealed class InvalidGenerationRequestException : ArgumentException
{
    /// <summary>Creates the exception for <paramref name="parameter"/> = <paramref name="value"/>, allowed <paramref name="allowed"/>.</summary>
    public InvalidGenerationRequestException(string parameter, object? value, string allowed)
        : base($"{parameter} = {Format(value)} is invalid; allowed: {allowed}.", parameter)
    {
        Value = value;
        Allowed = allowed;
    }

    /// <summary>The rejected value.</summary>
    public object? Value { get; }

    /// <summary>The allowed range or rule, e.g. <c>1..50</c> or <c>multiple of 16 in 16..2048</c>.</summary>
    public string Allowed { get; }

    private static string Format(object? v) => v switch
    {
        null => "null",
        float f => f.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}

/// <summary>The device queue is full and the configured policy is <see cref="QueueFullPolicy.Reject"/>.</summary>
public sealed class PipelineBusyException : InvalidOperationException
{
    /// <summary>Creates the exception for a queue of <paramref name="capacity"/> waiting requests.</summary>
    public PipelineBusyException(int capacity)
        : base($"The device queue is full ({capacity} requests waiting, capacity {capacity}); retry later or raise ZImage:Queue:Capacity.")
        => Capacity = capacity;

    /// <summary>The configured queue capacity.</summary>
    public int Capacity { get; }
}

/// <summary>
/// A request's exact plan does not fit the inference segment and the policy is <see cref="OverBudgetPolicy.Reject"/>.
/// The message says how much more memory it needs and which smaller settings fit.
/// </summary>
public sealed class RequestExceedsBudgetException : InvalidOperationException
{
    /// <summary>Creates the exception from the plan.</summary>
    public RequestExceedsBudgetException(MemoryPlan plan)
        : base("The request does not fit the memory budget: " + (plan ?? throw new ArgumentNullException(nameof(plan))).Describe() + ".")
        => Plan = plan;

    /// <summary>The plan (stage peaks, carve-up, alternatives).</summary>
    public MemoryPlan Plan { get; }

    /// <summary>How many bytes more the request needs.</summary>
    public long NeedsMoreBytes => Plan.NeedsMoreBytes;
}
