using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace ZImage.Runtime.Models.Tokenization;

/// <summary>An added (special or user-defined) token from tokenizer.json, matched verbatim before BPE.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Content">Exact text.</param>
/// <param name="Special">True for control tokens (skipped by <c>Decode(…, skipSpecialTokens: true)</c>).</param>
/// <param name="LStrip">Whitespace to the left is absorbed into the token.</param>
/// <param name="RStrip">Whitespace to the right is absorbed into the token.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip);

/// <summary>
/// The Qwen2/Qwen3 byte-level BPE tokenizer, loaded from a Hugging Face <c>tokenizer.json</c>: added tokens matched
/// verbatim first, NFC normalisation, the Qwen2 split (<see cref="Qwen2PreTokenizer"/>), GPT-2 byte → unicode
/// mapping, then BPE by merge rank. No BOS/EOS is added. Thread-safe.
/// </summary>
public sealed class Qwen2Tokenizer
{
    /// <summary>The chat template Z-Image applies to a prompt (user turn + generation prompt, thinking enabled ⇒ no think block).</summary>
    public const string ChatTemplate = "<|im_start|>user\n{0}<|im_end|>\n<|im_start|>assistant\n";

    /// <summary>The pipeline's <c>max_sequence_length</c>.</summary>
    public const int DefaultMaxLength = 512;

    private const int MaxCacheEntries = 100_000;

    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly int[] _byteIds = new int[256];
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<char, AddedToken[]> _addedByFirstChar;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private Qwen2Tokenizer(string source, Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, IReadOnlyList<AddedToken> added)
    {
        Source = source;
        _vocab = vocab;
        _merges = merges;
        AddedTokens = added;
        _addedById = added.ToDictionary(a => a.Id);
        _addedByFirstChar = added.Where(a => a.Content.Length > 0).GroupBy(a => a.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(a => a.Content.Length).ToArray());
        int size = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
        _idToToken = new string[size];
        foreach ((string tok, int id) in vocab) _idToToken[id] = tok;
        foreach (AddedToken a in added) _idToToken[a.Id] = a.Content;
        for (int b = 0; b < 256; b++)
        {
            if (!vocab.TryGetValue(ByteLevelEncoding.ByteToChar((byte)b).ToString(), out _byteIds[b]))
                throw new TokenizerFormatException(source, $"the vocabulary lacks the byte-level symbol for byte 0x{b:X2}; every byte must be encodable.");
        }
        EndOfTextId = TokenId("<|endoftext|>");
        ImStartId = TokenId("<|im_start|>");
        ImEndId = TokenId("<|im_end|>");
    }

    /// <summary>The tokenizer.json this was loaded from.</summary>
    public string Source { get; }

    /// <summary>Number of ids (vocabulary plus added tokens), i.e. one past the largest id.</summary>
    public int VocabSize => _idToToken.Length;

    /// <summary>Added tokens in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c> (also the pad token).</summary>
    public int EndOfTextId { get; }

    /// <summary>Id of <c>&lt;|im_start|&gt;</c>.</summary>
    public int ImStartId { get; }

    /// <summary>Id of <c>&lt;|im_end|&gt;</c> (the EOS token).</summary>
    public int ImEndId { get; }

    /// <summary>Id of the pad token (<c>&lt;|endoftext|&gt;</c>).</summary>
    public int PadTokenId => EndOfTextId;

    /// <summary>The id of an exact token string (vocabulary or added), or -1.</summary>
    public int TokenId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        foreach (AddedToken a in AddedTokens)
            if (a.Content == token) return a.Id;
        return _vocab.TryGetValue(token, out int id) ? id : -1;
    }

    /// <summary>The token string of an id (byte-level characters for vocabulary tokens).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside [0, <see cref="VocabSize"/>) or unassigned.</exception>
    public string IdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } t ? t
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be an assigned id in [0, {_idToToken.Length}).");

    /// <summary>Largest token id a tokenizer.json may assign (the id table is allocated up to the largest id).</summary>
    public const int MaxTokenId = (1 << 24) - 1;

    /// <summary>
    /// Loads <c>tokenizer.json</c> from <paramref name="tokenizerDir"/> (and, when present, checks that
    /// <c>tokenizer_config.json</c>'s chat template renders a user turn and the generation prompt as <see cref="ChatTemplate"/>).
    /// </summary>
    /// <exception cref="TokenizerFormatException">
    /// A file is missing, is not UTF-8 JSON, a field is missing or has the wrong JSON type or value (the message names
    /// the file and the field, e.g. <c>model.merges[12]</c>), or the file uses an unsupported feature.
    /// </exception>
    public static Qwen2Tokenizer Load(string tokenizerDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerDir);
        string path = Path.GetFullPath(Path.Combine(tokenizerDir, "tokenizer.json"));
        if (!File.Exists(path)) throw new TokenizerFormatException(path, "the file does not exist.");
        CheckChatTemplate(Path.Combine(Path.GetDirectoryName(path)!, "tokenizer_config.json"));
        using JsonDocument doc = TokenizerJson.Parse(path);
        var json = new TokenizerJson(path);
        JsonElement root = json.Root(doc);
        JsonElement model = json.Object(root, "model", "model");
        CheckPipeline(json, root, model);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty p in json.Object(model, "vocab", "model.vocab").EnumerateObject())
            vocab[p.Name] = json.Id(p.Value, $"model.vocab['{p.Name}']");
        var merges = new Dictionary<long, (int, int)>();
        int rank = 0;
        foreach (JsonElement m in json.Array(model, "merges", "model.merges").EnumerateArray())
        {
            string field = $"model.merges[{rank}]";
            (string a, string b) = m.ValueKind switch
            {
                JsonValueKind.Array when m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String
                    => (m[0].GetString()!, m[1].GetString()!),
                JsonValueKind.String when m.GetString()!.Split(' ') is [{ Length: > 0 } x, { Length: > 0 } y] => (x, y),
                _ => throw new TokenizerFormatException(path, $"{field} = {TokenizerJson.Raw(m)} is neither [\"a\",\"b\"] nor \"a b\"."),
            };
            if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib) || !vocab.TryGetValue(a + b, out int merged))
                throw new TokenizerFormatException(path, $"{field} ('{a}', '{b}') uses or produces a token missing from the vocabulary.");
            merges.TryAdd(Key(ia, ib), (rank, merged));
            rank++;
        }
        var added = new List<AddedToken>();
        var addedIds = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out JsonElement at) && at.ValueKind != JsonValueKind.Null)
        {
            int i = 0;
            foreach (JsonElement a in json.ArrayValue(at, "added_tokens").EnumerateArray())
            {
                string field = $"added_tokens[{i++}]";
                json.ObjectValue(a, field);
                int id = json.Id(json.Required(a, "id", field + ".id"), field + ".id");
                string content = json.String(a, "content", field + ".content");
                if (content.Length == 0) throw new TokenizerFormatException(path, $"{field}.content is empty.");
                if (!addedIds.Add(id)) throw new TokenizerFormatException(path, $"{field}.id = {id} is used by an earlier added token.");
                bool Flag(string f) => json.OptionalBool(a, f, $"{field}.{f}");
                added.Add(new AddedToken(id, content, Flag("special"), Flag("lstrip"), Flag("rstrip")));
            }
        }
        foreach (string special in (string[])["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        {
            if (!added.Exists(a => a.Content == special) && !vocab.ContainsKey(special))
                throw new TokenizerFormatException(path, $"added_tokens has no '{special}' token; the Qwen chat template and padding need it.");
        }
        return new Qwen2Tokenizer(path, vocab, merges, added);
    }

    private static void CheckPipeline(TokenizerJson json, JsonElement root, JsonElement model)
    {
        string path = json.Path;
        string type = json.String(model, "type", "model.type");
        if (type != "BPE")
            throw new TokenizerFormatException(path, $"model.type '{type}' is not supported; only 'BPE'.");
        if (json.OptionalBool(model, "byte_fallback", "model.byte_fallback"))
            throw new TokenizerFormatException(path, "model.byte_fallback = true is not supported.");
        if (root.TryGetProperty("normalizer", out JsonElement norm) && norm.ValueKind != JsonValueKind.Null)
        {
            json.ObjectValue(norm, "normalizer");
            if (json.String(norm, "type", "normalizer.type") != "NFC")
                throw new TokenizerFormatException(path, $"normalizer {TokenizerJson.Raw(norm)} is not supported; only NFC or none.");
        }
        JsonElement pre = root.TryGetProperty("pre_tokenizer", out JsonElement p) ? p : default;
        JsonElement[] steps = [];
        if (pre.ValueKind == JsonValueKind.Object)
        {
            steps = json.String(pre, "type", "pre_tokenizer.type") == "Sequence"
                ? json.Array(pre, "pretokenizers", "pre_tokenizer.pretokenizers").EnumerateArray().ToArray()
                : [pre];
        }
        // The split is implemented natively (code-point aware), so the file must use exactly that pattern.
        static bool Is(JsonElement e, string name, string value) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String && v.GetString() == value;
        static bool IsTrue(JsonElement e, string name) => e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.True;
        bool split = steps.Length == 2 && Is(steps[0], "type", "Split")
            && steps[0].TryGetProperty("pattern", out JsonElement pattern) && Is(pattern, "Regex", Qwen2PreTokenizer.Pattern)
            && Is(steps[0], "behavior", "Isolated") && !IsTrue(steps[0], "invert");
        bool byteLevel = steps.Length == 2 && Is(steps[1], "type", "ByteLevel")
            && !IsTrue(steps[1], "add_prefix_space") && !IsTrue(steps[1], "use_regex");
        if (!split || !byteLevel)
            throw new TokenizerFormatException(path, $"pre_tokenizer is not the Qwen2 Split(Isolated) + ByteLevel(no prefix space, no regex) sequence this tokenizer implements: {(pre.ValueKind == JsonValueKind.Undefined ? "none" : TokenizerJson.Raw(pre))}");
    }

    private static void CheckChatTemplate(string configPath)
    {
        if (!File.Exists(configPath)) return;
        using JsonDocument doc = TokenizerJson.Parse(configPath);
        var json = new TokenizerJson(configPath);
        JsonElement root = json.Root(doc);
        if (!root.TryGetProperty("chat_template", out JsonElement t) || t.ValueKind != JsonValueKind.String) return;
        string template = t.GetString()!;
        // The two fragments that render a user turn and the generation prompt in the Qwen3 jinja template.
        const string userTurn = "'<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n'";
        const string generation = "'<|im_start|>assistant\\n'";
        if (!template.Contains(userTurn, StringComparison.Ordinal) || !template.Contains(generation, StringComparison.Ordinal))
            throw new TokenizerFormatException(configPath, $"chat_template does not render user turns as {JsonSerializer.Serialize(ChatTemplate)}; this tokenizer hard-codes that template.");
    }

    /// <summary>The chat-templated text for <paramref name="prompt"/> (<see cref="ChatTemplate"/>).</summary>
    public static string ApplyChatTemplate(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n";
    }

    /// <summary>Token ids of <paramref name="text"/> as is (added tokens inside the text are matched; nothing is added).</summary>
    /// <exception cref="MalformedTextException">The text holds a lone surrogate (not well-formed UTF-16).</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        MalformedTextException.ThrowIfMalformed(text, nameof(text));
        var ids = new List<int>(text.Length / 3 + 4);
        int segmentStart = 0, i = 0;
        while (i < text.Length)
        {
            if (_addedByFirstChar.TryGetValue(text[i], out AddedToken[]? candidates))
            {
                AddedToken? hit = null;
                foreach (AddedToken a in candidates)
                {
                    if (string.CompareOrdinal(text, i, a.Content, 0, a.Content.Length) == 0)
                    {
                        hit = a;
                        break;
                    }
                }
                if (hit is not null)
                {
                    int before = i, after = i + hit.Content.Length;
                    if (hit.LStrip) while (before > segmentStart && char.IsWhiteSpace(text[before - 1])) before--;
                    if (hit.RStrip) while (after < text.Length && char.IsWhiteSpace(text[after])) after++;
                    EncodeOrdinary(text.AsSpan(segmentStart, before - segmentStart), ids);
                    ids.Add(hit.Id);
                    segmentStart = i = after;
                    continue;
                }
            }
            i++;
        }
        EncodeOrdinary(text.AsSpan(segmentStart), ids);
        return ids.ToArray();
    }

    /// <summary>
    /// Ids of the chat-templated prompt, right-truncated to <paramref name="maxLength"/> as the pipeline does
    /// (a very long prompt loses the assistant suffix, exactly like the reference).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below 1.</exception>
    /// <exception cref="MalformedTextException">The prompt holds a lone surrogate; the index is the prompt's.</exception>
    public int[] EncodeChat(string prompt, int maxLength = DefaultMaxLength)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        MalformedTextException.ThrowIfMalformed(prompt, nameof(prompt));
        if (maxLength < 1)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"maxLength must be in [1, {int.MaxValue}].");
        int[] ids = Encode(ApplyChatTemplate(prompt));
        return ids.Length <= maxLength ? ids : ids[..maxLength];
    }

    /// <summary>Text of <paramref name="ids"/>: byte-level tokens back to UTF-8 (invalid sequences become U+FFFD), added tokens verbatim.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            string token = IdToToken(id);
            if (_addedById.TryGetValue(id, out AddedToken? a))
            {
                Flush();
                if (!(skipSpecialTokens && a.Special)) sb.Append(a.Content);
                continue;
            }
            foreach (char c in token)
            {
                if (ByteLevelEncoding.TryCharToByte(c, out byte b)) bytes.Add(b);
                else
                {
                    Flush();
                    sb.Append(c);
                }
            }
        }
        Flush();
        return sb.ToString();

        void Flush()
        {
            if (bytes.Count == 0) return;
            sb.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
    }

    // NFC as the tokenizer.json normalizer does. .NET's Normalize rejects the noncharacters U+FFFE and U+FFFF (valid
    // scalar values, left unchanged by NFC in Rust's tokenizers), so the text is normalised around them; they are
    // starters that never compose, so normalising the pieces separately gives the NFC of the whole.
    private static string Nfc(ReadOnlySpan<char> segment)
    {
        if (segment.IndexOfAny('\uFFFE', '\uFFFF') < 0) return segment.ToString().Normalize(NormalizationForm.FormC);
        var sb = new StringBuilder(segment.Length);
        while (!segment.IsEmpty)
        {
            int i = segment.IndexOfAny('\uFFFE', '\uFFFF');
            var piece = i < 0 ? segment : segment[..i];
            if (!piece.IsEmpty) sb.Append(piece.ToString().Normalize(NormalizationForm.FormC));
            if (i < 0) break;
            sb.Append(segment[i]);
            segment = segment[(i + 1)..];
        }
        return sb.ToString();
    }

    private void EncodeOrdinary(ReadOnlySpan<char> segment, List<int> ids)
    {
        if (segment.IsEmpty) return;
        string text = Nfc(segment);
        foreach ((int start, int length) in Qwen2PreTokenizer.Split(text))
        {
            string piece = text.Substring(start, length);
            if (!_cache.TryGetValue(piece, out int[]? pieceIds))
            {
                pieceIds = Bpe(piece);
                if (_cache.Count >= MaxCacheEntries) _cache.Clear();
                _cache.TryAdd(piece, pieceIds);
            }
            ids.AddRange(pieceIds);
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private int[] Bpe(string piece)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(piece);
        int n = utf8.Length;
        var sym = new int[n];
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++)
        {
            sym[i] = _byteIds[utf8[i]];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        // Lowest rank first, then leftmost: the order Hugging Face's BPE merges in.
        var queue = new PriorityQueue<(int Pos, int Left, int Right), long>();
        void Push(int pos)
        {
            int r = next[pos];
            if (r >= 0 && _merges.TryGetValue(Key(sym[pos], sym[r]), out var m))
                queue.Enqueue((pos, sym[pos], sym[r]), ((long)m.Rank << 32) | (uint)pos);
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        int live = n;
        while (queue.TryDequeue(out var item, out _))
        {
            int pos = item.Pos, r = next[pos];
            // Stale entries: a neighbour was merged away since this pair was queued.
            if (sym[pos] != item.Left || r < 0 || sym[r] != item.Right) continue;
            sym[pos] = _merges[Key(item.Left, item.Right)].Merged;
            sym[r] = -1;
            next[pos] = next[r];
            if (next[r] >= 0) prev[next[r]] = pos;
            live--;
            if (prev[pos] >= 0) Push(prev[pos]);
            Push(pos);
        }
        var result = new int[live];
        for (int i = 0, k = 0; i >= 0 && k < live; i = next[i]) result[k++] = sym[i];
        return result;
    }
}
