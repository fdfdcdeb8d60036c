using System.Text;

namespace ZImage.Runtime.Budget;

/// <summary>The parts of a <see cref="MemoryBar"/>, left to right.</summary>
public enum MemoryBarPart
{
    /// <summary>System reserve (<c>#</c>).</summary>
    SystemReserve,
    /// <summary>Resident base, green (<c>=</c>).</summary>
    Base,
    /// <summary>Inference workspace in use, yellow (<c>+</c>).</summary>
    InferenceInUse,
    /// <summary>Inference segment not in use (<c>-</c>).</summary>
    InferenceIdle,
    /// <summary>Buffer eaten by usage beyond the inference segment (<c>!</c>).</summary>
    BufferInUse,
    /// <summary>Buffer still intact, gray (<c>~</c>).</summary>
    Buffer,
    /// <summary>Unassigned free memory (<c>.</c>).</summary>
    Free,
}

/// <summary>One run of cells in a memory bar.</summary>
/// <param name="Part">What the run shows.</param>
/// <param name="Bytes">The bytes it stands for.</param>
/// <param name="Cells">How many cells it takes.</param>
/// <param name="Glyph">The character <see cref="MemoryBar.Render"/> uses for it.</param>
public readonly record struct MemoryBarSegment(MemoryBarPart Part, long Bytes, int Cells, char Glyph);

/// <summary>
/// Renders a <see cref="MemorySnapshot"/> as a plain-text bar, e.g. <c>[##=================-~~.]</c>, with no console
/// dependency; <see cref="Layout"/> gives the runs so a CLI can colour them (Spectre).
/// </summary>
public static class MemoryBar
{
    /// <summary>The widest bar allowed.</summary>
    public const int MaxWidth = 1000;

    /// <summary>
    /// Splits <paramref name="width"/> cells among the parts in proportion to their bytes (largest remainder, so the
    /// cells add up to exactly <paramref name="width"/>; any non-empty part gets at least one cell, taken from the widest parts, as long as the width allows).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="width"/> is outside 1..<see cref="MaxWidth"/>.</exception>
    public static IReadOnlyList<MemoryBarSegment> Layout(MemorySnapshot snapshot, int width)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (width is < 1 or > MaxWidth)
            throw new ArgumentOutOfRangeException(nameof(width), width, $"The bar width must be within 1..{MaxWidth}.");
        long inUse = Math.Min(snapshot.InferenceInUseBytes, snapshot.InferenceLimitBytes);
        (MemoryBarPart Part, long Bytes, char Glyph)[] parts =
        [
            (MemoryBarPart.SystemReserve, snapshot.SystemReserveBytes, '#'),
            (MemoryBarPart.Base, snapshot.BaseBytes, '='),
            (MemoryBarPart.InferenceInUse, inUse, '+'),
            (MemoryBarPart.InferenceIdle, snapshot.InferenceLimitBytes - inUse, '-'),
            (MemoryBarPart.BufferInUse, snapshot.BufferInUseBytes, '!'),
            (MemoryBarPart.Buffer, snapshot.BufferBytes - snapshot.BufferInUseBytes, '~'),
            (MemoryBarPart.Free, snapshot.FreeBytes, '.'),
        ];

        // When the base overflowed the layout the parts add up to more than the total; scale by their sum then.
        double scale = Math.Max(snapshot.TotalBytes, parts.Sum(p => Math.Max(0, p.Bytes)));
        var cells = new int[parts.Length];
        var remainders = new double[parts.Length];
        int used = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            double exact = scale <= 0 ? 0 : Math.Max(0, parts[i].Bytes) / scale * width;
            cells[i] = (int)Math.Floor(exact);
            remainders[i] = exact - cells[i];
            used += cells[i];
        }

        foreach (int i in Enumerable.Range(0, parts.Length).Where(i => parts[i].Bytes > 0 && cells[i] == 0).OrderByDescending(i => parts[i].Bytes))
        {
            cells[i] = 1;
            remainders[i] = 0;
            used++;
        }

        foreach (int i in Enumerable.Range(0, parts.Length).OrderByDescending(i => remainders[i]))
        {
            if (used >= width)
                break;
            if (parts[i].Bytes <= 0 && scale > 0)
                continue;
            cells[i]++;
            used++;
        }

        // Cells can exceed the width only through the minimum-one rule; take them back from the widest parts.
        while (used > width)
        {
            int widest = Array.IndexOf(cells, cells.Max());
            cells[widest]--;
            used--;
        }

        return [.. parts.Select((p, i) => new MemoryBarSegment(p.Part, Math.Max(0, p.Bytes), cells[i], p.Glyph))];
    }

    /// <summary>The bar alone, e.g. <c>[##=================-~~.]</c> (<paramref name="width"/> cells inside the brackets).</summary>
    public static string Render(MemorySnapshot snapshot, int width = 50)
    {
        var sb = new StringBuilder(width + 2).Append('[');
        foreach (var s in Layout(snapshot, width))
            sb.Append(s.Glyph, s.Cells);
        return sb.Append(']').ToString();
    }

    /// <summary>One-line summary: state and every segment in GiB, e.g. <c>Green | reserve 2.00 GiB | base 19.30 GiB | ...</c>.</summary>
    public static string Describe(MemorySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        string g(long b) => BudgetExceededException.Gib(b);
        var sb = new StringBuilder()
            .Append(snapshot.State)
            .Append(" | total ").Append(g(snapshot.TotalBytes))
            .Append(" | reserve ").Append(g(snapshot.SystemReserveBytes))
            .Append(" | base ").Append(g(snapshot.BaseBytes))
            .Append(" | inference ").Append(g(snapshot.InferenceInUseBytes)).Append(" / ").Append(g(snapshot.InferenceLimitBytes))
            .Append(" | buffer ").Append(g(snapshot.BufferBytes));
        if (snapshot.BufferInUseBytes > 0)
            sb.Append(" (").Append(g(snapshot.BufferInUseBytes)).Append(" eaten)");
        sb.Append(" | free ").Append(g(snapshot.FreeBytes));
        if (snapshot.OutOfMemorySeen)
            sb.Append(" | device OOM seen");
        return sb.ToString();
    }

    /// <summary><see cref="Render"/> followed by <see cref="Describe"/> on the same line.</summary>
    public static string RenderWithLegend(MemorySnapshot snapshot, int width = 50) => Render(snapshot, width) + " " + Describe(snapshot);

    /// <summary>The legend of glyphs.</summary>
    public const string Legend = "# reserve  = base  + inference in use  - inference idle  ! buffer eaten  ~ buffer  . free";
}
