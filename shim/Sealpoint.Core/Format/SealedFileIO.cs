using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// Whole-file sealing and opening between files on disk. Page files are cut into 1 MiB blocks handled by
/// all cores with positional I/O (every page is independent); stream files go through the sequential streams.
/// </summary>
/// <summary>Called with each page's plaintext while a page file is sealed.</summary>
internal delegate void PageVisitor(long index, ReadOnlySpan<byte> plaintext);

internal static class SealedFileIO
{
    private const int PagesPerBlock = 256;
    private const int PagedRecord = SealedFile.PageSize + SealedFile.TagSize;

    public static SealedFileInfo Seal(SafeFileHandle source, long length, Stream destination, SafeFileHandle destinationHandle,
        SealedFileHeader header, Func<FileCipher> newCipher, PageVisitor? onPage = null)
    {
        if (header.Kind == SealedFileKind.Stream || length < 4L * PagesPerBlock * SealedFile.PageSize)
        {
            using var sealing = new SealingStream(destination, newCipher(), header, ownsOutput: false, onPage);
            CopyFromHandle(source, length, sealing);
            return sealing.Finish();
        }
        return SealPagesParallel(source, length, destinationHandle, header, newCipher, onPage);
    }

    private static void CopyFromHandle(SafeFileHandle source, long length, Stream to)
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(1 << 20);
        try
        {
            for (long off = 0; off < length;)
            {
                int n = RandomAccess.Read(source, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - off)), off);
                if (n == 0) throw new SealpointException(ErrorKind.Io, "source file shrank while it was being sealed", "make sure nothing writes to the checkpoint while it is sealed");
                to.Write(buffer, 0, n);
                off += n;
            }
        }
        finally { CryptographicOperations.ZeroMemory(buffer); }
    }

    private static SealedFileInfo SealPagesParallel(SafeFileHandle source, long length, SafeFileHandle destination,
        SealedFileHeader header, Func<FileCipher> newCipher, PageVisitor? onPage)
    {
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, length);
        long blocks = (pages + PagesPerBlock - 1) / PagesPerBlock;
        byte[] headerBytes = header.ToBytes();
        byte[] tags = new byte[pages * SealedFile.TagSize];
        RandomAccess.Write(destination, headerBytes, 0);
        ForEachBlock(blocks, () => new BlockWorker(newCipher()), (block, w) =>
        {
            long firstPage = block * PagesPerBlock;
            long plainOffset = firstPage * SealedFile.PageSize;
            int plainLen = (int)Math.Min((long)PagesPerBlock * SealedFile.PageSize, length - plainOffset);
            ReadExactly(source, w.Plain.AsSpan(0, plainLen), plainOffset, "source");
            int outLen = 0;
            for (int p = 0, off = 0; off < plainLen; p++, off += SealedFile.PageSize)
            {
                int len = Math.Min(SealedFile.PageSize, plainLen - off);
                var tag = w.Sealed.AsSpan(outLen + len, SealedFile.TagSize);
                onPage?.Invoke(firstPage + p, w.Plain.AsSpan(off, len));
                w.Cipher.Seal(firstPage + p, false, w.Plain.AsSpan(off, len), w.Sealed.AsSpan(outLen, len), tag);
                tag.CopyTo(tags.AsSpan((int)((firstPage + p) * SealedFile.TagSize)));
                outLen += len + SealedFile.TagSize;
            }
            RandomAccess.Write(destination, w.Sealed.AsSpan(0, outLen), SealedFile.HeaderSize + firstPage * PagedRecord);
        });
        long sealedSize = SealedFile.SealedSize(SealedFileKind.Pages, length);
        return new SealedFileInfo(length, sealedSize, DigestOf(headerBytes, tags));
    }

    /// <summary>Verifies and decrypts a sealed file into <paramref name="destination"/>; throws on the first bad record.</summary>
    public static void Open(SafeFileHandle sealedHandle, Stream sealedStream, SealedFileHeader header, byte[] headerBytes,
        string name, long plaintextSize, string digest, SafeFileHandle destination, Func<FileCipher> newCipher)
    {
        if (header.Kind == SealedFileKind.Stream || plaintextSize < 4L * PagesPerBlock * SealedFile.PageSize)
        {
            sealedStream.Position = SealedFile.HeaderSize;
            using var opening = new OpeningStream(new NonClosingStream(sealedStream), newCipher(), header, headerBytes, name, plaintextSize, digest);
            byte[] buffer = GC.AllocateUninitializedArray<byte>(1 << 20);
            try
            {
                long off = 0;
                int n;
                while ((n = opening.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false)) > 0)
                {
                    RandomAccess.Write(destination, buffer.AsSpan(0, n), off);
                    off += n;
                }
            }
            finally { CryptographicOperations.ZeroMemory(buffer); }
            return;
        }
        OpenPagesParallel(sealedHandle, header, headerBytes, name, plaintextSize, digest, destination, newCipher);
    }

    private static void OpenPagesParallel(SafeFileHandle sealedHandle, SealedFileHeader header, byte[] headerBytes, string name,
        long plaintextSize, string digest, SafeFileHandle destination, Func<FileCipher> newCipher)
    {
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize);
        long blocks = (pages + PagesPerBlock - 1) / PagesPerBlock;
        byte[] tags = new byte[pages * SealedFile.TagSize];
        ForEachBlock(blocks, () => new BlockWorker(newCipher()), (block, w) =>
        {
            long firstPage = block * PagesPerBlock;
            long plainOffset = firstPage * SealedFile.PageSize;
            int plainLen = (int)Math.Min((long)PagesPerBlock * SealedFile.PageSize, plaintextSize - plainOffset);
            int count = (plainLen + SealedFile.PageSize - 1) / SealedFile.PageSize;
            int sealedLen = plainLen + count * SealedFile.TagSize;
            ReadExactly(sealedHandle, w.Sealed.AsSpan(0, sealedLen), SealedFile.HeaderSize + firstPage * PagedRecord, name);
            int inOff = 0;
            for (int p = 0, off = 0; off < plainLen; p++, off += SealedFile.PageSize)
            {
                int len = Math.Min(SealedFile.PageSize, plainLen - off);
                var tag = w.Sealed.AsSpan(inOff + len, SealedFile.TagSize);
                if (!w.Cipher.TryOpen(firstPage + p, false, w.Sealed.AsSpan(inOff, len), tag, w.Plain.AsSpan(off, len)))
                    throw new IntegrityException($"'{name}' failed authentication at page {firstPage + p} (modified, reordered or from another checkpoint)");
                tag.CopyTo(tags.AsSpan((int)((firstPage + p) * SealedFile.TagSize)));
                inOff += len + SealedFile.TagSize;
            }
            RandomAccess.Write(destination, w.Plain.AsSpan(0, plainLen), plainOffset);
        });
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(DigestOf(headerBytes, tags)), System.Text.Encoding.ASCII.GetBytes(digest)))
            throw new IntegrityException($"'{name}' does not match the digest in the envelope");
    }

    internal static string DigestOf(byte[] headerBytes, byte[] tags)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(headerBytes);
        h.AppendData(tags);
        return "sha256:" + Hex.Lower(h.GetHashAndReset());
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> dst, long offset, string name)
    {
        while (!dst.IsEmpty)
        {
            int n = RandomAccess.Read(handle, dst, offset);
            if (n == 0) throw new IntegrityException($"'{name}' is truncated");
            dst = dst[n..];
            offset += n;
        }
    }

    private static void ForEachBlock(long blocks, Func<BlockWorker> newWorker, Action<long, BlockWorker> body)
    {
        try
        {
            Parallel.For(0L, blocks, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                newWorker, (block, _, w) => { body(block, w); return w; }, w => w.Dispose());
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is SealpointException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    private sealed class BlockWorker(FileCipher cipher) : IDisposable
    {
        public FileCipher Cipher { get; } = cipher;
        public byte[] Plain { get; } = GC.AllocateUninitializedArray<byte>(PagesPerBlock * SealedFile.PageSize);
        public byte[] Sealed { get; } = GC.AllocateUninitializedArray<byte>(PagesPerBlock * PagedRecord);

        public void Dispose()
        {
            CryptographicOperations.ZeroMemory(Plain);
            Cipher.Dispose();
        }
    }
}

/// <summary>Lets a stream be wrapped by a reader that disposes it, without closing the caller's stream.</summary>
internal sealed class NonClosingStream(Stream inner) : Stream
{
    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
