using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Sealpoint.Core.Format;

/// <summary>
/// A page file's plaintext mapped shared into memory, so that in-place sealing encrypts the page cache where it is:
/// no read and write copies. On a huge-page tmpfs (the runtime's staging) the mapping takes a few hundred 2 MiB
/// entries, and sealing 1 GiB costs little more than the cipher itself (docs/benchmarks.md).
/// </summary>
internal sealed unsafe partial class MappedPages : IDisposable
{
    private const int ProtRead = 1, ProtWrite = 2, MapShared = 1;
    private static readonly nint MapFailed = -1;

    private byte* _address;
    private readonly nuint _length;

    private MappedPages(byte* address, nuint length)
    {
        _address = address;
        _length = length;
    }

    /// <summary>
    /// Maps the first <paramref name="length"/> bytes shared (read-write, or read-only for a source); null when the
    /// file system cannot (then use positional I/O).
    /// </summary>
    public static MappedPages? TryMap(SafeFileHandle file, long length, bool writable)
    {
        if (length <= 0 || Environment.GetEnvironmentVariable("SEALPOINT_NO_MMAP") == "1") return null;
        nint address = mmap(0, (nuint)length, writable ? ProtRead | ProtWrite : ProtRead, MapShared, (int)file.DangerousGetHandle(), 0);
        return address == MapFailed ? null : new MappedPages((byte*)address, (nuint)length);
    }

    /// <summary><paramref name="count"/> bytes at <paramref name="offset"/> of the mapping.</summary>
    public Span<byte> Slice(long offset, int count)
    {
        if (_address == null || offset < 0 || count < 0 || (ulong)offset + (ulong)count > _length) throw new ArgumentOutOfRangeException(nameof(offset));
        return new Span<byte>(_address + offset, count);
    }

    public void Dispose()
    {
        if (_address == null) return;
        munmap((nint)_address, _length);
        _address = null;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int munmap(nint address, nuint length);
}
