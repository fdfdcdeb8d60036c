namespace ZImage.Runtime.Budget;

/// <summary>The answer of <see cref="BudgetGuard.TryAdmit"/>: whether a workspace of a given size fits the inference segment now.</summary>
/// <param name="Admitted">Whether in-use + requested stays within the inference segment (an exact fit is admitted).</param>
/// <param name="RequestedBytes">The workspace asked about.</param>
/// <param name="LimitBytes">The inference segment.</param>
/// <param name="InUseBytes">Inference bytes in use when asked.</param>
/// <param name="OverByBytes">How far in-use + requested exceeds the segment (0 when admitted).</param>
/// <param name="Message">E.g. "needs 1.20 GiB more than the 2.00 GiB inference segment".</param>
public sealed record AdmissionResult(bool Admitted, long RequestedBytes, long LimitBytes, long InUseBytes, long OverByBytes, string Message)
{
    /// <summary>Bytes of the segment still free for this request.</summary>
    public long AvailableBytes => Math.Max(0, LimitBytes - InUseBytes);

    internal static AdmissionResult Evaluate(long requested, long limit, long inUse)
    {
        long over = inUse + requested - limit;
        string g(long b) => BudgetExceededException.Gib(b);
        if (over <= 0)
            return new AdmissionResult(true, requested, limit, inUse, 0,
                $"fits: {g(requested)} of the {g(limit)} inference segment ({g(limit - inUse - requested)} left)");
        string message = inUse == 0
            ? $"needs {g(over)} more than the {g(limit)} inference segment"
            : $"needs {g(over)} more than the {g(limit)} inference segment has free ({g(inUse)} in use)";
        return new AdmissionResult(false, requested, limit, inUse, over, message);
    }
}
