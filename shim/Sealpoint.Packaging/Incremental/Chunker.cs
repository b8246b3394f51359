using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Sealpoint.Packaging.Incremental;

/// <summary>Consecutive pages of one memory image.</summary>
public sealed record PageRun(string File, long First, long Count);

/// <summary>How memory is cut into chunks. Kept per lineage so that every generation cuts the same way.</summary>
public sealed record ChunkingParameters(int AveragePages, int MinPages, int MaxPages)
{
    public const string Algorithm = "sealpoint-cdc-pages-v1";

    /// <summary>
    /// Chunks of about 0.6 % of memory: a change of 5 % in one stretch then re-uploads about 6 % (at most ~7.5 % in
    /// simulation, plus 0.4 % of page tags), within the 10 % target with margin; docs/registry.md has the figures. More
    /// layers than podman can mount (128), which Sealpoint never needs (pull rebuilds the checkpoint); pack --chunks 100
    /// stays mountable.
    /// </summary>
    public const int DefaultTargetChunks = 160;

    /// <summary>About <paramref name="targetChunks"/> chunks for the given memory size.</summary>
    public static ChunkingParameters ForTotal(long totalPages, int targetChunks = DefaultTargetChunks)
    {
        long avg = Math.Clamp((totalPages + targetChunks - 1) / Math.Max(1, targetChunks), 64, 65536);
        return FromAverage((int)avg);
    }

    public static ChunkingParameters FromAverage(int averagePages)
    {
        int avg = Math.Clamp(averagePages, 2, 1 << 20);
        return new ChunkingParameters(avg, Math.Max(1, avg / 2), avg * 2);
    }
}

/// <summary>A planned chunk: where its pages are, and (with keyed page hashes) its keyed content id.</summary>
public sealed record PlannedChunk(IReadOnlyList<PageRun> Runs, long Pages, byte[]? KeyedId)
{
    public string? IdHex => KeyedId is null ? null : Convert.ToHexStringLower(KeyedId);
}

/// <summary>
/// Cuts the memory images of a checkpoint, read as one stream of pages (files in envelope order), into chunks.
/// With keyed page hashes the cut points are content-defined at page granularity: after at least MinPages pages,
/// a chunk ends after a page whose keyed hash is 0 modulo (AveragePages − MinPages), and at MaxPages at the latest.
/// Pages inserted or removed therefore move only nearby cut points, and an unchanged stretch of memory yields the
/// same chunks (same keyed ids) as in the previous generation. A chunk's keyed id is SHA-256 over its pages' keyed
/// hashes. Without hashes the cut is fixed every AveragePages pages, and no id is given (no reuse).
/// </summary>
public static class Chunker
{
    public static IReadOnlyList<PlannedChunk> Plan(IReadOnlyList<(string File, long Pages)> files, PageHashIndex? index, ChunkingParameters p)
    {
        bool keyed = index is not null && files.All(f => index.Files.TryGetValue(f.File, out var h) && h.LongLength == f.Pages * PageHashIndex.HashSize);
        var chunks = new List<PlannedChunk>();
        var runs = new List<PageRun>();
        long pagesInChunk = 0;
        using var id = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        uint modulus = (uint)Math.Max(1, p.AveragePages - p.MinPages);

        void Emit()
        {
            if (pagesInChunk == 0) return;
            chunks.Add(new PlannedChunk(runs.ToList(), pagesInChunk, keyed ? id.GetHashAndReset() : null));
            runs.Clear();
            pagesInChunk = 0;
        }

        foreach (var (file, pages) in files)
        {
            byte[]? hashes = keyed ? index!.Files[file] : null;
            for (long page = 0; page < pages; page++)
            {
                if (runs.Count > 0 && runs[^1].File == file && runs[^1].First + runs[^1].Count == page)
                    runs[^1] = runs[^1] with { Count = runs[^1].Count + 1 };
                else
                    runs.Add(new PageRun(file, page, 1));
                pagesInChunk++;
                bool cut;
                if (hashes is not null)
                {
                    var h = hashes.AsSpan((int)(page * PageHashIndex.HashSize), PageHashIndex.HashSize);
                    id.AppendData(h);
                    cut = pagesInChunk >= p.MaxPages || (pagesInChunk >= p.MinPages && BinaryPrimitives.ReadUInt32LittleEndian(h) % modulus == 0);
                }
                else
                {
                    cut = pagesInChunk >= p.AveragePages;
                }
                if (cut) Emit();
            }
        }
        Emit();
        return chunks;
    }
}
