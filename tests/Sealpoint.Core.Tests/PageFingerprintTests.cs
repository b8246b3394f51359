using System.Security.Cryptography;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Tests;

/// <summary>The keyed page fingerprint is exactly the documented construction, and separates what it must.</summary>
public sealed class PageFingerprintTests
{
    [Fact]
    public void IsAesOfGmacUnderHkdfKeys_AsDocumented()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32), page = RandomNumberGenerator.GetBytes(4096);
        byte[] k1 = new byte[32], k2 = new byte[32], tag = new byte[16], expected = new byte[16], actual = new byte[16];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, k1, [], "sealpoint/v1 page-fingerprint ghash"u8);
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, k2, [], "sealpoint/v1 page-fingerprint prp"u8);
        using (var gcm = new AesGcm(k1, 16)) gcm.Encrypt(new byte[12], ReadOnlySpan<byte>.Empty, Span<byte>.Empty, tag, page);
        using (var aes = Aes.Create()) { aes.Key = k2; aes.EncryptEcb(tag, expected, PaddingMode.None); }
        using var fingerprint = new PageFingerprint(key);
        fingerprint.Compute(page, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void EqualPagesMatch_AnyChangeLengthOrKeyDiffers()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32), page = RandomNumberGenerator.GetBytes(4096);
        using var a = new PageFingerprint(key);
        using var other = new PageFingerprint(RandomNumberGenerator.GetBytes(32));
        byte[] Print(PageFingerprint f, ReadOnlySpan<byte> p) { var o = new byte[16]; f.Compute(p, o); return o; }
        byte[] reference = Print(a, page);
        Assert.Equal(reference, Print(a, page.ToArray()));
        Assert.NotEqual(reference, Print(other, page));
        Assert.NotEqual(reference, Print(a, page.AsSpan(0, 4095)));
        for (int bit = 0; bit < 4096 * 8; bit += 997)
        {
            byte[] changed = page.ToArray();
            changed[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotEqual(reference, Print(a, changed));
        }
        Assert.NotEqual(Print(a, new byte[4096]), Print(a, new byte[4096 - 16]));

        // Hashing many pages, then finishing them in one call, gives the same fingerprints.
        byte[] batch = new byte[3 * 16];
        for (int i = 0; i < 3; i++) a.Hash(page.AsSpan(i * 1000, 1000), batch.AsSpan(i * 16));
        a.Finish(batch);
        for (int i = 0; i < 3; i++) Assert.Equal(Print(a, page.AsSpan(i * 1000, 1000)), batch.AsSpan(i * 16, 16).ToArray());
    }
}
