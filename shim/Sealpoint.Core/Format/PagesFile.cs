using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// Sealed page files on disk: ciphertext page i at offset i*4096 (the plaintext's own offset), then one 16-byte tag
/// per page, then the 64-byte header. Every page is independent, so whole files are cut into 1 MiB blocks handled by
/// all cores with positional I/O, and a file can be sealed in place without a second copy.
/// </summary>
/// <summary>Called with each page's plaintext while a page file is sealed (any thread, any order).</summary>
internal delegate void PageVisitor(long index, ReadOnlySpan<byte> plaintext);

internal static partial class PagesFile
{
    private const int PagesPerBlock = 256;
    private const int PageSize = SealedFile.PageSize;
    private const int TagSize = SealedFile.TagSize;

    /// <summary>Seals <paramref name="length"/> bytes of <paramref name="source"/> into <paramref name="destination"/>, which may be the same file (in place).</summary>
    public static SealedFileInfo Seal(SafeFileHandle source, long length, SafeFileHandle destination, SealedFileHeader header, Func<FileCipher> newCipher,
        PageVisitor? onPage = null)
    {
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, length);
        byte[] tags = new byte[pages * TagSize];
        // In place: room for the tag table and header first, so that a full file system fails before any page is
        // encrypted. (Encrypting through a shared mapping instead of read/write measured slower on 4 KiB tmpfs pages.)
        if (source.DangerousGetHandle() == destination.DangerousGetHandle())
            Reserve(destination, length, SealedFile.SealedSize(SealedFileKind.Pages, length) - length);
        SealRange(source, length, destination, 0, pages, tags, newCipher, onPage);
        return WriteTail(destination, length, header, tags);
    }

    /// <summary>
    /// Seals pages [<paramref name="firstPage"/>, <paramref name="endPage"/>) of a source file of (at least)
    /// <paramref name="length"/> bytes into the same places of <paramref name="destination"/>, tags into
    /// <paramref name="tags"/> (indexed from page 0). One thread with <paramref name="cipher"/> and <paramref name="buffer"/>
    /// (a page file sealed piece by piece while its writer still appends to it), or every core when they are null.
    /// </summary>
    public static void SealRange(SafeFileHandle source, long length, SafeFileHandle destination, long firstPage, long endPage, byte[] tags,
        Func<FileCipher> newCipher, PageVisitor? onPage, FileCipher? cipher = null, byte[]? buffer = null)
    {
        void Block(long blockFirst, int count, FileCipher c, byte[] b)
        {
            long offset = blockFirst * PageSize;
            var block = b.AsSpan(0, (int)Math.Min((long)count * PageSize, length - offset));
            ReadExactly(source, block, offset, "source");
            for (int p = 0; p < count; p++)
            {
                var page = block.Slice(p * PageSize, Math.Min(PageSize, block.Length - p * PageSize));
                onPage?.Invoke(blockFirst + p, page);
                c.Seal(blockFirst + p, false, page, page, tags.AsSpan((int)((blockFirst + p) * TagSize), TagSize));
            }
            RandomAccess.Write(destination, block, offset);
        }
        if (cipher is not null && buffer is not null)
        {
            for (long page = firstPage; page < endPage; page += PagesPerBlock)
                Block(page, (int)Math.Min(PagesPerBlock, endPage - page), cipher, buffer);
            return;
        }
        ForEachBlock(endPage - firstPage, newCipher, (first, count, c, b) => Block(firstPage + first, count, c, b));
    }

    /// <summary>Bytes of plaintext one sealing step handles at once (256 pages).</summary>
    public const int BlockBytes = PagesPerBlock * PageSize;

    public static SealedFileInfo WriteTail(SafeFileHandle destination, long length, SealedFileHeader header, byte[] tags)
    {
        byte[] headerBytes = header.ToBytes();
        RandomAccess.Write(destination, tags, length);
        RandomAccess.Write(destination, headerBytes, length + tags.Length);
        return new SealedFileInfo(length, SealedFile.SealedSize(SealedFileKind.Pages, length), DigestOf(headerBytes, tags));
    }

    /// <summary>
    /// Extends a file of <paramref name="offset"/> bytes by <paramref name="count"/> allocated bytes. On failure the
    /// file gets its old length back (its plaintext is untouched); a file system without fallocate is only extended.
    /// </summary>
    private static void Reserve(SafeFileHandle file, long offset, long count)
    {
        if (fallocate((int)file.DangerousGetHandle(), 0, offset, count) == 0) return;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (errno is 95 /* EOPNOTSUPP */ or 38 /* ENOSYS */)
        {
            RandomAccess.SetLength(file, offset + count);
            return;
        }
        RandomAccess.SetLength(file, offset);
        throw new SealpointException(ErrorKind.Io, errno == 28
                ? "no space left for the tag table of a page file sealed in place (nothing was encrypted)"
                : $"cannot extend a page file to seal it in place (errno {errno}; nothing was encrypted)",
            "free space on the file system of the image directory, or seal into another directory (--out)");
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long length);

    /// <summary>
    /// Verifies and decrypts into <paramref name="destination"/>. The tag table is checked against the envelope's digest
    /// first, then each page's tag before its plaintext is written.
    /// </summary>
    public static void Open(SafeFileHandle sealedFile, byte[] headerBytes, string name, long plaintextSize, string digest,
        SafeFileHandle destination, Func<FileCipher> newCipher)
    {
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize);
        byte[] tags = new byte[pages * TagSize];
        ReadExactly(sealedFile, tags, plaintextSize, name);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(DigestOf(headerBytes, tags)), Encoding.ASCII.GetBytes(digest)))
            throw new IntegrityException($"'{name}' does not match the digest in the envelope (its tag table was modified)");
        // Sized before it is written: a tmpfs mounted huge=within_size (the runtime's staging) then backs it with
        // 2 MiB pages, which CRIU reads and the unmount frees much faster than 4 KiB ones.
        RandomAccess.SetLength(destination, plaintextSize);
        ForEachBlock(pages, newCipher, (firstPage, count, cipher, buffer) =>
        {
            long offset = firstPage * PageSize;
            var block = buffer.AsSpan(0, (int)Math.Min((long)count * PageSize, plaintextSize - offset));
            ReadExactly(sealedFile, block, offset, name);
            OpenBlock(cipher, firstPage, block, tags.AsSpan((int)(firstPage * TagSize), count * TagSize), name);
            RandomAccess.Write(destination, block, offset);
        });
    }

    /// <summary>Verifies and decrypts consecutive pages in place; on a bad tag the block is wiped and an error names the page.</summary>
    public static void OpenBlock(FileCipher cipher, long firstPage, Span<byte> block, ReadOnlySpan<byte> tags, string name)
    {
        for (int p = 0; p * PageSize < block.Length; p++)
        {
            var page = block.Slice(p * PageSize, Math.Min(PageSize, block.Length - p * PageSize));
            if (!cipher.TryOpen(firstPage + p, false, page, tags.Slice(p * TagSize, TagSize), page))
            {
                CryptographicOperations.ZeroMemory(block);
                throw new IntegrityException($"'{name}' failed authentication at page {firstPage + p} (modified, reordered or from another checkpoint)");
            }
        }
    }

    public static string DigestOf(byte[] headerBytes, ReadOnlySpan<byte> tags)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(headerBytes);
        h.AppendData(tags);
        return "sha256:" + Hex.Lower(h.GetHashAndReset());
    }

    public static void ReadExactly(SafeFileHandle handle, Span<byte> destination, long offset, string name)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(handle, destination, offset);
            if (n == 0) throw new IntegrityException($"'{name}' is truncated");
            destination = destination[n..];
            offset += n;
        }
    }

    private delegate void BlockBody(long firstPage, int count, FileCipher cipher, byte[] buffer);

    private static void ForEachBlock(long pages, Func<FileCipher> newCipher, BlockBody body)
    {
        long blocks = (pages + PagesPerBlock - 1) / PagesPerBlock;
        if (blocks <= 1)
        {
            // Most page images of a process tree are a few pages: no workers, and a buffer of the file's size.
            using var cipher = newCipher();
            byte[] buffer = GC.AllocateUninitializedArray<byte>((int)Math.Max(1, pages * PageSize));
            try { if (pages > 0) body(0, (int)pages, cipher, buffer); }
            finally { CryptographicOperations.ZeroMemory(buffer); }
            return;
        }
        try
        {
            Parallel.For(0L, blocks, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                () => (Cipher: newCipher(), Buffer: GC.AllocateUninitializedArray<byte>(PagesPerBlock * PageSize)),
                (block, _, w) =>
                {
                    long first = block * PagesPerBlock;
                    body(first, (int)Math.Min(PagesPerBlock, pages - first), w.Cipher, w.Buffer);
                    return w;
                },
                w => { CryptographicOperations.ZeroMemory(w.Buffer); w.Cipher.Dispose(); });
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is SealpointException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }
}
