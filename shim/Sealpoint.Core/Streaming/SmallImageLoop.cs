using System.Collections.Concurrent;
using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// A sealed image that stays in memory while it is small: CRIU keeps several small images open per task until the
/// end of a dump, so each costs only what it holds (at most one 64 KiB chunk of plaintext, which sealing needs
/// anyway) until it grows past a chunk or ends; then it becomes an ordinary sealed file.
/// </summary>
internal sealed class LazySealedFile(SealedCheckpointWriter writer, string name) : IDisposable
{
    private byte[] _small = [];
    private int _length;
    private SealedFileStream? _sealing;

    public string Name => name;
    public int BufferedLength => _length;
    public bool IsPages { get; } = Format.ImageFiles.IsPages(name);

    /// <summary>Takes the buffered plaintext out (the caller wipes it), for an image that moves to its own thread.</summary>
    public byte[] TakeBuffered()
    {
        byte[] taken = _small.AsSpan(0, _length).ToArray();
        CryptographicOperations.ZeroMemory(_small);
        _small = [];
        _length = 0;
        return taken;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_sealing is null && _length + data.Length <= StreamingLimits.SmallImageBuffer)
        {
            if (_length + data.Length > _small.Length)
            {
                var bigger = new byte[Math.Min(StreamingLimits.SmallImageBuffer, Math.Max(4096, 2 * (_length + data.Length)))];
                _small.AsSpan(0, _length).CopyTo(bigger);
                CryptographicOperations.ZeroMemory(_small);
                _small = bigger;
            }
            data.CopyTo(_small.AsSpan(_length));
            _length += data.Length;
            return;
        }
        Spill().Write(data);
    }

    public void Commit() => Spill().Commit();

    private SealedFileStream Spill()
    {
        if (_sealing is not null) return _sealing;
        _sealing = writer.CreateFile(name);
        _sealing.Write(_small.AsSpan(0, _length));
        CryptographicOperations.ZeroMemory(_small);
        _small = [];
        _length = 0;
        return _sealing;
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_small);
        _sealing?.Dispose();
    }
}

/// <summary>
/// One thread serving every open image except memory pages: it polls all their pipes at once and seals what
/// arrives. No pipe waits for another (poll wakes for whichever CRIU writes), and idle open images cost no thread.
/// </summary>
internal sealed unsafe class SmallImageLoop : IDisposable
{
    private readonly SealedCheckpointWriter _writer;
    private readonly PollCancellation _cancel;
    private readonly Action<Exception> _fail;
    private readonly Action _imageEnded;
    private readonly Action<long> _bytes;
    private readonly Action<string, OwnedFd, byte[]> _promote;
    private readonly ConcurrentQueue<(string Name, OwnedFd Pipe)> _incoming = new();
    private readonly OwnedFd _wake;
    private readonly List<Entry> _entries = [];

    /// <param name="promote">Takes over a memory-page image that outgrew one chunk: its name, pipe and the plaintext read so far.</param>
    public SmallImageLoop(SealedCheckpointWriter writer, PollCancellation cancel, Action<Exception> fail, Action imageEnded, Action<long> bytes,
        Action<string, OwnedFd, byte[]> promote)
    {
        _promote = promote;
        _writer = writer;
        _cancel = cancel;
        _fail = fail;
        _imageEnded = imageEnded;
        _bytes = bytes;
        int fd = Posix.EventFd(0, Posix.EFD_CLOEXEC | Posix.EFD_NONBLOCK);
        if (fd < 0) throw new SealpointException(ErrorKind.Io, $"eventfd failed: {Posix.ErrorText(Posix.Errno)}", "check the open-file limit (ulimit -n)");
        _wake = new OwnedFd(fd);
    }

    /// <summary>Hands an image's pipe to the loop (from the control thread).</summary>
    public void Add(string name, OwnedFd pipe)
    {
        _incoming.Enqueue((name, pipe));
        ulong one = 1;
        Posix.Write(_wake.Fd, (byte*)&one, 8);
    }

    /// <summary>The loop; returns when cancelled (after a failure or at the end of the session).</summary>
    public void Run(Func<Exception, string, Exception> describe)
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(StreamingLimits.SmallImageBuffer);
        var set = new Posix.PollFd[2];
        try
        {
            while (true)
            {
                if (set.Length != _entries.Count + 2) set = new Posix.PollFd[_entries.Count + 2];
                set[0] = new Posix.PollFd { Fd = _cancel.Fd, Events = Posix.POLLIN };
                set[1] = new Posix.PollFd { Fd = _wake.Fd, Events = Posix.POLLIN };
                for (int i = 0; i < _entries.Count; i++) set[i + 2] = new Posix.PollFd { Fd = _entries[i].Pipe.Fd, Events = Posix.POLLIN };
                int n;
                fixed (Posix.PollFd* p = set) n = Posix.Poll(p, (nuint)set.Length, -1);
                if (n < 0)
                {
                    int errno = Posix.Errno;
                    if (errno == Posix.EINTR) continue;
                    throw new SealpointException(ErrorKind.Io, $"poll failed: {Posix.ErrorText(errno)}");
                }
                if (set[0].Revents != 0 || _cancel.IsCancelled) return;
                if (set[1].Revents != 0)
                {
                    ulong count;
                    Posix.Read(_wake.Fd, (byte*)&count, 8);
                    while (_incoming.TryDequeue(out var added)) _entries.Add(new Entry(new LazySealedFile(_writer, added.Name), added.Pipe));
                }
                // Serve ready pipes from the end, so removing one keeps the others' indexes.
                for (int i = set.Length - 1; i >= 2; i--)
                {
                    if (set[i].Revents == 0) continue;
                    var entry = _entries[i - 2];
                    int got = 0;
                    try
                    {
                        // poll said readable (or ended): this read does not block.
                        got = entry.Pipe.ReadSome(buffer, _cancel, -1, $"image '{entry.File.Name}'");
                        if (got > 0)
                        {
                            _bytes(got);
                            if (entry.File.IsPages && entry.File.BufferedLength + got > StreamingLimits.SmallImageBuffer)
                            {
                                // A large page image: it moves to its own thread and is sealed on every core.
                                byte[] initial = [.. entry.File.TakeBuffered(), .. buffer.AsSpan(0, got)];
                                _entries.RemoveAt(i - 2);
                                entry.File.Dispose();
                                _promote(entry.File.Name, entry.Pipe, initial);
                                continue;
                            }
                            entry.File.Write(buffer.AsSpan(0, got));
                            continue;
                        }
                        entry.File.Commit();
                    }
                    catch (StreamCancelledException) { return; }
                    catch (Exception e)
                    {
                        _fail(describe(e, entry.File.Name));
                        return;
                    }
                    finally { CryptographicOperations.ZeroMemory(buffer.AsSpan(0, got)); }
                    _entries.RemoveAt(i - 2);
                    entry.Dispose();
                    _imageEnded();
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
            while (_incoming.TryDequeue(out var left)) _entries.Add(new Entry(new LazySealedFile(_writer, left.Name), left.Pipe));
            foreach (var e in _entries)
            {
                e.Dispose();
                _imageEnded();
            }
            _entries.Clear();
        }
    }

    public void Dispose() => _wake.Dispose();

    private sealed record Entry(LazySealedFile File, OwnedFd Pipe) : IDisposable
    {
        public void Dispose()
        {
            Pipe.Dispose();
            File.Dispose();
        }
    }
}
