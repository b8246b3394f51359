using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

public sealed class RoundTripTests(TestPki pki) : IClassFixture<TestPki>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sealpoint-rt-").FullName;

    private string MakeImageDir(int pagesBytes = 5 * 1024 * 1024 + 123)
    {
        string dir = Path.Combine(_work, "img");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "pages-1.img"), RandomNumberGenerator.GetBytes(pagesBytes));
        File.WriteAllBytes(Path.Combine(dir, "pages-2.img"), RandomNumberGenerator.GetBytes(3 * 4096));
        File.WriteAllBytes(Path.Combine(dir, "core-1.img"), RandomNumberGenerator.GetBytes(70_000));
        File.WriteAllBytes(Path.Combine(dir, "inventory.img"), RandomNumberGenerator.GetBytes(65536));
        File.WriteAllBytes(Path.Combine(dir, "empty.img"), []);
        File.WriteAllText(Path.Combine(dir, "stats-dump"), "stats");
        File.CreateSymbolicLink(Path.Combine(dir, "parent"), "../previous");
        return dir;
    }

    [Theory]
    [InlineData("node-a", AeadAlgorithm.ChaCha20Poly1305)]
    [InlineData("node-b", AeadAlgorithm.Aes256Gcm)]
    [InlineData("node-c", AeadAlgorithm.ChaCha20Poly1305)]
    public void SealThenOpenGivesBackEveryFileByteForByte(string recipient, AeadAlgorithm metadataCipher)
    {
        string src = MakeImageDir();
        string sealedDir = Path.Combine(_work, "sealed");
        var envelope = CheckpointSealer.SealDirectory(src, sealedDir, new SealOptions
        {
            Recipients = [pki.Recipient("node-a"), pki.Recipient("node-b"), pki.Recipient("node-c")],
            MetadataCipher = metadataCipher,
            Sync = false,
        });
        Assert.Equal(7, envelope.Files.Count);
        Assert.Equal(3, envelope.Recipients.Count);

        using var identity = pki.Identity(recipient);
        using var opened = SealedCheckpoint.Open(sealedDir, identity);
        string outDir = Path.Combine(_work, "out");
        opened.DecryptTo(outDir);
        foreach (var f in Directory.EnumerateFiles(src).Where(f => new FileInfo(f).LinkTarget is null))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(outDir, Path.GetFileName(f))));
        Assert.Equal("../previous", new FileInfo(Path.Combine(outDir, "parent")).LinkTarget);
        Assert.Equal(File.ReadAllBytes(Path.Combine(src, "stats-dump")), File.ReadAllBytes(Path.Combine(sealedDir, "stats-dump")));
    }

    [Fact]
    public void A_writer_that_learns_its_recipients_late_seals_the_same_checkpoint_and_never_completes_without_them()
    {
        string sealedDir = Path.Combine(_work, "late");
        using (var writer = SealedCheckpointWriter.CreateBeforeRecipients(sealedDir, new SealOptions { Recipients = [], Sync = false }))
        {
            byte[] core = RandomNumberGenerator.GetBytes(70_000);
            using (var file = writer.CreateFile("core-1.img"))
            {
                file.Write(core);
                file.Commit();
            }
            var early = Assert.Throws<InvalidOperationException>(() => writer.Complete());
            Assert.Contains("never wrapped", early.Message);
            Assert.False(File.Exists(Path.Combine(sealedDir, ImageFiles.EnvelopeName)));
            var none = Assert.Throws<SealpointException>(() => writer.WrapFor([]));
            Assert.Equal(ErrorKind.Usage, none.Kind);

            writer.WrapFor([pki.Recipient("node-b"), pki.Recipient("node-c")]);
            Assert.Throws<InvalidOperationException>(() => writer.WrapFor([pki.Recipient("node-a")]));
            Assert.Equal(2, writer.Complete().Recipients.Count);

            using var identity = pki.Identity("node-c");
            using var opened = SealedCheckpoint.Open(sealedDir, identity);
            string outDir = Path.Combine(_work, "late-out");
            opened.DecryptTo(outDir);
            Assert.Equal(core, File.ReadAllBytes(Path.Combine(outDir, "core-1.img")));
        }
        using var stranger = pki.Identity("node-a");
        Assert.ThrowsAny<SealpointException>(() => SealedCheckpoint.Open(sealedDir, stranger));
    }

    [Fact]
    public void Reading_a_recipient_fails_at_once_for_a_missing_file_and_later_for_a_bad_certificate()
    {
        var missing = Assert.Throws<SealpointException>(() => pki.Pki.ReadRecipient(Path.Combine(_work, "nope.pem")));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);

        string garbage = Path.Combine(_work, "garbage.pem");
        File.WriteAllText(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
        var parse = pki.Pki.ReadRecipient(garbage); // found, not yet read or parsed
        var bad = Assert.Throws<SealpointException>(() => parse());
        Assert.Equal(ErrorKind.Key, bad.Kind);
        Assert.Contains("cannot be read", bad.Message);

        Assert.Equal(pki.Recipient("node-a").Id, pki.Pki.ReadRecipient("node-a")().Id);
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
