using System.Diagnostics;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// One owned file descriptor (a pipe end, a socket) with the blocking I/O the streamer needs. Every wait is a
/// poll(2) that also watches a <see cref="PollCancellation"/> and, where given, a timeout, so no thread can
/// hang on a peer that vanished.
/// </summary>
public sealed unsafe class OwnedFd : IDisposable
{
    private int _fd;

    public OwnedFd(int fd) => _fd = fd;

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(OwnedFd));
    public bool IsClosed => _fd < 0;

    /// <summary>A new pipe, both ends close-on-exec: (read end, write end).</summary>
    public static (OwnedFd Read, OwnedFd Write) CreatePipe()
    {
        int* fds = stackalloc int[2];
        if (Posix.Pipe2(fds, Posix.O_CLOEXEC) != 0)
            throw new SealpointException(ErrorKind.Io, $"pipe2 failed: {Posix.ErrorText(Posix.Errno)}", "check the open-file limit (ulimit -n)");
        return (new OwnedFd(fds[0]), new OwnedFd(fds[1]));
    }

    /// <summary>A connected pair of Unix stream sockets (for tests and in-process use).</summary>
    public static (OwnedFd A, OwnedFd B) CreateSocketPair()
    {
        int* fds = stackalloc int[2];
        if (Posix.SocketPair(Posix.AF_UNIX, Posix.SOCK_STREAM | Posix.SOCK_CLOEXEC, 0, fds) != 0)
            throw new SealpointException(ErrorKind.Io, $"socketpair failed: {Posix.ErrorText(Posix.Errno)}", "check the open-file limit (ulimit -n)");
        return (new OwnedFd(fds[0]), new OwnedFd(fds[1]));
    }

    /// <summary>Asks the kernel for a larger pipe buffer: fewer wake-ups per MiB moved. Best effort.</summary>
    public void TryGrowPipe(int bytes) => Posix.Fcntl(Fd, Posix.F_SETPIPE_SZ, bytes);

    /// <summary>The pipe's buffer size in bytes (0 if this is not a pipe).</summary>
    public int PipeCapacity => Math.Max(0, Posix.Fcntl(Fd, Posix.F_GETPIPE_SZ, 0));

    /// <summary>
    /// How long <see cref="Wait"/> looks without sleeping before it sleeps in poll(2). For a conversation of many short
    /// turns with another process: an idle core woken from its sleep costs tens of microseconds on a virtual machine.
    /// </summary>
    public int SpinMicroseconds { get; set; }

    /// <summary>Waits until the descriptor is ready for <paramref name="events"/>; false on timeout.</summary>
    public bool Wait(short events, PollCancellation? cancel, int timeoutMs)
    {
        Posix.PollFd* set = stackalloc Posix.PollFd[2];
        set[0] = new Posix.PollFd { Fd = Fd, Events = events };
        set[1] = new Posix.PollFd { Fd = cancel?.Fd ?? -1, Events = Posix.POLLIN };
        if (SpinMicroseconds > 0 && timeoutMs != 0)
        {
            // Readiness and cancellation are both seen by the poll below, which returns at once if either came meanwhile.
            long until = Stopwatch.GetTimestamp() + SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
            while (Posix.Poll(set, 2, 0) == 0 && Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
        }
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            if (cancel is { IsCancelled: true }) throw new StreamCancelledException();
            int wait = timeoutMs < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            int n = Posix.Poll(set, 2, wait);
            if (n < 0)
            {
                int errno = Posix.Errno;
                if (errno == Posix.EINTR) continue;
                throw new SealpointException(ErrorKind.Io, $"poll failed: {Posix.ErrorText(errno)}");
            }
            if (set[1].Revents != 0) throw new StreamCancelledException();
            if (n == 0) return false;
            // Errors and hang-ups count as ready: the following read or write reports them.
            if (set[0].Revents != 0) return true;
        }
    }

    /// <summary>
    /// Reads what is available (at least one byte), or 0 at end of file. A failure's fix is <paramref name="fix"/>, by
    /// default CRIU's log (the streams this reads are mostly CRIU's).
    /// </summary>
    public int ReadSome(Span<byte> buffer, PollCancellation? cancel, int timeoutMs, string what, string? fix = null)
    {
        while (true)
        {
            if (!Wait(Posix.POLLIN, cancel, timeoutMs))
                throw new SealpointException(ErrorKind.External, $"timed out after {timeoutMs / 1000.0:0.#} s waiting for {what}",
                    fix ?? "CRIU stopped sending; see CRIU's log in the work directory");
            nint n;
            fixed (byte* p = buffer) n = Posix.Read(Fd, p, (nuint)buffer.Length);
            if (n >= 0) return (int)n;
            int errno = Posix.Errno;
            if (errno is Posix.EINTR or Posix.EAGAIN) continue;
            throw new SealpointException(ErrorKind.Io, $"reading {what} failed: {Posix.ErrorText(errno)}", fix ?? "see CRIU's log in the work directory");
        }
    }

    /// <summary>Fills <paramref name="buffer"/> completely; returns the bytes read, fewer only at end of file.</summary>
    public int ReadFull(Span<byte> buffer, PollCancellation? cancel, int timeoutMs, string what)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = ReadSome(buffer[total..], cancel, timeoutMs, what);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>
    /// Hands the pipe references to (not copies of) the pages of <paramref name="data"/> (vmsplice(2)), waiting while
    /// the pipe is full; returns the bytes handed over. The memory must stay pinned and unchanged until the reader has
    /// consumed them (see <see cref="PipeUnread"/>). Throws <see cref="PeerClosedException"/> when the reader is gone.
    /// </summary>
    public int SpliceSome(byte* data, int length, PollCancellation? cancel, string what)
    {
        var iov = new Posix.IoVec { Base = data, Length = (nuint)length };
        while (true)
        {
            Wait(Posix.POLLOUT, cancel, -1);
            nint n = Posix.VmSplice(Fd, &iov, 1, Posix.SPLICE_F_NONBLOCK);
            if (n > 0) return (int)n;
            int errno = n == 0 ? Posix.EAGAIN : Posix.Errno;
            if (errno is Posix.EINTR or Posix.EAGAIN) continue;
            if (errno is Posix.EPIPE) throw new PeerClosedException(what);
            throw new SealpointException(ErrorKind.Io, $"vmsplice into {what} failed: {Posix.ErrorText(errno)}", "see CRIU's log in the work directory");
        }
    }

    /// <summary>Bytes written into this pipe that its reader has not read yet (FIONREAD).</summary>
    public int PipeUnread
    {
        get
        {
            int unread = 0;
            if (Posix.Ioctl(Fd, Posix.FIONREAD, &unread) != 0)
                throw new SealpointException(ErrorKind.Io, $"FIONREAD on a pipe failed: {Posix.ErrorText(Posix.Errno)}");
            return unread;
        }
    }

    /// <summary>True once the pipe's reader has closed its end (poll reports POLLERR on the writing end).</summary>
    public bool ReaderGone => Wait(0, null, 0);

    /// <summary>Writes everything; throws <see cref="PeerClosedException"/> when the reader is gone (EPIPE).</summary>
    public void WriteAll(ReadOnlySpan<byte> data, PollCancellation? cancel, int timeoutMs, string what)
    {
        while (!data.IsEmpty)
        {
            if (!Wait(Posix.POLLOUT, cancel, timeoutMs))
                throw new SealpointException(ErrorKind.External, $"timed out after {timeoutMs / 1000.0:0.#} s writing {what}",
                    "CRIU stopped reading; see CRIU's log in the work directory");
            nint n;
            // .NET ignores SIGPIPE, so a vanished reader shows as EPIPE here rather than killing us.
            fixed (byte* p = data) n = Posix.Write(Fd, p, (nuint)data.Length);
            if (n >= 0) { data = data[(int)n..]; continue; }
            int errno = Posix.Errno;
            if (errno is Posix.EINTR or Posix.EAGAIN) continue;
            if (errno is Posix.EPIPE or 104 /* ECONNRESET */) throw new PeerClosedException(what);
            throw new SealpointException(ErrorKind.Io, $"writing {what} failed: {Posix.ErrorText(errno)}", "see CRIU's log in the work directory");
        }
    }

    /// <summary>
    /// Receives one descriptor sent with SCM_RIGHTS and its 1-byte payload (CRIU's send_fd). Exactly one byte is
    /// read, so the descriptor cannot be merged with the next message's bytes. Null at end of stream.
    /// </summary>
    public OwnedFd? ReceiveFd(PollCancellation? cancel, int timeoutMs, string what)
    {
        byte payload = 0;
        byte* control = stackalloc byte[64];
        while (true)
        {
            if (!Wait(Posix.POLLIN, cancel, timeoutMs))
                throw new SealpointException(ErrorKind.External, $"timed out after {timeoutMs / 1000.0:0.#} s waiting for {what}",
                    "CRIU stopped sending; see CRIU's log in the work directory");
            new Span<byte>(control, 64).Clear();
            var iov = new Posix.IoVec { Base = &payload, Length = 1 };
            var msg = new Posix.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = 64 };
            nint n = Posix.RecvMsg(Fd, &msg, Posix.MSG_CMSG_CLOEXEC);
            if (n < 0)
            {
                int errno = Posix.Errno;
                if (errno is Posix.EINTR or Posix.EAGAIN) continue;
                throw new SealpointException(ErrorKind.External, $"receiving {what} failed: {Posix.ErrorText(errno)}", "see CRIU's log in the work directory");
            }
            var fds = new List<int>();
            for (int off = 0; off + sizeof(Posix.CmsgHdr) <= (int)msg.ControlLength;)
            {
                var c = (Posix.CmsgHdr*)(control + off);
                int len = (int)c->Length;
                if (len < sizeof(Posix.CmsgHdr) || off + len > (int)msg.ControlLength) break;
                if (c->Level == Posix.SOL_SOCKET && c->Type == Posix.SCM_RIGHTS)
                    for (int i = 0; i < (len - sizeof(Posix.CmsgHdr)) / sizeof(int); i++)
                        fds.Add(((int*)(control + off + sizeof(Posix.CmsgHdr)))[i]);
                off += (len + 7) & ~7;
            }
            if (n == 0 && fds.Count == 0) return null;
            if ((msg.Flags & Posix.MSG_CTRUNC) != 0 || fds.Count != 1 || n != 1)
            {
                foreach (int fd in fds) Posix.Close(fd);
                throw StreamerProtocol.Violation($"expected one pipe descriptor with a 1-byte payload for {what}, got {fds.Count} descriptor(s) and {n} byte(s)");
            }
            return new OwnedFd(fds[0]);
        }
    }

    /// <summary>Sends <paramref name="fd"/> with SCM_RIGHTS and a 1-byte payload, as CRIU does.</summary>
    public void SendFd(int fd)
    {
        byte payload = 0;
        byte* control = stackalloc byte[64];
        new Span<byte>(control, 64).Clear();
        var c = (Posix.CmsgHdr*)control;
        c->Length = (nuint)Posix.CmsgLenOneFd;
        c->Level = Posix.SOL_SOCKET;
        c->Type = Posix.SCM_RIGHTS;
        *(int*)(control + sizeof(Posix.CmsgHdr)) = fd;
        var iov = new Posix.IoVec { Base = &payload, Length = 1 };
        var msg = new Posix.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)Posix.CmsgSpaceOneFd };
        while (Posix.SendMsg(Fd, &msg, Posix.MSG_NOSIGNAL) < 0)
        {
            int errno = Posix.Errno;
            if (errno == Posix.EINTR) continue;
            throw new SealpointException(ErrorKind.Io, $"sendmsg failed: {Posix.ErrorText(errno)}");
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Posix.Close(fd);
    }
}

/// <summary>The reading side closed its end (EPIPE): CRIU stopped reading an image or went away.</summary>
public sealed class PeerClosedException(string what) : Exception($"the reader of {what} closed it");
