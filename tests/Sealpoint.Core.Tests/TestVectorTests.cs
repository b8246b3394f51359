using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Tests;

/// <summary>
/// The format's published test vectors (docs/test-vectors). Deterministic vectors are recomputed and compared byte for
/// byte; randomized ones (RSA-OAEP, a whole sealed checkpoint) are opened and compared with the expected plaintext.
/// Run with SEALPOINT_WRITE_VECTORS=1 to regenerate them after a deliberate format change.
/// </summary>
public sealed class TestVectorTests
{
    private static readonly string VectorDir = Path.Combine(RepoRoot(), "docs", "test-vectors");
    private static readonly string VectorFile = Path.Combine(VectorDir, "sealpoint-v1.json");
    private static bool Writing => Environment.GetEnvironmentVariable("SEALPOINT_WRITE_VECTORS") == "1";

    private static readonly byte[] DataKey = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] CheckpointId = Enumerable.Range(0xa0, 16).Select(i => (byte)i).ToArray();
    private static readonly byte[] Salt = Enumerable.Range(0xb0, 16).Select(i => (byte)i).ToArray();

    private static byte[] Pattern(int length) => Enumerable.Range(0, length).Select(i => (byte)(i % 251)).ToArray();

    private static JsonObject SealedFileVector(string name, SealedFileKind kind, AeadAlgorithm aead, int length)
    {
        var header = new SealedFileHeader(kind, aead, SealedFile.ChunkSizeOf(kind), CheckpointId, Salt);
        using var output = new MemoryStream();
        SealedFileInfo info;
        var cipher = SealedFile.CreateCipher(DataKey, header, name);
        if (kind == SealedFileKind.Pages)
        {
            using var s = new PagesSealingStream(new NonDisposing(output), cipher, header);
            s.Write(Pattern(length));
            info = s.Finish();
        }
        else
        {
            using var s = new SealingStream(output, cipher, header, ownsOutput: false);
            s.Write(Pattern(length));
            info = s.Finish();
        }
        byte[] sealedBytes = output.ToArray();
        var v = new JsonObject
        {
            ["name"] = name, ["kind"] = kind == SealedFileKind.Pages ? "pages" : "stream", ["cipher"] = aead.Name(),
            ["dataKey"] = Convert.ToHexStringLower(DataKey), ["checkpointId"] = Convert.ToHexStringLower(CheckpointId), ["salt"] = Convert.ToHexStringLower(Salt),
            ["plaintext"] = $"{length} bytes, byte i = i mod 251",
            ["header"] = Convert.ToHexStringLower(header.ToBytes()),
            ["sealedLength"] = sealedBytes.Length, ["sealedSha256"] = Convert.ToHexStringLower(SHA256.HashData(sealedBytes)),
            ["digest"] = info.Digest,
        };
        if (sealedBytes.Length <= 16384) v["sealed"] = Convert.ToHexStringLower(sealedBytes);
        return v;
    }

    private static JsonArray SealedFileVectors() =>
    [
        SealedFileVector("core-1.img", SealedFileKind.Stream, AeadAlgorithm.ChaCha20Poly1305, 0),
        SealedFileVector("core-1.img", SealedFileKind.Stream, AeadAlgorithm.ChaCha20Poly1305, 5),
        SealedFileVector("inventory.img", SealedFileKind.Stream, AeadAlgorithm.Aes256Gcm, 65536),
        SealedFileVector("files.img", SealedFileKind.Stream, AeadAlgorithm.ChaCha20Poly1305, 65536 * 2 + 3),
        SealedFileVector("pages-1.img", SealedFileKind.Pages, AeadAlgorithm.Aes256Gcm, 4096 * 2 + 2048),
        SealedFileVector("pages-2.img", SealedFileKind.Pages, AeadAlgorithm.ChaCha20Poly1305, 4096 * 3),
    ];

    private static Envelope FixedEnvelope() => new()
    {
        CheckpointId = Convert.ToHexStringLower(CheckpointId),
        LineageId = "0123456789abcdef0123456789abcdef",
        Generation = 1,
        Created = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
        MetadataCipher = "chacha20-poly1305",
        PagesCipher = "aes-256-gcm",
        Recipients = [new RecipientStanza { Id = new string('0', 64), Type = "ecdh-p256", EphemeralKey = "AA==", WrappedKey = "AA==" }],
        Files = [new FileEntry { Name = "core-1.img", Kind = "stream", Size = 5, Digest = "sha256:" + new string('1', 64) }],
    };

    [Fact]
    public void SealedFilesMatchTheVectors()
    {
        var vectors = Load();
        string expected = vectors["sealedFiles"]!.ToJsonString();
        Assert.Equal(expected, SealedFileVectors().ToJsonString());
    }

    [Fact]
    public void SealedFileVectorsOpenToTheirPlaintext()
    {
        foreach (var v in Load()["sealedFiles"]!.AsArray())
        {
            if (v!["sealed"] is null) continue;
            byte[] sealedBytes = Convert.FromHexString((string)v["sealed"]!);
            string name = (string)v["name"]!;
            var kind = (string)v["kind"]! == "pages" ? SealedFileKind.Pages : SealedFileKind.Stream;
            long plainLength = SealedFile.PlaintextSizeOf(kind, sealedBytes.Length);
            var header = SealedFile.ParseHeader(sealedBytes.AsSpan((int)SealedFile.HeaderOffset(kind, plainLength), SealedFile.HeaderSize), name);
            string path = Path.GetTempFileName();
            try
            {
                File.WriteAllBytes(path, sealedBytes);
                var handle = File.OpenHandle(path);
                var cipher = SealedFile.CreateCipher(DataKey, header, name);
                Stream reader = kind == SealedFileKind.Pages
                    ? new PagesOpeningStream(handle, cipher, header.ToBytes(), name, plainLength, (string)v["digest"]!)
                    : new OpeningStream(new FileStream(handle, FileAccess.Read) { Position = SealedFile.HeaderSize }, cipher, header, header.ToBytes(), name, plainLength, (string)v["digest"]!);
                using (reader)
                {
                    var plain = new MemoryStream();
                    reader.CopyTo(plain);
                    Assert.Equal(Pattern((int)plainLength), plain.ToArray());
                }
            }
            finally { File.Delete(path); }
        }
    }

    [Fact]
    public void EnvelopeMacMatchesTheVector()
    {
        byte[] bytes = EnvelopeFile.Serialize(FixedEnvelope(), DataKey);
        Assert.Equal((string)Load()["envelope"]!["file"]!, Convert.ToBase64String(bytes));
        var parsed = EnvelopeFile.Parse(bytes, "vector");
        parsed.VerifyMac(DataKey, "vector");
        bytes[^5] ^= 1; // inside the MAC
        Assert.Throws<IntegrityException>(() => EnvelopeFile.Parse(bytes, "vector").VerifyMac(DataKey, "vector"));
    }

    [Fact]
    public void EcdhWrapMatchesTheVector()
    {
        var v = Load()["ecdhWrap"]!;
        using var recipientKey = ECDiffieHellman.Create();
        recipientKey.ImportPkcs8PrivateKey(Convert.FromBase64String((string)v["recipientPrivateKey"]!), out _);
        var stanza = WrapWithFixedEphemeral(recipientKey, Convert.FromBase64String((string)v["ephemeralPrivateKey"]!));
        Assert.Equal((string)v["wrappedKey"]!, stanza.WrappedKey);
        Assert.Equal((string)v["ephemeralKey"]!, stanza.EphemeralKey);
        Assert.Equal(DataKey, KeyWrap.Unwrap(recipientKey, stanza.Id, stanza, CheckpointId));
    }

    [Fact]
    public void RsaVectorUnwraps()
    {
        var v = Load()["rsaUnwrap"]!;
        using var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(Convert.FromBase64String((string)v["privateKey"]!), out _);
        var stanza = new RecipientStanza { Id = (string)v["recipientId"]!, Type = KeyWrap.RsaOaepSha256, WrappedKey = (string)v["wrappedKey"]! };
        Assert.Equal(DataKey, KeyWrap.Unwrap(rsa, stanza));
        Assert.Equal((string)v["recipientId"]!, Recipient.IdOf(rsa.ExportSubjectPublicKeyInfo()));
    }

    [Fact]
    public void SealedCheckpointVectorOpensToTheExpectedImages()
    {
        string dir = Path.Combine(VectorDir, "checkpoint-v1");
        string key = Path.Combine(VectorDir, "checkpoint-v1-recipient.key.pem");
        if (Writing) WriteCheckpointVector(dir, key);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite); // git does not keep 0600
        using var identity = Identity.Load(key);
        using var checkpoint = SealedCheckpoint.Open(dir, identity);
        string output = Path.Combine(Path.GetTempPath(), "sealpoint-vector-" + Guid.NewGuid());
        try
        {
            checkpoint.DecryptTo(output);
            foreach (var (name, content) in CheckpointVectorFiles())
                Assert.Equal(content, File.ReadAllBytes(Path.Combine(output, name)));
        }
        finally { FileSystem.RemoveTree(output); }
    }

    private static IEnumerable<(string Name, byte[] Content)> CheckpointVectorFiles() =>
    [
        ("inventory.img", Pattern(100)),
        ("core-1.img", Pattern(70000)),
        ("pages-1.img", Pattern(4096 * 5)),
        ("stats-dump", Pattern(40)),
    ];

    private static void WriteCheckpointVector(string dir, string keyPath)
    {
        FileSystem.RemoveTree(dir);
        string plain = Directory.CreateTempSubdirectory("sealpoint-vector-plain").FullName;
        foreach (var (name, content) in CheckpointVectorFiles()) File.WriteAllBytes(Path.Combine(plain, name), content);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=vector-recipient", key, HashAlgorithmName.SHA256);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(50));
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        var recipient = Recipient.FromCertificate(X509CertificateLoader.LoadCertificate(cert.Export(X509ContentType.Cert)), "vector");
        CheckpointSealer.SealDirectory(plain, dir, new SealOptions { Recipients = [recipient], Sync = false });
        FileSystem.RemoveTree(plain);
    }

    private static RecipientStanza WrapWithFixedEphemeral(ECDiffieHellman recipientKey, byte[] ephemeralPkcs8)
    {
        var req = new CertificateRequest("CN=vector", ECDsa.Create(recipientKey.ExportParameters(true)), HashAlgorithmName.SHA256);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var recipient = Recipient.FromCertificate(X509CertificateLoader.LoadCertificate(cert.Export(X509ContentType.Cert)), "vector");
        var ephemeral = ECDiffieHellman.Create();
        ephemeral.ImportPkcs8PrivateKey(ephemeralPkcs8, out _);
        return KeyWrap.Wrap(recipient, DataKey, CheckpointId, ephemeral);
    }

    private static JsonObject Load()
    {
        if (Writing && !File.Exists(VectorFile + ".written"))
        {
            Directory.CreateDirectory(VectorDir);
            using var recipientKey = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
            using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
            byte[] ephemeralPkcs8 = ephemeral.ExportPkcs8PrivateKey();
            var stanza = WrapWithFixedEphemeral(recipientKey, ephemeralPkcs8);
            using var rsa = RSA.Create(2048);
            var doc = new JsonObject
            {
                ["description"] = "Sealpoint sealed-format v1 test vectors; see docs/format.md",
                ["sealedFiles"] = SealedFileVectors(),
                ["envelope"] = new JsonObject
                {
                    ["dataKey"] = Convert.ToHexStringLower(DataKey),
                    ["file"] = Convert.ToBase64String(EnvelopeFile.Serialize(FixedEnvelope(), DataKey)),
                },
                ["ecdhWrap"] = new JsonObject
                {
                    ["curve"] = "P-256", ["dataKey"] = Convert.ToHexStringLower(DataKey), ["checkpointId"] = Convert.ToHexStringLower(CheckpointId),
                    ["recipientPrivateKey"] = Convert.ToBase64String(recipientKey.ExportPkcs8PrivateKey()),
                    ["ephemeralPrivateKey"] = Convert.ToBase64String(ephemeralPkcs8),
                    ["recipientId"] = stanza.Id, ["ephemeralKey"] = stanza.EphemeralKey, ["wrappedKey"] = stanza.WrappedKey,
                },
                ["rsaUnwrap"] = new JsonObject
                {
                    ["dataKey"] = Convert.ToHexStringLower(DataKey),
                    ["privateKey"] = Convert.ToBase64String(rsa.ExportPkcs8PrivateKey()),
                    ["recipientId"] = Recipient.IdOf(rsa.ExportSubjectPublicKeyInfo()),
                    ["wrappedKey"] = Convert.ToBase64String(rsa.Encrypt(DataKey, RSAEncryptionPadding.OaepSHA256)),
                },
            };
            File.WriteAllText(VectorFile, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            File.WriteAllText(VectorFile + ".written", "");
        }
        return JsonNode.Parse(File.ReadAllText(VectorFile))!.AsObject();
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Shim.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root (Shim.sln) not found above " + AppContext.BaseDirectory);
    }

    private sealed class NonDisposing(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }
}
