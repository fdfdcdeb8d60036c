using ZImage.Runtime.Interop;

namespace ZImage.Runtime.Tests.Interop;

public class CudaErrorNameTests
{
    [Theory]
    [InlineData(0, "CUDA_SUCCESS")]
    [InlineData(2, "CUDA_ERROR_OUT_OF_MEMORY")]
    [InlineData(3, "CUDA_ERROR_NOT_INITIALIZED")]
    [InlineData(34, "CUDA_ERROR_STUB_LIBRARY")]
    [InlineData(100, "CUDA_ERROR_NO_DEVICE")]
    [InlineData(201, "CUDA_ERROR_INVALID_CONTEXT")]
    [InlineData(801, "CUDA_ERROR_NOT_SUPPORTED")]
    [InlineData(999, "CUDA_ERROR_UNKNOWN")]
    public void KnownCodesMapToTheDriverSpelling(int code, string name)
    {
        Assert.Equal(name, CudaErrorNames.GetName(code));
        Assert.True(CudaErrorNames.IsKnown(code));
    }

    [Fact]
    public void UnknownCodeKeepsTheNumber()
    {
        Assert.Equal("CUDA_ERROR_UNRECOGNIZED(12345)", CudaErrorNames.GetName(12345));
        Assert.False(CudaErrorNames.IsKnown(12345));
    }

    [Fact]
    public void ExceptionCarriesFunctionCodeAndName()
    {
        var ex = new CudaException("cuMemAllocAsync", 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");

        Assert.Equal("cuMemAllocAsync failed with CUDA_ERROR_OUT_OF_MEMORY (2): out of memory.", ex.Message);
        Assert.True(ex.IsOutOfMemory);
        Assert.Equal("cuMemAllocAsync", ex.Function);
    }
}
