namespace ZImage.Runtime.Residency;

/// <summary>
/// The prompt-embedding cache: text-encoder outputs in host memory, keyed by the token ids, least recently used
/// evicted first, limited to <see cref="CapacityBytes"/> (float32 payload). A repeated prompt (or a negative prompt
/// equal to an earlier one) skips the text encoder: its embedding is uploaded instead. The engine's planning twin plans
/// against a key-only <see cref="Mirror"/> of the live cache taken at the start of each plan, applying the same hits,
/// adds and evictions, so a plan on a warm cache is exact too. Thread-safe.
/// </summary>
public sealed class PromptEmbeddingCache
{
    /// <summary>The largest allowed capacity (16 GiB).</summary>
    public const long MaxCapacityBytes = 16L << 30;

    private readonly object _lock = new();
    private readonly Dictionary<Key, LinkedListNode<Entry>> _map = new();
    private readonly LinkedList<Entry> _lru = new(); // first = most recently used
    private readonly bool _keysOnly;
    private long _used, _hits, _misses;

    /// <summary>Creates an empty cache of <paramref name="capacityBytes"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is outside <c>[1 B, 16 GiB]</c>.</exception>
    public PromptEmbeddingCache(long capacityBytes) : this(Validate(capacityBytes), keysOnly: false)
    {
    }

    private PromptEmbeddingCache(long capacityBytes, bool keysOnly)
    {
        CapacityBytes = capacityBytes;
        _keysOnly = keysOnly;
    }

    /// <summary>Throws unless <paramref name="capacityBytes"/> lies in <c>[1, <see cref="MaxCapacityBytes"/>]</c>; returns it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside the range; the message names the value and the range.</exception>
    public static long Validate(long capacityBytes) =>
        capacityBytes is >= 1 and <= MaxCapacityBytes
            ? capacityBytes
            : throw new ArgumentOutOfRangeException(nameof(capacityBytes), capacityBytes,
                $"The prompt-embedding cache size {capacityBytes} B must lie in 1 B .. {MaxCapacityBytes} B (16 GiB); use none/0 to turn it off.");

    /// <summary>The byte limit of the cached embeddings.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes of the embeddings cached now.</summary>
    public long UsedBytes { get { lock (_lock) return _used; } }

    /// <summary>Embeddings cached now.</summary>
    public int Count { get { lock (_lock) return _map.Count; } }

    /// <summary>Lookups that found their prompt.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that did not (the text encoder ran).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>The embedding of <paramref name="tokenIds"/>, made most recently used; in a <see cref="Mirror"/> the values are null.</summary>
    public bool TryGet(int[] tokenIds, out float[]? values, out int[] shape)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        lock (_lock)
        {
            if (_map.TryGetValue(new Key(tokenIds), out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                _hits++;
                values = node.Value.Values;
                shape = node.Value.Shape;
                return true;
            }
            _misses++;
            values = null;
            shape = [];
            return false;
        }
    }

    /// <summary>
    /// Caches an embedding, evicting the least recently used ones until it fits; one larger than the whole capacity is
    /// not cached. <paramref name="values"/> may be null only in a <see cref="Mirror"/>.
    /// </summary>
    public void Add(int[] tokenIds, float[]? values, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        ArgumentNullException.ThrowIfNull(shape);
        if (values is null && !_keysOnly) throw new ArgumentNullException(nameof(values));
        long n = 1;
        foreach (int d in shape) n *= d;
        if (values is not null && values.Length != n)
            throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(",", shape)}].", nameof(values));
        long bytes = 4 * n;
        lock (_lock)
        {
            var key = new Key((int[])tokenIds.Clone());
            if (_map.ContainsKey(key) || bytes > CapacityBytes) return;
            while (_used + bytes > CapacityBytes)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _used -= last.Value.Bytes;
            }
            _map[key] = _lru.AddFirst(new Entry(key, _keysOnly ? null : values, (int[])shape.Clone(), bytes));
            _used += bytes;
        }
    }

    /// <summary>A key-only copy (same keys, sizes and recency order; no values): what a plan simulates against.</summary>
    public PromptEmbeddingCache Mirror()
    {
        lock (_lock)
        {
            var copy = new PromptEmbeddingCache(CapacityBytes, keysOnly: true);
            for (var node = _lru.Last; node is not null; node = node.Previous)
                copy._map[node.Value.Key] = copy._lru.AddFirst(node.Value with { Values = null });
            copy._used = _used;
            return copy;
        }
    }

    /// <summary>Drops every entry.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _map.Clear();
            _lru.Clear();
            _used = 0;
        }
    }

    private sealed record Entry(Key Key, float[]? Values, int[] Shape, long Bytes);

    private readonly struct Key(int[] ids) : IEquatable<Key>
    {
        private readonly int[] _ids = ids;
        private readonly int _hash = Hash(ids);

        public bool Equals(Key other) => _ids.AsSpan().SequenceEqual(other._ids);

        public override bool Equals(object? obj) => obj is Key k && Equals(k);

        public override int GetHashCode() => _hash;

        private static int Hash(int[] ids)
        {
            var h = new HashCode();
            foreach (int id in ids) h.Add(id);
            return h.ToHashCode();
        }
    }
}
