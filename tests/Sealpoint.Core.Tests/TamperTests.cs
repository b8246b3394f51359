using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Every kind of tampering is refused before any plaintext is released, with a message naming what is wrong:
/// the output directory of a refused open never appears.
/// </summary>
public sealed class TamperTests(TestPki pki) : IClassFixture<TestPki>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sealpoint-tamper-").FullName;

    private string Seal(string label, int pagesBytes = 3 * 1024 * 1024 + 100)
    {
        string src = Path.Combine(_work, label + "-plain");
        Directory.CreateDirectory(src);
        File.WriteAllBytes(Path.Combine(src, "pages-1.img"), RandomNumberGenerator.GetBytes(pagesBytes));
        File.WriteAllBytes(Path.Combine(src, "pages-2.img"), RandomNumberGenerator.GetBytes(8192));
        File.WriteAllBytes(Path.Combine(src, "core-1.img"), RandomNumberGenerator.GetBytes(100_000));
        File.WriteAllBytes(Path.Combine(src, "core-2.img"), RandomNumberGenerator.GetBytes(100_000));
        File.WriteAllBytes(Path.Combine(src, "inventory.img"), RandomNumberGenerator.GetBytes(40));
        File.WriteAllText(Path.Combine(src, "stats-dump"), "stats");
        string sealedDir = Path.Combine(_work, label);
        CheckpointSealer.SealDirectory(src, sealedDir, new SealOptions { Recipients = [pki.Recipient("node-a")], Sync = false });
        return sealedDir;
    }

    private IntegrityException OpenFails(string sealedDir)
    {
        string output = Path.Combine(_work, "out-" + Guid.NewGuid());
        using var identity = pki.Identity("node-a");
        var e = Assert.ThrowsAny<SealpointException>(() =>
        {
            using var c = SealedCheckpoint.Open(sealedDir, identity);
            c.DecryptTo(output);
        });
        Assert.False(Directory.Exists(output), "no output may appear for a refused checkpoint");
        Assert.Empty(Directory.GetDirectories(_work, "out-*"));
        Assert.Empty(Directory.GetDirectories(_work, "*.sealpoint-partial-*"));
        return Assert.IsType<IntegrityException>(e);
    }

    public static TheoryData<string> SealedFileNames() => ["pages-1.img", "pages-2.img", "core-1.img", "inventory.img", "stats-dump", ImageFiles.EnvelopeName];

    [Theory]
    [MemberData(nameof(SealedFileNames))]
    public void AFlippedBitAnywhereInAnyFileIsRefused(string name)
    {
        string dir = Seal("flip-" + name);
        string path = Path.Combine(dir, name);
        long length = new FileInfo(path).Length;
        // First byte, last byte and a few in between: header, body, tag table, trailer.
        foreach (long offset in new[] { 0, length - 1, length / 2, length / 3, Math.Max(0, length - 70) }.Distinct())
        {
            byte[] bytes = File.ReadAllBytes(path);
            bytes[offset] ^= 0x01;
            File.WriteAllBytes(path, bytes);
            var e = OpenFails(dir);
            if (name != ImageFiles.EnvelopeName) Assert.Contains(name, e.Message);
            bytes[offset] ^= 0x01;
            File.WriteAllBytes(path, bytes);
        }
    }

    [Theory]
    [InlineData("pages-1.img")]
    [InlineData("core-1.img")]
    public void TruncationIsRefused(string name)
    {
        string dir = Seal("trunc-" + name);
        string path = Path.Combine(dir, name);
        using (var f = File.OpenWrite(path)) f.SetLength(f.Length - 4112);
        var e = OpenFails(dir);
        Assert.Contains(name, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    /// <summary>
    /// A file changed after the listing was checked (sizes match then) is still refused by its own reader: inventory.img
    /// is one record (read whole in one go), core-1.img several (read record by record).
    /// </summary>
    [Theory]
    [InlineData("inventory.img", "append", "data appended")]
    [InlineData("inventory.img", "truncate", "truncated")]
    [InlineData("inventory.img", "flip-tag", "failed authentication at chunk 0")]
    [InlineData("inventory.img", "symlink", "replaced by a symbolic link")]
    [InlineData("core-1.img", "append", "data appended")]
    [InlineData("core-1.img", "truncate", "truncated")]
    [InlineData("core-1.img", "flip-tag", "failed authentication at chunk 1")]
    public void AFileChangedAfterTheListingWasCheckedIsRefused(string name, string change, string expected)
    {
        string dir = Seal("late-" + name + change);
        string path = Path.Combine(dir, name);
        string output = Path.Combine(_work, "out-late");
        using var identity = pki.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(dir, identity);
        byte[] bytes = File.ReadAllBytes(path);
        switch (change)
        {
            case "append": File.WriteAllBytes(path, [.. bytes, 0]); break;
            case "truncate": File.WriteAllBytes(path, bytes[..^1]); break;
            // Even to an intact copy: what was listed is a regular file, and a link could be pointed anywhere.
            case "symlink": File.WriteAllBytes(path + ".copy", bytes); File.Delete(path); File.CreateSymbolicLink(path, path + ".copy"); break;
            default: bytes[^1] ^= 0x01; File.WriteAllBytes(path, bytes); break; // the last record's tag
        }
        var e = Assert.IsType<IntegrityException>(Assert.ThrowsAny<SealpointException>(() => checkpoint.DecryptTo(output)));
        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void SwappingTwoFilesIsRefused()
    {
        string dir = Seal("swap");
        string a = Path.Combine(dir, "core-1.img"), b = Path.Combine(dir, "core-2.img"), tmp = a + ".x";
        File.Move(a, tmp);
        File.Move(b, a);
        File.Move(tmp, b);
        var e = OpenFails(dir);
        Assert.Contains("core-", e.Message);
    }

    [Fact]
    public void ADroppedFileIsRefused()
    {
        string dir = Seal("drop");
        File.Delete(Path.Combine(dir, "pages-2.img"));
        var e = OpenFails(dir);
        Assert.Contains("pages-2.img", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void AnAddedFileIsRefused()
    {
        string dir = Seal("add");
        File.WriteAllText(Path.Combine(dir, "core-9.img"), "extra");
        var e = OpenFails(dir);
        Assert.Contains("core-9.img", e.Message);
    }

    [Fact]
    public void AnotherCheckpointsEnvelopeIsRefused()
    {
        string first = Seal("env-a"), second = Seal("env-b");
        File.Copy(Path.Combine(second, ImageFiles.EnvelopeName), Path.Combine(first, ImageFiles.EnvelopeName), overwrite: true);
        var e = OpenFails(first);
        Assert.Contains("checkpoint", e.Message);
    }

    [Fact]
    public void AFileFromAnotherCheckpointIsRefused()
    {
        string first = Seal("mix-a"), second = Seal("mix-b");
        File.Copy(Path.Combine(second, "core-1.img"), Path.Combine(first, "core-1.img"), overwrite: true);
        var e = OpenFails(first);
        Assert.Contains("core-1.img", e.Message);
        Assert.Contains("another checkpoint", e.Message.Replace("mixed between checkpoints", "another checkpoint"));
    }

    [Fact]
    public void AKeyThatIsNotARecipientGetsAClearError()
    {
        string dir = Seal("nonrecipient");
        using var other = pki.Identity("node-b");
        var e = Assert.ThrowsAny<SealpointException>(() => SealedCheckpoint.Open(dir, other));
        Assert.Equal(ErrorKind.Key, e.Kind);
        Assert.Contains("not a recipient", e.Message);
        Assert.Contains("CN=node-a", e.Message);
    }

    [Fact]
    public void AnUnfinishedCheckpointIsNotTakenForOne()
    {
        string dir = Seal("unfinished");
        File.Delete(Path.Combine(dir, ImageFiles.EnvelopeName));
        using var identity = pki.Identity("node-a");
        var e = Assert.ThrowsAny<SealpointException>(() => SealedCheckpoint.Open(dir, identity));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("incomplete", e.Message);
    }

    [Fact]
    public void VerifyingATamperedPageReadsNoPlaintextOut()
    {
        string dir = Seal("stream-read");
        string path = Path.Combine(dir, "pages-1.img");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[4096 * 7 + 5] ^= 0x80;
        File.WriteAllBytes(path, bytes);
        using var identity = pki.Identity("node-a");
        using var c = SealedCheckpoint.Open(dir, identity);
        using var reader = c.OpenFile("pages-1.img");
        var buffer = new byte[4096];
        long released = 0;
        var e = Assert.Throws<IntegrityException>(() => { int n; while ((n = reader.Read(buffer)) > 0) released += n; });
        Assert.Contains("page 7", e.Message);
        Assert.True(released <= 7 * 4096, "pages after a bad one must not be released");
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
