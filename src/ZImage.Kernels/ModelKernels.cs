using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>
/// Model-specific kernels the VAE decoder needs and no other family provides: a 2-D transpose (the mid-block
/// attention moves between channel-major <c>[C, H·W]</c> and token-major <c>[H·W, C]</c>). GPU variant: 32×32
/// shared-memory tiles, so both the reads and the writes are coalesced; portable variant: a few threads, each looping
/// over a contiguous chunk of the output.
/// </summary>
public sealed class ModelKernels
{
    // 32×32 tiles walked by 32×8 threads: each thread moves 4 elements, the usual shape for a bandwidth-bound
    // transpose. The +1 column pads the tile so that the column-wise reads hit 32 different shared-memory banks.
    private const int Tile = 32;
    private const int TileRowsPerPass = 8;
    private const int TileStride = Tile + 1;

    private readonly KernelContext _context;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, int> _transposeChunked;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? _transposeTiled;

    /// <summary>Loads (JIT-compiles) the kernels for <paramref name="context"/>'s accelerator and variant.</summary>
    public ModelKernels(KernelContext context)
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        var acc = context.Accelerator;
        _transposeChunked = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(TransposeChunkedKernel);
        if (context.Variant == KernelVariant.Gpu)
            _transposeTiled = acc.LoadKernel<ArrayView<float>, ArrayView<float>, int, int>(TransposeTiledKernel);
    }

    /// <summary>
    /// y[cols, rows] = x[rows, cols]ᵀ (row-major both). <paramref name="x"/> and <paramref name="y"/> must not overlap.
    /// </summary>
    /// <param name="x">Input, at least <paramref name="rows"/>·<paramref name="cols"/> elements.</param>
    /// <param name="y">Output, at least <paramref name="rows"/>·<paramref name="cols"/> elements.</param>
    /// <param name="rows">Rows of <paramref name="x"/> (≥ 1).</param>
    /// <param name="cols">Columns of <paramref name="x"/> (≥ 1).</param>
    public void Transpose2d(ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        long n = CheckSizes(x, y, rows, cols);
        if (_transposeTiled is not null)
        {
            int tilesX = (cols + Tile - 1) / Tile;
            int tilesY = (rows + Tile - 1) / Tile;
            var config = new KernelConfig(new Index2D(tilesX, tilesY), new Index2D(Tile, TileRowsPerPass));
            _transposeTiled(_context.Stream, config, x, y, rows, cols);
            return;
        }
        int threads = (int)Math.Min(n, _context.PortableChunks);
        int chunk = (int)((n + threads - 1) / threads);
        _transposeChunked(_context.Stream, threads, x, y, rows, cols, chunk);
    }

    private static long CheckSizes(ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Rows must be at least 1.");
        if (cols < 1) throw new ArgumentOutOfRangeException(nameof(cols), cols, "Columns must be at least 1.");
        long n = (long)rows * cols;
        if (n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), n, $"rows·cols must be at most {int.MaxValue}.");
        if (x.Length < n || y.Length < n)
            throw new ArgumentException($"Views of {x.Length} and {y.Length} elements are shorter than {rows}×{cols} = {n}.", nameof(x));
        return n;
    }

    private static void TransposeChunkedKernel(Index1D t, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int chunk)
    {
        int n = rows * cols;
        int start = t * chunk;
        int end = start + chunk < n ? start + chunk : n;
        if (start >= end) return;
        // Output-ordered walk: writes are sequential, reads stride by cols.
        int c = start / rows;
        int r = start - c * rows;
        for (int o = start; o < end; o++)
        {
            y[o] = x[r * cols + c];
            if (++r == rows)
            {
                r = 0;
                c++;
            }
        }
    }

    private static void TransposeTiledKernel(ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        var tile = SharedMemory.Allocate<float>(Tile * TileStride);
        int tileCol = Grid.IdxX * Tile;
        int tileRow = Grid.IdxY * Tile;
        int tx = Group.IdxX;
        for (int j = Group.IdxY; j < Tile; j += TileRowsPerPass)
        {
            int r = tileRow + j;
            int c = tileCol + tx;
            if (r < rows && c < cols) tile[j * TileStride + tx] = x[r * cols + c];
        }
        Group.Barrier();
        for (int j = Group.IdxY; j < Tile; j += TileRowsPerPass)
        {
            int outRow = tileCol + j; // a column of x
            int outCol = tileRow + tx; // a row of x
            if (outRow < cols && outCol < rows) y[outRow * rows + outCol] = tile[tx * TileStride + j];
        }
    }
}
