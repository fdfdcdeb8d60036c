using System.Globalization;

namespace ZImage.Runtime.Memory;

/// <summary>Byte-count formatting and parsing ("24GiB", "512MiB", "1.5 GiB", "4096").</summary>
public static class ByteSize
{
    /// <summary>One KiB.</summary>
    public const long KiB = 1024;
    /// <summary>One MiB.</summary>
    public const long MiB = 1024 * KiB;
    /// <summary>One GiB.</summary>
    public const long GiB = 1024 * MiB;

    /// <summary>Formats bytes with a binary unit and two decimals, e.g. <c>1.20 GiB</c>.</summary>
    public static string Format(long bytes)
    {
        double b = bytes;
        string sign = b < 0 ? "-" : "";
        b = Math.Abs(b);
        return b switch
        {
            >= GiB => sign + (b / GiB).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
            >= MiB => sign + (b / MiB).ToString("0.00", CultureInfo.InvariantCulture) + " MiB",
            >= KiB => sign + (b / KiB).ToString("0.00", CultureInfo.InvariantCulture) + " KiB",
            _ => sign + ((long)b).ToString(CultureInfo.InvariantCulture) + " B",
        };
    }

    /// <summary>Parses "24GiB", "24 GiB", "1.5GB" (GB is read as GiB), "512MiB", "4096", "4096B".</summary>
    /// <exception cref="FormatException">The text is not a byte size; the message quotes it.</exception>
    public static long Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        int i = 0;
        while (i < s.Length && (char.IsDigit(s[i]) || s[i] == '.')) i++;
        if (i == 0 || !double.TryParse(s[..i], NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < 0)
            throw new FormatException($"'{text}' is not a byte size; expected e.g. 24GiB, 512MiB or 4096.");
        string unit = s[i..].Trim().ToUpperInvariant();
        long mult = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => KiB,
            "M" or "MB" or "MIB" => MiB,
            "G" or "GB" or "GIB" => GiB,
            "T" or "TB" or "TIB" => 1024 * GiB,
            _ => throw new FormatException($"'{text}' has an unknown unit '{s[i..].Trim()}'; use B, KiB, MiB, GiB or TiB."),
        };
        return checked((long)Math.Round(value * mult));
    }
}
