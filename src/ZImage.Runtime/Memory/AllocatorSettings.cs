using System.Globalization;
using System.Numerics;
using System.Text;

namespace ZImage.Runtime.Memory;

/// <summary>A <c>PYTORCH_CUDA_ALLOC_CONF</c>-style settings string or value is invalid; the message names the key, the value and the allowed range.</summary>
public sealed class AllocatorSettingsException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public AllocatorSettingsException(string key, string? value, string message)
        : base(message)
    {
        Key = key;
        Value = value;
    }

    /// <summary>The offending key (or the whole string when the syntax is broken).</summary>
    public string Key { get; }

    /// <summary>The offending value, if any.</summary>
    public string? Value { get; }
}

/// <summary>
/// Settings of <see cref="CachingAllocator"/>, matching PyTorch's native allocator options. Build one as an options
/// record or parse the string users know: <c>AllocatorSettings.Parse("max_split_size_mb:128,roundup_power2_divisions:4")</c>;
/// <see cref="ToString"/> gives the canonical string back.
/// </summary>
public sealed record AllocatorSettings
{
    /// <summary>Number of power-of-two intervals of <see cref="RoundupPower2Divisions"/> (1 MiB .. 64 GiB), as in PyTorch.</summary>
    public const int RoundupIntervals = 16;

    /// <summary>Smallest allowed <see cref="MaxSplitSizeMB"/> and <see cref="MaxNonSplitRoundingMB"/> (kLargeBuffer / 1 MiB).</summary>
    public const long MinSplitSizeMB = 20;

    private static readonly int[] NoDivisions = new int[RoundupIntervals];
    private readonly int[] _divisions = NoDivisions;

    /// <summary>The default settings (PyTorch's defaults: no max split, 512 B rounding, no GC).</summary>
    public static AllocatorSettings Default { get; } = new();

    /// <summary>
    /// <c>max_split_size_mb</c>: blocks of at least this many MiB are never split and serve only requests within
    /// <see cref="MaxNonSplitRoundingMB"/> of their size; null = unlimited (PyTorch default). Must be &gt;= 20.
    /// </summary>
    public long? MaxSplitSizeMB { get; init; }

    /// <summary><c>max_non_split_rounding_mb</c>: how much larger than an oversize request a cached oversize block may be (default 20 = kLargeBuffer; &gt;= 20).</summary>
    public long MaxNonSplitRoundingMB { get; init; } = MinSplitSizeMB;

    /// <summary>
    /// <c>roundup_power2_divisions</c>: divisions per power-of-two interval, 16 entries for [1 MiB, 2 MiB), [2 MiB, 4 MiB), …,
    /// [32 GiB, ∞) (sizes below 1 MiB use entry 0). Each 0 (plain 512 B rounding) or a power of two.
    /// </summary>
    public IReadOnlyList<int> RoundupPower2Divisions
    {
        get => _divisions;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Count != RoundupIntervals)
                throw new AllocatorSettingsException("roundup_power2_divisions", value.Count.ToString(CultureInfo.InvariantCulture),
                    $"roundup_power2_divisions needs exactly {RoundupIntervals} interval entries, got {value.Count}.");
            var copy = value.ToArray();
            foreach (int d in copy)
                CheckDivision(d, allowZero: true);
            _divisions = copy;
        }
    }

    /// <summary><c>garbage_collection_threshold</c> in (0, 1), or 0 for off. Active only with <see cref="PerProcessMemoryFraction"/> set, as in PyTorch.</summary>
    public double GarbageCollectionThreshold { get; init; }

    /// <summary>
    /// The analogue of <c>torch.cuda.set_per_process_memory_fraction</c>: reserved memory may not exceed this fraction of the
    /// device total; null = no limit. In the string form this is the ZImage extension key <c>per_process_memory_fraction</c>.
    /// </summary>
    public double? PerProcessMemoryFraction { get; init; }

    /// <summary><see cref="MaxSplitSizeMB"/> in bytes (<see cref="long.MaxValue"/> when unlimited).</summary>
    public long MaxSplitSizeBytes => MaxSplitSizeMB is { } mb ? mb * ByteSize.MiB : long.MaxValue;

    /// <summary><see cref="MaxNonSplitRoundingMB"/> in bytes.</summary>
    public long MaxNonSplitRoundingBytes => MaxNonSplitRoundingMB * ByteSize.MiB;

    /// <summary>Divisions for a request of <paramref name="size"/> bytes (PyTorch's <c>roundup_power2_divisions(size)</c>).</summary>
    public int GetRoundupPower2Divisions(long size)
    {
        int log = size <= 0 ? 0 : 63 - BitOperations.LeadingZeroCount((ulong)size);
        int index = log > 20 ? log - 20 : 0;
        return _divisions[Math.Min(index, RoundupIntervals - 1)];
    }

    /// <summary>Returns settings with the same number of divisions for every interval (<c>roundup_power2_divisions:N</c>).</summary>
    public AllocatorSettings WithRoundupPower2Divisions(int divisions)
    {
        CheckDivision(divisions, allowZero: true);
        var all = new int[RoundupIntervals];
        Array.Fill(all, divisions);
        return this with { RoundupPower2Divisions = all };
    }

    /// <summary>Throws <see cref="AllocatorSettingsException"/> if a value is out of range.</summary>
    public void Validate()
    {
        if (MaxSplitSizeMB is { } mb && (mb < MinSplitSizeMB || mb > long.MaxValue / ByteSize.MiB))
            throw Bad("max_split_size_mb", mb.ToString(CultureInfo.InvariantCulture), $"must be an integer >= {MinSplitSizeMB} (MiB)");
        if (MaxNonSplitRoundingMB < MinSplitSizeMB || MaxNonSplitRoundingMB > long.MaxValue / ByteSize.MiB / 2)
            throw Bad("max_non_split_rounding_mb", MaxNonSplitRoundingMB.ToString(CultureInfo.InvariantCulture), $"must be an integer >= {MinSplitSizeMB} (MiB)");
        if (GarbageCollectionThreshold != 0 && !(GarbageCollectionThreshold > 0 && GarbageCollectionThreshold < 1))
            throw Bad("garbage_collection_threshold", GarbageCollectionThreshold.ToString("R", CultureInfo.InvariantCulture), "must be > 0.0 and < 1.0 (or 0 for off)");
        if (PerProcessMemoryFraction is { } f && !(f > 0 && f <= 1))
            throw Bad("per_process_memory_fraction", f.ToString("R", CultureInfo.InvariantCulture), "must be > 0.0 and <= 1.0");
    }

    /// <summary>
    /// Parses <c>PYTORCH_CUDA_ALLOC_CONF</c> syntax: <c>key:value</c> pairs separated by commas. Keys: <c>max_split_size_mb</c>,
    /// <c>max_non_split_rounding_mb</c>, <c>roundup_power2_divisions</c> (<c>N</c> or <c>[256:1,512:2,&gt;:8]</c>),
    /// <c>garbage_collection_threshold</c>, <c>expandable_segments</c> (False only), <c>backend</c> (native only) and the ZImage
    /// extension <c>per_process_memory_fraction</c>. Null or blank gives <see cref="Default"/>. Later keys override earlier ones.
    /// </summary>
    /// <exception cref="AllocatorSettingsException">A key is unknown or a value is malformed or out of range.</exception>
    public static AllocatorSettings Parse(string? text)
    {
        var result = new AllocatorSettings();
        if (string.IsNullOrWhiteSpace(text))
            return result;
        var tokens = Tokenize(text);
        int i = 0;
        while (i < tokens.Count)
        {
            string key = tokens[i];
            if (key is "," or ":" or "[" or "]")
                throw new AllocatorSettingsException(text, null, $"Allocator settings '{text}': expected a key at token {i + 1}, found '{key}'.");
            Expect(tokens, ++i, ":", key, text);
            i++;
            if (i >= tokens.Count)
                throw Bad(key, null, "needs a value after ':'");
            switch (key)
            {
                case "max_split_size_mb":
                    result = result with { MaxSplitSizeMB = ParseLong(key, tokens[i], MinSplitSizeMB, long.MaxValue / ByteSize.MiB, "an integer >= 20 (MiB)") };
                    break;
                case "max_non_split_rounding_mb":
                    result = result with { MaxNonSplitRoundingMB = ParseLong(key, tokens[i], MinSplitSizeMB, long.MaxValue / ByteSize.MiB / 2, "an integer >= 20 (MiB)") };
                    break;
                case "garbage_collection_threshold":
                {
                    double t = ParseDouble(key, tokens[i]);
                    if (!(t > 0 && t < 1))
                        throw Bad(key, tokens[i], "must be > 0.0 and < 1.0");
                    result = result with { GarbageCollectionThreshold = t };
                    break;
                }
                case "per_process_memory_fraction":
                {
                    double f = ParseDouble(key, tokens[i]);
                    if (!(f > 0 && f <= 1))
                        throw Bad(key, tokens[i], "must be > 0.0 and <= 1.0");
                    result = result with { PerProcessMemoryFraction = f };
                    break;
                }
                case "roundup_power2_divisions":
                    result = result with { RoundupPower2Divisions = ParseDivisions(tokens, ref i, text) };
                    break;
                case "expandable_segments":
                    if (!tokens[i].Equals("False", StringComparison.OrdinalIgnoreCase))
                        throw Bad(key, tokens[i], "only False is supported (this allocator has no expandable segments)");
                    break;
                case "backend":
                    if (tokens[i] != "native")
                        throw Bad(key, tokens[i], "only 'native' is supported (cudaMallocAsync is a different allocator)");
                    break;
                default:
                    throw new AllocatorSettingsException(key, tokens[i],
                        $"Unknown allocator setting '{key}'. Allowed keys: max_split_size_mb, max_non_split_rounding_mb, roundup_power2_divisions, " +
                        "garbage_collection_threshold, expandable_segments, backend, per_process_memory_fraction.");
            }
            i++;
            if (i < tokens.Count)
            {
                Expect(tokens, i, ",", key, text);
                i++;
                if (i >= tokens.Count)
                    throw new AllocatorSettingsException(text, null, $"Allocator settings '{text}' end with a trailing ','.");
            }
        }
        result.Validate();
        return result;
    }

    /// <summary>Like <see cref="Parse"/> but returns false instead of throwing.</summary>
    public static bool TryParse(string? text, out AllocatorSettings settings)
    {
        try
        {
            settings = Parse(text);
            return true;
        }
        catch (AllocatorSettingsException)
        {
            settings = Default;
            return false;
        }
    }

    /// <summary>The canonical settings string (keys in a fixed order, defaults omitted; empty for <see cref="Default"/>).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (MaxSplitSizeMB is { } mb)
            parts.Add("max_split_size_mb:" + mb.ToString(CultureInfo.InvariantCulture));
        if (MaxNonSplitRoundingMB != MinSplitSizeMB)
            parts.Add("max_non_split_rounding_mb:" + MaxNonSplitRoundingMB.ToString(CultureInfo.InvariantCulture));
        if (_divisions.Any(d => d != 0))
            parts.Add("roundup_power2_divisions:" + FormatDivisions(_divisions));
        if (GarbageCollectionThreshold > 0)
            parts.Add("garbage_collection_threshold:" + GarbageCollectionThreshold.ToString("R", CultureInfo.InvariantCulture));
        if (PerProcessMemoryFraction is { } f)
            parts.Add("per_process_memory_fraction:" + f.ToString("R", CultureInfo.InvariantCulture));
        return string.Join(',', parts);
    }

    /// <inheritdoc />
    public bool Equals(AllocatorSettings? other) =>
        other is not null && MaxSplitSizeMB == other.MaxSplitSizeMB && MaxNonSplitRoundingMB == other.MaxNonSplitRoundingMB &&
        GarbageCollectionThreshold.Equals(other.GarbageCollectionThreshold) && Nullable.Equals(PerProcessMemoryFraction, other.PerProcessMemoryFraction) &&
        _divisions.AsSpan().SequenceEqual(other._divisions);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(MaxSplitSizeMB);
        h.Add(MaxNonSplitRoundingMB);
        h.Add(GarbageCollectionThreshold);
        h.Add(PerProcessMemoryFraction);
        foreach (int d in _divisions)
            h.Add(d);
        return h.ToHashCode();
    }

    private static string FormatDivisions(int[] d)
    {
        if (d.All(x => x == d[0]))
            return d[0].ToString(CultureInfo.InvariantCulture);
        // Mirrors the parser: the first key fills every interval up to and including its own, later keys set one
        // interval each, and '>' fills the trailing run after the last key.
        int firstEnd = 0;
        while (firstEnd + 1 < d.Length && d[firstEnd + 1] == d[0])
            firstEnd++;
        int tail = d.Length - 1;
        while (tail - 1 > firstEnd && d[tail - 1] == d[^1])
            tail--;
        var sb = new StringBuilder("[");
        sb.Append(1L << firstEnd).Append(':').Append(d[0]);
        for (int i = firstEnd + 1; i < tail; i++)
            sb.Append(',').Append(1L << i).Append(':').Append(d[i]);
        sb.Append(",>:").Append(d[^1]).Append(']');
        return sb.ToString();
    }

    private static int[] ParseDivisions(List<string> tokens, ref int i, string text)
    {
        const string key = "roundup_power2_divisions";
        var result = new int[RoundupIntervals];
        if (tokens[i] != "[")
        {
            long v = ParseLong(key, tokens[i], 1, 1L << 30, "a power of two (1, 2, 4, 8, ...)");
            CheckDivision((int)v, allowZero: false);
            Array.Fill(result, (int)v);
            return result;
        }
        // Same semantics as c10 AllocatorConfig::parseRoundUpPower2Divisions: keys are MiB interval starts.
        bool first = true;
        int lastIndex = 0;
        i++;
        while (true)
        {
            if (i >= tokens.Count)
                throw Bad(key, null, "list is missing its closing ']'");
            if (tokens[i] == "]")
                break;
            string boundaryToken = tokens[i];
            Expect(tokens, ++i, ":", key, text);
            if (++i >= tokens.Count)
                throw Bad(key, boundaryToken, "interval needs a value");
            long value = ParseLong(key, tokens[i], 0, 1L << 30, "0 or a power of two (1, 2, 4, 8, ...)");
            CheckDivision((int)value, allowZero: true);
            if (boundaryToken == ">")
            {
                for (int k = lastIndex + 1; k < RoundupIntervals; k++)
                    result[k] = (int)value;
            }
            else
            {
                long boundary = ParseLong(key, boundaryToken, 1, long.MaxValue, "a power-of-two interval start in MiB (1, 2, 4, ... 32768) or '>'");
                if (!BitOperations.IsPow2(boundary))
                    throw Bad(key, boundaryToken, "interval starts must be powers of two (MiB), e.g. 256, 512, 1024, or '>'");
                int index = Math.Clamp(63 - BitOperations.LeadingZeroCount((ulong)boundary), 0, RoundupIntervals - 1);
                if (first)
                {
                    for (int k = 0; k < index; k++)
                        result[k] = (int)value;
                    first = false;
                }
                result[index] = (int)value;
                lastIndex = index;
            }
            i++;
            if (i < tokens.Count && tokens[i] == ",")
                i++;
            else if (i >= tokens.Count || tokens[i] != "]")
                throw Bad(key, i < tokens.Count ? tokens[i] : null, "list entries must be 'interval:value' separated by ',' and closed by ']'");
        }
        return result;
    }

    private static void CheckDivision(int d, bool allowZero)
    {
        if (d < 0 || (d == 0 && !allowZero) || (d != 0 && !BitOperations.IsPow2(d)))
            throw Bad("roundup_power2_divisions", d.ToString(CultureInfo.InvariantCulture),
                allowZero ? "divisions must be 0 or a power of two (1, 2, 4, 8, ...)" : "divisions must be a power of two (1, 2, 4, 8, ...)");
    }

    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            if (c is ',' or ':' or '[' or ']' || char.IsWhiteSpace(c))
            {
                if (sb.Length > 0)
                {
                    tokens.Add(sb.ToString());
                    sb.Clear();
                }
                if (!char.IsWhiteSpace(c))
                    tokens.Add(c.ToString());
            }
            else
            {
                sb.Append(c);
            }
        }
        if (sb.Length > 0)
            tokens.Add(sb.ToString());
        return tokens;
    }

    private static void Expect(List<string> tokens, int i, string token, string key, string text)
    {
        if (i >= tokens.Count || tokens[i] != token)
            throw new AllocatorSettingsException(key, i < tokens.Count ? tokens[i] : null,
                $"Allocator settings '{text}': expected '{token}' after '{key}', found {(i < tokens.Count ? "'" + tokens[i] + "'" : "the end")}.");
    }

    private static long ParseLong(string key, string token, long min, long max, string allowed)
    {
        if (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
            throw Bad(key, token, "must be " + allowed);
        return v;
    }

    private static double ParseDouble(string key, string token)
    {
        if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
            throw Bad(key, token, "must be a number");
        return v;
    }

    private static AllocatorSettingsException Bad(string key, string? value, string rule) =>
        new(key, value, value is null ? $"Allocator setting '{key}' {rule}." : $"Allocator setting '{key}' has invalid value '{value}': {rule}.");
}
