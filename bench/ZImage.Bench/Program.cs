using BenchmarkDotNet.Running;

// Run a subset with e.g. `dotnet run -c Release --project bench/ZImage.Bench -- --filter *Allocator*`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
