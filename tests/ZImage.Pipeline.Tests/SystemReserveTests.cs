using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Pipeline.Tests;

public class SystemReserveTests
{
    [Fact]
    public void ReserveIsDetectedAsTotalMinusFreeWhenThePipelineIsCreated()
    {
        var engine = new FakeEngine(deviceBytes: ByteSize.GiB) { DeviceFreeBytes = ByteSize.GiB - 300 * ByteSize.MiB };
        using var pipeline = TestPipelines.Create(engine, o => { o.Budget.Inference = "64MiB"; o.Budget.DeviceMemory = null; o.Budget.SystemReserve = null; });
        var plan = pipeline.Plan(TestPipelines.Small());
        Assert.Equal(300 * ByteSize.MiB, plan.SystemReserveBytes);
    }

    [Fact]
    public void ConfiguredReserveWinsOverDetection()
    {
        var engine = new FakeEngine(deviceBytes: ByteSize.GiB) { DeviceFreeBytes = ByteSize.GiB - 300 * ByteSize.MiB };
        using var pipeline = TestPipelines.Create(engine, o => { o.Budget.Inference = "64MiB"; o.Budget.SystemReserve = "100MiB"; });
        Assert.Equal(100 * ByteSize.MiB, pipeline.Plan(TestPipelines.Small()).SystemReserveBytes);
    }

    [Fact]
    public void PlansForAnotherDeviceAssumeTheDocumentedDefaultReserve()
    {
        var engine = new FakeEngine(deviceBytes: ByteSize.GiB) { DeviceFreeBytes = ByteSize.GiB - 300 * ByteSize.MiB };
        using var pipeline = TestPipelines.Create(engine, o => { o.Budget.Inference = "64MiB"; o.Budget.DeviceMemory = "24GiB"; o.Budget.SystemReserve = null; });
        var plan = pipeline.Plan(TestPipelines.Small());
        Assert.Equal(ByteSize.Parse(MemoryBudgetOptions.DefaultPlanningSystemReserve), plan.SystemReserveBytes);
        Assert.Equal(24 * ByteSize.GiB, plan.DeviceBytes);
    }

    [Fact]
    public void StreamOrderedPoolWithoutCudaFailsTheStartWithTheDriversReason()
    {
        var error = Assert.Throws<StreamOrderedPoolNotSupportedException>(() =>
            ZImageEngine.Open(null, new ZImageEngineOptions { ForceCpu = true, UseStreamOrderedPool = true }));
        Assert.False(string.IsNullOrWhiteSpace(error.Reason));
    }

    [Fact]
    public void UnknownMemoryBackendIsRejectedByValidation()
    {
        var options = TestPipelines.Options(o => o.MemoryBackend = (DeviceMemoryBackendKind)42);
        var result = new ZImageOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains("MemoryBackend = 42", result.FailureMessage);
    }
}
