using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Lora;

/// <summary>
/// The transformer checkpoint with LoRAs merged in as each weight is materialized: a weight that an adapter updates is
/// served as the F32 tensor <c>W + Σᵢ scaleᵢ·ΔWᵢ</c> (each merge in float32, in the order given, as diffusers'
/// <c>fuse_lora</c> merges one adapter after another); every other tensor passes through unchanged.
/// </summary>
/// <remarks>
/// Placed under <c>CheckpointWeights</c>, the merged floats are then converted to the device matrix dtype (bf16, f16,
/// or an 8-bit format quantized from these merged floats) exactly as an unadapted weight is, resident or streamed
/// (<c>LoadInto</c> re-reads, so a streamed layer is merged again on each upload). Shapes and device bytes are those of
/// the base model, so a plan made without the LoRA is the plan of the run with it. A merged tensor is computed into a
/// host array on the first <see cref="GetBytes"/> of its name and kept until another merged weight is asked for (one
/// weight's worth of host memory; repeated calls for the same weight, as a chunked quantization makes, merge once).
/// </remarks>
public sealed class LoraMergedReader : ISafetensorsReader
{
    private readonly ISafetensorsReader _inner;
    private readonly (LoraAdapter Adapter, double Scale)[] _adapters;
    private readonly HashSet<string> _merged = new(StringComparer.Ordinal);
    private readonly bool _ownsInner;
    private float[]? _current;
    private string? _currentName;

    /// <summary>Wraps <paramref name="inner"/> with <paramref name="adapters"/> (each read against this same checkpoint).</summary>
    /// <param name="inner">The transformer checkpoint.</param>
    /// <param name="adapters">The LoRAs and their <c>lora_scale</c>s, merged in this order.</param>
    /// <param name="ownsInner">Whether disposing this reader disposes <paramref name="inner"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A scale is not finite.</exception>
    public LoraMergedReader(ISafetensorsReader inner, IEnumerable<(LoraAdapter Adapter, double Scale)> adapters, bool ownsInner = false)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        ArgumentNullException.ThrowIfNull(adapters);
        _adapters = adapters.ToArray();
        foreach (var (a, s) in _adapters)
        {
            ArgumentNullException.ThrowIfNull(a);
            if (!double.IsFinite(s)) throw new ArgumentOutOfRangeException(nameof(adapters), s, $"The scale of LoRA '{a.File}' must be a finite number.");
            foreach (var (weight, m) in a.Modules)
            {
                var info = inner.GetInfo(weight);
                if (info.Shape.Length != 2 || info.Shape[0] != m.Out || info.Shape[1] != m.In)
                    throw new LoraFormatException(a.File, "was read against another checkpoint: its update does not fit", [$"{weight} {info.ShapeText}"]);
            }
            _merged.UnionWith(a.Modules.Keys);
        }
        _ownsInner = ownsInner;
    }

    /// <summary>Names of the weights the adapters change.</summary>
    public IReadOnlyCollection<string> MergedWeights => _merged;

    /// <inheritdoc />
    public IReadOnlyList<string> TensorNames => _inner.TensorNames;

    /// <inheritdoc />
    public bool Contains(string name) => _inner.Contains(name);

    /// <inheritdoc />
    public SafetensorsTensorInfo GetInfo(string name) => Adjust(_inner.GetInfo(name));

    /// <inheritdoc />
    public bool TryGetInfo(string name, [NotNullWhen(true)] out SafetensorsTensorInfo? info)
    {
        if (!_inner.TryGetInfo(name, out info)) return false;
        info = Adjust(info);
        return true;
    }

    /// <inheritdoc />
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        if (!_merged.Contains(name)) return _inner.GetBytes(name);
        // Callers that materialize a weight in chunks (quantize-at-load) ask for the same weight once per chunk.
        if (_current is null || _currentName != name)
        {
            float[] w = _inner.ReadSingles(name);
            foreach (var (adapter, scale) in _adapters)
                if (adapter.Modules.TryGetValue(name, out var m)) LoraAdapter.Merge(m, w, scale);
            (_current, _currentName) = (w, name);
        }
        return MemoryMarshal.AsBytes(_current.AsSpan());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        (_current, _currentName) = (null, null);
        if (_ownsInner) _inner.Dispose();
    }

    private SafetensorsTensorInfo Adjust(SafetensorsTensorInfo info) =>
        _merged.Contains(info.Name) ? info with { DType = SafetensorsDType.F32, ByteLength = info.ElementCount * sizeof(float) } : info;
}
