using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Keys;

/// <summary>A public key that a checkpoint's data key is wrapped for, taken from an X.509 certificate.</summary>
public sealed class Recipient
{
    private Recipient(X509Certificate2 certificate, string type)
    {
        Certificate = certificate;
        Type = type;
        Id = IdOf(certificate.PublicKey.ExportSubjectPublicKeyInfo());
    }

    public X509Certificate2 Certificate { get; }
    /// <summary>SHA-256 of the SubjectPublicKeyInfo, lowercase hex.</summary>
    public string Id { get; }
    public string Type { get; }
    public string Subject => Certificate.Subject;

    public static string IdOf(ReadOnlySpan<byte> subjectPublicKeyInfo) => Hex.Lower(SHA256.HashData(subjectPublicKeyInfo));

    public static Recipient FromCertificate(X509Certificate2 certificate, string source)
    {
        try { return new Recipient(certificate, WrapTypeOf(certificate, source)); }
        // A damaged public key fails in OpenSSL; an unknown curve is a PlatformNotSupportedException (both found by fuzzing).
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            throw new SealpointException(ErrorKind.Key, $"recipient {source} has a public key that cannot be read: {e.Message}",
                "give a certificate with an intact RSA (2048+ bits) or EC P-256/P-384 key");
        }
    }

    private static string WrapTypeOf(X509Certificate2 certificate, string source)
    {
        string type;
        if (certificate.GetRSAPublicKey() is { } rsa)
        {
            using (rsa)
            {
                if (rsa.KeySize < 2048)
                    throw new SealpointException(ErrorKind.Key, $"recipient {source} has a {rsa.KeySize}-bit RSA key; at least 2048 bits are required",
                        "issue a new certificate with a 2048-bit or larger RSA key, or an EC P-256/P-384 key");
            }
            type = KeyWrap.RsaOaepSha256;
        }
        else if (certificate.GetECDiffieHellmanPublicKey() is { } ec)
        {
            using (ec)
            {
                type = KeyWrap.EcdhTypeFor(ec.ExportParameters(false).Curve, source);
            }
        }
        else
        {
            throw new SealpointException(ErrorKind.Key, $"recipient {source} has a key type Sealpoint cannot encrypt to",
                "use a certificate with an RSA (2048+ bits) or EC P-256/P-384 key");
        }
        return type;
    }

    public static Recipient Load(string certificatePath) => FromPem(ReadPem(certificatePath), certificatePath);

    /// <summary>A certificate file's text, not yet parsed: a missing or unreadable file fails here, without OpenSSL.</summary>
    private static string ReadPem(string certificatePath)
    {
        try
        {
            return File.ReadAllText(certificatePath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw Missing(certificatePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CannotRead(certificatePath, e);
        }
    }

    /// <summary>Fails at once, and without reading it, when there is no certificate file at <paramref name="certificatePath"/>.</summary>
    public static void CheckExists(string certificatePath)
    {
        if (!File.Exists(certificatePath)) throw Missing(certificatePath);
    }

    private static SealpointException Missing(string certificatePath) =>
        new(ErrorKind.NotFound, $"recipient certificate {certificatePath} does not exist",
            "give the path of a PEM certificate, or a name issued with 'sealpoint keys issue'");

    /// <summary>The recipient a PEM certificate read by <see cref="ReadPem"/> names.</summary>
    private static Recipient FromPem(string pem, string certificatePath)
    {
        X509Certificate2 cert;
        try
        {
            cert = LoadCertificate(pem);
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            throw CannotRead(certificatePath, e);
        }
        return FromCertificate(cert, certificatePath);
    }

    /// <summary>The first certificate of PEM text, as <see cref="X509Certificate2.CreateFromPem(ReadOnlySpan{char})"/> takes it (see <see cref="Pem"/> for why not that).</summary>
    /// <exception cref="FormatException">Not PEM, or no CERTIFICATE block.</exception>
    /// <exception cref="CryptographicException">The block is not an X.509 certificate.</exception>
    public static X509Certificate2 LoadCertificate(string pem) =>
        X509CertificateLoader.LoadCertificate(Pem.Find(pem, "CERTIFICATE") ?? throw new FormatException("no CERTIFICATE block"));

    private static SealpointException CannotRead(string certificatePath, Exception e) =>
        new(ErrorKind.Key, $"recipient certificate {certificatePath} cannot be read: {e.Message}",
            "give a PEM file with one X.509 certificate (-----BEGIN CERTIFICATE-----)");

    internal RecipientStanza Wrap(ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> checkpointId) =>
        KeyWrap.Wrap(this, dataKey, checkpointId);
}
