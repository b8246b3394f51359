using System.Security.Cryptography;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Core.Checkpoint;

/// <summary>
/// A file whose reader waits until its content is released: so a restore can start its reader (runc, CRIU) before
/// the content is verified, and the reader gets nothing until it is. The path is a symlink to
/// /proc/PID/fd/N of this process, where N is a handle on a private named pipe:
/// <list type="bullet">
/// <item>a reader's open waits for this process's writer, its read for the content; end of file follows it;</item>
/// <item><see cref="Dispose"/> without <see cref="Release"/>: the reader reads an empty file (end of file at once);</item>
/// <item>this process gone, in any way: its writer is closed (end of file), and /proc/PID with it, so a later open
/// fails (no such file). A reader never waits on a process that is not there.</item>
/// <item>a reader that never came: <see cref="Dispose"/> ends the wait for it and removes the link.</item>
/// <item>once released, the path is a regular file with the content: a reader that opens it again reads it there.</item>
/// </list>
/// For readers that read the whole file once, in order, to end of file (runc's descriptors.json, CRIU's inventory.img).
/// </summary>
public sealed class HeldFile : IDisposable
{
    private const int OPath = 0x200000;

    private readonly string _pipe;
    private int _pathHandle;
    private readonly Thread _writer;
    private readonly ManualResetEventSlim _released = new();
    private readonly object _lock = new();
    private byte[]? _content;
    private bool _disposed;
    private bool _readerArrived;
    private bool _materialized;

    private HeldFile(string path, string pipe, int pathHandle)
    {
        Path = path;
        _pipe = pipe;
        _pathHandle = pathHandle;
        _writer = new Thread(Serve) { IsBackground = true, Name = "held " + System.IO.Path.GetFileName(path) };
    }

    /// <summary>Where readers open it.</summary>
    public string Path { get; }

    /// <summary>
    /// Creates the link at <paramref name="path"/> (which must not exist) and its pipe, <paramref name="pipe"/> (a new
    /// path in a private folder of this process's), and starts waiting for a reader.
    /// </summary>
    public static HeldFile Create(string path, string pipe)
    {
        if (Posix.MkFifo(pipe, 0x180 /* 0600 */) != 0)
            throw new SealpointException(ErrorKind.Io, $"cannot create the pipe {pipe}: {Posix.ErrorText(Posix.Errno)}", "check that the staging folder is writable");
        // O_PATH opens the pipe without a pipe's open semantics: no waiting, and no reader or writer counted.
        int handle = Posix.Open(pipe, OPath | Posix.O_CLOEXEC);
        if (handle < 0)
            throw new SealpointException(ErrorKind.Io, $"cannot open the pipe {pipe}: {Posix.ErrorText(Posix.Errno)}", "check that the staging folder is writable");
        var held = new HeldFile(path, pipe, handle);
        try
        {
            File.CreateSymbolicLink(path, $"/proc/{Environment.ProcessId}/fd/{handle}");
            held._writer.Start();
            return held;
        }
        catch
        {
            Posix.Close(handle);
            throw;
        }
    }

    /// <summary>
    /// Hands <paramref name="content"/> (verified plaintext) over: the path becomes a regular private file holding it
    /// (one rename over the link), so every later open, a second read included, reads it there and never waits; a
    /// reader already waiting at the pipe gets it through the pipe. The array is wiped once written.
    /// </summary>
    public void Release(byte[] content)
    {
        lock (_lock) ObjectDisposedException.ThrowIf(_disposed, this);
        string temp = Path + ".released";
        using (var file = FileSystem.CreatePrivate(temp)) file.Write(content);
        File.Move(temp, Path, overwrite: true);
        lock (_lock)
        {
            _content = content;
            _materialized = true;
        }
        _released.Set();
    }

    private void Serve()
    {
        // Returns when a reader opens the link (or Dispose opens the pipe to end this wait).
        int fd = Posix.Open(_pipe, Posix.O_WRONLY | Posix.O_CLOEXEC);
        lock (_lock) _readerArrived = true;
        if (fd < 0) return;
        using var pipe = new OwnedFd(fd);
        _released.Wait();
        byte[]? content;
        lock (_lock) content = _disposed ? null : _content;
        if (content is null) return;
        // A reader that is gone failed, and its own error says so; this thread must never end the process.
        try { pipe.WriteAll(content, null, -1, Path); }
        catch (Exception e) when (e is PeerClosedException or SealpointException) { }
    }

    /// <summary>
    /// Ends the hold: a reader that is waiting and got no content reads end of file, a later one finds no file.
    /// Waits for a release in progress to be written.
    /// </summary>
    public void Dispose()
    {
        bool waitingForReader;
        lock (_lock)
        {
            if (_disposed || _pathHandle < 0) return;
            // Content already released is still written to a reader that is reading it; content a reader never came
            // for is dropped (the writer would wait for room in the pipe forever).
            waitingForReader = !_readerArrived;
            if (waitingForReader) _disposed = true;
        }
        // Unreleased, a reader that opens from now on finds no file: the link goes first, before the writer stops
        // waiting, and before the fd number it names can be reused. Released, the path is the content's file, which
        // the caller's staging wipe removes.
        bool materialized;
        lock (_lock) materialized = _materialized;
        if (!materialized) File.Delete(Path);
        _released.Set();
        int unblock = -1;
        if (waitingForReader) unblock = Posix.Open(_pipe, Posix.O_RDONLY | Posix.O_NONBLOCK | Posix.O_CLOEXEC);
        _writer.Join();
        if (unblock >= 0) Posix.Close(unblock);
        lock (_lock)
        {
            _disposed = true;
            if (_content is not null) CryptographicOperations.ZeroMemory(_content);
            _content = null;
        }
        Posix.Close(_pathHandle);
        _pathHandle = -1;
        if (waitingForReader) EndLateReaders();
        _released.Dispose();
    }

    /// <summary>
    /// A reader that followed the link just before it went can reach the pipe's open after the writer has gone, and a
    /// pipe's open waits for a writer: for ever, while this process waits for that reader (seen once in ~10 restores
    /// failing at once under load). A writer's non-blocking open succeeds exactly when a reader is there or waiting, and
    /// closing it gives that reader end of file. Tried a few times, for a reader still inside its open call.
    /// </summary>
    private void EndLateReaders()
    {
        for (int attempt = 0; attempt < 5; attempt++)
        {
            if (attempt > 0) Thread.Sleep(2);
            int late = Posix.Open(_pipe, Posix.O_WRONLY | Posix.O_NONBLOCK | Posix.O_CLOEXEC);
            if (late >= 0) Posix.Close(late);
        }
    }
}
