using System.Security.Cryptography;

namespace Sealpoint.Core.Crypto;

/// <summary>The AEADs a sealed checkpoint may use. Both take 256-bit keys, 96-bit nonces and 128-bit tags.</summary>
public enum AeadAlgorithm : byte
{
    ChaCha20Poly1305 = 1,
    Aes256Gcm = 2,
}

public static class AeadAlgorithms
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;

    public static string Name(this AeadAlgorithm algorithm) => algorithm switch
    {
        AeadAlgorithm.ChaCha20Poly1305 => "chacha20-poly1305",
        AeadAlgorithm.Aes256Gcm => "aes-256-gcm",
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
    };

    public static bool TryParse(string? name, out AeadAlgorithm algorithm)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "chacha20-poly1305" or "chacha20poly1305" or "chacha20":
                algorithm = AeadAlgorithm.ChaCha20Poly1305;
                return true;
            case "aes-256-gcm" or "aes256gcm" or "aes-gcm":
                algorithm = AeadAlgorithm.Aes256Gcm;
                return true;
            default:
                algorithm = default;
                return false;
        }
    }

    public static AeadAlgorithm Parse(string? name, string what) => TryParse(name, out var a)
        ? a
        : throw new SealpointException(ErrorKind.Usage, $"unknown cipher '{name}' for {what}",
            "use chacha20-poly1305 or aes-256-gcm");
}

/// <summary>One AEAD key, ready for many messages. Not thread-safe: one instance per worker.</summary>
internal sealed class Aead : IDisposable
{
    private readonly OpenSslAead? _evp;
    private readonly AesGcm? _gcm;
    private readonly ChaCha20Poly1305? _chacha;

    public Aead(AeadAlgorithm algorithm, ReadOnlySpan<byte> key)
    {
        Algorithm = algorithm;
        if (algorithm is not (AeadAlgorithm.Aes256Gcm or AeadAlgorithm.ChaCha20Poly1305)) throw new ArgumentOutOfRangeException(nameof(algorithm));
        _evp = OpenSslAead.TryCreate(algorithm, key);
        if (_evp is not null) return;
        if (algorithm == AeadAlgorithm.Aes256Gcm) _gcm = new AesGcm(key, AeadAlgorithms.TagSize);
        else if (algorithm == AeadAlgorithm.ChaCha20Poly1305) _chacha = new ChaCha20Poly1305(key);
        else throw new ArgumentOutOfRangeException(nameof(algorithm));
    }

    public AeadAlgorithm Algorithm { get; }

    public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        if (_evp is not null) _evp.Seal(nonce, plaintext, ciphertext, tag, aad);
        else if (_gcm is not null) _gcm.Encrypt(nonce, plaintext, ciphertext, tag, aad);
        else _chacha!.Encrypt(nonce, plaintext, ciphertext, tag, aad);
    }

    /// <summary>Verifies then decrypts. On a bad tag the output is zeroed and false returned: no unverified plaintext escapes.</summary>
    public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> aad)
    {
        if (_evp is not null) return _evp.TryOpen(nonce, ciphertext, tag, plaintext, aad);
        try
        {
            if (_gcm is not null) _gcm.Decrypt(nonce, ciphertext, tag, plaintext, aad);
            else _chacha!.Decrypt(nonce, ciphertext, tag, plaintext, aad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    public void Dispose()
    {
        _evp?.Dispose();
        _gcm?.Dispose();
        _chacha?.Dispose();
    }
}
