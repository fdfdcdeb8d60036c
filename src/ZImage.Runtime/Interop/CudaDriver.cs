using System.Runtime.InteropServices;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Interop;

/// <summary>How loading the CUDA driver library went.</summary>
internal enum CudaDriverLoadStatus
{
    /// <summary>The library loaded and every required entry point was found.</summary>
    Loaded,
    /// <summary>No candidate library could be loaded (no NVIDIA driver installed, or not on the loader path).</summary>
    LibraryMissing,
    /// <summary>A library loaded but lacks a required entry point (not a CUDA driver, or one too old).</summary>
    EntryPointMissing,
}

/// <summary>The outcome of <see cref="CudaDriver.TryLoad"/>: the driver, or why there is none.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Driver">The driver when <paramref name="Status"/> is <see cref="CudaDriverLoadStatus.Loaded"/>.</param>
/// <param name="LibraryName">The library that loaded, or the candidates tried (comma separated) when none did.</param>
/// <param name="Reason">A one-line human explanation.</param>
internal sealed record CudaDriverLoadResult(CudaDriverLoadStatus Status, CudaDriver? Driver, string LibraryName, string Reason);

/// <summary>Memory-pool attributes that <c>cuMemPoolGetAttribute</c>/<c>cuMemPoolSetAttribute</c> take as 64-bit values.</summary>
internal enum CudaMemPoolAttribute
{
    /// <summary><c>CU_MEMPOOL_ATTR_RELEASE_THRESHOLD</c>: bytes the pool keeps cached across synchronizations.</summary>
    ReleaseThreshold = 4,
    /// <summary><c>CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT</c>: bytes the pool holds from the device.</summary>
    ReservedMemCurrent = 5,
    /// <summary><c>CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH</c>: high-water mark of reserved bytes (settable to 0 only).</summary>
    ReservedMemHigh = 6,
    /// <summary><c>CU_MEMPOOL_ATTR_USED_MEM_CURRENT</c>: bytes handed out to the application.</summary>
    UsedMemCurrent = 7,
    /// <summary><c>CU_MEMPOOL_ATTR_USED_MEM_HIGH</c>: high-water mark of used bytes (settable to 0 only).</summary>
    UsedMemHigh = 8,
}

/// <summary>The device attributes the runtime reads (<c>CUdevice_attribute</c> values).</summary>
internal enum CudaDeviceAttribute
{
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT</c>.</summary>
    MultiprocessorCount = 16,
    /// <summary><c>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR</c>.</summary>
    ComputeCapabilityMajor = 75,
    /// <summary><c>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR</c>.</summary>
    ComputeCapabilityMinor = 76,
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED</c>: whether <c>cuMemAllocAsync</c> works on the device.</summary>
    MemoryPoolsSupported = 115,
}

/// <summary>
/// Our own thin binding to the CUDA driver API (<c>libcuda.so.1</c> / <c>nvcuda.dll</c>) for what ILGPU's
/// <c>CudaAPI</c> does not expose: memory info, stream-ordered allocation and memory pools. The library is loaded with
/// <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/> and called through function pointers, so a missing driver is a
/// <see cref="CudaDriverLoadResult"/>, never a <see cref="DllNotFoundException"/>. Every call's <c>CUresult</c> is
/// checked and turned into a <see cref="CudaException"/>. Calls that need a context (memory info, pools, streams) must
/// run with the ILGPU accelerator's context current (<c>accelerator.BindScoped()</c>): ILGPU creates its own,
/// non-primary context. The loaded library stays loaded for the life of the process, as ILGPU's own imports do.
/// </summary>
internal sealed unsafe class CudaDriver
{
    private readonly delegate* unmanaged<uint, int> _cuInit;
    private readonly delegate* unmanaged<int*, int> _cuDriverGetVersion;
    private readonly delegate* unmanaged<int*, int> _cuDeviceGetCount;
    private readonly delegate* unmanaged<int*, int, int> _cuDeviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> _cuDeviceGetName;
    private readonly delegate* unmanaged<nuint*, int, int> _cuDeviceTotalMem;
    private readonly delegate* unmanaged<int*, int, int, int> _cuDeviceGetAttribute;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _cuMemGetInfo;
    private readonly delegate* unmanaged<IntPtr*, int> _cuCtxGetCurrent;
    private readonly delegate* unmanaged<IntPtr, int> _cuCtxSetCurrent;
    private readonly delegate* unmanaged<int, byte**, int> _cuGetErrorName;
    private readonly delegate* unmanaged<int, byte**, int> _cuGetErrorString;
    // Stream-ordered allocator (CUDA 11.2+); null on older drivers.
    private readonly delegate* unmanaged<IntPtr*, int, int> _cuDeviceGetDefaultMemPool;
    private readonly delegate* unmanaged<IntPtr, int, void*, int> _cuMemPoolSetAttribute;
    private readonly delegate* unmanaged<IntPtr, int, void*, int> _cuMemPoolGetAttribute;
    private readonly delegate* unmanaged<IntPtr, nuint, int> _cuMemPoolTrimTo;
    private readonly delegate* unmanaged<ulong*, nuint, IntPtr, int> _cuMemAllocAsync;
    private readonly delegate* unmanaged<ulong, IntPtr, int> _cuMemFreeAsync;
    private readonly delegate* unmanaged<IntPtr, int> _cuStreamSynchronize;

    /// <summary>Entry points without which the driver is not usable at all.</summary>
    internal static readonly string[] RequiredExports =
    [
        "cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName", "cuDeviceTotalMem_v2",
        "cuDeviceGetAttribute", "cuMemGetInfo_v2", "cuCtxGetCurrent", "cuCtxSetCurrent", "cuGetErrorName", "cuGetErrorString",
    ];

    /// <summary>Entry points of the stream-ordered allocator; all present or the pool backend is unsupported.</summary>
    internal static readonly string[] PoolExports =
    [
        "cuDeviceGetDefaultMemPool", "cuMemPoolSetAttribute", "cuMemPoolGetAttribute", "cuMemPoolTrimTo",
        "cuMemAllocAsync", "cuMemFreeAsync", "cuStreamSynchronize",
    ];

    /// <summary>Binds the driver from an export lookup (a loaded library, or function pointers in tests).</summary>
    /// <param name="libraryName">What the exports came from, for messages.</param>
    /// <param name="export">Returns the address of a named export, or <see cref="IntPtr.Zero"/> when absent.</param>
    /// <exception cref="EntryPointNotFoundException">A required export is missing; the message names it.</exception>
    internal CudaDriver(string libraryName, Func<string, IntPtr> export)
    {
        LibraryName = libraryName;
        IntPtr Required(string name)
        {
            IntPtr p = export(name);
            return p != IntPtr.Zero ? p : throw new EntryPointNotFoundException($"'{libraryName}' has no '{name}' entry point.");
        }

        _cuInit = (delegate* unmanaged<uint, int>)Required("cuInit");
        _cuDriverGetVersion = (delegate* unmanaged<int*, int>)Required("cuDriverGetVersion");
        _cuDeviceGetCount = (delegate* unmanaged<int*, int>)Required("cuDeviceGetCount");
        _cuDeviceGet = (delegate* unmanaged<int*, int, int>)Required("cuDeviceGet");
        _cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Required("cuDeviceGetName");
        _cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Required("cuDeviceTotalMem_v2");
        _cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Required("cuDeviceGetAttribute");
        _cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)Required("cuMemGetInfo_v2");
        _cuCtxGetCurrent = (delegate* unmanaged<IntPtr*, int>)Required("cuCtxGetCurrent");
        _cuCtxSetCurrent = (delegate* unmanaged<IntPtr, int>)Required("cuCtxSetCurrent");
        _cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Required("cuGetErrorName");
        _cuGetErrorString = (delegate* unmanaged<int, byte**, int>)Required("cuGetErrorString");

        var missing = PoolExports.Where(n => export(n) == IntPtr.Zero).ToArray();
        if (missing.Length == 0)
        {
            _cuDeviceGetDefaultMemPool = (delegate* unmanaged<IntPtr*, int, int>)export("cuDeviceGetDefaultMemPool");
            _cuMemPoolSetAttribute = (delegate* unmanaged<IntPtr, int, void*, int>)export("cuMemPoolSetAttribute");
            _cuMemPoolGetAttribute = (delegate* unmanaged<IntPtr, int, void*, int>)export("cuMemPoolGetAttribute");
            _cuMemPoolTrimTo = (delegate* unmanaged<IntPtr, nuint, int>)export("cuMemPoolTrimTo");
            _cuMemAllocAsync = (delegate* unmanaged<ulong*, nuint, IntPtr, int>)export("cuMemAllocAsync");
            _cuMemFreeAsync = (delegate* unmanaged<ulong, IntPtr, int>)export("cuMemFreeAsync");
            _cuStreamSynchronize = (delegate* unmanaged<IntPtr, int>)export("cuStreamSynchronize");
            MissingPoolExports = "";
        }
        else
        {
            MissingPoolExports = string.Join(", ", missing);
        }
    }

    /// <summary>The library names tried by default: <c>nvcuda</c> on Windows, <c>libcuda.so.1</c> elsewhere.</summary>
    public static IReadOnlyList<string> DefaultLibraryNames { get; } =
        OperatingSystem.IsWindows() ? ["nvcuda.dll", "nvcuda"] : ["libcuda.so.1", "libcuda.so"];

    /// <summary>The library the exports came from.</summary>
    public string LibraryName { get; }

    /// <summary>Whether the driver exports the stream-ordered allocator (<c>cuMemAllocAsync</c>, memory pools; CUDA 11.2+).</summary>
    public bool HasStreamOrderedAllocator => _cuMemAllocAsync != null;

    /// <summary>The stream-ordered allocator exports this driver lacks (comma separated; empty when it has all).</summary>
    public string MissingPoolExports { get; }

    /// <summary>
    /// Loads the driver from the first of <paramref name="libraryNames"/> (default <see cref="DefaultLibraryNames"/>) that
    /// loads. Never throws for a missing or foreign library: the result says what happened.
    /// </summary>
    public static CudaDriverLoadResult TryLoad(IEnumerable<string>? libraryNames = null)
    {
        var names = (libraryNames ?? DefaultLibraryNames).ToArray();
        if (names.Length == 0 || names.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("Library names must be a non-empty list of non-blank names.", nameof(libraryNames));
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out IntPtr handle))
                continue;
            try
            {
                var driver = new CudaDriver(name, export => NativeLibrary.TryGetExport(handle, export, out IntPtr p) ? p : IntPtr.Zero);
                return new CudaDriverLoadResult(CudaDriverLoadStatus.Loaded, driver, name, $"Loaded the CUDA driver from '{name}'.");
            }
            catch (EntryPointNotFoundException ex)
            {
                NativeLibrary.Free(handle);
                return new CudaDriverLoadResult(CudaDriverLoadStatus.EntryPointMissing, null, name, ex.Message);
            }
        }

        string tried = string.Join(", ", names);
        return new CudaDriverLoadResult(CudaDriverLoadStatus.LibraryMissing, null, tried,
            $"The CUDA driver library was not found (tried {tried}); no NVIDIA driver is installed or it is not on the loader path.");
    }

    /// <summary><c>cuInit(0)</c>.</summary>
    /// <exception cref="CudaException">The driver refused, e.g. <c>CUDA_ERROR_NO_DEVICE</c> or <c>CUDA_ERROR_STUB_LIBRARY</c>.</exception>
    public void Init() => Check(_cuInit(0), "cuInit");

    /// <summary><c>cuDriverGetVersion</c>, e.g. 12040 for CUDA 12.4.</summary>
    public int GetDriverVersion()
    {
        int v;
        Check(_cuDriverGetVersion(&v), "cuDriverGetVersion");
        return v;
    }

    /// <summary><c>cuDeviceGetCount</c>.</summary>
    public int GetDeviceCount()
    {
        int n;
        Check(_cuDeviceGetCount(&n), "cuDeviceGetCount");
        return n;
    }

    /// <summary><c>cuDeviceGet</c>: the device handle of ordinal <paramref name="ordinal"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ordinal"/> is negative.</exception>
    public int GetDevice(int ordinal)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        int d;
        Check(_cuDeviceGet(&d, ordinal), "cuDeviceGet");
        return d;
    }

    /// <summary><c>cuDeviceGetName</c>.</summary>
    public string GetDeviceName(int device)
    {
        const int capacity = 256;
        byte* buffer = stackalloc byte[capacity];
        Check(_cuDeviceGetName(buffer, capacity, device), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((IntPtr)buffer) ?? "";
    }

    /// <summary><c>cuDeviceTotalMem_v2</c>: total bytes of the device.</summary>
    public long GetDeviceTotalMemory(int device)
    {
        nuint bytes;
        Check(_cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem_v2");
        return checked((long)bytes);
    }

    /// <summary><c>cuDeviceGetAttribute</c>.</summary>
    public int GetDeviceAttribute(CudaDeviceAttribute attribute, int device)
    {
        int value;
        Check(_cuDeviceGetAttribute(&value, (int)attribute, device), "cuDeviceGetAttribute");
        return value;
    }

    /// <summary><c>cuMemGetInfo_v2</c> for the device of the current context (bind the accelerator first).</summary>
    /// <exception cref="CudaException"><c>CUDA_ERROR_INVALID_CONTEXT</c> when no context is current.</exception>
    public DeviceMemoryInfo GetMemoryInfo()
    {
        nuint free, total;
        Check(_cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return new DeviceMemoryInfo(checked((long)total), checked((long)free));
    }

    /// <summary><c>cuCtxGetCurrent</c> (zero when none is current).</summary>
    public IntPtr GetCurrentContext()
    {
        IntPtr ctx;
        Check(_cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
        return ctx;
    }

    /// <summary><c>cuCtxSetCurrent</c>.</summary>
    public void SetCurrentContext(IntPtr context) => Check(_cuCtxSetCurrent(context), "cuCtxSetCurrent");

    /// <summary><c>cuDeviceGetDefaultMemPool</c>.</summary>
    /// <exception cref="NotSupportedException">The driver has no stream-ordered allocator.</exception>
    public IntPtr GetDefaultMemPool(int device)
    {
        RequirePools();
        IntPtr pool;
        Check(_cuDeviceGetDefaultMemPool(&pool, device), "cuDeviceGetDefaultMemPool");
        return pool;
    }

    /// <summary><c>cuMemPoolGetAttribute</c> for a 64-bit attribute.</summary>
    public ulong GetMemPoolAttribute(IntPtr pool, CudaMemPoolAttribute attribute)
    {
        RequirePools();
        ThrowIfNullHandle(pool, nameof(pool));
        ThrowIfUnknown(attribute);
        ulong value;
        Check(_cuMemPoolGetAttribute(pool, (int)attribute, &value), "cuMemPoolGetAttribute");
        return value;
    }

    /// <summary><c>cuMemPoolSetAttribute</c> for a 64-bit attribute (the high-water marks accept only 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A high-water mark was set to something other than 0, or the attribute is not a settable one.</exception>
    public void SetMemPoolAttribute(IntPtr pool, CudaMemPoolAttribute attribute, ulong value)
    {
        RequirePools();
        ThrowIfNullHandle(pool, nameof(pool));
        ThrowIfUnknown(attribute);
        if (attribute is CudaMemPoolAttribute.ReservedMemCurrent or CudaMemPoolAttribute.UsedMemCurrent)
            throw new ArgumentOutOfRangeException(nameof(attribute), attribute, "Current usage attributes are read-only; settable: ReleaseThreshold, ReservedMemHigh (0), UsedMemHigh (0).");
        if (attribute is CudaMemPoolAttribute.ReservedMemHigh or CudaMemPoolAttribute.UsedMemHigh && value != 0)
            throw new ArgumentOutOfRangeException(nameof(value), value, $"{attribute} can only be reset to 0.");
        Check(_cuMemPoolSetAttribute(pool, (int)attribute, &value), "cuMemPoolSetAttribute");
    }

    /// <summary><c>cuMemPoolTrimTo</c>: releases cached pool memory down to <paramref name="minBytesToKeep"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBytesToKeep"/> is negative.</exception>
    public void TrimMemPool(IntPtr pool, long minBytesToKeep)
    {
        RequirePools();
        ThrowIfNullHandle(pool, nameof(pool));
        ArgumentOutOfRangeException.ThrowIfNegative(minBytesToKeep);
        Check(_cuMemPoolTrimTo(pool, (nuint)minBytesToKeep), "cuMemPoolTrimTo");
    }

    /// <summary>
    /// <c>cuMemAllocAsync</c> on <paramref name="stream"/> from the device's current pool. Returns <see langword="false"/>
    /// on <c>CUDA_ERROR_OUT_OF_MEMORY</c> and throws <see cref="CudaException"/> for every other error.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is not positive.</exception>
    public bool TryAllocateAsync(long bytes, IntPtr stream, out ulong devicePointer)
    {
        RequirePools();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ulong ptr;
        int result = _cuMemAllocAsync(&ptr, (nuint)bytes, stream);
        if (result == CudaErrorNames.OutOfMemory)
        {
            devicePointer = 0;
            return false;
        }

        Check(result, "cuMemAllocAsync");
        devicePointer = ptr;
        return true;
    }

    /// <summary><c>cuMemFreeAsync</c>: returns <paramref name="devicePointer"/> to its pool, ordered on <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="devicePointer"/> is 0.</exception>
    public void FreeAsync(ulong devicePointer, IntPtr stream)
    {
        RequirePools();
        ArgumentOutOfRangeException.ThrowIfZero(devicePointer);
        Check(_cuMemFreeAsync(devicePointer, stream), "cuMemFreeAsync");
    }

    /// <summary><c>cuStreamSynchronize</c>.</summary>
    public void SynchronizeStream(IntPtr stream)
    {
        RequirePools();
        Check(_cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    /// <summary>The driver's <c>cuGetErrorName</c> for <paramref name="code"/>, falling back to <see cref="CudaErrorNames"/>.</summary>
    public string GetErrorName(int code)
    {
        byte* text = null;
        return _cuGetErrorName(code, &text) == CudaErrorNames.Success && text != null
            ? Marshal.PtrToStringUTF8((IntPtr)text) ?? CudaErrorNames.GetName(code)
            : CudaErrorNames.GetName(code);
    }

    /// <summary>The driver's <c>cuGetErrorString</c> for <paramref name="code"/>, or <see langword="null"/>.</summary>
    public string? GetErrorDescription(int code)
    {
        byte* text = null;
        return _cuGetErrorString(code, &text) == CudaErrorNames.Success && text != null ? Marshal.PtrToStringUTF8((IntPtr)text) : null;
    }

    /// <summary>Throws <see cref="CudaException"/> with the driver's error name when <paramref name="result"/> is not success.</summary>
    public void Check(int result, string function)
    {
        if (result != CudaErrorNames.Success)
            ThrowCuda(result, function);
    }

    private void ThrowCuda(int result, string function) =>
        throw new CudaException(function, result, GetErrorName(result), GetErrorDescription(result));

    private void RequirePools()
    {
        if (_cuMemAllocAsync == null)
            ThrowNoPools();
    }

    private void ThrowNoPools() =>
        throw new NotSupportedException($"The CUDA driver '{LibraryName}' has no stream-ordered allocator (missing {MissingPoolExports}); CUDA 11.2 or newer is required.");

    private static void ThrowIfNullHandle(IntPtr handle, string name)
    {
        if (handle == IntPtr.Zero)
            throw new ArgumentException("The handle is null (0); pass a pool from GetDefaultMemPool.", name);
    }

    private static void ThrowIfUnknown(CudaMemPoolAttribute attribute)
    {
        if (!Enum.IsDefined(attribute))
            throw new ArgumentOutOfRangeException(nameof(attribute), (int)attribute, "Allowed: ReleaseThreshold (4) to UsedMemHigh (8).");
    }
}
