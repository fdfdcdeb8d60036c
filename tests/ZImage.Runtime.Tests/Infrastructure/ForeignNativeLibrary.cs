using System.Runtime.InteropServices;

namespace ZImage.Runtime.Tests.Infrastructure;

/// <summary>A native library that surely exists and is not a CUDA driver: the runtime's own JIT.</summary>
internal static class ForeignNativeLibrary
{
    public static string Path { get; } = System.IO.Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(),
        OperatingSystem.IsWindows() ? "clrjit.dll" : OperatingSystem.IsMacOS() ? "libclrjit.dylib" : "libclrjit.so");
}
