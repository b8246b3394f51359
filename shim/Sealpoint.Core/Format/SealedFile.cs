using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>How a sealed file's plaintext is cut: a STREAM of chunks, or independent 4 KiB pages.</summary>
public enum SealedFileKind : byte
{
    Stream = 1,
    Pages = 2,
}

/// <summary>The 64-byte header of every sealed file (docs/format.md, "Sealed files"): first in stream files, last in page files.</summary>
internal sealed record SealedFileHeader(SealedFileKind Kind, AeadAlgorithm Aead, int ChunkSize, byte[] CheckpointId, byte[] Salt)
{
    public byte[] ToBytes()
    {
        var b = new byte[SealedFile.HeaderSize];
        SealedFile.Magic.CopyTo(b);
        b[8] = (byte)Kind;
        b[9] = (byte)Aead;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), (uint)ChunkSize);
        CheckpointId.CopyTo(b, 16);
        Salt.CopyTo(b, 32);
        return b;
    }
}

/// <summary>Layout constants, size arithmetic and header parsing of sealed files.</summary>
internal static class SealedFile
{
    public const int HeaderSize = 64;
    public const int IdSize = 16;
    public const int TagSize = AeadAlgorithms.TagSize;
    public const int StreamChunkSize = 64 * 1024;
    public const int PageSize = 4096;

    /// <summary>"SEALPT", a NUL, and the format version 1.</summary>
    public static ReadOnlySpan<byte> Magic => [(byte)'S', (byte)'E', (byte)'A', (byte)'L', (byte)'P', (byte)'T', 0, 1];

    public static int ChunkSizeOf(SealedFileKind kind) => kind == SealedFileKind.Pages ? PageSize : StreamChunkSize;

    /// <summary>Records in a sealed file: a stream always has at least one (the last-flagged one); pages have one per started page.</summary>
    public static long RecordCount(SealedFileKind kind, long plaintextSize)
    {
        int chunk = ChunkSizeOf(kind);
        long n = (plaintextSize + chunk - 1) / chunk;
        return kind == SealedFileKind.Stream && n == 0 ? 1 : n;
    }

    public static long SealedSize(SealedFileKind kind, long plaintextSize) =>
        HeaderSize + plaintextSize + RecordCount(kind, plaintextSize) * TagSize;

    /// <summary>
    /// Where the header sits: first in a stream file; last in a page file, whose ciphertext pages keep the plaintext
    /// offsets (page i at i*4096), followed by the tag table and then the header.
    /// </summary>
    public static long HeaderOffset(SealedFileKind kind, long plaintextSize) =>
        kind == SealedFileKind.Pages ? plaintextSize + RecordCount(kind, plaintextSize) * TagSize : 0;

    /// <summary>Plaintext size implied by a sealed file's length, or -1 when no plaintext size fits.</summary>
    public static long PlaintextSizeOf(SealedFileKind kind, long sealedSize)
    {
        long body = sealedSize - HeaderSize;
        if (body < 0) return -1;
        int record = ChunkSizeOf(kind) + TagSize;
        long full = body / record, rest = body % record;
        long plain = full * ChunkSizeOf(kind) + (rest == 0 ? 0 : rest - TagSize);
        if (rest != 0 && rest < TagSize) return -1;
        return SealedSize(kind, plain) == sealedSize ? plain : -1;
    }

    public static SealedFileHeader ParseHeader(ReadOnlySpan<byte> b, string name)
    {
        if (b.Length < HeaderSize)
            throw new IntegrityException($"'{name}' is too short to be a sealed file ({b.Length} bytes)");
        if (!b[..6].SequenceEqual(Magic[..6]) || b[6] != 0)
            throw new IntegrityException($"'{name}' is not a Sealpoint sealed file (bad magic)");
        if (b[7] != Magic[7])
            throw new IntegrityException($"'{name}' has sealed-format version {b[7]}, this build reads version {Magic[7]}",
                "open it with a Sealpoint release that supports that version");
        var kind = (SealedFileKind)b[8];
        if (kind is not (SealedFileKind.Stream or SealedFileKind.Pages))
            throw new IntegrityException($"'{name}' has an unknown sealed-file kind {b[8]}");
        var aead = (AeadAlgorithm)b[9];
        if (aead is not (AeadAlgorithm.Aes256Gcm or AeadAlgorithm.ChaCha20Poly1305))
            throw new IntegrityException($"'{name}' names an unknown cipher {b[9]}");
        int chunk = (int)BinaryPrimitives.ReadUInt32LittleEndian(b[12..]);
        if (chunk != ChunkSizeOf(kind) || b[10] != 0 || b[11] != 0 || b[48..64].IndexOfAnyExcept((byte)0) >= 0)
            throw new IntegrityException($"'{name}' has an invalid sealed-file header");
        return new SealedFileHeader(kind, aead, chunk, b[16..32].ToArray(), b[32..48].ToArray());
    }

    /// <summary>
    /// The per-file AEAD key: HKDF-SHA256(ikm = data key, salt = the file's random salt,
    /// info = "sealpoint/v1 file-key" 0x00 name). A fresh salt per file makes every (key, nonce) pair unique.
    /// </summary>
    public static FileCipher CreateCipher(ReadOnlySpan<byte> dataKey, SealedFileHeader header, string name)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        Span<byte> key = stackalloc byte[AeadAlgorithms.KeySize];
        byte[] info = [.. "sealpoint/v1 file-key"u8, 0, .. nameBytes];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey, key, header.Salt, info);
        // The binding enters every record's associated data: checkpoint id, kind, cipher, salt and name.
        byte[] binding = SHA256.HashData([.. "sealpoint/v1 file-binding"u8, .. header.ToBytes(), .. nameBytes]);
        try { return new FileCipher(new Aead(header.Aead, key), binding); }
        finally { CryptographicOperations.ZeroMemory(key); }
    }
}

/// <summary>Seals and opens the records of one file: nonce = 0^3 || last || index (BE64); AAD = binding || index || last.</summary>
internal sealed class FileCipher(Aead aead, byte[] binding) : IDisposable
{
    public const int AadSize = 32 + 8 + 1;

    public void Seal(long index, bool last, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        Span<byte> nonce = stackalloc byte[AeadAlgorithms.NonceSize];
        Span<byte> aad = stackalloc byte[AadSize];
        Fill(index, last, nonce, aad);
        aead.Seal(nonce, plaintext, ciphertext, tag, aad);
    }

    public bool TryOpen(long index, bool last, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[AeadAlgorithms.NonceSize];
        Span<byte> aad = stackalloc byte[AadSize];
        Fill(index, last, nonce, aad);
        return aead.TryOpen(nonce, ciphertext, tag, plaintext, aad);
    }

    private void Fill(long index, bool last, Span<byte> nonce, Span<byte> aad)
    {
        nonce.Clear();
        nonce[3] = last ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], index);
        binding.CopyTo(aad);
        BinaryPrimitives.WriteInt64BigEndian(aad[32..], index);
        aad[40] = last ? (byte)1 : (byte)0;
    }

    public void Dispose() => aead.Dispose();
}
