using System.Globalization;
using System.Runtime.InteropServices;

namespace ZImage.Runtime.Interop;

/// <summary>An NVML call returned something other than <c>NVML_SUCCESS</c>.</summary>
internal sealed class NvmlException : Exception
{
    /// <summary>Creates the exception from the failing function, the <c>nvmlReturn_t</c> and its <c>nvmlErrorString</c>.</summary>
    public NvmlException(string function, int errorCode, string errorText)
        : base($"{function} failed with NVML error {errorCode.ToString(CultureInfo.InvariantCulture)}: {errorText}.")
    {
        Function = function;
        ErrorCode = errorCode;
        ErrorText = errorText;
    }

    /// <summary>The NVML entry point that failed.</summary>
    public string Function { get; }
    /// <summary>The <c>nvmlReturn_t</c> value.</summary>
    public int ErrorCode { get; }
    /// <summary>The <c>nvmlErrorString</c> text.</summary>
    public string ErrorText { get; }
}

/// <summary>A process holding memory on the device, as NVML reports it.</summary>
/// <param name="ProcessId">The operating-system process id.</param>
/// <param name="UsedBytes">Device bytes it uses, or <see langword="null"/> where NVML cannot tell (e.g. in containers/WDDM).</param>
public readonly record struct GpuProcessMemory(uint ProcessId, long? UsedBytes);

/// <summary>NVML's view of one device's memory: totals plus the compute processes using it.</summary>
/// <param name="TotalBytes">Total device memory.</param>
/// <param name="FreeBytes">Unallocated device memory.</param>
/// <param name="UsedBytes">Allocated device memory (all processes, plus driver reservations).</param>
/// <param name="Processes">Compute processes on the device.</param>
internal sealed record NvmlMemoryReport(long TotalBytes, long FreeBytes, long UsedBytes, IReadOnlyList<GpuProcessMemory> Processes)
{
    /// <summary>Bytes used by processes other than <paramref name="selfProcessId"/> (processes NVML cannot size count as 0).</summary>
    public long OtherProcessesBytes(int selfProcessId) =>
        Processes.Where(p => p.ProcessId != (uint)selfProcessId).Sum(p => p.UsedBytes ?? 0);
}

/// <summary>
/// Optional binding to NVML (<c>libnvidia-ml.so.1</c> / <c>nvml.dll</c>) for the memory that other processes use on
/// the device, which the CUDA driver does not report. Loaded like <see cref="CudaDriver"/>: a missing library is a
/// <see langword="null"/> from <see cref="TryLoad"/>, never an exception.
/// </summary>
internal sealed unsafe class NvmlLibrary
{
    private const int NvmlSuccess = 0;
    private const int NvmlErrorInsufficientSize = 7;

    // nvmlProcessInfo_t (v2/v3 layout): pid, usedGpuMemory, gpuInstanceId, computeInstanceId.
    [StructLayout(LayoutKind.Sequential)]
    private struct ProcessInfo
    {
        public uint Pid;
        public ulong UsedGpuMemory;
        public uint GpuInstanceId;
        public uint ComputeInstanceId;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Memory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    private readonly delegate* unmanaged<int> _init;
    private readonly delegate* unmanaged<int, byte*> _errorString;
    private readonly delegate* unmanaged<byte*, IntPtr*, int> _getHandleByPciBusId;
    private readonly delegate* unmanaged<uint, IntPtr*, int> _getHandleByIndex;
    private readonly delegate* unmanaged<IntPtr, Memory*, int> _getMemoryInfo;
    private readonly delegate* unmanaged<IntPtr, uint*, ProcessInfo*, int> _getComputeProcesses;
    private int _initialized;

    private NvmlLibrary(string name, IntPtr handle)
    {
        LibraryName = name;
        IntPtr Get(string n) => NativeLibrary.TryGetExport(handle, n, out IntPtr p) ? p : throw new EntryPointNotFoundException(n);
        _init = (delegate* unmanaged<int>)Get("nvmlInit_v2");
        _errorString = (delegate* unmanaged<int, byte*>)Get("nvmlErrorString");
        _getHandleByPciBusId = (delegate* unmanaged<byte*, IntPtr*, int>)Get("nvmlDeviceGetHandleByPciBusId_v2");
        _getHandleByIndex = (delegate* unmanaged<uint, IntPtr*, int>)Get("nvmlDeviceGetHandleByIndex_v2");
        _getMemoryInfo = (delegate* unmanaged<IntPtr, Memory*, int>)Get("nvmlDeviceGetMemoryInfo");
        _getComputeProcesses = (delegate* unmanaged<IntPtr, uint*, ProcessInfo*, int>)Get("nvmlDeviceGetComputeRunningProcesses_v3");
    }

    /// <summary>The library names tried by default.</summary>
    public static IReadOnlyList<string> DefaultLibraryNames { get; } =
        OperatingSystem.IsWindows() ? ["nvml.dll", "nvml"] : ["libnvidia-ml.so.1", "libnvidia-ml.so"];

    /// <summary>The library the exports came from.</summary>
    public string LibraryName { get; }

    /// <summary>
    /// Loads NVML from the first loadable name, or returns <see langword="null"/> with <paramref name="reason"/> when
    /// no candidate loads or the one that loads lacks an entry point (NVML older than R510).
    /// </summary>
    public static NvmlLibrary? TryLoad(out string reason, IEnumerable<string>? libraryNames = null)
    {
        var names = (libraryNames ?? DefaultLibraryNames).ToArray();
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out IntPtr handle))
                continue;
            try
            {
                reason = $"Loaded NVML from '{name}'.";
                return new NvmlLibrary(name, handle);
            }
            catch (EntryPointNotFoundException ex)
            {
                NativeLibrary.Free(handle);
                reason = $"'{name}' has no '{ex.Message}' entry point (NVML from driver R510 or newer is needed).";
                return null;
            }
        }

        reason = $"NVML was not found (tried {string.Join(", ", names)}).";
        return null;
    }

    /// <summary>
    /// Memory and compute processes of the device with PCI bus id <paramref name="pciBusId"/> (as ILGPU's
    /// <c>CudaDevice.NVMLPCIBusId</c> gives it) or, when that is null or empty, of NVML index <paramref name="index"/>.
    /// </summary>
    /// <exception cref="NvmlException">An NVML call failed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public NvmlMemoryReport GetMemoryReport(string? pciBusId, int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (Interlocked.Exchange(ref _initialized, 1) == 0)
            Check(_init(), "nvmlInit_v2");

        IntPtr device;
        if (!string.IsNullOrEmpty(pciBusId))
        {
            byte[] bus = System.Text.Encoding.ASCII.GetBytes(pciBusId + "\0");
            fixed (byte* b = bus)
                Check(_getHandleByPciBusId(b, &device), "nvmlDeviceGetHandleByPciBusId_v2");
        }
        else
        {
            Check(_getHandleByIndex((uint)index, &device), "nvmlDeviceGetHandleByIndex_v2");
        }

        Memory memory;
        Check(_getMemoryInfo(device, &memory), "nvmlDeviceGetMemoryInfo");

        // The process list can grow between the sizing call and the fetch; retry a few times with more room.
        uint count = 0;
        int result = _getComputeProcesses(device, &count, null);
        ProcessInfo[] infos = [];
        for (int attempt = 0; attempt < 4 && result == NvmlErrorInsufficientSize; attempt++)
        {
            infos = new ProcessInfo[count + 8];
            count = (uint)infos.Length;
            fixed (ProcessInfo* p = infos)
                result = _getComputeProcesses(device, &count, p);
        }

        Check(result, "nvmlDeviceGetComputeRunningProcesses_v3");
        var processes = infos.Take((int)Math.Min(count, (uint)infos.Length))
            .Select(p => new GpuProcessMemory(p.Pid, p.UsedGpuMemory == ulong.MaxValue ? null : (long)p.UsedGpuMemory))
            .ToArray();
        return new NvmlMemoryReport((long)memory.Total, (long)memory.Free, (long)memory.Used, processes);
    }

    private void Check(int result, string function)
    {
        if (result != NvmlSuccess)
            throw new NvmlException(function, result, Marshal.PtrToStringUTF8((IntPtr)_errorString(result)) ?? "unknown");
    }
}
