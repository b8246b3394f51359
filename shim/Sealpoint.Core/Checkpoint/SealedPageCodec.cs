using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Checkpoint;

/// <summary>
/// Page-level access to the memory images of a checkpoint whose envelope a recipient has authenticated. Opens single
/// page records, and seals a page at a given position exactly as the sealer did (same key, nonce and associated data:
/// the same plaintext gives the same record). With it a restoring node rebuilds a checkpoint's sealed memory images
/// from pages sealed in an earlier checkpoint of the same lineage (incremental transfer, docs/registry.md) without
/// writing plaintext anywhere. Layout facts of page files (docs/format.md) are exposed here so that packers need not
/// copy them.
/// </summary>
public sealed class SealedPageCodec : IDisposable
{
    public const int PageSize = SealedFile.PageSize;
    public const int TagSize = SealedFile.TagSize;
    public const int HeaderSize = SealedFile.HeaderSize;

    private readonly byte[] _dataKey;

    private SealedPageCodec(Envelope envelope, byte[] dataKey)
    {
        Envelope = envelope;
        _dataKey = dataKey;
    }

    /// <summary>The authenticated envelope.</summary>
    public Envelope Envelope { get; }

    /// <summary>Parses an envelope file's bytes, unwraps the data key with <paramref name="identity"/> and verifies the MAC.</summary>
    public static SealedPageCodec Open(byte[] envelopeFile, Identity identity, string source)
    {
        var file = EnvelopeFile.Parse(envelopeFile, source);
        byte[] key = identity.UnwrapDataKey(file.Envelope, source);
        try
        {
            file.VerifyMac(key, source);
            return new SealedPageCodec(file.Envelope, key);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(key);
            throw;
        }
    }

    /// <summary>Records in a page file of <paramref name="plaintextSize"/> bytes (one per started page).</summary>
    public static long PageCount(long plaintextSize) => SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize);

    public static long SealedSize(long plaintextSize) => SealedFile.SealedSize(SealedFileKind.Pages, plaintextSize);

    /// <summary>Where page <paramref name="index"/>'s ciphertext sits in the sealed file: at its plaintext offset.</summary>
    public static long CiphertextOffset(long index) => index * PageSize;

    /// <summary>Where page <paramref name="index"/>'s tag sits: in the tag table after the last page.</summary>
    public static long TagOffset(long plaintextSize, long index) => plaintextSize + index * TagSize;

    /// <summary>Where the 64-byte header sits: last, after the tag table.</summary>
    public static long HeaderOffset(long plaintextSize) => SealedFile.HeaderOffset(SealedFileKind.Pages, plaintextSize);

    /// <summary>Plaintext length of page <paramref name="index"/> (only a file's last page may be short).</summary>
    public static int PageLength(long plaintextSize, long index) => (int)Math.Min(PageSize, plaintextSize - index * PageSize);

    /// <summary>The envelope digest of a page file: SHA-256 over its header and every page's tag, in order.</summary>
    public static string DigestOf(ReadOnlySpan<byte> header, ReadOnlySpan<byte> tags)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(header);
        h.AppendData(tags);
        return "sha256:" + Hex.Lower(h.GetHashAndReset());
    }

    /// <summary>
    /// A codec for one page file of this checkpoint, given its 64-byte header: the file must be a page file of the
    /// envelope, and the header must belong to this checkpoint and name the envelope's page cipher.
    /// </summary>
    public PageFile OpenFile(string name, ReadOnlySpan<byte> header)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name && f.Kind == FileEntryKinds.Pages)
            ?? throw new IntegrityException($"'{name}' is not a memory image of checkpoint {Envelope.CheckpointId}");
        var parsed = SealedFile.ParseHeader(header, name);
        if (Hex.Lower(parsed.CheckpointId) != Envelope.CheckpointId)
            throw new IntegrityException($"'{name}' header belongs to checkpoint {Hex.Lower(parsed.CheckpointId)}, not to {Envelope.CheckpointId}");
        if (parsed.Kind != SealedFileKind.Pages || parsed.Aead != AeadAlgorithms.Parse(Envelope.PagesCipher, "envelope"))
            throw new IntegrityException($"'{name}' header is not a page file with the envelope's page cipher");
        return new PageFile(name, entry.Size!.Value, SealedFile.CreateCipher(_dataKey, parsed, name));
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_dataKey);

    /// <summary>One page file's cipher. Not thread-safe: one per worker.</summary>
    public sealed class PageFile : IDisposable
    {
        private readonly FileCipher _cipher;

        internal PageFile(string name, long size, FileCipher cipher)
        {
            Name = name;
            Size = size;
            PageCount = SealedPageCodec.PageCount(size);
            _cipher = cipher;
        }

        public string Name { get; }
        /// <summary>Plaintext size from the authenticated envelope.</summary>
        public long Size { get; }
        public long PageCount { get; }

        public int PageLength(long index)
        {
            if (index < 0 || index >= PageCount) throw new IntegrityException($"page {index} is outside '{Name}' ({PageCount} pages)");
            return SealedPageCodec.PageLength(Size, index);
        }

        /// <summary>Verifies and decrypts one page; false (and zeroed output) when it does not authenticate.</summary>
        public bool TryOpen(long index, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
        {
            int len = PageLength(index);
            if (ciphertext.Length != len || tag.Length != TagSize || plaintext.Length < len) return false;
            return _cipher.TryOpen(index, false, ciphertext, tag, plaintext[..len]);
        }

        /// <summary>Seals one page at <paramref name="index"/>, exactly as the sealer does.</summary>
        public void Seal(long index, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
        {
            int len = PageLength(index);
            if (plaintext.Length != len || ciphertext.Length != len || tag.Length != TagSize)
                throw new ArgumentException($"page {index} of '{Name}' has {len} bytes");
            _cipher.Seal(index, false, plaintext, ciphertext, tag);
        }

        public void Dispose() => _cipher.Dispose();
    }
}
