using System.Security.Cryptography;
using System.Text;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Sealpoint's PEM reader against .NET's (PemEncoding), the private key kinds a node identity may be, and mutated
/// key and certificate files: every outcome is a key, or a SealpointException that names the file, never a crash.
/// </summary>
public sealed class PemTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sealpoint-pem-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public void ReadsWhatPemEncodingWrites_WithTextAroundAndBetweenBlocks()
    {
        byte[] first = RandomNumberGenerator.GetBytes(700), second = RandomNumberGenerator.GetBytes(1);
        string text = "explanatory text\n" + PemEncoding.WriteString("CERTIFICATE", first) + "\r\n\r\nmore text\n"
            + PemEncoding.WriteString("X509 CRL", second).Replace("\n", "\r\n") + "\n";

        var blocks = Pem.Read(text);

        Assert.Equal(2, blocks.Count);
        Assert.Equal("CERTIFICATE", blocks[0].Label);
        Assert.Equal(first, blocks[0].Data);
        Assert.Equal("X509 CRL", blocks[1].Label);
        Assert.Equal(second, blocks[1].Data);
        Assert.Equal(second, Pem.Find(text, "X509 CRL"));
        Assert.Null(Pem.Find(text, "PRIVATE KEY"));
        Assert.Empty(Pem.Read("no PEM here"));
    }

    [Theory]
    [InlineData("-----BEGIN CERTIFICATE-----\nAAAA\n", "no '-----END CERTIFICATE-----' line")]
    [InlineData("-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n", "no '-----END CERTIFICATE-----' line")]
    [InlineData("-----BEGIN CERTIFICATE\nAAAA\n-----END CERTIFICATE-----\n", "does not end with")]
    [InlineData("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", "not base64")]
    [InlineData("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n", "empty")]
    [InlineData("-----BEGIN A-----\nAAAA\n-----BEGIN B-----\nAAAA\n-----END B-----\n-----END A-----\n", "cut short")]
    public void MalformedPemIsRefusedWithTheReason(string text, string reason)
    {
        var e = Assert.Throws<FormatException>(() => Pem.Read(text));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void MutatedPemAgreesWithPemEncodingOrIsRefused()
    {
        var rng = new Random(4242);
        string valid = PemEncoding.WriteString("CERTIFICATE", RandomNumberGenerator.GetBytes(300));
        const string alphabet = "-ABEGINDN Z=+/\n\r\t ab01";
        for (int i = 0; i < 20_000; i++)
        {
            var sb = new StringBuilder(valid);
            for (int m = rng.Next(1, 4); m > 0; m--)
            {
                int at = rng.Next(sb.Length);
                switch (rng.Next(3))
                {
                    case 0: sb[at] = alphabet[rng.Next(alphabet.Length)]; break;
                    case 1: sb.Remove(at, Math.Min(rng.Next(1, 12), sb.Length - at)); break;
                    default: sb.Insert(at, alphabet[rng.Next(alphabet.Length)]); break;
                }
            }
            string text = sb.ToString();
            List<Pem.Block> ours;
            try { ours = Pem.Read(text); }
            catch (FormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                continue;
            }
            // Whatever this reader accepts as one block, .NET's reader finds with the same label and bytes.
            if (ours.Count == 1 && PemEncoding.TryFind(text, out var fields))
            {
                Assert.Equal(text[fields.Label], ours[0].Label);
                Assert.Equal(Convert.FromBase64String(text[fields.Base64Data]), ours[0].Data);
            }
        }
    }

    [Theory]
    [InlineData("pkcs8-ec")]
    [InlineData("pkcs8-rsa")]
    [InlineData("sec1-ec-with-parameters")]
    [InlineData("pkcs1-rsa")]
    public void EveryPrivateKeyKindLoadsAsTheSameRecipient(string kind)
    {
        using var ec = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        using var rsa = RSA.Create(2048);
        (string pem, byte[] spki) = kind switch
        {
            "pkcs8-ec" => (ec.ExportPkcs8PrivateKeyPem(), ec.ExportSubjectPublicKeyInfo()),
            "pkcs8-rsa" => (rsa.ExportPkcs8PrivateKeyPem(), rsa.ExportSubjectPublicKeyInfo()),
            // What `openssl ecparam -genkey` writes: an EC PARAMETERS block before the key.
            "sec1-ec-with-parameters" => (PemEncoding.WriteString("EC PARAMETERS", [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]) + "\n"
                + ec.ExportECPrivateKeyPem(), ec.ExportSubjectPublicKeyInfo()),
            _ => (rsa.ExportRSAPrivateKeyPem(), rsa.ExportSubjectPublicKeyInfo()),
        };

        using var identity = Identity.Load(KeyFile(pem));

        Assert.Equal(Recipient.IdOf(spki), identity.RecipientId);
    }

    [Fact]
    public void KeyFilesThatAreNotOneRsaOrEcKeyAreRefusedByName()
    {
        using var ec = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        string key = ec.ExportPkcs8PrivateKeyPem();
        // A PKCS#8 key of another algorithm (X25519, OID 1.3.101.110): refused by its algorithm, not imported.
        byte[] x25519 = Convert.FromHexString("302e020100300506032b656e04220420" + new string('1', 64));
        (string text, string reason)[] cases =
        [
            ("", "no PEM private key block"),
            (PemEncoding.WriteString("CERTIFICATE", [1, 2, 3]), "no PEM private key block"),
            (key + "\n" + key, "2 private key blocks"),
            (PemEncoding.WriteString("PRIVATE KEY", x25519), "1.3.101.110"),
            (PemEncoding.WriteString("PRIVATE KEY", [0x30, 0x03, 0x02, 0x01, 0x00]), "no RSA or EC private key"),
            (PemEncoding.WriteString("EC PRIVATE KEY", [0x30, 0x00]), "no RSA or EC private key"),
            ("-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----\n", "not base64"),
        ];
        foreach (var (text, reason) in cases)
        {
            string path = KeyFile(text);
            var e = Assert.Throws<SealpointException>(() => Identity.Load(path));
            Assert.Equal(ErrorKind.Key, e.Kind);
            Assert.Contains(path, e.Message);
            Assert.Contains(reason, e.Message);
        }
    }

    [Fact]
    public void MutatedKeyFilesLoadOrFailWithAKeyError()
    {
        using var ec = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        string valid = ec.ExportPkcs8PrivateKeyPem();
        var rng = new Random(99);
        string path = Path.Combine(_work, "mutated.pem");
        for (int i = 0; i < 2_000; i++)
        {
            char[] text = valid.ToCharArray();
            text[rng.Next(text.Length)] = "AZaz09+/-\n="[rng.Next(11)];
            File.WriteAllText(path, new string(text));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            try { Identity.Load(path).Dispose(); }
            catch (SealpointException e) { Assert.Equal(ErrorKind.Key, e.Kind); }
        }
    }

    [Fact]
    public void MutatedCertificatesLoadOrFailWithAKeyError()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=fuzz", ec, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        byte[] der = cert.RawData;
        Assert.Equal(Recipient.IdOf(ec.ExportSubjectPublicKeyInfo()), Recipient.Load(KeyFile(PemEncoding.WriteString("CERTIFICATE", der))).Id);
        var rng = new Random(7);
        string path = Path.Combine(_work, "cert.pem");
        for (int i = 0; i < 3_000; i++)
        {
            byte[] mutated = (byte[])der.Clone();
            for (int m = rng.Next(1, 3); m > 0; m--) mutated[rng.Next(mutated.Length)] = (byte)rng.Next(256);
            File.WriteAllText(path, PemEncoding.WriteString("CERTIFICATE", mutated));
            try { Recipient.Load(path); }
            catch (SealpointException e) { Assert.Equal(ErrorKind.Key, e.Kind); }
        }
    }

    private string KeyFile(string text)
    {
        string path = Path.Combine(_work, $"key-{Guid.NewGuid():N}.pem");
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
