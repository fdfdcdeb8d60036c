using System.Runtime.InteropServices;

namespace ZImage.Runtime.Interop;

/// <summary>
/// The address range of the calling thread's stack, from the OS (<c>pthread_getattr_np</c> on Linux,
/// <c>pthread_get_stackaddr_np</c> on macOS, <c>GetCurrentThreadStackLimits</c> on Windows). Live threads' stacks are
/// disjoint, so "the address of a local lies in this range" identifies a thread with two compares and no thread-local
/// lookup, which is what <see cref="Memory.BiasedLock"/> uses it for. Entry points are resolved once with
/// <see cref="NativeLibrary"/>; where none is found, <see cref="TryGetCurrent"/> returns false and callers do without.
/// </summary>
internal static unsafe class ThreadStack
{
    // pthread_attr_t is 56 bytes on glibc x64 and 64 on arm64; musl's is smaller. 256 leaves room for any libc.
    private const int PthreadAttrBytes = 256;

    private static readonly Api s_api = Load();

    /// <summary>Whether this platform's stack bounds could be resolved.</summary>
    public static bool IsSupported => s_api.Kind != ApiKind.None;

    /// <summary>Gets the calling thread's stack as [<paramref name="low"/>, <paramref name="high"/>); false if unknown.</summary>
    public static bool TryGetCurrent(out nuint low, out nuint high)
    {
        low = high = 0;
        var api = s_api;
        switch (api.Kind)
        {
            case ApiKind.Windows:
            {
                nuint lo, hi;
                ((delegate* unmanaged<nuint*, nuint*, void>)api.F1)(&lo, &hi);
                low = lo;
                high = hi;
                break;
            }
            case ApiKind.Linux:
            {
                byte* attr = stackalloc byte[PthreadAttrBytes];
                nint self = ((delegate* unmanaged<nint>)api.F0)();
                if (((delegate* unmanaged<nint, byte*, int>)api.F1)(self, attr) != 0)
                    return false;
                void* addr;
                nuint size;
                int rc = ((delegate* unmanaged<byte*, void**, nuint*, int>)api.F2)(attr, &addr, &size);
                ((delegate* unmanaged<byte*, int>)api.F3)(attr);
                if (rc != 0)
                    return false;
                low = (nuint)addr;
                high = low + size;
                break;
            }
            case ApiKind.MacOS:
            {
                nint self = ((delegate* unmanaged<nint>)api.F0)();
                nuint top = (nuint)((delegate* unmanaged<nint, void*>)api.F1)(self);
                nuint size = ((delegate* unmanaged<nint, nuint>)api.F2)(self);
                low = top - size;
                high = top;
                break;
            }
            default:
                return false;
        }
        // Sanity: the range must hold this very frame; anything else means the binding misread the OS's answer.
        byte probe = 0;
        nuint here = (nuint)(&probe);
        return high > low && here - low < high - low;
    }

    private enum ApiKind { None, Linux, MacOS, Windows }

    private readonly record struct Api(ApiKind Kind, nint F0 = 0, nint F1 = 0, nint F2 = 0, nint F3 = 0);

    private static Api Load()
    {
        try
        {
            if (OperatingSystem.IsWindows())
                return Export("kernel32.dll", "GetCurrentThreadStackLimits") is var f && f != 0 ? new Api(ApiKind.Windows, F1: f) : default;
            if (OperatingSystem.IsMacOS())
            {
                nint self = Export("libSystem.dylib", "pthread_self"), addr = Export("libSystem.dylib", "pthread_get_stackaddr_np");
                nint size = Export("libSystem.dylib", "pthread_get_stacksize_np");
                return self != 0 && addr != 0 && size != 0 ? new Api(ApiKind.MacOS, self, addr, size) : default;
            }
            if (OperatingSystem.IsLinux())
            {
                foreach (string lib in (string[])["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"])
                {
                    nint self = Export(lib, "pthread_self"), get = Export(lib, "pthread_getattr_np");
                    nint stack = Export(lib, "pthread_attr_getstack"), destroy = Export(lib, "pthread_attr_destroy");
                    if (self != 0 && get != 0 && stack != 0 && destroy != 0)
                        return new Api(ApiKind.Linux, self, get, stack, destroy);
                }
            }
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
        {
            // Reported as unsupported: the caller keeps working without the fast path.
        }
        return default;
    }

    private static nint Export(string library, string name) =>
        NativeLibrary.TryLoad(library, out nint handle) && NativeLibrary.TryGetExport(handle, name, out nint f) ? f : 0;
}
