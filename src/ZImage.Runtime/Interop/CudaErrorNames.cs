using System.Collections.Frozen;
using System.Globalization;

namespace ZImage.Runtime.Interop;

/// <summary>
/// The CUDA driver's <c>CUresult</c> codes and their <c>cuGetErrorName</c> spellings. Used when the driver is absent
/// (so <c>cuGetErrorName</c> cannot be called) or returns no name for a code.
/// </summary>
internal static class CudaErrorNames
{
    /// <summary><c>CUDA_SUCCESS</c>.</summary>
    public const int Success = 0;
    /// <summary><c>CUDA_ERROR_INVALID_VALUE</c>.</summary>
    public const int InvalidValue = 1;
    /// <summary><c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public const int OutOfMemory = 2;
    /// <summary><c>CUDA_ERROR_NOT_INITIALIZED</c>.</summary>
    public const int NotInitialized = 3;
    /// <summary><c>CUDA_ERROR_NO_DEVICE</c>.</summary>
    public const int NoDevice = 100;
    /// <summary><c>CUDA_ERROR_INVALID_CONTEXT</c>.</summary>
    public const int InvalidContext = 201;
    /// <summary><c>CUDA_ERROR_NOT_SUPPORTED</c>.</summary>
    public const int NotSupported = 801;

    // Values from cuda.h (CUDA 12.x); the driver's own cuGetErrorName wins when it is loaded.
    private static readonly FrozenDictionary<int, string> Names = new Dictionary<int, string>
    {
        [0] = "CUDA_SUCCESS",
        [1] = "CUDA_ERROR_INVALID_VALUE",
        [2] = "CUDA_ERROR_OUT_OF_MEMORY",
        [3] = "CUDA_ERROR_NOT_INITIALIZED",
        [4] = "CUDA_ERROR_DEINITIALIZED",
        [5] = "CUDA_ERROR_PROFILER_DISABLED",
        [34] = "CUDA_ERROR_STUB_LIBRARY",
        [46] = "CUDA_ERROR_DEVICE_UNAVAILABLE",
        [100] = "CUDA_ERROR_NO_DEVICE",
        [101] = "CUDA_ERROR_INVALID_DEVICE",
        [102] = "CUDA_ERROR_DEVICE_NOT_LICENSED",
        [200] = "CUDA_ERROR_INVALID_IMAGE",
        [201] = "CUDA_ERROR_INVALID_CONTEXT",
        [202] = "CUDA_ERROR_CONTEXT_ALREADY_CURRENT",
        [205] = "CUDA_ERROR_MAP_FAILED",
        [209] = "CUDA_ERROR_NO_BINARY_FOR_GPU",
        [214] = "CUDA_ERROR_ECC_UNCORRECTABLE",
        [215] = "CUDA_ERROR_UNSUPPORTED_LIMIT",
        [216] = "CUDA_ERROR_CONTEXT_ALREADY_IN_USE",
        [217] = "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
        [218] = "CUDA_ERROR_INVALID_PTX",
        [222] = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        [300] = "CUDA_ERROR_INVALID_SOURCE",
        [301] = "CUDA_ERROR_FILE_NOT_FOUND",
        [400] = "CUDA_ERROR_INVALID_HANDLE",
        [401] = "CUDA_ERROR_ILLEGAL_STATE",
        [500] = "CUDA_ERROR_NOT_FOUND",
        [600] = "CUDA_ERROR_NOT_READY",
        [700] = "CUDA_ERROR_ILLEGAL_ADDRESS",
        [701] = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        [702] = "CUDA_ERROR_LAUNCH_TIMEOUT",
        [719] = "CUDA_ERROR_LAUNCH_FAILED",
        [800] = "CUDA_ERROR_NOT_PERMITTED",
        [801] = "CUDA_ERROR_NOT_SUPPORTED",
        [802] = "CUDA_ERROR_SYSTEM_NOT_READY",
        [803] = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        [804] = "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        [999] = "CUDA_ERROR_UNKNOWN",
    }.ToFrozenDictionary();

    /// <summary>
    /// The <c>CUDA_ERROR_*</c> name of <paramref name="code"/>, or <c>CUDA_ERROR_UNRECOGNIZED(code)</c> for a code
    /// this table does not know (a newer driver may define it).
    /// </summary>
    public static string GetName(int code) =>
        Names.TryGetValue(code, out var name) ? name : "CUDA_ERROR_UNRECOGNIZED(" + code.ToString(CultureInfo.InvariantCulture) + ")";

    /// <summary>Whether the table knows <paramref name="code"/>.</summary>
    public static bool IsKnown(int code) => Names.ContainsKey(code);
}
