using System.Globalization;
using Xunit.Sdk;

namespace ZImage.Tests.Infrastructure;

/// <summary>Element-wise comparisons that report the worst element (index, multi-index, values) on failure.</summary>
public static class TensorAssert
{
    /// <summary>
    /// Asserts max |expected − actual| ≤ <paramref name="maxAbs"/> (NaN or infinity in <paramref name="actual"/>
    /// where the reference is finite fails). Returns the observed max difference.
    /// </summary>
    /// <param name="expected">Reference values.</param>
    /// <param name="actual">Computed values.</param>
    /// <param name="maxAbs">Allowed max absolute difference.</param>
    /// <param name="name">Tensor name for the message.</param>
    /// <param name="shape">Optional shape, to print the worst element's multi-index.</param>
    public static double Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double maxAbs, string name, ReadOnlySpan<int> shape = default)
    {
        if (expected.Length != actual.Length)
            throw new XunitException($"{name}: length {actual.Length} differs from the reference's {expected.Length}.");
        double worst = 0;
        int worstIndex = -1, exceeding = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double diff = double.IsNaN(e) && double.IsNaN(a) ? 0 : Math.Abs(e - a);
            if (double.IsNaN(diff)) diff = double.PositiveInfinity;
            if (diff > maxAbs) exceeding++;
            if (diff > worst || worstIndex < 0)
            {
                worst = diff;
                worstIndex = i;
            }
        }
        if (worst > maxAbs)
        {
            throw new XunitException(string.Create(CultureInfo.InvariantCulture,
                $"{name}: max |Δ| = {worst:G4} > {maxAbs:G4} at index {worstIndex}{MultiIndex(worstIndex, shape)}: expected {expected[worstIndex]:G9}, actual {actual[worstIndex]:G9}; {exceeding} of {expected.Length} elements exceed the tolerance."));
        }
        return worst;
    }

    /// <summary>Compares a computed tensor with a loaded reference tensor (shape printed in failures).</summary>
    public static double Close(ReferenceTensor<float> expected, ReadOnlySpan<float> actual, double maxAbs)
    {
        ArgumentNullException.ThrowIfNull(expected);
        return Close(expected.Data, actual, maxAbs, expected.Name, expected.Shape);
    }

    /// <summary>Asserts exact equality, reporting the first differing index and both lengths.</summary>
    public static void Equal<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string name) where T : IEquatable<T>
    {
        int n = Math.Min(expected.Length, actual.Length);
        for (int i = 0; i < n; i++)
        {
            if (!expected[i].Equals(actual[i]))
                throw new XunitException($"{name}: first difference at index {i}: expected {expected[i]}, actual {actual[i]} (lengths {expected.Length} / {actual.Length}).");
        }
        if (expected.Length != actual.Length)
            throw new XunitException($"{name}: length {actual.Length} differs from the expected {expected.Length} (equal over the first {n}).");
    }

    private static string MultiIndex(int flat, ReadOnlySpan<int> shape)
    {
        if (shape.IsEmpty) return "";
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 0) return "";
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        return " [" + string.Join(",", idx) + "]";
    }
}
