using System.Globalization;
using ZImage.Fuzz;
using ZImage.Tests.Infrastructure;

// zimage-fuzz fuzz [--target NAME|all] [--iterations N] [--seed S] [--timeout-ms T] [--crashes DIR]
// zimage-fuzz soak [--generations N] [--seed S]
// zimage-fuzz replay --target NAME FILE...   (runs saved inputs once each, with their time)
string command = args.Length > 0 ? args[0] : "help";
string Opt(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
long Num(string name, long fallback)
{
    string text = Opt(name, fallback.ToString(CultureInfo.InvariantCulture));
    if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < 1)
    {
        Console.Error.WriteLine($"{name} must be a positive integer, got '{text}'.");
        Environment.Exit(2);
    }
    return v;
}

switch (command)
{
    case "fuzz":
    {
        string which = Opt("--target", "all");
        long iterations = Num("--iterations", 1_000_000), seed = Num("--seed", 1);
        var timeout = TimeSpan.FromMilliseconds(Num("--timeout-ms", 2000));
        string crashDir = Opt("--crashes", Path.Combine(Path.GetTempPath(), "zimage-fuzz-crashes"));
        string[] names = which == "all" ? FuzzTargets.Names : [which];
        if (names.Except(FuzzTargets.Names).FirstOrDefault() is { } bad)
        {
            Console.Error.WriteLine($"Unknown --target '{bad}'; use all or one of: {string.Join(", ", FuzzTargets.Names)}.");
            return 2;
        }
        string tokenizerDir = Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer");
        int crashes = 0;
        foreach (var name in names)
        {
            var target = FuzzTargets.Create(name, Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), tokenizerDir);
            var report = MutationFuzzer.Run(target, iterations, seed, timeout);
            Console.WriteLine(report);
            foreach (var c in report.Crashes) Console.WriteLine($"  CRASH {c.Signature} ({c.Input.Length} B input)");
            MutationFuzzer.Save(report.Crashes, crashDir);
            crashes += report.Crashes.Count;
        }
        if (crashes > 0) Console.WriteLine($"crash inputs written to {crashDir}");
        return crashes == 0 ? 0 : 1;
    }
    case "replay":
    {
        string name = Opt("--target", "");
        if (!FuzzTargets.Names.Contains(name))
        {
            Console.Error.WriteLine($"replay needs --target, one of: {string.Join(", ", FuzzTargets.Names)}.");
            return 2;
        }
        var target = FuzzTargets.Create(name, Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), Path.Combine(FixturePaths.TinyCheckpoint, "tokenizer"));
        int failed = 0;
        foreach (string file in args.Skip(1).Where(a => File.Exists(a)))
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            string outcome;
            try { target.Run(File.ReadAllBytes(file)); outcome = "accepted"; }
            catch (Exception e) when (target.IsAllowed(e)) { outcome = "rejected: " + e.GetType().Name; }
            catch (Exception e) { outcome = "CRASH: " + e; failed++; }
            Console.WriteLine($"{file}: {outcome} ({sw.Elapsed.TotalMilliseconds:F1} ms)");
        }
        return failed == 0 ? 0 : 1;
    }
    case "soak":
    {
        var report = await FaultSoak.RunAsync((int)Math.Min(int.MaxValue, Num("--generations", 1000)), Num("--seed", 1), Console.WriteLine);
        Console.WriteLine(report);
        foreach (var p in report.Problems.Take(50)) Console.WriteLine("  " + p);
        return report.Clean ? 0 : 1;
    }
    default:
        Console.WriteLine("usage: zimage-fuzz fuzz [--target all|" + string.Join("|", FuzzTargets.Names) + "] [--iterations 1000000] [--seed 1] [--timeout-ms 2000] [--crashes DIR]");
        Console.WriteLine("       zimage-fuzz soak [--generations 1000] [--seed 1]");
        return command == "help" ? 0 : 2;
}
