using System.Diagnostics;
using System.Security.Cryptography;

namespace ZImage.Fuzz;

/// <summary>
/// One fuzz target: seed inputs, the code under test (a SharpFuzz-style entry point over bytes, so it can also be
/// driven by <c>SharpFuzz.Fuzzer.LibFuzzer.Run(span =&gt; target.Run(span.ToArray()))</c>), the exception types its
/// documentation allows, and a dictionary of tokens the mutator splices in.
/// </summary>
public sealed record FuzzTarget(string Name, IReadOnlyList<byte[]> Seeds, Action<byte[]> Run, IReadOnlyList<Type> Allowed, IReadOnlyList<byte[]> Dictionary)
{
    /// <summary>Whether <paramref name="e"/> is one of the documented exception types (or derives from one).</summary>
    public bool IsAllowed(Exception e) => Allowed.Any(t => t.IsInstanceOfType(e));
}

/// <summary>An input that threw an undocumented exception (or hung), with the exception.</summary>
public sealed record FuzzCrash(string Target, string Signature, byte[] Input, string Details);

/// <summary>Counts of one fuzz run.</summary>
public sealed record FuzzReport(string Target, long Inputs, long Accepted, long Rejected, TimeSpan Elapsed, IReadOnlyList<FuzzCrash> Crashes, long Seed)
{
    public override string ToString() =>
        $"{Target,-18} inputs {Inputs,10:N0}  accepted {Accepted,10:N0}  rejected (documented exceptions) {Rejected,10:N0}  crashes {Crashes.Count}  " +
        $"{Elapsed.TotalSeconds,7:F1} s  ({Inputs / Math.Max(1e-9, Elapsed.TotalSeconds):N0}/s)  seed {Seed}";
}

/// <summary>
/// A deterministic (seeded) mutation fuzzer: each input is a seed or an earlier accepted input, mutated 1–8 times by
/// bit flips, interesting bytes and integers, insertions, deletions, duplicated or swapped ranges, dictionary
/// tokens and splices with another corpus entry. Inputs that the target accepts (no exception) join the corpus.
/// A watchdog thread fails the run when one input takes longer than the per-input timeout (a hang).
/// </summary>
public static class MutationFuzzer
{
    private static readonly byte[] InterestingBytes = [0, 1, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'{', (byte)'}', (byte)',', (byte)':', (byte)'[', (byte)']', (byte)'\\', (byte)'-', (byte)'0', (byte)'9', 0xC0, 0xED, 0xF4];
    private static readonly long[] InterestingInts = [0, 1, -1, 7, 8, 255, 256, 4096, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue, long.MaxValue - 1, 1L << 53, (1L << 62) + 1];

    /// <summary>Runs <paramref name="iterations"/> inputs through <paramref name="target"/>.</summary>
    /// <param name="target">The target.</param>
    /// <param name="iterations">Number of inputs (seeds included).</param>
    /// <param name="seed">Seed of the mutator; the same seed gives the same inputs.</param>
    /// <param name="perInputTimeout">An input running longer than this is reported as a hang and ends the run.</param>
    /// <param name="maxCrashes">Stop after this many distinct crash signatures.</param>
    /// <param name="maxInputBytes">Mutants are cut to this length.</param>
    public static FuzzReport Run(FuzzTarget target, long iterations, long seed, TimeSpan perInputTimeout, int maxCrashes = 10, int maxInputBytes = 4096)
    {
        var rng = new Random(unchecked((int)seed ^ (int)(seed >> 32)) ^ StableHash(target.Name));
        var corpus = new List<byte[]>(target.Seeds);
        var crashes = new Dictionary<string, FuzzCrash>(StringComparer.Ordinal);
        long accepted = 0, rejected = 0, inputs = 0;
        long startedAt = 0; // Stopwatch ticks of the running input; 0 = idle
        byte[]? current = null;
        bool done = false;
        FuzzCrash? hang = null;
        var watchdog = new Thread(() =>
        {
            long limit = (long)(perInputTimeout.TotalSeconds * Stopwatch.Frequency);
            while (!Volatile.Read(ref done))
            {
                Thread.Sleep(50);
                long s = Interlocked.Read(ref startedAt);
                if (s != 0 && Stopwatch.GetTimestamp() - s > limit)
                {
                    hang = new FuzzCrash(target.Name, "hang", Volatile.Read(ref current) ?? [], $"one input ran longer than {perInputTimeout.TotalMilliseconds} ms");
                    return;
                }
            }
        }) { IsBackground = true, Name = "fuzz watchdog" };
        watchdog.Start();
        var sw = Stopwatch.StartNew();
        try
        {
            for (long i = 0; i < iterations && crashes.Count < maxCrashes && hang is null; i++)
            {
                byte[] input = i < target.Seeds.Count ? target.Seeds[(int)i] : Mutate(rng, corpus, target.Dictionary, maxInputBytes);
                Volatile.Write(ref current, input);
                Interlocked.Exchange(ref startedAt, Stopwatch.GetTimestamp());
                try
                {
                    target.Run(input);
                    accepted++;
                    if (corpus.Count < 4096 && rng.Next(8) == 0) corpus.Add(input);
                }
                catch (Exception e) when (target.IsAllowed(e))
                {
                    rejected++;
                }
                catch (Exception e)
                {
                    string sig = Signature(e);
                    if (!crashes.TryGetValue(sig, out var prev) || prev.Input.Length > input.Length)
                        crashes[sig] = new FuzzCrash(target.Name, sig, input, e.ToString());
                }
                finally
                {
                    Interlocked.Exchange(ref startedAt, 0);
                    inputs++;
                }
            }
        }
        finally
        {
            Volatile.Write(ref done, true);
        }
        var list = crashes.Values.ToList();
        if (hang is not null) list.Add(hang);
        return new FuzzReport(target.Name, inputs, accepted, rejected, sw.Elapsed, list, seed);
    }

    /// <summary>Writes each crash input to <paramref name="directory"/> as <c>target-hash.bin</c> with a <c>.txt</c> beside it.</summary>
    public static void Save(IEnumerable<FuzzCrash> crashes, string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var c in crashes)
        {
            string name = $"{c.Target}-{Convert.ToHexString(SHA256.HashData(c.Input))[..12].ToLowerInvariant()}";
            File.WriteAllBytes(Path.Combine(directory, name + ".bin"), c.Input);
            File.WriteAllText(Path.Combine(directory, name + ".txt"), c.Signature + Environment.NewLine + c.Details);
        }
    }

    private static int StableHash(string s)
    {
        int h = 17;
        foreach (char c in s) h = unchecked(h * 31 + c);
        return h;
    }

    // Exception type plus the first frame inside ZImage: one entry per distinct bug, not per input.
    private static string Signature(Exception e)
    {
        var frame = new StackTrace(e, false).GetFrames().Select(f => f.GetMethod()).FirstOrDefault(m => m?.DeclaringType?.Namespace?.StartsWith("ZImage.Runtime", StringComparison.Ordinal) == true);
        return $"{e.GetType().FullName} at {frame?.DeclaringType?.Name}.{frame?.Name}";
    }

    private static byte[] Mutate(Random rng, List<byte[]> corpus, IReadOnlyList<byte[]> dictionary, int maxBytes)
    {
        var data = new List<byte>(corpus[rng.Next(corpus.Count)]);
        int count = 1 + rng.Next(rng.Next(2) == 0 ? 2 : 8);
        for (int m = 0; m < count; m++)
        {
            int pos = data.Count == 0 ? 0 : rng.Next(data.Count);
            switch (rng.Next(11))
            {
                case 0 when data.Count > 0: data[pos] ^= (byte)(1 << rng.Next(8)); break;
                case 1 when data.Count > 0: data[pos] = InterestingBytes[rng.Next(InterestingBytes.Length)]; break;
                case 2 when data.Count > 0: data[pos] = (byte)rng.Next(256); break;
                case 3: data.Insert(pos, (byte)rng.Next(256)); break;
                case 4 when data.Count > 0: data.RemoveRange(pos, Math.Min(data.Count - pos, 1 + rng.Next(16))); break;
                case 5 when data.Count > 0:
                {
                    int len = Math.Min(data.Count - pos, 1 + rng.Next(32));
                    var chunk = data.GetRange(pos, len);
                    data.InsertRange(rng.Next(data.Count + 1), chunk);
                    break;
                }
                case 6 when dictionary.Count > 0: data.InsertRange(pos, dictionary[rng.Next(dictionary.Count)]); break;
                case 7 when dictionary.Count > 0:
                {
                    var token = dictionary[rng.Next(dictionary.Count)];
                    int len = Math.Min(data.Count - pos, token.Length);
                    data.RemoveRange(pos, len);
                    data.InsertRange(pos, token);
                    break;
                }
                case 8:
                {
                    // An interesting integer, as ASCII digits (JSON, settings) or as 8 little-endian bytes (binary lengths).
                    long v = InterestingInts[rng.Next(InterestingInts.Length)];
                    byte[] bytes = rng.Next(2) == 0 ? System.Text.Encoding.ASCII.GetBytes(v.ToString(System.Globalization.CultureInfo.InvariantCulture)) : BitConverter.GetBytes(v);
                    int len = Math.Min(data.Count - pos, bytes.Length);
                    if (rng.Next(2) == 0) data.RemoveRange(pos, len);
                    data.InsertRange(pos, bytes);
                    break;
                }
                case 9:
                {
                    var other = corpus[rng.Next(corpus.Count)];
                    if (other.Length == 0) break;
                    int from = rng.Next(other.Length);
                    data.RemoveRange(pos, data.Count - pos);
                    data.AddRange(other.AsSpan(from).ToArray());
                    break;
                }
                default:
                    if (data.Count > 0) data.RemoveRange(pos, data.Count - pos); // truncate
                    break;
            }
        }
        if (data.Count > maxBytes) data.RemoveRange(maxBytes, data.Count - maxBytes);
        return data.ToArray();
    }
}
