using System.Text.Json;
using System.Text.Json.Serialization;
using Sealpoint.Core;
using Sealpoint.Oci;

namespace Sealpoint.Packaging.Incremental;

/// <summary>
/// How a checkpoint's memory images travel (<c>sealpoint/memory-map.json</c> in the checkpoint layer): as chunks,
/// each one image layer holding sealed page records. A chunk's records come from this checkpoint (source 0) or from
/// an earlier checkpoint of the lineage (the source's envelope and page-file headers are embedded), and go to the
/// pages listed in <see cref="MapChunk.To"/>. The map is not authenticated: a restoring node checks every page it
/// rebuilds against the page tags authenticated by this checkpoint's envelope before writing it.
/// A chunk's payload holds, for each run of <see cref="MapChunk.From"/> in order, the run's ciphertext pages (as in the
/// sealed file) followed by the run's 16-byte page tags.
/// </summary>
public sealed record MemoryMap
{
    public const int MaxChunks = 1 << 20;
    public const int MaxSources = 4096;

    public int Version { get; init; } = 1;
    public string MediaType { get; init; } = CheckpointImage.MemoryMapMediaType;
    public required string CheckpointId { get; init; }
    public required MapChunking Chunking { get; init; }
    /// <summary>Memory images in stream order.</summary>
    public required IReadOnlyList<string> Files { get; init; }
    /// <summary>[0] is this checkpoint; others are earlier checkpoints of the lineage whose sealed records are reused.</summary>
    public required IReadOnlyList<MapSource> Sources { get; init; }
    public required IReadOnlyList<MapChunk> Chunks { get; init; }

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, MemoryMapJson.Default.MemoryMap);

    public static MemoryMap Parse(ReadOnlySpan<byte> json, string source)
    {
        MemoryMap? map;
        try { map = JsonSerializer.Deserialize(json, MemoryMapJson.Default.MemoryMap); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            throw new IntegrityException($"memory map in {source} is not valid: {e.Message}");
        }
        if (map is null) throw new IntegrityException($"memory map in {source} is empty");
        IntegrityException Bad(string why) => new($"memory map in {source}: {why}");
        if (map.Version != 1 || map.MediaType != CheckpointImage.MemoryMapMediaType) throw Bad("unsupported version or media type");
        if (map.Files is null || map.Sources is null || map.Chunks is null || map.Chunking is null) throw Bad("fields missing");
        if (map.Chunks.Count > MaxChunks || map.Sources.Count is 0 or > MaxSources) throw Bad("too many chunks or sources");
        if (map.Sources[0].CheckpointId != map.CheckpointId) throw Bad("source 0 is not the checkpoint itself");
        foreach (var s in map.Sources)
            if (s is null || s.CheckpointId is null || (s != map.Sources[0] && (s.Envelope is null || s.Headers is null))) throw Bad("a source lacks its envelope or headers");
        foreach (var c in map.Chunks)
        {
            if (c is null || c.To is null || c.Source < 0 || c.Source >= map.Sources.Count || c.PayloadSize < 0 || c.LayerSize < c.PayloadSize) throw Bad("a chunk is malformed");
            if (c.Source != 0 && c.From is null) throw Bad("a reused chunk does not say where its pages come from");
            foreach (var r in c.To.Concat(c.From ?? []))
                if (r is null || r.File is null || r.First < 0 || r.Count <= 0 || r.First > 1L << 40 || r.Count > 1L << 32) throw Bad("a page run is malformed");
            if (c.From is not null && c.From.Sum(r => r.Count) != c.To.Sum(r => r.Count)) throw Bad("a chunk's source and target page counts differ");
        }
        return map;
    }
}

public sealed record MapChunking(string Algorithm, int AveragePages, int MinPages, int MaxPages);

public sealed record MapSource
{
    public required string CheckpointId { get; init; }
    /// <summary>The source checkpoint's envelope file, base64 (absent for source 0, whose envelope is in the layer).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Envelope { get; init; }
    /// <summary>Memory image name → its 64-byte sealed-file header, base64.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Headers { get; init; }
}

public sealed record MapChunk
{
    /// <summary>The image layer (a one-file tar) holding the records.</summary>
    public required Digest Layer { get; init; }
    public required long LayerSize { get; init; }
    public required long PayloadSize { get; init; }
    public required int Source { get; init; }
    /// <summary>Where the records sit in the source checkpoint (null: same as <see cref="To"/>, for source 0).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<PageRun>? From { get; init; }
    public required IReadOnlyList<PageRun> To { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, MaxDepth = 16)]
[JsonSerializable(typeof(MemoryMap))]
internal sealed partial class MemoryMapJson : JsonSerializerContext;
