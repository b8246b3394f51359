using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Sealpoint.Core.Streaming;
using static Sealpoint.Core.Fuse.FuseProtocol;

namespace Sealpoint.Core.Fuse;

/// <summary>
/// Serves one sealed page file as a plaintext file, decrypted read by read: a FUSE file system whose root is that
/// file, mounted on an (empty) placeholder file. CRIU opens the placeholder's path as its pages-N.img and reads it
/// with pread; every read reaches this server (direct I/O, so nothing enters the page cache), which verifies and
/// decrypts exactly the pages asked for into its own buffers and replies. No plaintext copy of the memory is ever
/// stored, not even in memory-backed staging; memory stays at a fixed set of 1 MiB buffers per mount.
/// Needs root (mount) and /dev/fuse; <see cref="TryMount"/> returns null without them.
/// </summary>
public sealed unsafe partial class SealedPageMount : IDisposable
{
    /// <summary>Largest read the kernel may send (max_pages): 1 MiB, the kernel's own ceiling.</summary>
    public const int MaxPagesPerRead = 256;
    private const int RequestBufferSize = 64 * 1024;

    private readonly SealedPageSource _source;
    private readonly Thread[] _threads;
    private readonly int _device;
    private volatile string? _failure;
    private int _disposed;

    public string Path { get; }
    /// <summary>The first integrity or read failure met while serving (a read then failed with EIO), or null.</summary>
    public string? Failure => _failure;
    /// <summary>Bytes of plaintext served so far.</summary>
    public long BytesServed => Interlocked.Read(ref _bytesServed);
    private long _bytesServed;

    private readonly PageReadAhead _readAhead;

    /// <summary>Half the source's ciphers serve requests, half decrypt ahead.</summary>
    private SealedPageMount(string path, SealedPageSource source, int device)
    {
        Path = path;
        _source = source;
        _device = device;
        int serving = Math.Max(1, source.Readers / 2);
        _threads = new Thread[serving];
        _readAhead = new PageReadAhead(source, serving, Math.Max(1, source.Readers - serving), ReadAheadDepth, MaxPagesPerRead * Format.SealedFile.PageSize);
    }

    /// <summary>Chunks decrypted ahead of the last read.</summary>
    private const int ReadAheadDepth = 2;

    /// <summary>
    /// Mounts a server for <paramref name="source"/> on <paramref name="placeholder"/>, an existing regular file. Returns
    /// null, with nothing mounted, when this process cannot (no /dev/fuse, not root, no FUSE in the kernel); the caller
    /// then decrypts into a file instead. On success the mount owns <paramref name="source"/>.
    /// </summary>
    internal static SealedPageMount? TryMount(string placeholder, SealedPageSource source)
    {
        int fd = Posix.Open("/dev/fuse", Posix.O_RDWR | Posix.O_CLOEXEC);
        if (fd < 0) return null;
        // allow_other: CRIU reads the pages from the restored task itself, whose credentials may already be the
        // container's; the placeholder sits in private (0700) staging and the tasks reach it only through CRIU's
        // inherited images-directory descriptor.
        string options = $"fd={fd},rootmode=100000,user_id=0,group_id=0,allow_other";
        if (mount(Config.Staging.ServedImageSource, placeholder, "fuse", MsNoSuid | MsNoDev | MsRdOnly, options) != 0)
        {
            Posix.Close(fd);
            return null;
        }
        var served = new SealedPageMount(placeholder, source, fd);
        for (int i = 0; i < served._threads.Length; i++)
        {
            int reader = i;
            served._threads[i] = new Thread(() => served.Serve(reader)) { IsBackground = true, Name = $"pages-fuse-{i}" };
            served._threads[i].Start();
        }
        return served;
    }

    private void Serve(int reader)
    {
        byte[] request = new byte[RequestBufferSize];
        // One extra page: a read that does not start on a page boundary spans one more page.
        byte[] data = GC.AllocateUninitializedArray<byte>((MaxPagesPerRead + 1) * Format.SealedFile.PageSize, pinned: true);
        byte[] tags = new byte[(MaxPagesPerRead + 1) * Format.SealedFile.TagSize];
        byte[] reply = new byte[128]; // the largest reply body but a read's (INIT, 64 bytes)
        try
        {
            while (true)
            {
                nint n;
                fixed (byte* p = request) n = Posix.Read(_device, p, (nuint)request.Length);
                if (n < 0)
                {
                    int errno = Posix.Errno;
                    if (errno is Posix.EINTR or Posix.EAGAIN or ENOENT) continue; // ENOENT: the request was interrupted
                    return; // ENODEV: unmounted; anything else: the connection is gone
                }
                var body = request.AsSpan(0, (int)n);
                if (ParseHeader(body) is not { } header) continue;
                if (!Handle(reader, header, body[InHeaderSize..], data, tags, reply)) return;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(data);
        }
    }

    /// <summary>Answers one request; false when the connection is over (DESTROY).</summary>
    private bool Handle(int reader, InHeader header, ReadOnlySpan<byte> body, byte[] data, byte[] tags, byte[] reply)
    {
        if (NeedsNoReply(header.Opcode)) return true;
        var r = reply.AsSpan();
        switch (header.Opcode)
        {
            case Opcode.Lookup:
            case Opcode.GetAttr or Opcode.Open when header.NodeId != RootId:
                Send(header, ENOENT, []); // the root is a file: there is no other node
                break;
            case Opcode.Init when ParseInit(body) is { } init:
                WriteInitOut(r, init, MaxPagesPerRead);
                Send(header, 0, r[..InitOutSize]);
                break;
            case Opcode.GetAttr:
                WriteAttrOut(r, RootId, _source.Size);
                Send(header, 0, r[..AttrOutSize]);
                break;
            case Opcode.Open when ParseOpenFlags(body) is { } flags:
                if ((flags & 3) != 0) // O_ACCMODE: read-only
                {
                    Send(header, EROFS, []);
                    break;
                }
                WriteOpenOut(r, 1);
                Send(header, 0, r[..OpenOutSize]);
                break;
            case Opcode.Read when ParseRead(body) is { } read:
                ServeRead(reader, header, read, data, tags);
                break;
            case Opcode.Access when ParseAccessMask(body) is { } mask:
                Send(header, (mask & 2) != 0 ? EROFS : 0, []);
                break;
            case Opcode.Statfs:
                WriteStatfsOut(r, _source.Size);
                Send(header, 0, r[..StatfsOutSize]);
                break;
            case Opcode.Release or Opcode.Flush or Opcode.Fsync:
                Send(header, 0, []);
                break;
            case Opcode.Destroy:
                Send(header, 0, []);
                return false;
            case Opcode.Init or Opcode.Open or Opcode.Read or Opcode.Access:
                Send(header, EINVAL, []); // a body too short for its request
                break;
            default:
                Send(header, ENOSYS, []);
                break;
        }
        return true;
    }

    private void ServeRead(int reader, InHeader header, ReadRequest read, byte[] data, byte[] tags)
    {
        long size = _source.Size;
        if (read.Offset >= size || read.Size == 0)
        {
            Send(header, 0, []);
            return;
        }
        int page = Format.SealedFile.PageSize;
        int skip = (int)(read.Offset % page);
        long firstPage = read.Offset / page;
        // Never more than the buffer holds (the kernel sends at most max_pages); a shorter reply is a short read.
        int length = (int)Math.Min(Math.Min(read.Size, size - read.Offset), (long)MaxPagesPerRead * page);
        int blockLength = (int)Math.Min((long)(skip + length + page - 1) / page * page, size - firstPage * page);
        // Decryption of the next chunks starts now, while this one is copied out and CRIU faults in the next.
        _readAhead.After(read.Offset, length);
        if (skip == 0 && _readAhead.Take(read.Offset, length) is { } ready)
        {
            try { Send(header, 0, ready.Buffer.AsSpan(0, length)); }
            finally { _readAhead.Release(ready); }
        }
        else
        {
            try
            {
                _source.OpenPages(reader, firstPage, data.AsSpan(0, blockLength), tags);
            }
            catch (Exception e) when (e is SealpointException or IOException)
            {
                _failure ??= e is SealpointException ? e.Message : $"reading {_source.Name} failed: {e.Message}";
                Send(header, EIO, []);
                return;
            }
            Send(header, 0, data.AsSpan(skip, length));
            CryptographicOperations.ZeroMemory(data.AsSpan(0, blockLength));
        }
        Interlocked.Add(ref _bytesServed, length);
    }

    /// <summary>
    /// One reply: the header, then <paramref name="payload"/> (empty for an error). A failed write means the request was
    /// interrupted or the connection ended; the next device read says which.
    /// </summary>
    private void Send(InHeader header, int errno, ReadOnlySpan<byte> payload)
    {
        Span<byte> h = stackalloc byte[OutHeaderSize];
        WriteOutHeader(h, OutHeaderSize + payload.Length, errno, header.Unique);
        fixed (byte* ph = h)
        fixed (byte* pd = payload)
        {
            var iov = stackalloc Posix.IoVec[2];
            iov[0] = new Posix.IoVec { Base = ph, Length = OutHeaderSize };
            iov[1] = new Posix.IoVec { Base = pd, Length = (nuint)payload.Length };
            Posix.Writev(_device, iov, payload.IsEmpty ? 1 : 2);
        }
    }

    /// <summary>
    /// Unmounts (lazily when CRIU still holds the file open: it is served until closed) and stops the threads. The
    /// kernel ends the connection on unmount, which wakes them.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (umount2(Path, 0) != 0) umount2(Path, MntDetach);
        foreach (var t in _threads) t?.Join(TimeSpan.FromSeconds(2));
        if (_threads.All(t => t is null || !t.IsAlive))
        {
            _readAhead.Dispose();
            Posix.Close(_device);
            _source.Dispose();
        }
        // Otherwise a thread still serves a lazily detached mount; the descriptor and ciphers go with the process.
    }

    private const ulong MsRdOnly = 1, MsNoSuid = 2, MsNoDev = 4;
    private const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int umount2(string target, int flags);
}
