using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

public class DeviceQueueTests
{
    [Fact]
    public async Task RequestsSubmittedFromManyThreadsStartOnTheDeviceInTheOrderTheyWereQueued()
    {
        // The device is held by one request; 16 threads then submit 4 requests each (capacity 8, so most wait in the
        // overflow line). Each request's first queue position is reported under the queue's lock at the moment it is
        // queued, so it is its exact place in line; the engine records the order the device thread starts them in.
        var fake = new FakeEngine();
        var engine = new StartOrderRecordingEngine(fake);
        using var pipeline = new ImagePipeline(engine, TestPipelines.Options(o => { o.Queue.Capacity = 8; o.Queue.FullPolicy = QueueFullPolicy.Wait; }));
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        var gate = new StageGate("text-encoder");
        fake.Gate = gate;
        var first = pipeline.GenerateAsync(TestPipelines.Small("held"));
        await gate.Entered.Task;
        fake.Gate = null;

        const int threads = 16, perThread = 4;
        var queuedAt = new Dictionary<string, int>();
        var tasks = new List<Task<GenerationResult>>();
        using var go = new ManualResetEventSlim(false);
        var submitters = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            go.Wait();
            for (int k = 0; k < perThread; k++)
            {
                string prompt = $"t{t}-r{k}";
                var progress = new RecordingProgress
                {
                    OnReport = r => { if (r.Stage == GenerationStage.Queued) lock (queuedAt) queuedAt.TryAdd(prompt, r.QueuePosition); },
                };
                var task = pipeline.GenerateAsync(TestPipelines.Small(prompt), progress);
                lock (tasks) tasks.Add(task);
            }
        })).ToList();
        submitters.ForEach(t => t.Start());
        go.Set();
        submitters.ForEach(t => t.Join());
        gate.Release.Set();
        await first;
        await Task.WhenAll(tasks);

        var queueOrder = queuedAt.OrderBy(kv => kv.Value).Select(kv => kv.Key).ToList();
        Assert.Equal(threads * perThread, queueOrder.Count);
        Assert.Equal(Enumerable.Range(1, threads * perThread), queuedAt.Values.Order()); // each place in line taken once
        Assert.Equal(["held", .. queueOrder], engine.StartOrder);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
    }

    [Fact]
    public async Task FiftyConcurrentRequestsCompleteInOrderOrAreRefusedBusy()
    {
        var fake = new FakeEngine();
        var engine = new StartOrderRecordingEngine(fake);
        using var pipeline = new ImagePipeline(engine, TestPipelines.Options(o => { o.Queue.Capacity = 8; o.Queue.FullPolicy = QueueFullPolicy.Reject; }));
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        var gate = new StageGate("text-encoder");
        fake.Gate = gate;

        var order = new List<long>();
        var first = pipeline.GenerateAsync(TestPipelines.Small("p0", seed: 0));
        await gate.Entered.Task; // the device is busy with request 0; the rest queue behind it
        fake.Gate = null;
        var tasks = Enumerable.Range(1, 49).Select(i => pipeline.GenerateAsync(TestPipelines.Small($"p{i}", seed: i))).ToList();
        gate.Release.Set();
        var all = new List<Task<GenerationResult>> { first };
        all.AddRange(tasks);
        int completed = 0, busy = 0;
        foreach (var t in all)
        {
            try { order.Add((await t).Seed); completed++; }
            catch (PipelineBusyException e) { busy++; Assert.Equal(8, e.Capacity); }
        }
        Assert.Equal(50, completed + busy);
        Assert.Equal(9, completed); // the running one plus a full queue of 8
        Assert.Equal(order.OrderBy(s => s), order);
        // The device ran the admitted ones in submission order (the running one, then the first 8 queued).
        Assert.Equal(Enumerable.Range(0, 9).Select(i => $"p{i}"), engine.StartOrder);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
    }

    [Fact]
    public async Task WaitPolicyRunsAllFiftyInSubmissionOrder()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine, o => { o.Queue.Capacity = 4; o.Queue.FullPolicy = QueueFullPolicy.Wait; });
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        var started = new List<long>();
        var tasks = new List<Task<GenerationResult>>();
        for (int i = 0; i < 50; i++)
        {
            long seed = i;
            var progress = new RecordingProgress { OnReport = p => { if (p.Stage == GenerationStage.EncodingPrompt) lock (started) started.Add(seed); } };
            tasks.Add(pipeline.GenerateAsync(TestPipelines.Small(seed: i), progress));
        }
        var results = await Task.WhenAll(tasks);
        Assert.Equal(50, results.Length);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), started);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
    }

    [Fact]
    public async Task QueuedRequestsReportTheirPosition()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine);
        var (running, gate) = await TestPipelines.StartWithOneBlockedAsync(pipeline, engine);
        var p2 = new RecordingProgress();
        var p3 = new RecordingProgress();
        var second = pipeline.GenerateAsync(TestPipelines.Small(seed: 2), p2);
        var third = pipeline.GenerateAsync(TestPipelines.Small(seed: 3), p3);
        gate.Release.Set();
        await Task.WhenAll(running, second, third);
        Assert.Equal([1, 0], p2.Reports.Where(r => r.Stage == GenerationStage.Queued).Select(r => r.QueuePosition));
        Assert.Equal([2, 1, 0], p3.Reports.Where(r => r.Stage == GenerationStage.Queued).Select(r => r.QueuePosition));
    }

    [Fact]
    public async Task ProgressReportsEveryStepAndStage()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine, o => o.EnablePreviews = true);
        var progress = new RecordingProgress();
        await pipeline.GenerateAsync(TestPipelines.Small() with { Steps = 3 }, progress);
        var steps = progress.Reports.Where(r => r.Stage == GenerationStage.Denoising && r.Preview is not null).Select(r => r.Step);
        Assert.Equal([1, 2, 3], steps);
        Assert.All(progress.Reports.Where(r => r.Stage == GenerationStage.Denoising), r => Assert.Equal(3, r.TotalSteps));
        Assert.Equal(GenerationStage.Completed, progress.Reports[^1].Stage);
        Assert.Contains(progress.Reports, r => r.Stage == GenerationStage.EncodingPrompt);
        Assert.Contains(progress.Reports, r => r.Stage == GenerationStage.Decoding);
        Assert.True(progress.Reports.Zip(progress.Reports.Skip(1)).All(x => x.First.Elapsed <= x.Second.Elapsed));
    }

    [Fact]
    public async Task ModelIsLoadedOnceAtStart()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine);
        await Task.WhenAll(pipeline.StartAsync(), pipeline.StartAsync(), pipeline.GenerateAsync(TestPipelines.Small()));
        Assert.Equal(1, engine.LoadCount);
        Assert.True(pipeline.IsStarted);
    }
}
