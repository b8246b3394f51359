using System.Security.Cryptography;

namespace Sealpoint.Core.Crypto;

/// <summary>
/// A keyed fingerprint of a memory page, for recognising unchanged pages between checkpoints without hashing plaintext
/// in the clear (docs/registry.md, "Incremental"). Construction (universal hash, then a block-cipher PRP):
/// <c>F(page) = AES-256_K2( GMAC_K1(nonce = 0^96, AAD = page) )</c>, with K1 and K2 derived from the node's page-hash
/// key by HKDF-SHA256. GMAC with a fixed nonce is GHASH_H(page, length) XOR a constant, an almost-XOR-universal hash;
/// encrypting its output under an independent AES key makes a PRF (the standard UHF-then-PRP composition), so
/// fingerprints reveal nothing about pages to whoever lacks the key. It runs on AES-NI/PCLMUL like the page sealing,
/// several times cheaper per page than HMAC-SHA256 here. The PRP step runs over many pages at once
/// (<see cref="Finish"/>): a block cipher call per page would cost more than the hashing. Not thread-safe: one
/// instance per thread.
/// </summary>
public sealed class PageFingerprint : IDisposable
{
    public const int Size = 16;
    private static readonly byte[] Nonce = new byte[AeadAlgorithms.NonceSize];
    private readonly Aead _gmac;
    private readonly Aes _prp;

    public PageFingerprint(ReadOnlySpan<byte> key)
    {
        Span<byte> k1 = stackalloc byte[32], k2 = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, k1, [], "sealpoint/v1 page-fingerprint ghash"u8);
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, k2, [], "sealpoint/v1 page-fingerprint prp"u8);
        _gmac = new Aead(AeadAlgorithm.Aes256Gcm, k1);
        _prp = Aes.Create();
        _prp.Key = k2.ToArray();
        CryptographicOperations.ZeroMemory(k1);
        CryptographicOperations.ZeroMemory(k2);
    }

    /// <summary>Step 1, per page: the universal hash (GMAC with the fixed nonce). Not a fingerprint until <see cref="Finish"/>.</summary>
    public void Hash(ReadOnlySpan<byte> page, Span<byte> hash) => _gmac.Seal(Nonce, [], [], hash[..Size], page);

    /// <summary>Step 2, for any number of step-1 hashes laid end to end: the PRP, in place, in one call.</summary>
    public void Finish(Span<byte> hashes)
    {
        if (hashes.Length % Size != 0) throw new ArgumentException("whole 16-byte hashes only", nameof(hashes));
        if (!hashes.IsEmpty) _prp.EncryptEcb(hashes, hashes, PaddingMode.None);
    }

    /// <summary>Both steps for one page.</summary>
    public void Compute(ReadOnlySpan<byte> page, Span<byte> fingerprint)
    {
        Hash(page, fingerprint);
        Finish(fingerprint[..Size]);
    }

    public void Dispose()
    {
        _gmac.Dispose();
        _prp.Dispose();
    }
}
