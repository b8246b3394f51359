using System.Collections.Concurrent;
using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>The core's page hook: every sealing path shows each page of each memory image exactly once, with its plaintext.</summary>
public sealed class PageObserverTests : IDisposable
{
    private readonly TestNodes _nodes = new();
    private readonly TempDir _shm = TempDir.Create("observer", inShm: true);

    public void Dispose()
    {
        _nodes.Dispose();
        _shm.Dispose();
    }

    private sealed class Collector : IPageObserver
    {
        public ConcurrentDictionary<(string, long), byte[]> Pages { get; } = new();
        public int Duplicates;
        public void OnPage(string file, long index, ReadOnlySpan<byte> plaintext)
        {
            if (!Pages.TryAdd((file, index), SHA256.HashData(plaintext))) Interlocked.Increment(ref Duplicates);
        }
    }

    private static void AssertSawEveryPage(string plainDir, Collector c)
    {
        int expected = 0;
        foreach (var f in Directory.EnumerateFiles(plainDir, "pages-*.img"))
        {
            var data = File.ReadAllBytes(f);
            for (long i = 0; i * 4096 < data.Length; i++, expected++)
            {
                var page = data.AsSpan((int)(i * 4096), (int)Math.Min(4096, data.Length - i * 4096));
                Assert.True(c.Pages.TryGetValue((Path.GetFileName(f), i), out var h), $"page {i} of {f} not observed");
                Assert.Equal(SHA256.HashData(page), h);
            }
        }
        Assert.Equal(expected, c.Pages.Count);
        Assert.Equal(0, c.Duplicates);
    }

    [Fact]
    public void ParallelSequentialAndInPlaceSealingShowEveryPage()
    {
        // 1500 pages: the parallel whole-file path; pages-2.img (3 pages, short last) is small.
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 1500);
        var options = new SealOptions { Recipients = [_nodes.Recipient("nodeB")], Sync = false };

        var c1 = new Collector();
        CheckpointSealer.SealDirectory(plain, _shm.File("s1"), options with { PageObserver = c1 });
        AssertSawEveryPage(plain, c1);

        var c2 = new Collector();
        using (var writer = SealedCheckpointWriter.Create(_shm.File("s2"), options with { PageObserver = c2 }))
        {
            foreach (var f in Directory.EnumerateFiles(plain, "pages-*.img"))
            {
                using var s = writer.CreateFile(Path.GetFileName(f));
                using (var input = File.OpenRead(f)) input.CopyTo(s, 7000); // odd write sizes
                s.Commit();
            }
            writer.Complete();
        }
        AssertSawEveryPage(plain, c2);

        var c3 = new Collector();
        SyntheticCheckpoint.Copy(plain, _shm.File("inplace"));
        CheckpointSealer.SealFilesInPlace(_shm.File("inplace"), options with { PageObserver = c3 });
        AssertSawEveryPage(plain, c3);
    }
}
