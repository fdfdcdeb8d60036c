using System.Runtime.InteropServices;
using ZImage.Runtime.Interop;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Interop;

/// <summary>The driver binding over fake entry points: result checking, error names, validation before any call.</summary>
public class CudaDriverTests
{
    private static CudaDriver Fake(bool withPools = true)
    {
        FakeCudaExports.NextResult = 0;
        return new CudaDriver("fake-cuda", name => FakeCudaExports.Lookup(name, withPools));
    }

    [Fact]
    public void SuccessfulCallsReturnTheDriverValues()
    {
        var driver = Fake();

        driver.Init();

        Assert.Equal(12040, driver.GetDriverVersion());
        Assert.Equal("Fake GPU", driver.GetDeviceName(0));
        Assert.Equal(24L << 30, driver.GetDeviceTotalMemory(0));
        Assert.Equal(115, driver.GetDeviceAttribute(CudaDeviceAttribute.MemoryPoolsSupported, 0));
        var info = driver.GetMemoryInfo();
        Assert.Equal((24L << 30, 20L << 30), (info.TotalBytes, info.FreeBytes));
        Assert.True(driver.HasStreamOrderedAllocator);
    }

    [Fact]
    public void FailedCallThrowsWithTheDriversErrorName()
    {
        var driver = Fake();
        FakeCudaExports.NextResult = CudaErrorNames.NoDevice;

        var ex = Assert.Throws<CudaException>(driver.Init);

        Assert.Equal("cuInit", ex.Function);
        Assert.Equal(100, ex.ErrorCode);
        Assert.Equal("FAKE_CUDA_ERROR_NO_DEVICE", ex.ErrorName);
        Assert.Equal("fake description", ex.Description);
    }

    [Fact]
    public void CodeTheDriverCannotNameFallsBackToTheTable()
    {
        var driver = Fake();
        FakeCudaExports.NextResult = 4242;

        var ex = Assert.Throws<CudaException>(() => driver.GetMemoryInfo());

        Assert.Equal("CUDA_ERROR_UNRECOGNIZED(4242)", ex.ErrorName);
        Assert.Equal("cuMemGetInfo_v2", ex.Function);
    }

    [Fact]
    public void OutOfMemoryFromAllocAsyncIsFalseNotAnException()
    {
        var driver = Fake();
        FakeCudaExports.NextResult = CudaErrorNames.OutOfMemory;

        Assert.False(driver.TryAllocateAsync(1024, IntPtr.Zero, out ulong ptr));
        Assert.Equal(0UL, ptr);

        FakeCudaExports.NextResult = CudaErrorNames.InvalidContext;
        Assert.Equal(201, Assert.Throws<CudaException>(() => driver.TryAllocateAsync(1024, IntPtr.Zero, out _)).ErrorCode);

        FakeCudaExports.NextResult = 0;
        Assert.True(driver.TryAllocateAsync(1024, IntPtr.Zero, out ptr));
        Assert.Equal(0xD000UL, ptr);
    }

    [Fact]
    public void BadArgumentsAreRejectedBeforeAnyDriverCall()
    {
        var driver = Fake();
        int before = FakeCudaExports.Calls;

        Assert.Equal("ordinal", Assert.Throws<ArgumentOutOfRangeException>(() => driver.GetDevice(-1)).ParamName);
        Assert.Equal("bytes", Assert.Throws<ArgumentOutOfRangeException>(() => driver.TryAllocateAsync(0, IntPtr.Zero, out _)).ParamName);
        Assert.Equal("devicePointer", Assert.Throws<ArgumentOutOfRangeException>(() => driver.FreeAsync(0, IntPtr.Zero)).ParamName);
        Assert.Equal("minBytesToKeep", Assert.Throws<ArgumentOutOfRangeException>(() => driver.TrimMemPool(0x5678, -1)).ParamName);
        Assert.Equal("pool", Assert.Throws<ArgumentException>(() => driver.TrimMemPool(IntPtr.Zero, 0)).ParamName);
        Assert.Equal("attribute", Assert.Throws<ArgumentOutOfRangeException>(() => driver.SetMemPoolAttribute(0x5678, CudaMemPoolAttribute.UsedMemCurrent, 0)).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => driver.SetMemPoolAttribute(0x5678, CudaMemPoolAttribute.UsedMemHigh, 5)).ParamName);
        Assert.Equal("attribute", Assert.Throws<ArgumentOutOfRangeException>(() => driver.GetMemPoolAttribute(0x5678, (CudaMemPoolAttribute)99)).ParamName);

        Assert.Equal(before, FakeCudaExports.Calls);
    }

    [Fact]
    public void PoolAttributesPassSixtyFourBitValues()
    {
        var driver = Fake();
        IntPtr pool = driver.GetDefaultMemPool(0);

        driver.SetMemPoolAttribute(pool, CudaMemPoolAttribute.ReleaseThreshold, ulong.MaxValue);

        Assert.Equal(ulong.MaxValue, FakeCudaExports.LastPoolValue);
        Assert.Equal(7000UL, driver.GetMemPoolAttribute(pool, CudaMemPoolAttribute.UsedMemCurrent));
    }

    [Fact]
    public void DriverWithoutPoolsSaysWhatIsMissing()
    {
        var driver = Fake(withPools: false);

        Assert.False(driver.HasStreamOrderedAllocator);
        Assert.Contains("cuMemAllocAsync", driver.MissingPoolExports);
        var ex = Assert.Throws<NotSupportedException>(() => driver.GetDefaultMemPool(0));
        Assert.Contains("CUDA 11.2", ex.Message);
    }

    [Fact]
    public void MissingRequiredExportNamesIt()
    {
        var ex = Assert.Throws<EntryPointNotFoundException>(() => new CudaDriver("partial", n => n == "cuMemGetInfo_v2" ? IntPtr.Zero : FakeCudaExports.Lookup(n)));
        Assert.Contains("cuMemGetInfo_v2", ex.Message);
    }
}

/// <summary>Loading the real library: absent here, so the result must say so instead of throwing.</summary>
public class CudaDriverLoadTests
{
    [Fact]
    public void MissingLibraryIsAReportedState()
    {
        var result = CudaDriver.TryLoad(["libcuda-zimage-test-absent.so.1"]);

        Assert.Equal(CudaDriverLoadStatus.LibraryMissing, result.Status);
        Assert.Null(result.Driver);
        Assert.Contains("libcuda-zimage-test-absent.so.1", result.Reason);
    }

    [Fact]
    public void DefaultLoadMatchesWhetherTheDriverIsInstalled()
    {
        bool installed = CudaDriver.DefaultLibraryNames.Any(n =>
        {
            if (!NativeLibrary.TryLoad(n, out IntPtr h))
                return false;
            NativeLibrary.Free(h);
            return true;
        });

        var result = CudaDriver.TryLoad();

        // On this CI machine there is no NVIDIA driver, so this asserts LibraryMissing; on a GPU box it asserts a load.
        Assert.Equal(installed, result.Status != CudaDriverLoadStatus.LibraryMissing);
        if (!installed)
            Assert.Contains(CudaDriver.DefaultLibraryNames[0], result.Reason);
    }

    [Fact]
    public void ForeignLibraryIsReportedAsMissingEntryPoint()
    {
        var result = CudaDriver.TryLoad([ForeignNativeLibrary.Path]);

        Assert.Equal(CudaDriverLoadStatus.EntryPointMissing, result.Status);
        Assert.Contains("cuInit", result.Reason);
    }

    [Fact]
    public void EmptyNameListIsRejected() =>
        Assert.Equal("libraryNames", Assert.Throws<ArgumentException>(() => CudaDriver.TryLoad([])).ParamName);

    [Fact]
    public void MissingNvmlIsNullWithAReason()
    {
        var nvml = NvmlLibrary.TryLoad(out string reason, ["libnvidia-ml-zimage-test-absent.so.1"]);

        Assert.Null(nvml);
        Assert.Contains("libnvidia-ml-zimage-test-absent.so.1", reason);
    }
}
