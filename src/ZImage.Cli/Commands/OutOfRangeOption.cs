using System.CommandLine;
using ZImage.Runtime.Hosting;

namespace ZImage.Cli.Commands;

/// <summary><c>--on-out-of-range reject|reset</c> of <c>generate</c> and <c>plan</c>: the library's <see cref="OutOfRangePolicy"/>.</summary>
internal static class OutOfRangeOption
{
    public const string Reject = "reject";
    public const string Reset = "reset";

    public static Option<string> Create()
    {
        var option = new Option<string>("--on-out-of-range")
        {
            Description = "Steps or guidance outside the limits: reject (default: fail naming the value and the range) or reset (run the Standard preset with a warning).",
            DefaultValueFactory = _ => Reject,
        };
        option.AcceptOnlyFromAmong(Reject, Reset);
        return option;
    }

    public static OutOfRangePolicy Policy(string? value) => value == Reset ? OutOfRangePolicy.ResetToStandard : OutOfRangePolicy.Reject;
}
