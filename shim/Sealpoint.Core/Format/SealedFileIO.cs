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
    /// Verifies and decrypts a stream file of one record (at most one chunk: most images of a process tree; read whole
    /// by the caller) from what follows its header, <paramref name="afterHeader"/>
    /// (as read, up to one byte more than record and tag), into <paramref name="plaintext"/> (its envelope size), in
    /// <see cref="OpeningStream"/>'s order: the record complete, its tag, nothing after it, then the digest
    /// (SHA-256 over header || tag). On failure <paramref name="plaintext"/> holds nothing released.
    /// </summary>
    internal static void OpenSingleRecord(ReadOnlySpan<byte> afterHeader, ReadOnlySpan<byte> headerBytes, string name, string digest,
        FileCipher cipher, Span<byte> plaintext)
    {
        int body = plaintext.Length + SealedFile.TagSize;
        if (afterHeader.Length < body) throw OpeningStream.Truncated(name, 0, 1);
        var tag = afterHeader.Slice(plaintext.Length, SealedFile.TagSize);
        if (!cipher.TryOpen(0, last: true, afterHeader[..plaintext.Length], tag, plaintext)) throw OpeningStream.Unauthentic(name, 0);
        if (afterHeader.Length > body)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw OpeningStream.Appended(name);
        }
        Span<byte> digested = stackalloc byte[SealedFile.HeaderSize + SealedFile.TagSize];
        headerBytes.CopyTo(digested);
        tag.CopyTo(digested[SealedFile.HeaderSize..]);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(digested, hash);
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes("sha256:" + Crypto.Hex.Lower(hash)), System.Text.Encoding.ASCII.GetBytes(digest)))
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw OpeningStream.DigestMismatch(name);
        }
    }
}
