using ZImage.Runtime.Hosting;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Runs work items one at a time on a dedicated device thread (GPU contexts are thread-affine and a device runs one
/// generation at a time), in FIFO order, with a bounded waiting list. Waiting items learn their position whenever it
/// changes; cancelling a waiting item removes it at once; a full list either makes submitters wait (FIFO, cancellable)
/// or throws <see cref="PipelineBusyException"/>.
/// </summary>
internal sealed class SerialDeviceQueue : IDisposable
{
    private readonly object _gate = new();
    private readonly LinkedList<WorkItem> _pending = new();
    private readonly LinkedList<TaskCompletionSource> _slotWaiters = new();
    private readonly Thread _thread;
    private readonly int _capacity;
    private readonly QueueFullPolicy _policy;
    private int _reservedSlots; // slots handed to woken waiters that have not enqueued yet
    private bool _disposed;

    public SerialDeviceQueue(int capacity, QueueFullPolicy policy, string threadName = "ZImage device worker")
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
        _policy = policy;
        _thread = new Thread(Loop) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>Items waiting (not counting the running one).</summary>
    public int PendingCount { get { lock (_gate) return _pending.Count; } }

    /// <summary>Whether an item is running now.</summary>
    public bool IsBusy { get; private set; }

    /// <summary>Runs <paramref name="work"/> on the device thread once everything queued before it is done.</summary>
    /// <param name="work">The work; it receives a token that is cancelled when <paramref name="cancellationToken"/> is.</param>
    /// <param name="positionChanged">Called with 1..n while waiting (1 = next) and 0 when it starts.</param>
    /// <param name="cancellationToken">Cancels waiting for a slot, waiting in the queue, or the running work.</param>
    /// <exception cref="PipelineBusyException">The queue is full and the policy is <see cref="QueueFullPolicy.Reject"/>.</exception>
    public async Task<T> RunAsync<T>(Func<CancellationToken, T> work, Action<int>? positionChanged, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        cancellationToken.ThrowIfCancellationRequested();
        var item = new WorkItem<T>(work, positionChanged, cancellationToken);
        TaskCompletionSource? slot = null;
        int waitPosition = 0;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Newcomers never overtake submitters already waiting for a slot (FIFO across the whole line).
            if (_pending.Count + _reservedSlots < _capacity && _slotWaiters.Count == 0)
                EnqueueLocked(item);
            else if (_policy == QueueFullPolicy.Reject)
                throw new PipelineBusyException(_capacity);
            else
            {
                _slotWaiters.AddLast(slot = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                waitPosition = _pending.Count + _reservedSlots + _slotWaiters.Count;
            }
        }
        if (slot is not null)
        {
            item.ReportPosition(waitPosition);
            try
            {
                await slot.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (_gate)
                {
                    // Woken and cancelled at the same time: the reserved slot goes to the next waiter.
                    if (!_slotWaiters.Remove(slot))
                    {
                        _reservedSlots--;
                        WakeSlotWaiterLocked();
                    }
                }
                throw;
            }
            lock (_gate)
            {
                _reservedSlots--;
                ObjectDisposedException.ThrowIf(_disposed, this);
                EnqueueLocked(item);
            }
        }
        item.RegisterCancellation(this);
        return await item.Completion.Task.ConfigureAwait(false);
    }

    private void EnqueueLocked(WorkItem item)
    {
        item.Node = _pending.AddLast(item);
        Monitor.PulseAll(_gate);
        NotifyPositionsLocked();
    }

    private void Loop()
    {
        while (true)
        {
            WorkItem item;
            lock (_gate)
            {
                while (_pending.Count == 0 && !_disposed) Monitor.Wait(_gate);
                if (_disposed && _pending.Count == 0) return;
                item = _pending.First!.Value;
                _pending.RemoveFirst();
                item.Node = null;
                IsBusy = true;
                WakeSlotWaiterLocked();
                NotifyPositionsLocked();
            }
            try
            {
                item.Execute();
            }
            finally
            {
                IsBusy = false;
            }
        }
    }

    private void Cancel(WorkItem item)
    {
        lock (_gate)
        {
            if (item.Node is null) return; // already running or finished: the work sees the token itself
            _pending.Remove(item.Node);
            item.Node = null;
            WakeSlotWaiterLocked();
            NotifyPositionsLocked();
        }
        item.SetCanceled();
    }

    private void WakeSlotWaiterLocked()
    {
        if (_slotWaiters.First is { } first && _pending.Count + _reservedSlots < _capacity)
        {
            _slotWaiters.RemoveFirst();
            _reservedSlots++;
            first.Value.TrySetResult();
        }
    }

    private void NotifyPositionsLocked()
    {
        int pos = 1;
        foreach (var w in _pending) w.ReportPosition(pos++);
    }

    public void Dispose()
    {
        List<WorkItem> orphans;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            orphans = [.. _pending];
            _pending.Clear();
            foreach (var w in _slotWaiters) w.TrySetException(new ObjectDisposedException(nameof(SerialDeviceQueue)));
            _slotWaiters.Clear();
            Monitor.PulseAll(_gate);
        }
        foreach (var o in orphans) o.SetFailed(new ObjectDisposedException(nameof(SerialDeviceQueue), "The pipeline was disposed while the request was queued."));
        if (Thread.CurrentThread != _thread) _thread.Join();
    }

    private abstract class WorkItem
    {
        public LinkedListNode<WorkItem>? Node;
        private int _lastPosition = -1;
        protected readonly Action<int>? PositionChanged;
        protected readonly CancellationToken Token;
        private CancellationTokenRegistration _registration;

        protected WorkItem(Action<int>? positionChanged, CancellationToken token)
        {
            PositionChanged = positionChanged;
            Token = token;
        }

        public void RegisterCancellation(SerialDeviceQueue queue) =>
            _registration = Token.Register(static s => { var (q, i) = ((SerialDeviceQueue, WorkItem))s!; q.Cancel(i); }, (queue, this));

        public void ReportPosition(int position)
        {
            if (position == _lastPosition) return;
            _lastPosition = position;
            try { PositionChanged?.Invoke(position); }
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
