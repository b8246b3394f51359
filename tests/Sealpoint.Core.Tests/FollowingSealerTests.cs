using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Sealing page images while a writer still appends to them (what CRIU does inside runc): the result opens to the
/// final files byte for byte, the follower really sealed part of them early, and replaced images are refused.
/// </summary>
public sealed class FollowingSealerTests(TestPki pki) : IClassFixture<TestPki>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sealpoint-follow-").FullName;

    private SealOptions Options => new() { Recipients = [pki.Recipient("node-a")], Sync = false };

    /// <summary>
    /// Appends <paramref name="total"/> random bytes to <paramref name="path"/> in uneven pieces, as a dump would. Past
    /// half of it, waits (up to 30 s) until <paramref name="caughtUp"/> holds: the follower runs at the lowest priority,
    /// and on a loaded machine the whole file could otherwise be written before it ever ran.
    /// </summary>
    private static async Task AppendSlowly(string path, int total, int seed, Func<bool>? caughtUp = null)
    {
        var random = new Random(seed);
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite, 1);
        bool waited = caughtUp is null;
        for (int written = 0; written < total;)
        {
            if (!waited && written >= total / 2)
            {
                for (var deadline = DateTime.UtcNow.AddSeconds(30); !caughtUp!() && DateTime.UtcNow < deadline;) await Task.Delay(10);
                waited = true;
            }
            byte[] piece = RandomNumberGenerator.GetBytes(Math.Min(total - written, random.Next(1, 700_000)));
            await file.WriteAsync(piece);
            await file.FlushAsync();
            written += piece.Length;
            await Task.Delay(random.Next(0, 4));
        }
    }

    [Fact]
    public async Task PageImagesSealedWhileWrittenOpenToTheFinalFiles()
    {
        string src = Directory.CreateDirectory(Path.Combine(_work, "images")).FullName;
        string sealedDir = Path.Combine(_work, "sealed");
        Envelope envelope;
        using (var sealer = FollowingSealer.Start(src, sealedDir, Options))
        {
            // Two page images grow at once (one not a whole number of pages), while small images come and go.
            var writers = new[]
            {
                AppendSlowly(Path.Combine(src, "pages-1.img"), 9 << 20, 1, () => sealer.SealedWhileFollowingSoFar() >= 1 << 20),
                AppendSlowly(Path.Combine(src, "pages-2.img"), (3 << 20) + 1234, 2),
            };
            File.WriteAllBytes(Path.Combine(src, "core-1.img"), RandomNumberGenerator.GetBytes(300));
            await Task.WhenAll(writers);
            File.WriteAllBytes(Path.Combine(src, "pages-3.img"), RandomNumberGenerator.GetBytes(8192)); // appears at the very end
            File.WriteAllBytes(Path.Combine(src, "inventory.img"), RandomNumberGenerator.GetBytes(40));
            File.CreateSymbolicLink(Path.Combine(src, "parent"), "../previous");
            envelope = sealer.Complete();
            Assert.True(sealer.SealedWhileFollowing >= 1 << 20, $"only {sealer.SealedWhileFollowing} bytes were sealed while the files grew");
        }
        Assert.Equal(6, envelope.Files.Count);

        using var identity = pki.Identity("node-a");
        using var opened = SealedCheckpoint.Open(sealedDir, identity);
        opened.Verify();
        string outDir = Path.Combine(_work, "out");
        opened.DecryptTo(outDir);
        foreach (var f in Directory.EnumerateFiles(src).Where(f => new FileInfo(f).LinkTarget is null))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(outDir, Path.GetFileName(f))));
        Assert.Equal("../previous", new FileInfo(Path.Combine(outDir, "parent")).LinkTarget);
    }

    [Fact]
    public async Task AReplacedPageImageIsRefusedAndNothingIsLeft()
    {
        string src = Directory.CreateDirectory(Path.Combine(_work, "images")).FullName;
        string sealedDir = Path.Combine(_work, "sealed");
        using var sealer = FollowingSealer.Start(src, sealedDir, Options);
        await AppendSlowly(Path.Combine(src, "pages-1.img"), 4 << 20, 3);
        for (int i = 0; i < 200 && sealer.SealedWhileFollowingSoFar() < 1 << 20; i++) await Task.Delay(10);
        string replacement = Path.Combine(src, "pages-1.img.new");
        File.WriteAllBytes(replacement, RandomNumberGenerator.GetBytes(4 << 20));
        File.Move(replacement, Path.Combine(src, "pages-1.img"), overwrite: true);
        var e = Assert.Throws<SealpointException>(() => sealer.Complete());
        Assert.Contains("replaced", e.Message);
        sealer.Dispose();
        Assert.False(Directory.Exists(sealedDir), "a failed sealing left its output behind");
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
