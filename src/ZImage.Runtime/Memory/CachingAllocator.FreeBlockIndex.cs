using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ZImage.Runtime.Memory;

public sealed partial class CachingAllocator
{
    /// <summary>
    /// One stream's free blocks of one pool, with PyTorch's <c>lower_bound({stream, size})</c> over (size, address) answered
    /// in constant time. Sizes are binned into two-level size classes (TLSF: the power of two, then
    /// <see cref="SubClasses"/> equal steps inside it) and every class is an intrusive doubly linked list threaded through
    /// the nodes, with a bitmap of non-empty classes. Insert and remove are O(1) with no key shifting, and a search
    /// reads the request's own class plus one bitmap lookup. The answer is exact, not approximate: classes are
    /// monotonic in size, so the best (size, address) block at least as large as the request is either in the request's
    /// class or is the smallest (size, address) entry of the next non-empty class. Steady state allocates nothing.
    /// </summary>
    private sealed class FreeBlockIndex
    {
        // 16 steps per power of two keep a class within 1/16 (6.25 %) of its sizes, so a class rarely holds more than a
        // couple of blocks; sizes below 16 * 512 B = 8 KiB get one exact class each.
        private const int SubClassBits = 4;
        private const int SubClasses = 1 << SubClassBits;
        // Block sizes are multiples of kMinBlockSize (512 B = 2^9); the largest long is below 2^63, so the class of any
        // size is at most ((63 - 9 - 1) - SubClassBits + 1) * SubClasses + SubClasses - 1 = 815.
        private const int SizeShift = 9;
        private const int ClassCount = (63 - SizeShift - SubClassBits + 1) * SubClasses;
        private const int WordCount = (ClassCount + 63) / 64;

        private readonly int[] _heads;
        private readonly ulong[] _words = new ulong[WordCount];
        private ulong _summary; // bit w is set iff _words[w] != 0

        public FreeBlockIndex(int stream)
        {
            Stream = stream;
            _heads = new int[ClassCount];
            _heads.AsSpan().Fill(None);
        }

        /// <summary>The stream whose blocks this index holds.</summary>
        public int Stream { get; }

        /// <summary>The size class of a block size: monotonic non-decreasing in <paramref name="size"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int ClassOf(long size)
        {
            ulong u = (ulong)size >> SizeShift;
            if (u < SubClasses)
                return (int)u;
            int log = 63 - BitOperations.LeadingZeroCount(u);
            return ((log - SubClassBits + 1) << SubClassBits) | (int)((u >> (log - SubClassBits)) & (SubClasses - 1));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Insert(Node[] nodes, int b)
        {
            ref Node n = ref nodes[b];
            int c = ClassOf(n.Size);
            ref int head = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_heads), c);
            n.FreeClass = c;
            n.FreePrev = None;
            n.FreeNext = head;
            if (head != None)
                nodes[head].FreePrev = b;
            head = b;
            int w = c >> 6;
            _words[w] |= 1UL << c;
            _summary |= 1UL << w;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Remove(Node[] nodes, int b)
        {
            ref Node n = ref nodes[b];
            int prev = n.FreePrev, next = n.FreeNext;
            if (next != None)
                nodes[next].FreePrev = prev;
            if (prev != None)
            {
                nodes[prev].FreeNext = next;
            }
            else
            {
                int c = n.FreeClass;
                _heads[c] = next;
                if (next == None)
                    ClearClass(c);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ClearClass(int c)
        {
            int w = c >> 6;
            ulong word = _words[w] & ~(1UL << c);
            _words[w] = word;
            if (word == 0)
                _summary &= ~(1UL << w);
        }

        /// <summary>The free block with the smallest (size, address) whose size is at least <paramref name="size"/>, or <see cref="None"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int LowerBound(Node[] nodes, long size)
        {
            int c = ClassOf(size);
            // The request's own class may hold blocks on both sides of the request size.
            int best = None;
            for (int i = _heads[c]; i != None; i = nodes[i].FreeNext)
            {
                ref Node n = ref nodes[i];
                if (n.Size >= size && (best == None || Before(ref n, ref nodes[best])))
                    best = i;
            }
            if (best != None)
                return best;
            int next = NextClass(c + 1);
            return next < 0 ? None : Smallest(nodes, _heads[next]);
        }

        /// <summary>The first non-empty class at or after <paramref name="from"/>, or -1.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int NextClass(int from)
        {
            int w = from >> 6;
            if (w < WordCount)
            {
                ulong word = _words[w] & (ulong.MaxValue << (from & 63));
                if (word != 0)
                    return (w << 6) | BitOperations.TrailingZeroCount(word);
                w++;
            }
            ulong rest = w >= 64 ? 0 : _summary & (ulong.MaxValue << w);
            if (rest == 0)
                return -1;
            w = BitOperations.TrailingZeroCount(rest);
            return (w << 6) | BitOperations.TrailingZeroCount(_words[w]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int Smallest(Node[] nodes, int first)
        {
            int best = first;
            for (int i = nodes[first].FreeNext; i != None; i = nodes[i].FreeNext)
            {
                if (Before(ref nodes[i], ref nodes[best]))
                    best = i;
            }
            return best;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Before(ref Node a, ref Node b) => a.Size < b.Size || (a.Size == b.Size && a.Address < b.Address);

        /// <summary>Appends every held block to <paramref name="into"/> starting at <paramref name="count"/> (unordered); returns the new count.</summary>
        public int CopyTo(Node[] nodes, ref int[] into, int count)
        {
            ulong summary = _summary;
            while (summary != 0)
            {
                int w = BitOperations.TrailingZeroCount(summary);
                summary &= summary - 1;
                ulong word = _words[w];
                while (word != 0)
                {
                    int c = (w << 6) | BitOperations.TrailingZeroCount(word);
                    word &= word - 1;
                    for (int i = _heads[c]; i != None; i = nodes[i].FreeNext)
                    {
                        // Grown here rather than sized from a count: keeping a count would cost every insert and remove.
                        if (count == into.Length)
                            Array.Resize(ref into, into.Length * 2);
                        into[count++] = i;
                    }
                }
            }
            return count;
        }
    }

    /// <summary>Orders node indices by PyTorch's BlockComparatorSize: (stream, size, address).</summary>
    private readonly struct KeyOrder(Node[] nodes) : IComparer<int>
    {
        public int Compare(int x, int y)
        {
            ref Node a = ref nodes[x];
            ref Node b = ref nodes[y];
            int c = a.Stream.CompareTo(b.Stream);
            if (c == 0)
                c = a.Size.CompareTo(b.Size);
            return c != 0 ? c : a.Address.CompareTo(b.Address);
        }
    }
}
