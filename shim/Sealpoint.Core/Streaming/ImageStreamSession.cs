using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Sealpoint.Core.Streaming;

/// <summary>Memory limits of a streaming session; see docs/streaming.md, "Memory bound".</summary>
public static class StreamingLimits
{
    /// <summary>
    /// Images open at the same time: a sanity limit (file descriptors), not the memory bound. CRIU keeps a few
    /// small images open per dumped task until the end of the dump, so this grows with the tree's size.
    /// </summary>
    public const int MaxOpenImages = 8192;

    /// <summary>Plaintext an image other than a page image may hold in memory before it is sealed (one chunk).</summary>
    public const int SmallImageBuffer = 64 * 1024;

    /// <summary>Bytes moved per read or write of a memory-page image's pipe (the pipe holds up to 1 MiB).</summary>
    public const int PagesBuffer = 256 * 1024;

    /// <summary>Bytes moved per read or write of any other image's pipe.</summary>
    public const int StreamBuffer = 64 * 1024;

    /// <summary>Kernel pipe buffer asked for each image pipe: fewer wake-ups (kernel memory, not the streamer's).</summary>
    public const int PipeSize = 1024 * 1024;
}

/// <summary>
/// One CRIU image-streaming session: a socket CRIU connects to once, a control thread reading its requests in
/// order, and one thread per open image moving that image's bytes, so images CRIU interleaves never wait on
/// each other. The first failure cancels everything (every blocked call wakes) and is kept for the caller.
/// </summary>
public abstract class ImageStreamSession : IDisposable
{
    private readonly UnixListener _listener;
    private readonly object _gate = new();
    private readonly List<Thread> _threads = [];
    private readonly ConcurrentBag<byte[]> _pagesBuffers = [];
    private readonly ConcurrentBag<byte[]> _streamBuffers = [];
    private Thread? _control;
    private Exception? _failure;
    private int _open;
    private volatile bool _disconnected;
    private OwnedFd? _connection;
    private bool _idle;

    protected ImageStreamSession(string socketPath) : this(new UnixListener(socketPath)) { }

    /// <summary>
    /// Serves a socket that is already listening: CRIU may have connected before this session existed (a streamed dump
    /// starts CRIU first); its connection waits in the backlog. The session owns the listener from here on.
    /// </summary>
    protected ImageStreamSession(UnixListener listener) => _listener = listener;

    protected PollCancellation Cancellation { get; } = new();

    public string SocketPath => _listener.Path;

    /// <summary>Called once, on the failing thread, before its pipe is closed (restore kills CRIU here).</summary>
    public Action<Exception>? OnFailure { get; init; }

    public int ImagesStreamed { get; private set; }
    public int MaxOpenAtOnce { get; private set; }
    public long BytesStreamed => Interlocked.Read(ref _bytes);
    private long _bytes;

    /// <summary>The first failure, or null.</summary>
    public Exception? Failure { get { lock (_gate) return _failure; } }

    /// <summary>True once CRIU closed the control connection (it does when it no longer opens images).</summary>
    public bool Disconnected => _disconnected;

    public void Start()
    {
        OnStart();
        _control = new Thread(ControlLoop, 256 * 1024) { IsBackground = true, Name = "criu-streamer-control" };
        _control.Start();
    }

    /// <summary>How long the control thread waits for CRIU's next message without sleeping (see <see cref="OwnedFd.SpinMicroseconds"/>).</summary>
    protected virtual int ControlSpinMicroseconds => 0;

    /// <summary>Starts a session's own threads before CRIU can connect.</summary>
    protected virtual void OnStart() { }

    /// <summary>Releases a session's own resources after every thread ended.</summary>
    protected virtual void OnDispose() { }

    /// <summary>Handles one request on the control thread (reply, receive the pipe, start the image's thread).</summary>
    protected abstract void HandleRequest(StreamerConnection connection, string filename);

    private void ControlLoop()
    {
        OwnedFd? socket = null;
        try
        {
            socket = _listener.Accept(Cancellation, -1);
            if (socket is null) return;
            socket.SpinMicroseconds = ControlSpinMicroseconds;
            var connection = new StreamerConnection(socket);
            lock (_gate) _connection = socket;
            while (true)
            {
                lock (_gate) _idle = true;
                socket.Wait(Posix.POLLIN, Cancellation, -1);
                // Bytes are waiting (or the end): from here until the request is handled the session is busy.
                lock (_gate) _idle = false;
                if (connection.ReadRequest(Cancellation) is not { } filename) break;
                HandleRequest(connection, filename);
            }
            _disconnected = true;
        }
        catch (StreamCancelledException) { }
        catch (Exception e) { Fail(e); }
        finally
        {
            lock (_gate) _connection = null;
            socket?.Dispose();
            // Nobody accepts from here on: a CRIU that connects now is refused, and one waiting in the backlog (the
            // session failed before it was accepted) is reset with the pipes it sent, rather than left writing into
            // pipes nobody reads, forever.
            _listener.Dispose();
        }
    }

    /// <summary>
    /// Moves one image on a thread of its own, or with <paramref name="onThisThread"/> right here (only for an image that
    /// cannot block: the control thread must stay free for CRIU's next request). The pipe is closed when it ends.
    /// </summary>
    protected void StartImage(string filename, OwnedFd pipe, Action<OwnedFd> body, bool onThisThread = false)
    {
        try { BeginImage(filename); }
        catch
        {
            pipe.Dispose();
            throw;
        }
        if (onThisThread) MoveImage(filename, pipe, body);
        else ContinueImage(filename, pipe, body);
    }

    /// <summary>Like <see cref="StartImage"/> for an image already counted open (handed over from another thread).</summary>
    protected void ContinueImage(string filename, OwnedFd pipe, Action<OwnedFd> body) =>
        StartThread($"criu-image {filename}", () => MoveImage(filename, pipe, body));

    private void MoveImage(string filename, OwnedFd pipe, Action<OwnedFd> body)
    {
        try { body(pipe); }
        catch (StreamCancelledException) { }
        catch (Exception e) { Fail(Describe(e, filename)); }
        finally
        {
            pipe.Dispose();
            EndImage();
        }
    }

    /// <summary>Counts an image as open (its pipe is being served); refuses beyond <see cref="StreamingLimits.MaxOpenImages"/>.</summary>
    protected void BeginImage(string filename)
    {
        lock (_gate)
        {
            if (_open >= StreamingLimits.MaxOpenImages)
                throw StreamerProtocol.Violation($"more than {StreamingLimits.MaxOpenImages} images are open at once (at '{filename}')");
            _open++;
            ImagesStreamed++;
            MaxOpenAtOnce = Math.Max(MaxOpenAtOnce, _open);
        }
    }

    /// <summary>An image's pipe reached its end (or failed) and was closed.</summary>
    protected void EndImage()
    {
        lock (_gate)
        {
            _open--;
            Monitor.PulseAll(_gate);
        }
        GarbageBudget.AfterWork();
    }

    /// <summary>A thread of this session: <see cref="Stop"/> waits for it.</summary>
    protected void StartThread(string name, Action body)
    {
        lock (_gate)
        {
            Thread? thread = null;
            thread = new Thread(() =>
            {
                try { body(); }
                finally { lock (_gate) _threads.Remove(thread!); }
            }, 256 * 1024) { IsBackground = true, Name = name };
            _threads.Add(thread);
            thread.Start();
        }
    }

    /// <summary>Turns an unexpected exception of one image into a failure that names the image.</summary>
    protected internal virtual Exception Describe(Exception e, string filename) => e switch
    {
        SealpointException => e,
        IOException io => new SealpointException(ErrorKind.Io, $"image '{filename}': {io.Message}", "check free space and the disk (dmesg)", io),
        UnauthorizedAccessException ua => new SealpointException(ErrorKind.Io, $"image '{filename}': {ua.Message}", "check permissions", ua),
        _ => new SealpointException(ErrorKind.Internal, $"image '{filename}': {e.GetType().Name}: {e.Message}", "report this with CRIU's log", e),
    };

    /// <summary>Records the first failure and cancels the session: every blocked read, write and accept wakes.</summary>
    public void Fail(Exception e)
    {
        bool first;
        lock (_gate)
        {
            first = _failure is null;
            _failure ??= e;
        }
        if (first) OnFailure?.Invoke(e);
        Cancellation.Cancel();
    }

    protected void AddBytes(long n) => Interlocked.Add(ref _bytes, n);

    /// <summary>Waits until no image is open; false on timeout.</summary>
    public bool WaitForOpenImages(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_gate)
        {
            while (_open > 0)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0) return false;
                Monitor.Wait(_gate, (int)Math.Min(left, 1000));
            }
            return true;
        }
    }

    public int OpenImages { get { lock (_gate) return _open; } }

    /// <summary>
    /// True when every request CRIU sent has been handled: the control thread waits for a new one and no byte
    /// is pending on the socket. Only conclusive once CRIU stopped sending (at post-dump).
    /// </summary>
    protected bool RequestsDrained()
    {
        if (_disconnected) return true;
        lock (_gate)
        {
            if (_connection is null || !_idle) return false;
            return !_connection.Wait(Posix.POLLIN, null, 0);
        }
    }

    /// <summary>Borrows a buffer for one image; plaintext passes through it, so it is wiped on return.</summary>
    protected byte[] RentBuffer(bool pages) =>
        (pages ? _pagesBuffers : _streamBuffers).TryTake(out var b) ? b
            : GC.AllocateUninitializedArray<byte>(pages ? StreamingLimits.PagesBuffer : StreamingLimits.StreamBuffer);

    protected void ReturnBuffer(byte[] buffer)
    {
        CryptographicOperations.ZeroMemory(buffer);
        (buffer.Length == StreamingLimits.PagesBuffer ? _pagesBuffers : _streamBuffers).Add(buffer);
    }

    /// <summary>Cancels everything and waits for every thread to end.</summary>
    public void Stop()
    {
        Cancellation.Cancel();
        _control?.Join();
        Thread[] left;
        lock (_gate) left = [.. _threads];
        foreach (var t in left) t.Join();
    }

    public void Dispose()
    {
        Stop();
        OnDispose();
        _listener.Dispose();
        Cancellation.Dispose();
        foreach (var b in _pagesBuffers.Concat(_streamBuffers)) CryptographicOperations.ZeroMemory(b);
        _pagesBuffers.Clear();
        _streamBuffers.Clear();
    }
}
