using System.Security.Cryptography;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Tests;

/// <summary>The OpenSSL EVP fast path is really in use here and agrees with .NET's AesGcm/ChaCha20Poly1305 bit for bit.</summary>
public sealed class AeadTests
{
    [Theory]
    [InlineData(AeadAlgorithm.Aes256Gcm)]
    [InlineData(AeadAlgorithm.ChaCha20Poly1305)]
    public void EvpPathMatchesDotNetAndRejectsEveryFlippedBit(AeadAlgorithm algorithm)
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var evp = OpenSslAead.TryCreate(algorithm, key);
        Assert.NotNull(evp); // libcrypto is what .NET itself runs on; if this fails, the fast path silently vanished
        var rng = new Random(3);
        foreach (int length in new[] { 0, 1, 15, 16, 4096, 65536, 70001 })
        {
            byte[] nonce = RandomNumberGenerator.GetBytes(12), aad = RandomNumberGenerator.GetBytes(rng.Next(0, 60));
            byte[] plain = RandomNumberGenerator.GetBytes(length);
            byte[] ct1 = new byte[length], tag1 = new byte[16], ct2 = new byte[length], tag2 = new byte[16];
            evp!.Seal(nonce, plain, ct1, tag1, aad);
            if (algorithm == AeadAlgorithm.Aes256Gcm) { using var g = new AesGcm(key, 16); g.Encrypt(nonce, plain, ct2, tag2, aad); }
            else { using var c = new ChaCha20Poly1305(key); c.Encrypt(nonce, plain, ct2, tag2, aad); }
            Assert.Equal(ct2, ct1);
            Assert.Equal(tag2, tag1);

            byte[] back = new byte[length];
            Assert.True(evp.TryOpen(nonce, ct1, tag1, back, aad));
            Assert.Equal(plain, back);
            if (length > 0)
            {
                ct1[rng.Next(length)] ^= (byte)(1 << rng.Next(8));
                Assert.False(evp.TryOpen(nonce, ct1, tag1, back, aad));
                Assert.All(back, b => Assert.Equal(0, b));
            }
            tag1[rng.Next(16)] ^= 1;
            Assert.False(evp.TryOpen(nonce, ct2, tag1, back, aad));
        }
    }
}
