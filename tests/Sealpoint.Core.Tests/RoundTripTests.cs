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

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
