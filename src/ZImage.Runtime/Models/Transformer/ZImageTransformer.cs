using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Residency;

namespace ZImage.Runtime.Models.Transformer;

/// <summary>
/// The Z-Image single-stream DiT (<c>ZImageTransformer2DModel</c>, spec §3) for one sample per forward
/// (classifier-free guidance runs two forwards). Weights come from an <see cref="IWeightProvider"/> (all fetched in the
/// constructor); activations are allocated through <see cref="ComputeContext.Empty(string, int[])"/> with the
/// <see cref="AllocationTags.Transformer"/> tag and disposed as soon as they are dead, so a planning forward
/// (no-op ops over a simulated device) reproduces the real allocation sequence and peak.
/// </summary>
public sealed class ZImageTransformer : IDisposable
{
    private const string Tag = AllocationTags.Transformer;

    private readonly TransformerDims _dims;
    private readonly ComputeContext _ctx;
    private readonly IComputeOps _ops;

    private readonly Tensor _tW0, _tB0, _tW2, _tB2;
    private readonly Tensor _xeW, _xeB, _xPad, _capPad;
    private readonly Tensor _capNormW, _ceW, _ceB;
    private readonly Tensor _finalAdaW, _finalAdaB, _finalW, _finalB;
    // Execution order: noise refiners, context refiners, main layers (resident, or streamed through the ring).
    private readonly Block[] _blocks;
    private readonly LayerRing<Block>? _ring;

    /// <summary>Builds the model and fetches (uploads) every weight from <paramref name="weights"/>.</summary>
    /// <param name="config">The transformer config (e.g. <c>ZImageConfig.Turbo.Transformer</c> or one loaded from a checkpoint).</param>
    /// <param name="weights">Weights by diffusers key (checkpoint or planning provider).</param>
    /// <param name="context">Allocator and ops for activations.</param>
    /// <exception cref="ArgumentOutOfRangeException">The config is not a supported Z-Image DiT.</exception>
    /// <exception cref="WeightShapeException">A weight has another shape than the config implies.</exception>
    /// <param name="placement">Resident blocks (default), or blocks streamed through a ring of two device slots (needs an <see cref="IStreamableWeights"/> provider).</param>
    public ZImageTransformer(TransformerConfig config, IWeightProvider weights, ComputeContext context, LayerPlacement placement = LayerPlacement.Resident)
        : this(TransformerDims.From(config), weights, context, placement)
    {
    }

    /// <summary>Where the blocks live (resident, or streamed through a ring of device slots).</summary>
    public LayerPlacement Placement => _ring is null ? LayerPlacement.Resident : LayerPlacement.Streamed;

    /// <summary>The ring's host bytes, device bytes and bytes uploaded so far (all zero when resident).</summary>
    public RingReport Streaming => RingReport.Of(_ring);

    /// <summary>Observes the streamed blocks' ring (staging, waits, uploads, hand-outs, in order); ignored when resident.</summary>
    public Action<RingEvent>? RingObserver
    {
        get => _ring?.Observer;
        set { if (_ring is not null) _ring.Observer = value; }
    }

    /// <summary>Whether the streamed blocks' staging buffers are page-locked (pinned) host memory.</summary>
    internal bool PinnedStaging => _ring?.PinnedStaging ?? false;

    /// <summary>Releases the streaming slots (resident weights belong to the provider).</summary>
    public void Dispose() => _ring?.Dispose();

    private static Block BuildBlock(IWeightProvider w, TransformerDims dims, int i)
    {
        int r = dims.RefinerLayers;
        return i < r ? new Block(w, $"noise_refiner.{i}", dims, modulated: true)
            : i < 2 * r ? new Block(w, $"context_refiner.{i - r}", dims, modulated: false)
            : new Block(w, $"layers.{i - 2 * r}", dims, modulated: true);
    }

    private Block BlockAt(int i) => _ring is null ? _blocks[i] : _ring.Get(i);

    internal ZImageTransformer(TransformerDims dims, IWeightProvider weights, ComputeContext context, LayerPlacement placement = LayerPlacement.Resident)
    {
        ArgumentNullException.ThrowIfNull(dims);
        ArgumentNullException.ThrowIfNull(weights);
        _dims = dims.Validate();
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        _ops = context.Ops;

        int d = dims.Dim, ada = dims.AdaLnDim;
        string patchKey = $"{dims.PatchSize}-1";
        _tW0 = weights.Matrix("t_embedder.mlp.0.weight", TransformerDims.TimestepMidDim, TransformerDims.TimestepFrequencyDim);
        _tB0 = weights.Vector("t_embedder.mlp.0.bias", TransformerDims.TimestepMidDim);
        _tW2 = weights.Matrix("t_embedder.mlp.2.weight", ada, TransformerDims.TimestepMidDim);
        _tB2 = weights.Vector("t_embedder.mlp.2.bias", ada);
        _xeW = weights.Matrix($"all_x_embedder.{patchKey}.weight", d, dims.PatchDim);
        _xeB = weights.Vector($"all_x_embedder.{patchKey}.bias", d);
        _xPad = weights.Vector("x_pad_token", 1, d);
        _capPad = weights.Vector("cap_pad_token", 1, d);
        _capNormW = weights.Vector("cap_embedder.0.weight", dims.CapFeatDim);
        _ceW = weights.Matrix("cap_embedder.1.weight", d, dims.CapFeatDim);
        _ceB = weights.Vector("cap_embedder.1.bias", d);
        int blocks = 2 * dims.RefinerLayers + dims.Layers;
        if (placement == LayerPlacement.Streamed)
        {
            var source = weights as IStreamableWeights
                ?? throw new ArgumentException($"Streaming the DiT blocks needs an {nameof(IStreamableWeights)} provider; {weights.GetType().Name} is not one.", nameof(weights));
            _ring = new LayerRing<Block>(source, context.Allocator, blocks, (w, i) => BuildBlock(w, dims, i), ops: context.Ops);
            _blocks = [];
        }
        else
        {
            _blocks = new Block[blocks];
            for (int i = 0; i < blocks; i++) _blocks[i] = BuildBlock(weights, dims, i);
        }
        _finalAdaW = weights.Matrix($"all_final_layer.{patchKey}.adaLN_modulation.1.weight", d, ada);
        _finalAdaB = weights.Vector($"all_final_layer.{patchKey}.adaLN_modulation.1.bias", d);
        _finalW = weights.Matrix($"all_final_layer.{patchKey}.linear.weight", dims.PatchDim, d);
        _finalB = weights.Vector($"all_final_layer.{patchKey}.linear.bias", dims.PatchDim);
    }

    /// <summary>
    /// Called after each stage with the stage name (<c>t_embedder</c>, <c>x_embedder</c>, <c>noise_refiner.i</c>,
    /// <c>cap_embedder</c>, <c>context_refiner.i</c>, <c>layers.i</c>, <c>final_layer</c>) and a view of its output,
    /// valid only during the call. For debugging and parity tests; null (the default) costs nothing.
    /// <c>x_embedder</c>/<c>cap_embedder</c> cover only the real (unpadded) rows, <c>final_layer</c> only the image rows.
    /// </summary>
    public Action<string, Tensor>? StageObserver { get; set; }

    /// <summary>
    /// One DiT evaluation. <paramref name="latents"/> <c>[C,Hl,Wl]</c> F32 (the frame axis of the reference's
    /// <c>[C,1,Hl,Wl]</c> dropped), <paramref name="tModel"/> the model time (1 − σ; 0 = noise), <paramref name="capFeats"/>
    /// <c>[L, cap_feat_dim]</c> F32 with only the real caption tokens. Returns the raw model output <c>[C,Hl,Wl]</c>
    /// F32 (tag <see cref="AllocationTags.Transformer"/>; the caller disposes it). The pipeline's velocity is its negation.
    /// </summary>
    /// <exception cref="TensorShapeException">An input has the wrong shape or dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException">tModel is not finite, or the image/caption exceeds the RoPE tables.</exception>
    public Tensor Forward(Tensor latents, float tModel, Tensor capFeats) => Forward(latents, tModel, [capFeats])[0];

    /// <summary>
    /// One DiT evaluation per caption on the same latents and time (classifier-free guidance: positive and negative),
    /// block by block: each block runs for every caption before the next block, so a streamed block is uploaded once
    /// for all of them. With one caption this is exactly <see cref="Forward(Tensor, float, Tensor)"/>.
    /// </summary>
    /// <returns>One output per caption, in order (the caller disposes them).</returns>
    /// <exception cref="TensorShapeException">An input has the wrong shape or dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException">tModel is not finite, or the image/caption exceeds the RoPE tables.</exception>
    public Tensor[] Forward(Tensor latents, float tModel, IReadOnlyList<Tensor> captions)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(captions);
        if (captions.Count < 1) throw new ArgumentOutOfRangeException(nameof(captions), captions.Count, "At least one caption is required.");
        var dims = _dims;
        int p = dims.PatchSize, c = dims.InChannels, d = dims.Dim;
        if (latents.DType != TensorDType.F32 || latents.Shape.Length != 3 || latents.Shape[0] != c
            || latents.Shape[1] <= 0 || latents.Shape[2] <= 0 || latents.Shape[1] % p != 0 || latents.Shape[2] % p != 0)
            OpValidation.Throw($"latents must be [{c},Hl,Wl] F32 with Hl, Wl positive multiples of {p} but is {OpValidation.Fmt(latents)}.", nameof(latents));
        foreach (var capFeats in captions)
        {
            ArgumentNullException.ThrowIfNull(capFeats, nameof(captions));
            if (capFeats.DType != TensorDType.F32 || capFeats.Shape.Length != 2 || capFeats.Shape[1] != dims.CapFeatDim || capFeats.Shape[0] <= 0)
                OpValidation.Throw($"capFeats must be [L >= 1,{dims.CapFeatDim}] F32 but is {OpValidation.Fmt(capFeats)}.", nameof(captions));
        }
        if (!float.IsFinite(tModel)) throw new ArgumentOutOfRangeException(nameof(tModel), tModel, "tModel must be finite (normally 0..1).");

        int hl = latents.Shape[1], wl = latents.Shape[2];
        int ht = hl / p, wt = wl / p, ni = ht * wt, nip = TransformerDims.Ceil32(ni);
        int halfDh = dims.HeadDim / 2;
        var branches = new Branch[captions.Count];
        var outputs = new List<Tensor>(captions.Count);
        try
        {
            for (int bi = 0; bi < branches.Length; bi++)
            {
                int l = captions[bi].Shape[0], lp = TransformerDims.Ceil32(l);
                // RoPE tables first: they validate the positions against axes_lens before anything is allocated.
                var (cosHost, sinHost) = RopeTablesFor(ht, wt, nip, lp);
                var br = branches[bi] = new Branch { L = l, Lp = lp };
                br.Cond = TimestepEmbedding(tModel);
                Observe("t_embedder", br.Cond);
                int s = nip + lp;
                br.Cos = _ctx.Empty(Tag, s, halfDh);
                br.Sin = _ctx.Empty(Tag, s, halfDh);
                _ops.Upload(cosHost, br.Cos);
                _ops.Upload(sinHost, br.Sin);

                // The unified sequence [image (Nip), caption (Lp)] is built in place: the refiners run on row views of
                // it, so no concat copy and no second hidden-state buffer is ever live.
                br.Unified = _ctx.Empty(Tag, s, d);
                var image = br.Unified.Rows(0, nip);
                using (var patches = _ctx.Empty(Tag, ni, dims.PatchDim))
                {
                    _ops.Patchify(latents, p, patches);
                    _ops.Linear(patches, _xeW, _xeB, image.Rows(0, ni));
                }
                Observe("x_embedder", image.Rows(0, ni));
                if (nip > ni) _ops.FillRows(_xPad, image, ni, nip - ni);
            }

            int r = dims.RefinerLayers;
            for (int i = 0; i < r; i++)
            {
                var block = BlockAt(i);
                foreach (var br in branches)
                {
                    var image = br.Unified!.Rows(0, nip);
                    RunBlock(block, image, br.Cos!.Rows(0, nip), br.Sin!.Rows(0, nip), br.Cond);
                    Observe($"noise_refiner.{i}", image);
                }
            }

            for (int bi = 0; bi < branches.Length; bi++)
            {
                var br = branches[bi];
                var caption = br.Unified!.Rows(nip, br.Lp);
                using (var capNormed = _ctx.Empty(Tag, br.L, dims.CapFeatDim))
                {
                    _ops.RmsNorm(captions[bi], _capNormW, dims.NormEps, capNormed);
                    _ops.Linear(capNormed, _ceW, _ceB, caption.Rows(0, br.L));
                }
                Observe("cap_embedder", caption.Rows(0, br.L));
                if (br.Lp > br.L) _ops.FillRows(_capPad, caption, br.L, br.Lp - br.L);
            }

            for (int i = 0; i < r; i++)
            {
                var block = BlockAt(r + i);
                foreach (var br in branches)
                {
                    var caption = br.Unified!.Rows(nip, br.Lp);
                    RunBlock(block, caption, br.Cos!.Rows(nip, br.Lp), br.Sin!.Rows(nip, br.Lp), null);
                    Observe($"context_refiner.{i}", caption);
                }
            }

            for (int i = 0; i < dims.Layers; i++)
            {
                var block = BlockAt(2 * r + i);
                foreach (var br in branches)
                {
                    RunBlock(block, br.Unified!, br.Cos!, br.Sin!, br.Cond);
                    Observe($"layers.{i}", br.Unified!);
                }
            }

            foreach (var br in branches)
            {
                outputs.Add(FinalLayer(br.Unified!, br.Cond!, ni, hl, wl));
                br.Dispose();
            }
            return [.. outputs];
        }
        catch
        {
            foreach (var o in outputs) o.Dispose();
            throw;
        }
        finally
        {
            foreach (var br in branches) br?.Dispose();
        }
    }

    // One caption's state through a forward; disposed in reverse allocation order.
    private sealed class Branch : IDisposable
    {
        public int L { get; init; }
        public int Lp { get; init; }
        public Tensor? Cond { get; set; }
        public Tensor? Cos { get; set; }
        public Tensor? Sin { get; set; }
        public Tensor? Unified { get; set; }

        public void Dispose()
        {
            Unified?.Dispose();
            Sin?.Dispose();
            Cos?.Dispose();
            Cond?.Dispose();
        }
    }

    /// <summary>c = MLP(sinusoid(t·t_scale)) <c>[1, adaLN dim]</c>; the sinusoid is built on the host in float32.</summary>
    private Tensor TimestepEmbedding(float tModel)
    {
        float[] freq = DitHostMath.TimestepSinusoid(tModel * _dims.TScale, TransformerDims.TimestepFrequencyDim);
        var cond = _ctx.Empty(Tag, 1, _dims.AdaLnDim);
        try
        {
            using var sinusoid = _ctx.Empty(Tag, 1, TransformerDims.TimestepFrequencyDim);
            _ops.Upload(freq, sinusoid);
            using var mid = _ctx.Empty(Tag, 1, TransformerDims.TimestepMidDim);
            _ops.Linear(sinusoid, _tW0, _tB0, mid);
            _ops.Silu(mid, mid);
            _ops.Linear(mid, _tW2, _tB2, cond);
            return cond;
        }
        catch
        {
            cond.Dispose();
            throw;
        }
    }

    // The tables depend only on the token grid and the padded caption length, which stay fixed across the steps of a
    // generation; CFG alternates two caption lengths, so the last two are kept. Entries are immutable, so a race at
    // worst recomputes one.
    private sealed record RopeTableEntry(int Ht, int Wt, int Lp, float[] Cos, float[] Sin);
    private RopeTableEntry? _ropeRecent, _ropeOlder;

    private (float[] Cos, float[] Sin) RopeTablesFor(int ht, int wt, int nip, int lp)
    {
        var recent = Volatile.Read(ref _ropeRecent);
        if (recent is not null && recent.Ht == ht && recent.Wt == wt && recent.Lp == lp) return (recent.Cos, recent.Sin);
        var older = Volatile.Read(ref _ropeOlder);
        if (older is not null && older.Ht == ht && older.Wt == wt && older.Lp == lp) return (older.Cos, older.Sin);
        var dims = _dims;
        int[] posIds = DitHostMath.PositionIds(ht, wt, nip, lp);
        var (cos, sin) = DitHostMath.RopeTables(posIds, dims.AxesDims, dims.AxesLens, dims.RopeTheta);
        Volatile.Write(ref _ropeOlder, recent);
        Volatile.Write(ref _ropeRecent, new RopeTableEntry(ht, wt, lp, cos, sin));
        return (cos, sin);
    }

    /// <summary>
    /// One transformer block, in place on <paramref name="x"/> <c>[N,D]</c> (§3.6): sandwich-normed attention and
    /// SwiGLU branches, modulated by <paramref name="cond"/> (scale +1, gate tanh) when the block has adaLN.
    /// </summary>
    private void RunBlock(Block b, Tensor x, Tensor cos, Tensor sin, Tensor? cond)
    {
        var dims = _dims;
        int n = x.Shape[0], d = dims.Dim, heads = dims.Heads, dh = dims.HeadDim;

        Tensor? mod = null;
        Tensor? scaleMsa = null, gateMsa = null, scaleMlp = null, gateMlp = null;
        if (b.Modulated)
        {
            mod = _ctx.Empty(Tag, 1, 4 * d);
            _ops.Linear(cond!, b.AdaW!, b.AdaB!, mod);
            var chunks = mod.Reshape(4, d);
            scaleMsa = chunks.Rows(0, 1);
            gateMsa = chunks.Rows(1, 1);
            scaleMlp = chunks.Rows(2, 1);
            gateMlp = chunks.Rows(3, 1);
        }
        try
        {
            // Attention branch. Tensors are freed as soon as they are dead (Dispose is idempotent, so the using
            // declarations only matter on error paths).
            using var q = _ctx.Empty(Tag, n, d);
            using var k = _ctx.Empty(Tag, n, d);
            using var v = _ctx.Empty(Tag, n, d);
            using (var h = _ctx.Empty(Tag, n, d))
            {
                if (scaleMsa is not null) _ops.RmsNormModulate(x, b.AttnNorm1, scaleMsa, dims.NormEps, h);
                else _ops.RmsNorm(x, b.AttnNorm1, dims.NormEps, h);
                _ops.Linear(h, b.Wq, null, q);
                _ops.Linear(h, b.Wk, null, k);
                _ops.Linear(h, b.Wv, null, v);
            }
            var q3 = q.Reshape(n, heads, dh);
            var k3 = k.Reshape(n, heads, dh);
            _ops.RmsNorm(q3, b.NormQ, TransformerDims.QkNormEps, q3);
            _ops.RmsNorm(k3, b.NormK, TransformerDims.QkNormEps, k3);
            _ops.RopeInterleaved(q3, k3, cos, sin);
            using var attn = _ctx.Empty(Tag, n, d);
            _ops.Attention(q3, k3, v.Reshape(n, heads, dh), 1f / MathF.Sqrt(dh), causal: false, attn.Reshape(n, heads, dh));
            q.Dispose();
            k.Dispose();
            v.Dispose();
            using (var proj = _ctx.Empty(Tag, n, d))
            {
                _ops.Linear(attn, b.Wo, null, proj);
                attn.Dispose();
                _ops.RmsNormGatedResidual(proj, b.AttnNorm2, gateMsa, dims.NormEps, x);
            }

            // Feed-forward branch.
            using var gate = _ctx.Empty(Tag, n, dims.FfnDim);
            using (var h = _ctx.Empty(Tag, n, d))
            {
                if (scaleMlp is not null) _ops.RmsNormModulate(x, b.FfnNorm1, scaleMlp, dims.NormEps, h);
                else _ops.RmsNorm(x, b.FfnNorm1, dims.NormEps, h);
                _ops.Linear(h, b.W1, null, gate);
                using var up = _ctx.Empty(Tag, n, dims.FfnDim);
                _ops.Linear(h, b.W3, null, up);
                _ops.SwiGlu(gate, up, gate);
            }
            using (var f = _ctx.Empty(Tag, n, d))
            {
                _ops.Linear(gate, b.W2, null, f);
                gate.Dispose();
                _ops.RmsNormGatedResidual(f, b.FfnNorm2, gateMlp, dims.NormEps, x);
            }
        }
        finally
        {
            mod?.Dispose();
        }
    }

    /// <summary>Final adaLN layer on the image rows only, then unpatchify into the returned output tensor.</summary>
    private Tensor FinalLayer(Tensor unified, Tensor cond, int ni, int hl, int wl)
    {
        var dims = _dims;
        using var scale = _ctx.Empty(Tag, 1, dims.Dim);
        using (var act = _ctx.Empty(Tag, 1, dims.AdaLnDim))
        {
            _ops.Silu(cond, act);
            _ops.Linear(act, _finalAdaW, _finalAdaB, scale);
        }
        using var patches = _ctx.Empty(Tag, ni, dims.PatchDim);
        using (var y = _ctx.Empty(Tag, ni, dims.Dim))
        {
            _ops.LayerNormModulate(unified.Rows(0, ni), scale, TransformerDims.FinalNormEps, y);
            _ops.Linear(y, _finalW, _finalB, patches);
        }
        Observe("final_layer", patches);
        var output = _ctx.Empty(Tag, dims.InChannels, hl, wl);
        try
        {
            _ops.Unpatchify(patches, dims.PatchSize, output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private void Observe(string stage, Tensor value) => StageObserver?.Invoke(stage, value);

    /// <summary>The weights of one block; context-refiner blocks have no adaLN.</summary>
    private sealed class Block
    {
        public Block(IWeightProvider w, string prefix, TransformerDims dims, bool modulated)
        {
            int d = dims.Dim, f = dims.FfnDim;
            Modulated = modulated;
            Wq = w.Matrix($"{prefix}.attention.to_q.weight", d, d);
            Wk = w.Matrix($"{prefix}.attention.to_k.weight", d, d);
            Wv = w.Matrix($"{prefix}.attention.to_v.weight", d, d);
            Wo = w.Matrix($"{prefix}.attention.to_out.0.weight", d, d);
            NormQ = w.Vector($"{prefix}.attention.norm_q.weight", dims.HeadDim);
            NormK = w.Vector($"{prefix}.attention.norm_k.weight", dims.HeadDim);
            W1 = w.Matrix($"{prefix}.feed_forward.w1.weight", f, d);
            W2 = w.Matrix($"{prefix}.feed_forward.w2.weight", d, f);
            W3 = w.Matrix($"{prefix}.feed_forward.w3.weight", f, d);
            AttnNorm1 = w.Vector($"{prefix}.attention_norm1.weight", d);
            AttnNorm2 = w.Vector($"{prefix}.attention_norm2.weight", d);
            FfnNorm1 = w.Vector($"{prefix}.ffn_norm1.weight", d);
            FfnNorm2 = w.Vector($"{prefix}.ffn_norm2.weight", d);
            if (modulated)
            {
                AdaW = w.Matrix($"{prefix}.adaLN_modulation.0.weight", 4 * d, dims.AdaLnDim);
                AdaB = w.Vector($"{prefix}.adaLN_modulation.0.bias", 4 * d);
            }
        }

        public bool Modulated { get; }
        public Tensor Wq { get; }
        public Tensor Wk { get; }
        public Tensor Wv { get; }
        public Tensor Wo { get; }
        public Tensor NormQ { get; }
        public Tensor NormK { get; }
        public Tensor W1 { get; }
        public Tensor W2 { get; }
        public Tensor W3 { get; }
        public Tensor AttnNorm1 { get; }
        public Tensor AttnNorm2 { get; }
        public Tensor FfnNorm1 { get; }
        public Tensor FfnNorm2 { get; }
        public Tensor? AdaW { get; }
        public Tensor? AdaB { get; }
    }
}
