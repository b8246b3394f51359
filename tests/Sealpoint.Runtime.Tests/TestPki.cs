using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sealpoint.Core.Keys;

namespace Sealpoint.Runtime.Tests;

/// <summary>A throw-away PKI (CA, node identities, one revoked, one expired certificate) for policy and e2e tests.</summary>
public sealed class TestPki : IDisposable
{
    public TestPki(params string[] names)
    {
        Root = Directory.CreateTempSubdirectory("sealpoint-pki-").FullName;
        Pki = new Pki(Root);
        Pki.InitCa("sealpoint test CA", KeyAlgorithm.P256, 30, force: false);
        foreach (string name in names.Length > 0 ? names : ["node1", "node2"]) Pki.Issue(name, KeyAlgorithm.P256, 30, force: false);
    }

    public string Root { get; }
    public Pki Pki { get; }

    public void Issue(string name, KeyAlgorithm algorithm = KeyAlgorithm.P256) => Pki.Issue(name, algorithm, 30, force: false);

    public void Revoke(string name)
    {
        using var cert = X509Certificate2.CreateFromPem(File.ReadAllText(Pki.CertPath(name)));
        Pki.Revoke(cert);
    }

    /// <summary>A certificate for NAME signed by this CA whose validity ended yesterday.</summary>
    public void IssueExpired(string name)
    {
        using var ca = X509Certificate2.CreateFromPemFile(Pki.CaCertPath, Pki.CaKeyPath);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.DigitalSignature, true));
        using var caKey = ca.GetECDsaPrivateKey()!;
        var cert = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1),
            RandomNumberGenerator.GetBytes(12));
        Directory.CreateDirectory(Path.GetDirectoryName(Pki.CertPath(name))!);
        File.WriteAllText(Pki.CertPath(name), cert.ExportCertificatePem() + "\n");
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
