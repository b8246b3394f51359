using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Sealpoint.TestSupport;

/// <summary>A self-signed server certificate for 127.0.0.1/localhost, made in-process (no openssl CLI).</summary>
public static class SelfSignedCertificate
{
    /// <summary>Writes the certificate and its unencrypted PKCS#8 key as PEM files and returns it.</summary>
    public static X509Certificate2 Create(string certPemPath, string keyPemPath, string commonName = "127.0.0.1")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        // CA:true so clients can use this very certificate as their trust root (skopeo --cert-dir).
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(7));
        File.WriteAllText(certPemPath, cert.ExportCertificatePem() + "\n");
        File.WriteAllText(keyPemPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        return cert;
    }
}
