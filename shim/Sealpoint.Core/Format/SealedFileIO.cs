using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Sealpoint.Core.Format;

/// <summary>Whole-file sealing and opening between files on disk, for either kind.</summary>
internal static class SealedFileIO
{
    /// <summary>Seals a source file into a new destination file (or, for page files, in place when both are the same file).</summary>
    public static SealedFileInfo Seal(SafeFileHandle source, long length, Stream destination, SealedFileHeader header, Func<FileCipher> newCipher,
        PageVisitor? onPage = null)
    {
        if (header.Kind == SealedFileKind.Pages)
            return PagesFile.Seal(source, length, ((FileStream)destination).SafeFileHandle, header, newCipher, onPage);
        using var sealing = new SealingStream(destination, newCipher(), header, ownsOutput: false);
        // Sized to the file: most images are small, and the buffer is wiped after use.
        byte[] buffer = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(length, 1, 1 << 20));
        try
        {
            for (long off = 0; off < length;)
            {
                int n = RandomAccess.Read(source, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - off)), off);
                if (n == 0) throw new SealpointException(ErrorKind.Io, "a file shrank while it was being sealed", "make sure nothing writes to the checkpoint while it is sealed");
                sealing.Write(buffer, 0, n);
                off += n;
            }
        }
        finally { CryptographicOperations.ZeroMemory(buffer); }
        return sealing.Finish();
    }

    /// <summary>Verifies and decrypts a sealed file into <paramref name="destination"/>; throws on the first bad record.</summary>
    public static void Open(SafeFileHandle sealedHandle, SealedFileHeader header, byte[] headerBytes, string name, long plaintextSize, string digest,
        SafeFileHandle destination, Func<FileCipher> newCipher)
    {
        if (header.Kind == SealedFileKind.Pages)
        {
            PagesFile.Open(sealedHandle, headerBytes, name, plaintextSize, digest, destination, newCipher);
            return;
        }
        if (plaintextSize <= SealedFile.StreamChunkSize)
        {
            using var cipher = newCipher();
            OpenSingleRecord(sealedHandle, headerBytes, name, (int)plaintextSize, digest, destination, cipher);
            return;
        }
        // Unbuffered: the opening stream reads whole records, and a 64 KiB buffer per small file only cost allocations.
        using var input = new FileStream(new SafeFileHandle(sealedHandle.DangerousGetHandle(), ownsHandle: false), FileAccess.Read, bufferSize: 0);
        input.Position = SealedFile.HeaderSize;
        using var opening = new OpeningStream(input, newCipher(), header, headerBytes, name, plaintextSize, digest, ownsInput: false);
        byte[] buffer = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(plaintextSize, 1, 1 << 20));
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
    }

    /// <summary>
    /// A stream file of one record (at most one chunk: most images of a process tree) opened with one read and one
    /// write, the checks and their order those of <see cref="OpeningStream"/>: the record complete, its tag, nothing
    /// after it, then the digest (SHA-256 over header || tag). Nothing is written unless all pass.
    /// </summary>
    private static void OpenSingleRecord(SafeFileHandle sealedHandle, byte[] headerBytes, string name, int plaintextSize, string digest,
        SafeFileHandle destination, FileCipher cipher)
    {
        int body = plaintextSize + SealedFile.TagSize;
        // Record and tag, one byte more to see data appended, then the plaintext.
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(body + 1 + plaintextSize);
        try
        {
            var sealedPart = buffer.AsSpan(0, body + 1);
            int got = 0;
            for (int n; got < sealedPart.Length && (n = RandomAccess.Read(sealedHandle, sealedPart[got..], SealedFile.HeaderSize + got)) > 0;) got += n;
            if (got < body) throw OpeningStream.Truncated(name, 0, 1);
            var tag = sealedPart.Slice(plaintextSize, SealedFile.TagSize);
            var plaintext = buffer.AsSpan(body + 1, plaintextSize);
            if (!cipher.TryOpen(0, last: true, sealedPart[..plaintextSize], tag, plaintext)) throw OpeningStream.Unauthentic(name, 0);
            if (got > body) throw OpeningStream.Appended(name);
            Span<byte> digested = stackalloc byte[SealedFile.HeaderSize + SealedFile.TagSize];
            headerBytes.CopyTo(digested);
            tag.CopyTo(digested[SealedFile.HeaderSize..]);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(digested, hash);
            if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes("sha256:" + Crypto.Hex.Lower(hash)), System.Text.Encoding.ASCII.GetBytes(digest)))
                throw OpeningStream.DigestMismatch(name);
            RandomAccess.Write(destination, plaintext, 0);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, body + 1 + plaintextSize));
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
