namespace Sealpoint.Core.Streaming;

/// <summary>A listening Unix stream socket at a path, accepting with cancellation (CRIU is the only client).</summary>
public sealed unsafe class UnixListener : IDisposable
{
    private readonly OwnedFd _socket;

    public UnixListener(string path)
    {
        Path = path;
        Span<byte> addr = stackalloc byte[110];
        int length = Posix.SockAddr(path, addr);
        int fd = Posix.Socket(Posix.AF_UNIX, Posix.SOCK_STREAM | Posix.SOCK_CLOEXEC, 0);
        if (fd < 0) throw new SealpointException(ErrorKind.Io, $"cannot create a Unix socket: {Posix.ErrorText(Posix.Errno)}", "check the open-file limit (ulimit -n)");
        _socket = new OwnedFd(fd);
        fixed (byte* a = addr)
        {
            if (Posix.Bind(fd, a, length) != 0)
            {
                int errno = Posix.Errno;
                _socket.Dispose();
                throw new SealpointException(ErrorKind.Io, $"cannot create the streamer socket {path}: {Posix.ErrorText(errno)}",
                    "make sure the work directory exists, is writable and holds no file of that name");
            }
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (Posix.Listen(fd, 4) != 0)
        {
            int errno = Posix.Errno;
            Dispose();
            throw new SealpointException(ErrorKind.Io, $"listen on {path} failed: {Posix.ErrorText(errno)}");
        }
    }

    public string Path { get; }

    /// <summary>Waits for a connection; null on timeout.</summary>
    public OwnedFd? Accept(PollCancellation? cancel, int timeoutMs)
    {
        while (true)
        {
            if (!_socket.Wait(Posix.POLLIN, cancel, timeoutMs)) return null;
            int fd = Posix.Accept4(_socket.Fd, null, null, Posix.SOCK_CLOEXEC);
            if (fd >= 0) return new OwnedFd(fd);
            int errno = Posix.Errno;
            if (errno is Posix.EINTR or Posix.EAGAIN or 103 /* ECONNABORTED */) continue;
            throw new SealpointException(ErrorKind.Io, $"accept on {Path} failed: {Posix.ErrorText(errno)}");
        }
    }

    /// <summary>Connects to a listening socket (tests play CRIU's part with it).</summary>
    public static OwnedFd Connect(string path)
    {
        Span<byte> addr = stackalloc byte[110];
        int length = Posix.SockAddr(path, addr);
        int fd = Posix.Socket(Posix.AF_UNIX, Posix.SOCK_STREAM | Posix.SOCK_CLOEXEC, 0);
        if (fd < 0) throw new SealpointException(ErrorKind.Io, $"socket failed: {Posix.ErrorText(Posix.Errno)}");
        var owned = new OwnedFd(fd);
        fixed (byte* a = addr)
        {
            if (Posix.Connect(fd, a, length) != 0)
            {
                int errno = Posix.Errno;
                owned.Dispose();
                throw new SealpointException(ErrorKind.Io, $"connect to {path} failed: {Posix.ErrorText(errno)}");
            }
        }
        return owned;
    }

    public void Dispose()
    {
        _socket.Dispose();
        try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
