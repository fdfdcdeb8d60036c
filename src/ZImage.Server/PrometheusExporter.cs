using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using ZImage.Runtime.Hosting;

namespace ZImage.Server;

/// <summary>
/// A small Prometheus text-format (0.0.4) exporter for the <c>ZImage</c> meter, over a <see cref="MeterListener"/>:
/// counters become <c>*_total</c>, histograms <c>_bucket/_sum/_count</c>, observable gauges are read at scrape time;
/// names are sanitised (<c>zimage.memory.base</c> with unit <c>By</c> → <c>zimage_memory_base_bytes</c>) and tags
/// become labels. (No Prometheus exporter package that is served here is a stable release.)
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();
    private readonly Lock _scrape = new();

    private sealed class Series(Instrument instrument)
    {
        public Instrument Instrument { get; } = instrument;
        public ConcurrentDictionary<string, double> Sums { get; } = new();           // counters, gauges: labels → value
        public ConcurrentDictionary<string, double[]> Histograms { get; } = new();   // labels → bucket counts.., count, sum
    }

    /// <summary>Starts listening to the <c>ZImage</c> meter (the registered <see cref="ZImageMetrics"/> is resolved so its instruments exist).</summary>
    public PrometheusExporter(ZImageMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ZImageMetrics.MeterName)
            {
                _series[instrument] = new Series(instrument);
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!_series.TryGetValue(instrument, out var s)) return;
        string labels = Labels(tags);
        switch (instrument)
        {
            case Histogram<double> or Histogram<long>:
                var h = s.Histograms.GetOrAdd(labels, _ => new double[Buckets.Length + 2]);
                lock (h)
                {
                    for (int b = 0; b < Buckets.Length; b++) if (value <= Buckets[b]) h[b]++;
                    h[Buckets.Length]++;
                    h[Buckets.Length + 1] += value;
                }
                break;
            case ObservableGauge<long> or ObservableGauge<double>:
                s.Sums[labels] = value;
                break;
            default:
                s.Sums.AddOrUpdate(labels, value, (_, old) => old + value);
                break;
        }
    }

    /// <summary>The metrics in Prometheus text format.</summary>
    public string Scrape()
    {
        lock (_scrape)
        {
            foreach (var s in _series.Values)
                if (s.Instrument.IsObservable) s.Sums.Clear();
            _listener.RecordObservableInstruments();
            var sb = new StringBuilder();
            foreach (var s in _series.Values.OrderBy(s => s.Instrument.Name, StringComparer.Ordinal))
                Write(sb, s);
            return sb.ToString();
        }
    }

    private static void Write(StringBuilder sb, Series s)
    {
        var i = s.Instrument;
        string name = Name(i);
        bool histogram = i is Histogram<double> or Histogram<long>;
        bool counter = !i.IsObservable && !histogram;
        string type = histogram ? "histogram" : counter ? "counter" : "gauge";
        if (counter) name += "_total";
        sb.Append("# HELP ").Append(name).Append(' ').Append(Escape(i.Description ?? "")).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        if (histogram)
        {
            foreach (var (labels, h) in s.Histograms)
            {
                lock (h)
                {
                    for (int b = 0; b < Buckets.Length; b++)
                        sb.Append(name).Append("_bucket{").Append(Join(labels, $"le=\"{F(Buckets[b])}\"")).Append("} ").Append(F(h[b])).Append('\n');
                    sb.Append(name).Append("_bucket{").Append(Join(labels, "le=\"+Inf\"")).Append("} ").Append(F(h[Buckets.Length])).Append('\n');
                    sb.Append(name).Append("_sum").Append(Braces(labels)).Append(' ').Append(F(h[Buckets.Length + 1])).Append('\n');
                    sb.Append(name).Append("_count").Append(Braces(labels)).Append(' ').Append(F(h[Buckets.Length])).Append('\n');
                }
            }
        }
        else if (s.Sums.IsEmpty && counter)
            sb.Append(name).Append(" 0\n");
        else
            foreach (var (labels, v) in s.Sums.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                sb.Append(name).Append(Braces(labels)).Append(' ').Append(F(v)).Append('\n');
    }

    private static string Name(Instrument i)
    {
        var sb = new StringBuilder();
        foreach (char c in i.Name) sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        string suffix = i.Unit switch { "By" => "_bytes", "s" => "_seconds", _ => "" };
        return sb.ToString() + suffix;
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var parts = new List<string>(tags.Length);
        foreach (var (k, v) in tags)
        {
            var key = new StringBuilder();
            foreach (char c in k) key.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
            parts.Add($"{key}=\"{Escape(Convert.ToString(v, CultureInfo.InvariantCulture) ?? "")}\"");
        }
        parts.Sort(StringComparer.Ordinal);
        return string.Join(",", parts);
    }

    private static string Braces(string labels) => labels.Length == 0 ? "" : "{" + labels + "}";
    private static string Join(string labels, string extra) => labels.Length == 0 ? extra : labels + "," + extra;
    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
