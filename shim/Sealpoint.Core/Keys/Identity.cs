using System.Security.Cryptography;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Keys;

/// <summary>A node's private key: what opens checkpoints sealed for it. Loaded only from files only its owner can read.</summary>
public sealed class Identity : IDisposable
{
    private readonly RSA? _rsa;
    private readonly ECDiffieHellman? _ecdh;

    private Identity(RSA? rsa, ECDiffieHellman? ecdh, string source)
    {
        _rsa = rsa;
        _ecdh = ecdh;
        Source = source;
        RecipientId = Recipient.IdOf(rsa is not null ? rsa.ExportSubjectPublicKeyInfo() : ecdh!.ExportSubjectPublicKeyInfo());
    }

    public string RecipientId { get; }
    public string Source { get; }

    public static Identity Load(string privateKeyPath)
    {
        RequireOwnerOnly(privateKeyPath);
        string pem;
        try { pem = File.ReadAllText(privateKeyPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SealpointException(ErrorKind.Key, $"private key {privateKeyPath} cannot be read: {e.Message}", "check the path and that this user may read it");
        }
        if (pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal) || pem.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
            throw new SealpointException(ErrorKind.Key, $"private key {privateKeyPath} is passphrase-protected, which Sealpoint does not read",
                "store the key unencrypted with mode 0600 (openssl pkey -in KEY -out KEY.plain), or use a node identity from 'sealpoint keys issue'");
        return Import(pem, privateKeyPath);
    }

    private static readonly string[] KeyLabels = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];
    private const string RsaEncryptionOid = "1.2.840.113549.1.1.1";
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";

    /// <summary>
    /// The one private key block of a PEM file, imported by its kind: the label, and for PKCS#8 the algorithm
    /// identifier (not a trial import of each kind, whose first exception in a process costs ~12 ms on a restore's
    /// critical path). The key itself is parsed and checked by .NET.
    /// </summary>
    private static Identity Import(string pem, string privateKeyPath)
    {
        SealpointException NotAKey(string why) => new(ErrorKind.Key, $"{privateKeyPath} holds no RSA or EC private key Sealpoint can read: {why}",
            "give a PEM private key (PKCS#8 'PRIVATE KEY', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY')");
        List<Pem.Block> keys;
        try { keys = Pem.Read(pem).Where(b => KeyLabels.Contains(b.Label)).ToList(); }
        catch (FormatException e) { throw NotAKey(e.Message); }
        if (keys.Count != 1)
            throw NotAKey(keys.Count == 0 ? "no PEM private key block" : $"{keys.Count} private key blocks, one expected");
        var key = keys[0];
        try
        {
            bool rsa = key.Label switch
            {
                "RSA PRIVATE KEY" => true,
                "EC PRIVATE KEY" => false,
                _ => Pkcs8Algorithm(key.Data) switch
                {
                    RsaEncryptionOid => true,
                    EcPublicKeyOid => false,
                    var oid => throw NotAKey($"its PKCS#8 key algorithm is {oid}, neither RSA nor EC"),
                },
            };
            AsymmetricAlgorithm algorithm = rsa ? RSA.Create() : ECDiffieHellman.Create();
            try
            {
                switch (key.Label)
                {
                    case "RSA PRIVATE KEY": ((RSA)algorithm).ImportRSAPrivateKey(key.Data, out _); break;
                    case "EC PRIVATE KEY": ((ECDiffieHellman)algorithm).ImportECPrivateKey(key.Data, out _); break;
                    default: algorithm.ImportPkcs8PrivateKey(key.Data, out _); break;
                }
                return new Identity(algorithm as RSA, algorithm as ECDiffieHellman, privateKeyPath);
            }
            catch
            {
                algorithm.Dispose();
                throw;
            }
        }
        // An unknown curve OID is a PlatformNotSupportedException (found by the fuzz test).
        catch (Exception e) when (e is CryptographicException or ArgumentException or System.Formats.Asn1.AsnContentException or PlatformNotSupportedException)
        {
            throw NotAKey(e.Message);
        }
    }

    /// <summary>The algorithm OID of a PKCS#8 PrivateKeyInfo (RFC 5208): SEQUENCE { version, SEQUENCE { OID, ... }, ... }.</summary>
    private static string Pkcs8Algorithm(byte[] der)
    {
        var info = new System.Formats.Asn1.AsnReader(der, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        info.ReadInteger();
        return info.ReadSequence().ReadObjectIdentifier();
    }

    /// <summary>A key file anyone but its owner can read is refused, as ssh does.</summary>
    public static void RequireOwnerOnly(string path)
    {
        UnixFileMode mode;
        try { mode = File.GetUnixFileMode(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SealpointException(ErrorKind.NotFound, $"private key {path} does not exist",
                "give the node's private key (default PKI layout: /etc/pki/sealpoint/NAME/private/key.pem)");
        }
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & others) != 0)
            throw new SealpointException(ErrorKind.Key, $"private key {path} can be read by others (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')})",
                $"chmod 600 {path}");
    }

    /// <summary>Finds this identity's stanza and unwraps the data key; a clear error when it is not a recipient.</summary>
    public byte[] UnwrapDataKey(Envelope envelope, string source)
    {
        var stanza = envelope.Recipients.FirstOrDefault(r => r.Id == RecipientId);
        if (stanza is null)
        {
            string listed = string.Join(", ", envelope.Recipients.Select(r => r.Subject is null ? r.Id[..16] : $"{r.Subject} ({r.Id[..16]}…)"));
            throw new SealpointException(ErrorKind.Key,
                $"the key {Source} (recipient {RecipientId[..16]}…) is not a recipient of checkpoint {envelope.CheckpointId} in {source}; it is sealed for: {listed}",
                "use the private key of one of those recipients, or have the checkpoint sealed for this node's certificate");
        }
        byte[] checkpointId = Convert.FromHexString(envelope.CheckpointId);
        byte[]? key = stanza.Type switch
        {
            KeyWrap.RsaOaepSha256 when _rsa is not null => KeyWrap.Unwrap(_rsa, stanza),
            KeyWrap.EcdhP256 or KeyWrap.EcdhP384 when _ecdh is not null => KeyWrap.Unwrap(_ecdh, RecipientId, stanza, checkpointId),
            _ => null,
        };
        if (key is null || key.Length != 32)
            throw new IntegrityException($"the wrapped data key for recipient {RecipientId[..16]}… in {source} does not open with {Source} (the envelope was modified)");
        return key;
    }

    public void Dispose()
    {
        _rsa?.Dispose();
        _ecdh?.Dispose();
    }
}
