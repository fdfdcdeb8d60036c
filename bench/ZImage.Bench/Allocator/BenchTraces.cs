using ZImage.Runtime.Memory;

namespace ZImage.Bench.Allocator;

/// <summary>Deterministic allocation traces for the allocator benchmarks; each has exactly <see cref="Pairs"/> alloc+free pairs.</summary>
public static class BenchTraces
{
    /// <summary>Alloc+free pairs per trace (BenchmarkDotNet's OperationsPerInvoke).</summary>
    public const int Pairs = 1024;

    /// <summary>Gets a trace by name.</summary>
    public static AllocationTrace Get(string name) => name switch
    {
        "Diffusion" => Diffusion(),
        "RandomMixed" => RandomMixed(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Diffusion or RandomMixed."),
    };

    /// <summary>
    /// A DiT denoising loop at 512x512 (1024 image + 256 caption tokens, dim 3840, bf16): per layer the adaLN vectors,
    /// norm, q/k/v, a large attention workspace, attention output, MLP gate/up/down and residual, plus per-step timestep,
    /// caption and scheduler buffers; 8 steps x (8 layers x 15 + 8) allocs.
    /// </summary>
    public static AllocationTrace Diffusion()
    {
        const long tokens = 1280, dim = 3840, hidden = 10240, bf16 = 2;
        long act = tokens * dim * bf16;
        var events = new List<AllocationTraceEvent>();
        long id = 0;
        long Alloc(long size, string tag)
        {
            events.Add(AllocationTraceEvent.Alloc(++id, size, tag));
            return id;
        }
        void Free(long x) => events.Add(AllocationTraceEvent.Free(x));

        for (int step = 0; step < 8; step++)
        {
            long x = Alloc(act, AllocationTags.Latents);              // hidden state entering the stack
            long temb = Alloc(256 * 4, AllocationTags.Transformer);    // timestep sinusoid
            long tproj = Alloc(dim * 4, AllocationTags.Transformer);   // timestep embedding
            long cap = Alloc(256 * dim * bf16, AllocationTags.Transformer); // caption features
            long mask = Alloc(tokens * 4, AllocationTags.Transformer);
            for (int layer = 0; layer < 8; layer++)
            {
                long mod = Alloc(6 * dim * 4, AllocationTags.Transformer);       // adaLN scale/shift/gate
                long stats = Alloc(tokens * 4 * 2, AllocationTags.Transformer);  // norm mean/rstd
                long norm = Alloc(act, AllocationTags.Transformer);
                long q = Alloc(act, AllocationTags.Transformer);
                long k = Alloc(act, AllocationTags.Transformer);
                long v = Alloc(act, AllocationTags.Transformer);
                Free(norm);
                Free(stats);
                long scores = Alloc(8 * tokens * tokens * bf16, AllocationTags.Transformer); // attention workspace, 8 heads at a time
                long attn = Alloc(act, AllocationTags.Transformer);
                Free(scores);
                Free(q);
                Free(k);
                Free(v);
                long proj = Alloc(act, AllocationTags.Transformer);
                Free(attn);
                long x2 = Alloc(act, AllocationTags.Transformer);              // residual
                Free(proj);
                long norm2 = Alloc(act, AllocationTags.Transformer);
                long gate = Alloc(tokens * hidden * bf16, AllocationTags.Transformer);
                long up = Alloc(tokens * hidden * bf16, AllocationTags.Transformer);
                Free(norm2);
                long down = Alloc(act, AllocationTags.Transformer);
                Free(gate);
                Free(up);
                Free(mod);
                Free(x);
                long x3 = Alloc(act, AllocationTags.Transformer);
                Free(x2);
                Free(down);
                x = x3;
            }
            long latent = 16 * 64 * 64 * 4;
            long output = Alloc(act, AllocationTags.Transformer);      // final layer
            Free(x);
            long pred = Alloc(latent, AllocationTags.Latents);
            Free(output);
            long next = Alloc(latent, AllocationTags.Latents);         // Euler update
            Free(pred);
            Free(next);
            Free(mask);
            Free(cap);
            Free(tproj);
            Free(temb);
        }
        return Checked(events);
    }

    /// <summary>Random mixed sizes (log-uniform 256 B .. 64 MiB), up to 48 live blocks, random frees; seed 42.</summary>
    public static AllocationTrace RandomMixed()
    {
        var rng = new Random(42);
        var events = new List<AllocationTraceEvent>();
        var live = new List<long>();
        long id = 0;
        while (id < Pairs)
        {
            if (live.Count > 0 && (live.Count >= 48 || rng.NextDouble() < 0.45))
            {
                int k = rng.Next(live.Count);
                events.Add(AllocationTraceEvent.Free(live[k]));
                live[k] = live[^1];
                live.RemoveAt(live.Count - 1);
            }
            else
            {
                long size = (long)Math.Pow(2, 8 + rng.NextDouble() * 18);
                events.Add(AllocationTraceEvent.Alloc(++id, size, "mixed"));
                live.Add(id);
            }
        }
        foreach (long x in live)
            events.Add(AllocationTraceEvent.Free(x));
        return Checked(events);
    }

    private static AllocationTrace Checked(List<AllocationTraceEvent> events)
    {
        int allocs = events.Count(e => e.Op == AllocationTraceOp.Alloc);
        if (allocs != Pairs || events.Count != 2 * Pairs)
            throw new InvalidOperationException($"Benchmark trace has {allocs} allocs / {events.Count} events; expected {Pairs} pairs.");
        return new AllocationTrace(events, 80 * ByteSize.GiB);
    }
}
