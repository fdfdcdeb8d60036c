using System.Globalization;

namespace ZImage.Runtime.Interop;

/// <summary>
/// A CUDA driver call returned something other than <c>CUDA_SUCCESS</c>. Carries the driver function, the numeric
/// <c>CUresult</c> and its <c>cuGetErrorName</c> spelling (e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>).
/// </summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception; the message is composed from the parts.</summary>
    /// <param name="function">The driver entry point that failed, e.g. <c>cuMemAllocAsync</c>.</param>
    /// <param name="errorCode">The <c>CUresult</c> value.</param>
    /// <param name="errorName">The <c>cuGetErrorName</c> text.</param>
    /// <param name="description">The <c>cuGetErrorString</c> text, if known.</param>
    public CudaException(string function, int errorCode, string errorName, string? description = null)
        : base(Compose(function, errorCode, errorName, description))
    {
        Function = function;
        ErrorCode = errorCode;
        ErrorName = errorName;
        Description = description;
    }

    /// <summary>The driver entry point that failed.</summary>
    public string Function { get; }

    /// <summary>The numeric <c>CUresult</c>.</summary>
    public int ErrorCode { get; }

    /// <summary>The <c>cuGetErrorName</c> spelling, e.g. <c>CUDA_ERROR_NO_DEVICE</c>.</summary>
    public string ErrorName { get; }

    /// <summary>The <c>cuGetErrorString</c> description, when the driver gave one.</summary>
    public string? Description { get; }

    /// <summary>Whether the error is <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public bool IsOutOfMemory => ErrorCode == CudaErrorNames.OutOfMemory;

    private static string Compose(string function, int code, string name, string? description) =>
        string.IsNullOrEmpty(description)
            ? $"{function} failed with {name} ({code.ToString(CultureInfo.InvariantCulture)})."
            : $"{function} failed with {name} ({code.ToString(CultureInfo.InvariantCulture)}): {description}.";
}
