using ZImage.Runtime.Hosting;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Runs work items one at a time on a dedicated device thread (GPU contexts are thread-affine and a device runs one
/// generation at a time), in FIFO order, with a bounded waiting list. Waiting items learn their position whenever it
/// changes; cancelling a waiting item removes it at once; when the list is full a submission either waits in an
/// overflow line (FIFO, cancellable, moved into the list by the worker as slots free) or throws
/// <see cref="PipelineBusyException"/>.
/// </summary>
internal sealed class SerialDeviceQueue : IDisposable
{
    private readonly object _gate = new();
    private readonly LinkedList<WorkItem> _pending = new();
    private readonly LinkedList<WorkItem> _overflow = new();
    private readonly Thread _thread;
    private readonly int _capacity;
    private readonly QueueFullPolicy _policy;
    private bool _disposed;

    public SerialDeviceQueue(int capacity, QueueFullPolicy policy, string threadName = "ZImage device worker")
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
        _policy = policy;
        _thread = new Thread(Loop) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>Items waiting (queue plus overflow line), not counting the running one.</summary>
    public int PendingCount { get { lock (_gate) return _pending.Count + _overflow.Count; } }

    /// <summary>Runs <paramref name="work"/> on the device thread once everything submitted before it is done.</summary>
    /// <param name="work">The work; it receives <paramref name="cancellationToken"/>.</param>
    /// <param name="positionChanged">Called with 1..n while waiting (1 = next) and 0 when it starts.</param>
    /// <param name="cancellationToken">Cancels waiting or the running work.</param>
    /// <exception cref="PipelineBusyException">The queue is full and the policy is <see cref="QueueFullPolicy.Reject"/>.</exception>
    public Task<T> RunAsync<T>(Func<CancellationToken, T> work, Action<int>? positionChanged, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<T>(cancellationToken);
        var item = new WorkItem<T>(work, positionChanged, cancellationToken);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Newcomers never overtake submitters already waiting in the overflow line.
            if (_pending.Count < _capacity && _overflow.Count == 0)
            {
                item.Node = _pending.AddLast(item);
                Monitor.PulseAll(_gate);
            }
            else if (_policy == QueueFullPolicy.Reject)
                return Task.FromException<T>(new PipelineBusyException(_capacity));
            else
                item.Node = _overflow.AddLast(item);
            NotifyPositionsLocked();
        }
        item.RegisterCancellation(this);
        return item.Completion.Task;
    }

    private void Loop()
    {
        while (true)
        {
            WorkItem item;
            lock (_gate)
            {
                while (_pending.Count == 0 && !_disposed) Monitor.Wait(_gate);
                if (_disposed) return;
                item = _pending.First!.Value;
                _pending.RemoveFirst();
                item.Node = null;
                PromoteOverflowLocked();
                NotifyPositionsLocked();
            }
            item.Execute();
        }
    }

    private void Cancel(WorkItem item)
    {
        lock (_gate)
        {
            if (item.Node?.List is not { } list) return; // running or finished: the work sees the token itself
            list.Remove(item.Node);
            item.Node = null;
            PromoteOverflowLocked();
            NotifyPositionsLocked();
        }
        item.SetCanceled();
    }

    private void PromoteOverflowLocked()
    {
        while (_pending.Count < _capacity && _overflow.First is { } first)
        {
            _overflow.RemoveFirst();
            first.Value.Node = _pending.AddLast(first.Value);
        }
    }

    private void NotifyPositionsLocked()
    {
        int pos = 1;
        foreach (var w in _pending) w.ReportPosition(pos++);
        foreach (var w in _overflow) w.ReportPosition(pos++);
    }

    public void Dispose()
    {
        List<WorkItem> orphans;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            orphans = [.. _pending, .. _overflow];
            _pending.Clear();
            _overflow.Clear();
            Monitor.PulseAll(_gate);
        }
        foreach (var o in orphans) o.SetFailed(new ObjectDisposedException(nameof(SerialDeviceQueue), "The pipeline was disposed while the request was queued."));
        if (Thread.CurrentThread != _thread) _thread.Join();
    }

    private abstract class WorkItem(Action<int>? positionChanged, CancellationToken token)
    {
        public LinkedListNode<WorkItem>? Node;
        private int _lastPosition = -1;
        protected CancellationToken Token { get; } = token;
        private CancellationTokenRegistration _registration;

        public void RegisterCancellation(SerialDeviceQueue queue) =>
            _registration = Token.Register(static s => { var (q, i) = ((SerialDeviceQueue, WorkItem))s!; q.Cancel(i); }, (queue, this));

        public void ReportPosition(int position)
        {
            if (position == _lastPosition) return;
            _lastPosition = position;
            try { positionChanged?.Invoke(position); }
            catch (Exception) { /* a throwing progress handler must not break the queue */ }
        }

        public void Execute()
        {
            _registration.Dispose();
            if (Token.IsCancellationRequested) { SetCanceled(); return; }
            ReportPosition(0);
            ExecuteCore();
        }

        protected abstract void ExecuteCore();
        public abstract void SetCanceled();
        public abstract void SetFailed(Exception e);
    }

    private sealed class WorkItem<T>(Func<CancellationToken, T> work, Action<int>? positionChanged, CancellationToken token)
        : WorkItem(positionChanged, token)
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override void ExecuteCore()
        {
            try { Completion.TrySetResult(work(Token)); }
            catch (OperationCanceledException e) when (Token.IsCancellationRequested) { Completion.TrySetCanceled(e.CancellationToken); }
            catch (Exception e) { Completion.TrySetException(e); }
        }

        public override void SetCanceled() => Completion.TrySetCanceled(Token);
        public override void SetFailed(Exception e) => Completion.TrySetException(e);
    }
}
