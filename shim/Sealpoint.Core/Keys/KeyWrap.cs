using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Keys;

/// <summary>
/// Wrapping the 256-bit data key for one recipient (docs/format.md, "Recipient stanzas"):
/// RSA-OAEP-SHA256, or ephemeral-static ECDH on P-256/P-384, HKDF-SHA256, and AES-256-GCM.
/// </summary>
internal static class KeyWrap
{
    public const string RsaOaepSha256 = "rsa-oaep-sha256";
    public const string EcdhP256 = "ecdh-p256";
    public const string EcdhP384 = "ecdh-p384";

    public static string EcdhTypeFor(ECCurve curve, string source)
    {
        string? oid = curve.Oid?.Value;
        return oid switch
        {
            "1.2.840.10045.3.1.7" => EcdhP256,
            "1.3.132.0.34" => EcdhP384,
            _ => throw new SealpointException(ErrorKind.Key, $"{source} uses EC curve {curve.Oid?.FriendlyName ?? oid ?? "(unnamed)"}; only P-256 and P-384 are supported",
                "issue a certificate with an EC P-256 or P-384 key, or RSA"),
        };
    }

    /// <param name="ephemeralForVectors">Only for test vectors: a fixed ephemeral key instead of a fresh one.</param>
    public static RecipientStanza Wrap(Recipient recipient, ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> checkpointId, ECDiffieHellman? ephemeralForVectors = null)
    {
        if (recipient.Type == RsaOaepSha256)
        {
            using RSA rsa = recipient.Certificate.GetRSAPublicKey()!;
            return new RecipientStanza
            {
                Id = recipient.Id, Type = recipient.Type, Subject = recipient.Subject,
                WrappedKey = Convert.ToBase64String(rsa.Encrypt(dataKey.ToArray(), RSAEncryptionPadding.OaepSHA256)),
            };
        }
        using ECDiffieHellman peer = recipient.Certificate.GetECDiffieHellmanPublicKey()!;
        var curve = peer.ExportParameters(false).Curve;
        using var ephemeral = ephemeralForVectors ?? ECDiffieHellman.Create(curve);
        byte[] ephemeralSpki = ephemeral.ExportSubjectPublicKeyInfo();
        byte[] shared = ephemeral.DeriveRawSecretAgreement(peer.PublicKey);
        byte[] wrapped = new byte[dataKey.Length + AeadAlgorithms.TagSize];
        try
        {
            Seal(shared, ephemeralSpki, recipient.Certificate.PublicKey.ExportSubjectPublicKeyInfo(), recipient.Id, checkpointId, dataKey, wrapped);
        }
        finally { CryptographicOperations.ZeroMemory(shared); }
        return new RecipientStanza
        {
            Id = recipient.Id, Type = recipient.Type, Subject = recipient.Subject,
            EphemeralKey = Convert.ToBase64String(ephemeralSpki), WrappedKey = Convert.ToBase64String(wrapped),
        };
    }

    /// <summary>KEK = HKDF-SHA256(Z, salt = checkpoint id, info = label || ephemeral SPKI || recipient SPKI); AES-256-GCM, zero nonce (the KEK is single-use).</summary>
    private static void Seal(byte[] shared, byte[] ephemeralSpki, byte[] recipientSpki, string recipientId, ReadOnlySpan<byte> checkpointId,
        ReadOnlySpan<byte> dataKey, Span<byte> wrapped)
    {
        Span<byte> kek = stackalloc byte[32];
        DeriveKek(shared, ephemeralSpki, recipientSpki, checkpointId, kek);
        using var gcm = new AesGcm(kek, AeadAlgorithms.TagSize);
        CryptographicOperations.ZeroMemory(kek);
        gcm.Encrypt(new byte[AeadAlgorithms.NonceSize], dataKey, wrapped[..dataKey.Length], wrapped[dataKey.Length..], WrapAad(checkpointId, recipientId));
    }

    public static byte[]? Unwrap(RSA rsa, RecipientStanza stanza)
    {
        try { return rsa.Decrypt(Convert.FromBase64String(stanza.WrappedKey), RSAEncryptionPadding.OaepSHA256); }
        catch (Exception e) when (e is CryptographicException or FormatException) { return null; }
    }

    public static byte[]? Unwrap(ECDiffieHellman ecdh, string recipientId, RecipientStanza stanza, ReadOnlySpan<byte> checkpointId)
    {
        try
        {
            if (stanza.EphemeralKey is null) return null;
            byte[] ephemeralSpki = Convert.FromBase64String(stanza.EphemeralKey);
            byte[] wrapped = Convert.FromBase64String(stanza.WrappedKey);
            if (wrapped.Length != 32 + AeadAlgorithms.TagSize) return null;
            using var peer = ECDiffieHellman.Create();
            peer.ImportSubjectPublicKeyInfo(ephemeralSpki, out int read);
            if (read != ephemeralSpki.Length) return null;
            byte[] shared = ecdh.DeriveRawSecretAgreement(peer.PublicKey);
            Span<byte> kek = stackalloc byte[32];
            try { DeriveKek(shared, ephemeralSpki, ecdh.ExportSubjectPublicKeyInfo(), checkpointId, kek); }
            finally { CryptographicOperations.ZeroMemory(shared); }
            using var gcm = new AesGcm(kek, AeadAlgorithms.TagSize);
            CryptographicOperations.ZeroMemory(kek);
            byte[] key = new byte[32];
            gcm.Decrypt(new byte[AeadAlgorithms.NonceSize], wrapped.AsSpan(0, 32), wrapped.AsSpan(32), key, WrapAad(checkpointId, recipientId));
            return key;
        }
        catch (Exception e) when (e is CryptographicException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    private static void DeriveKek(byte[] shared, byte[] ephemeralSpki, byte[] recipientSpki, ReadOnlySpan<byte> checkpointId, Span<byte> kek)
    {
        byte[] info = [.. "sealpoint/v1 ecdh-wrap"u8, .. ephemeralSpki, .. recipientSpki];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, kek, checkpointId, info);
    }

    private static byte[] WrapAad(ReadOnlySpan<byte> checkpointId, string recipientId) =>
        [.. "sealpoint/v1 wrap"u8, .. checkpointId, .. Convert.FromHexString(recipientId)];
}
