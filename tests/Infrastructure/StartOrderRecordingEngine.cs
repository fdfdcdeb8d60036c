using ZImage.Runtime.Pipeline;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// An <see cref="IGenerationEngine"/> decorator that records, on the device thread, the prompt of every generation in
/// the order the engine starts it (<see cref="Tokenize"/> is the first call a generation makes; a CFG request then
/// tokenizes its negative prompt too, which is recorded after it), so a test sees the order the queue really ran
/// requests in rather than the order their tasks were awaited. Planning twins are not recorded
/// (<see cref="DelegatingEngine.CreatePlanner"/> returns the inner engine's planner).
/// </summary>
public sealed class StartOrderRecordingEngine(IGenerationEngine inner) : DelegatingEngine(inner)
{
    private readonly List<string> _started = new();

    /// <summary>Prompts in the order their generations started on the device.</summary>
    public IReadOnlyList<string> StartOrder { get { lock (_started) return [.. _started]; } }

    public override int[] Tokenize(string prompt, int maxLength)
    {
        lock (_started) _started.Add(prompt);
        return base.Tokenize(prompt, maxLength);
    }
}
