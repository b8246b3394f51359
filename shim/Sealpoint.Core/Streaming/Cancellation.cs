namespace Sealpoint.Core.Streaming;

/// <summary>
/// A cancellation that blocking poll(2) calls can wait on: an eventfd that becomes readable once.
/// Threads blocked on a pipe or socket include it in their poll set, so an abort wakes them at once.
/// </summary>
public sealed class PollCancellation : IDisposable
{
    private int _fd;
    private volatile bool _cancelled;

    public PollCancellation()
    {
        _fd = Posix.EventFd(0, Posix.EFD_CLOEXEC | Posix.EFD_NONBLOCK);
        if (_fd < 0) throw new SealpointException(ErrorKind.Io, $"eventfd failed: {Posix.ErrorText(Posix.Errno)}", "check the open-file limit (ulimit -n)");
    }

    internal int Fd => _fd;
    public bool IsCancelled => _cancelled;

    public unsafe void Cancel()
    {
        if (_cancelled) return;
        _cancelled = true;
        ulong one = 1;
        Posix.Write(_fd, (byte*)&one, 8);
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Posix.Close(fd);
    }
}

/// <summary>Raised in a streaming thread when its session was cancelled: the reason is recorded elsewhere.</summary>
public sealed class StreamCancelledException() : Exception("image streaming was cancelled");
