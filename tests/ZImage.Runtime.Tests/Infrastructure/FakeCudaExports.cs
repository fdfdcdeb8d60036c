using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ZImage.Runtime.Interop;

namespace ZImage.Runtime.Tests.Infrastructure;

/// <summary>
/// Unmanaged entry points that stand in for the CUDA driver, so <see cref="CudaDriver"/>'s result checking, error naming
/// and argument validation can be tested without a GPU. Results are programmable per test; used by one test class only
/// (the state is static because unmanaged callbacks cannot capture).
/// </summary>
internal static unsafe class FakeCudaExports
{
    private static readonly ConcurrentDictionary<int, IntPtr> NameStrings = new();
    public static int NextResult;
    public static int Calls;
    public static ulong LastPoolValue;

    public static IntPtr Lookup(string name, bool withPools = true) => name switch
    {
        "cuInit" => (IntPtr)(delegate* unmanaged<uint, int>)&Init,
        "cuDriverGetVersion" => (IntPtr)(delegate* unmanaged<int*, int>)&GetInt,
        "cuDeviceGetCount" => (IntPtr)(delegate* unmanaged<int*, int>)&GetInt,
        "cuDeviceGet" => (IntPtr)(delegate* unmanaged<int*, int, int>)&DeviceGet,
        "cuDeviceGetName" => (IntPtr)(delegate* unmanaged<byte*, int, int, int>)&DeviceGetName,
        "cuDeviceTotalMem_v2" => (IntPtr)(delegate* unmanaged<nuint*, int, int>)&TotalMem,
        "cuDeviceGetAttribute" => (IntPtr)(delegate* unmanaged<int*, int, int, int>)&Attribute,
        "cuMemGetInfo_v2" => (IntPtr)(delegate* unmanaged<nuint*, nuint*, int>)&MemGetInfo,
        "cuCtxGetCurrent" => (IntPtr)(delegate* unmanaged<IntPtr*, int>)&CtxGetCurrent,
        "cuCtxSetCurrent" => (IntPtr)(delegate* unmanaged<IntPtr, int>)&Handle,
        "cuGetErrorName" => (IntPtr)(delegate* unmanaged<int, byte**, int>)&ErrorName,
        "cuGetErrorString" => (IntPtr)(delegate* unmanaged<int, byte**, int>)&ErrorString,
        "cuDeviceGetDefaultMemPool" when withPools => (IntPtr)(delegate* unmanaged<IntPtr*, int, int>)&DefaultPool,
        "cuMemPoolSetAttribute" when withPools => (IntPtr)(delegate* unmanaged<IntPtr, int, void*, int>)&PoolSet,
        "cuMemPoolGetAttribute" when withPools => (IntPtr)(delegate* unmanaged<IntPtr, int, void*, int>)&PoolGet,
        "cuMemPoolTrimTo" when withPools => (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&Trim,
        "cuMemAllocAsync" when withPools => (IntPtr)(delegate* unmanaged<ulong*, nuint, IntPtr, int>)&AllocAsync,
        "cuMemFreeAsync" when withPools => (IntPtr)(delegate* unmanaged<ulong, IntPtr, int>)&FreeAsync,
        "cuStreamSynchronize" when withPools => (IntPtr)(delegate* unmanaged<IntPtr, int>)&Handle,
        _ => IntPtr.Zero,
    };

    private static int Result()
    {
        Interlocked.Increment(ref Calls);
        return NextResult;
    }

    [UnmanagedCallersOnly] private static int Init(uint flags) => Result();
    [UnmanagedCallersOnly] private static int GetInt(int* value) { *value = 12040; return Result(); }
    [UnmanagedCallersOnly] private static int DeviceGet(int* device, int ordinal) { *device = ordinal; return Result(); }
    [UnmanagedCallersOnly] private static int TotalMem(nuint* bytes, int device) { *bytes = unchecked((nuint)(24UL << 30)); return Result(); }
    [UnmanagedCallersOnly] private static int Attribute(int* value, int attribute, int device) { *value = attribute; return Result(); }
    [UnmanagedCallersOnly] private static int MemGetInfo(nuint* free, nuint* total) { *free = unchecked((nuint)(20UL << 30)); *total = unchecked((nuint)(24UL << 30)); return Result(); }
    [UnmanagedCallersOnly] private static int CtxGetCurrent(IntPtr* ctx) { *ctx = 0x1234; return Result(); }
    [UnmanagedCallersOnly] private static int Handle(IntPtr handle) => Result();
    [UnmanagedCallersOnly] private static int DefaultPool(IntPtr* pool, int device) { *pool = 0x5678; return Result(); }
    [UnmanagedCallersOnly] private static int PoolSet(IntPtr pool, int attribute, void* value) { LastPoolValue = *(ulong*)value; return Result(); }
    [UnmanagedCallersOnly] private static int PoolGet(IntPtr pool, int attribute, void* value) { *(ulong*)value = (ulong)attribute * 1000; return Result(); }
    [UnmanagedCallersOnly] private static int Trim(IntPtr pool, nuint keep) => Result();
    [UnmanagedCallersOnly] private static int AllocAsync(ulong* ptr, nuint bytes, IntPtr stream) { *ptr = 0xD000; return Result(); }
    [UnmanagedCallersOnly] private static int FreeAsync(ulong ptr, IntPtr stream) => Result();

    [UnmanagedCallersOnly]
    private static int DeviceGetName(byte* name, int length, int device)
    {
        "Fake GPU\0"u8.CopyTo(new Span<byte>(name, length));
        return Result();
    }

    // Names come back from the "driver" with a FAKE_ prefix so tests can tell them from the managed fallback table.
    [UnmanagedCallersOnly]
    private static int ErrorName(int code, byte** text)
    {
        if (!CudaErrorNames.IsKnown(code))
            return CudaErrorNames.InvalidValue;
        *text = (byte*)NameStrings.GetOrAdd(code, c => Marshal.StringToCoTaskMemUTF8("FAKE_" + CudaErrorNames.GetName(c)));
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int ErrorString(int code, byte** text)
    {
        *text = (byte*)NameStrings.GetOrAdd(-1, _ => Marshal.StringToCoTaskMemUTF8("fake description"));
        return 0;
    }
}
