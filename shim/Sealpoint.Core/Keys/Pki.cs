using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Sealpoint.Core.Keys;

/// <summary>
/// A PKI folder in CRIU's TLS layout: CA/cacert.pem, CA/cacrl.pem (and the CA's key in CA/private/cakey.pem),
/// NAME/cert.pem and NAME/private/key.pem. Creates the CA and node identities and checks recipients against them.
/// </summary>
public sealed class Pki(string root)
{
    public const string DefaultRoot = "/etc/pki/sealpoint";

    public string Root { get; } = Path.GetFullPath(root);
    public string CaCertPath => Path.Combine(Root, "CA", "cacert.pem");
    public string CaKeyPath => Path.Combine(Root, "CA", "private", "cakey.pem");
    public string CrlPath => Path.Combine(Root, "CA", "cacrl.pem");
    public string CertPath(string name) => Path.Combine(Root, CheckName(name), "cert.pem");
    public string KeyPath(string name) => Path.Combine(Root, CheckName(name), "private", "key.pem");
    public bool HasCa => File.Exists(CaCertPath);

    private static string CheckName(string name) =>
        name.Length > 0 && name.Length <= 64 && name != "CA" && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.'
            ? name
            : throw new SealpointException(ErrorKind.Usage, $"'{name}' is not a valid identity name", "use letters, digits, '-', '_' and '.' (not 'CA')");

    public void InitCa(string commonName, KeyAlgorithm algorithm, int days, bool force)
    {
        if (HasCa && !force)
            throw new SealpointException(ErrorKind.Usage, $"a CA already exists in {Root}", "keep it, or pass --force to replace it (certificates it issued will no longer validate)");
        using var key = algorithm.Generate();
        var req = NewRequest($"CN={commonName}", key);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        using var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(days));
        WritePrivate(CaKeyPath, ExportKeyPem(key));
        WritePublic(CaCertPath, ca.ExportCertificatePem());
        WriteCrl(new CertificateRevocationListBuilder(), ca, BigInteger.One);
    }

    /// <summary>Issues NAME/cert.pem and NAME/private/key.pem, signed by the CA.</summary>
    public X509Certificate2 Issue(string name, KeyAlgorithm algorithm, int days, bool force)
    {
        if (File.Exists(CertPath(name)) && !force)
            throw new SealpointException(ErrorKind.Usage, $"identity '{name}' already exists in {Root}", "pick another name, or pass --force to replace it");
        using var ca = LoadCaWithKey();
        using var key = algorithm.Generate();
        var req = NewRequest($"CN={name}", key);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        // EC keys are used for ECDH key agreement; RSA keys for key transport (OAEP).
        req.CertificateExtensions.Add(new X509KeyUsageExtension(key is RSA
            ? X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature
            : X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var notAfter = DateTimeOffset.UtcNow.AddDays(days);
        if (notAfter > ca.NotAfter) notAfter = ca.NotAfter;
        // The CA's key type may differ from the node's, so sign through an explicit generator.
        using var caEc = ca.GetECDsaPrivateKey();
        using var caRsa = caEc is null ? ca.GetRSAPrivateKey() : null;
        var generator = caEc is not null ? X509SignatureGenerator.CreateForECDsa(caEc) : X509SignatureGenerator.CreateForRSA(caRsa!, RSASignaturePadding.Pkcs1);
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive INTEGER
        var cert = req.Create(ca.SubjectName, generator, DateTimeOffset.UtcNow.AddMinutes(-5), notAfter, serial);
        WritePrivate(KeyPath(name), ExportKeyPem(key));
        WritePublic(CertPath(name), cert.ExportCertificatePem());
        return cert;
    }

    /// <summary>Adds a certificate to the CA's CRL.</summary>
    public void Revoke(X509Certificate2 certificate)
    {
        using var ca = LoadCaWithKey();
        BigInteger number = BigInteger.Zero;
        var builder = File.Exists(CrlPath)
            ? CertificateRevocationListBuilder.LoadPem(File.ReadAllText(CrlPath), out number)
            : new CertificateRevocationListBuilder();
        builder.AddEntry(certificate, DateTimeOffset.UtcNow, X509RevocationReason.KeyCompromise);
        WriteCrl(builder, ca, number + 1);
    }

    /// <summary>The cheap check of a recipient: its certificate's validity period.</summary>
    private static void CheckValidityPeriod(X509Certificate2 certificate, string source)
    {
        var now = DateTime.UtcNow;
        if (certificate.NotAfter.ToUniversalTime() < now)
            throw new SealpointException(ErrorKind.Policy, $"certificate {source} ({certificate.Subject}) expired on {certificate.NotAfter.ToUniversalTime():u}",
                "issue a new certificate for that recipient (sealpoint keys issue NAME --force)");
        if (certificate.NotBefore.ToUniversalTime() > now.AddMinutes(5))
            throw new SealpointException(ErrorKind.Policy, $"certificate {source} ({certificate.Subject}) is not valid before {certificate.NotBefore.ToUniversalTime():u}",
                "check the clocks of this node and of the CA");
    }

    /// <summary>
    /// The costly check of a recipient (the first X509Chain of a process loads the system trust store, about 60 ms):
    /// when this PKI has a CA, that the CA issued the certificate and that the CA's CRL (signature verified) does not
    /// list it.
    /// </summary>
    public void CheckIssuedByCa(X509Certificate2 certificate, string source)
    {
        if (!HasCa) return;
        var now = DateTime.UtcNow;
        string caPem = File.ReadAllText(CaCertPath);
        byte[]? crl = File.Exists(CrlPath) ? File.ReadAllBytes(CrlPath) : null;
        string? cacheEntry = VerifiedCache is null ? null : Path.Combine(VerifiedCache, VerificationKey(certificate, caPem, crl));
        if (cacheEntry is not null && StillVerified(cacheEntry, now)) return;
        using var ca = Recipient.LoadCertificate(caPem);
        ValidateAgainstCa(certificate, ca, source);
        if (cacheEntry is not null)
            RememberVerified(cacheEntry, new[] { certificate.NotAfter.ToUniversalTime(), ca.NotAfter.ToUniversalTime(), now.Add(VerifiedLifetime) }.Min());
    }

    /// <summary>
    /// An existing folder (root-only, e.g. /var/lib/sealpoint/verified-certificates) where certificates that passed the CA and CRL
    /// checks are remembered, so that each checkpoint does not build the chain again (the first X509Chain of a process
    /// costs about 50 ms). An entry is named by SHA-256 over the certificate, the CA certificate and the CRL: a new CRL
    /// or CA misses it. It holds until the certificate or CA expires, at most <see cref="VerifiedLifetime"/>.
    /// </summary>
    public string? VerifiedCache { get; init; }

    public static readonly TimeSpan VerifiedLifetime = TimeSpan.FromHours(1);

    private static string VerificationKey(X509Certificate2 certificate, string caPem, byte[]? crl)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Part(ReadOnlySpan<byte> bytes)
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(length, bytes.Length);
            h.AppendData(length);
            h.AppendData(bytes);
        }
        Part("sealpoint verified certificate v1"u8);
        Part(certificate.RawData);
        Part(System.Text.Encoding.UTF8.GetBytes(caPem));
        Part(crl ?? "no CRL"u8.ToArray());
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static bool StillVerified(string entry, DateTime now)
    {
        try
        {
            return File.Exists(entry) && long.TryParse(File.ReadAllText(entry).Trim(), out long until)
                && now < DateTimeOffset.FromUnixTimeSeconds(until).UtcDateTime;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Best effort: a cache that cannot be written only means the next check builds the chain again. The folder must
    /// exist (its owner creates it with the right mode); it is never created here.
    /// </summary>
    private static void RememberVerified(string entry, DateTime until)
    {
        try
        {
            if (!Directory.Exists(Path.GetDirectoryName(entry))) return;
            string tmp = $"{entry}.{Environment.ProcessId}.tmp";
            File.WriteAllText(tmp, new DateTimeOffset(until).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.Move(tmp, entry, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private void ValidateAgainstCa(X509Certificate2 certificate, X509Certificate2 ca, string source)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (!chain.Build(certificate))
        {
            string why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0));
            throw new SealpointException(ErrorKind.Policy, $"certificate {source} ({certificate.Subject}) is not issued by the CA in {CaCertPath}: {why}",
                $"use a certificate issued by that CA (sealpoint keys issue NAME --pki {Root}), or point --pki at the CA that issued it");
        }
        if (File.Exists(CrlPath) && IsRevoked(certificate, ca))
            throw new SealpointException(ErrorKind.Policy, $"certificate {source} ({certificate.Subject}) is revoked by {CrlPath}",
                "seal for another recipient, or issue a new certificate for this one");
    }

    private bool IsRevoked(X509Certificate2 certificate, X509Certificate2 ca)
    {
        byte[] der;
        try { der = Pem.Find(File.ReadAllText(CrlPath), "X509 CRL") ?? throw new FormatException("no X509 CRL block"); }
        catch (FormatException e) { throw new SealpointException(ErrorKind.Config, $"{CrlPath} is not a valid PEM CRL: {e.Message}", "regenerate it with 'sealpoint keys revoke' or remove it"); }
        if (!CrlSignatureValid(der, ca))
            throw new SealpointException(ErrorKind.Config, $"the CRL {CrlPath} is not signed by the CA {CaCertPath}",
                "replace it with the CRL of that CA (sealpoint keys revoke regenerates it)");
        var builder = CertificateRevocationListBuilder.Load(der, out _);
        // The builder has no lookup; removing the serial tells whether it was listed.
        return builder.RemoveEntry(certificate.SerialNumberBytes.Span);
    }

    /// <summary>Verifies a DER CRL's signature with the CA's key (ECDSA or RSA PKCS#1 v1.5 with SHA-2).</summary>
    internal static bool CrlSignatureValid(byte[] der, X509Certificate2 ca)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            ReadOnlyMemory<byte> tbs = outer.ReadEncodedValue();
            string oid = outer.ReadSequence().ReadObjectIdentifier();
            byte[] signature = outer.ReadBitString(out _);
            HashAlgorithmName hash = oid switch
            {
                "1.2.840.10045.4.3.2" or "1.2.840.113549.1.1.11" => HashAlgorithmName.SHA256,
                "1.2.840.10045.4.3.3" or "1.2.840.113549.1.1.12" => HashAlgorithmName.SHA384,
                "1.2.840.10045.4.3.4" or "1.2.840.113549.1.1.13" => HashAlgorithmName.SHA512,
                _ => default,
            };
            if (hash == default) return false;
            if (oid.StartsWith("1.2.840.10045", StringComparison.Ordinal))
            {
                using var ec = ca.GetECDsaPublicKey();
                return ec is not null && ec.VerifyData(tbs.Span, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
            using var rsa = ca.GetRSAPublicKey();
            return rsa is not null && rsa.VerifyData(tbs.Span, signature, hash, RSASignaturePadding.Pkcs1);
        }
        catch (Exception e) when (e is AsnContentException or CryptographicException)
        {
            return false;
        }
    }

    private X509Certificate2 LoadCaWithKey()
    {
        if (!HasCa)
            throw new SealpointException(ErrorKind.NotFound, $"no CA in {Root}", $"create one with 'sealpoint keys init --pki {Root}'");
        Identity.RequireOwnerOnly(CaKeyPath);
        return X509Certificate2.CreateFromPemFile(CaCertPath, CaKeyPath);
    }

    private static CertificateRequest NewRequest(string subject, AsymmetricAlgorithm key) => key switch
    {
        ECDsa ec => new CertificateRequest(subject, ec, ec.KeySize > 256 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256),
        RSA rsa => new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        _ => throw new ArgumentException("unsupported key"),
    };

    private static string ExportKeyPem(AsymmetricAlgorithm key) => key switch
    {
        ECDsa ec => ec.ExportPkcs8PrivateKeyPem(),
        RSA rsa => rsa.ExportPkcs8PrivateKeyPem(),
        _ => throw new ArgumentException("unsupported key"),
    };

    private void WriteCrl(CertificateRevocationListBuilder builder, X509Certificate2 ca, BigInteger number)
    {
        var now = DateTimeOffset.UtcNow;
        byte[] crl = ca.GetRSAPrivateKey() is { } rsa
            ? builder.Build(ca.SubjectName, X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1), number, now.AddYears(1), HashAlgorithmName.SHA256,
                X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false), now)
            : builder.Build(ca, number, now.AddYears(1), HashAlgorithmName.SHA256, thisUpdate: now);
        WritePublic(CrlPath, PemEncoding.WriteString("X509 CRL", crl) + "\n");
    }

    private static void WritePrivate(string path, string pem)
    {
        string dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        using (var w = new StreamWriter(fs)) w.Write(pem + "\n");
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
    }

    private static void WritePublic(string path, string pem)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, pem.EndsWith('\n') ? pem : pem + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Resolves a recipient given as a certificate path or as an identity name in this PKI.</summary>
    public Recipient ResolveRecipient(string nameOrPath)
    {
        var recipient = LoadRecipient(nameOrPath, out string path);
        CheckIssuedByCa(recipient.Certificate, path);
        return recipient;
    }

    /// <summary>
    /// <see cref="ResolveRecipient"/> in two steps, for a caller with other work to start meanwhile (a streamed dump
    /// starts CRIU): whether the certificate file exists is checked now, so a missing one fails at once; the returned
    /// function reads and parses it (a process's first use of OpenSSL, about 30 ms) and runs the validity, CA and CRL
    /// checks (the first certificate chain of a process, about 60 ms). A recipient must pass them before any data key
    /// is wrapped for it.
    /// </summary>
    public Func<Recipient> ReadRecipient(string nameOrPath)
    {
        string path = RecipientPath(nameOrPath);
        Recipient.CheckExists(path);
        return () =>
        {
            var recipient = Recipient.Load(path);
            CheckValidityPeriod(recipient.Certificate, path);
            CheckIssuedByCa(recipient.Certificate, path);
            return recipient;
        };
    }

    private Recipient LoadRecipient(string nameOrPath, out string path)
    {
        path = RecipientPath(nameOrPath);
        var recipient = Recipient.Load(path);
        CheckValidityPeriod(recipient.Certificate, path);
        return recipient;
    }

    private string RecipientPath(string nameOrPath) =>
        File.Exists(nameOrPath) || nameOrPath.Contains('/') || nameOrPath.EndsWith(".pem", StringComparison.Ordinal)
            ? nameOrPath
            : CertPath(nameOrPath);
}
