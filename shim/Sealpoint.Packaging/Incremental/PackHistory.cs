using System.Text.Json;
using System.Text.Json.Serialization;
using Sealpoint.Core;
using Sealpoint.Oci;

namespace Sealpoint.Packaging.Incremental;

/// <summary>
/// What this node packed of one lineage (<c>STATE/packs/LINEAGE.json</c>): for the newest few checkpoints, every
/// chunk's keyed id and the layer holding it, plus the envelopes and page headers of the checkpoints those layers
/// were sealed in. The next generation's packer looks its chunks up here to reuse layers. Ciphertext metadata and
/// keyed ids only: no plaintext, no keys.
/// </summary>
public sealed record PackHistory
{
    public const int KeepCheckpoints = 4;

    public int Version { get; init; } = 1;
    public required string LineageId { get; init; }
    public required int AveragePages { get; init; }
    public List<PackedCheckpoint> Checkpoints { get; init; } = [];
    /// <summary>Checkpoint id → what is needed to open records sealed in it.</summary>
    public Dictionary<string, PackedSource> Sources { get; init; } = new(StringComparer.Ordinal);

    public static string PathFor(NodeState state, string lineageId) => state.PathOf("packs", lineageId + ".json");

    public static PackHistory? Load(NodeState state, string lineageId)
    {
        string path = PathFor(state, lineageId);
        if (!File.Exists(path)) return null;
        try
        {
            var h = JsonSerializer.Deserialize(File.ReadAllBytes(path), PackHistoryJson.Default.PackHistory);
            return h is { Version: 1 } && h.LineageId == lineageId ? h : null;
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or NotSupportedException)
        {
            return null; // losing the history only costs deduplication
        }
    }

    /// <summary>Adds (or replaces) a packed checkpoint, keeps the newest few, drops sources nothing refers to, and saves.</summary>
    public static void Record(NodeState state, string lineageId, int averagePages, PackedCheckpoint packed, IReadOnlyDictionary<string, PackedSource> sources)
    {
        state.EnsureDirectory("packs");
        using (state.Lock("packs"))
        {
            var h = Load(state, lineageId) ?? new PackHistory { LineageId = lineageId, AveragePages = averagePages };
            var existing = h.Checkpoints.FirstOrDefault(c => c.CheckpointId == packed.CheckpointId);
            if (existing is not null)
            {
                h.Checkpoints.Remove(existing);
                packed = packed with { Locations = existing.Locations.Union(packed.Locations).ToList() };
            }
            h.Checkpoints.Add(packed);
            h.Checkpoints.Sort((a, b) => a.Generation.CompareTo(b.Generation));
            while (h.Checkpoints.Count > KeepCheckpoints) h.Checkpoints.RemoveAt(0);
            foreach (var (id, s) in sources) h.Sources[id] = s;
            var used = h.Checkpoints.SelectMany(c => c.Chunks.Select(k => k.Source)).ToHashSet(StringComparer.Ordinal);
            foreach (var id in h.Sources.Keys.Where(k => !used.Contains(k)).ToList()) h.Sources.Remove(id);
            NodeState.WriteAtomic(PathFor(state, lineageId), JsonSerializer.SerializeToUtf8Bytes(h with { AveragePages = h.AveragePages }, PackHistoryJson.Default.PackHistory));
        }
    }
}

public sealed record PackedCheckpoint
{
    public required string CheckpointId { get; init; }
    public required long Generation { get; init; }
    public required DateTimeOffset Packed { get; init; }
    /// <summary>Where it was written: registry repositories (HOST/REPO) or layouts (oci:DIR), for mounts and messages.</summary>
    public List<string> Locations { get; init; } = [];
    public Digest? Manifest { get; init; }
    public List<PackedChunk> Chunks { get; init; } = [];
}

public sealed record PackedChunk
{
    public required string Id { get; init; }
    public required Digest Layer { get; init; }
    public required long LayerSize { get; init; }
    public required long PayloadSize { get; init; }
    /// <summary>The checkpoint whose key sealed the records.</summary>
    public required string Source { get; init; }
    public required IReadOnlyList<PageRun> From { get; init; }
}

public sealed record PackedSource
{
    public required string Envelope { get; init; }
    public required Dictionary<string, string> Headers { get; init; }
    public required List<string> Recipients { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PackHistory))]
internal sealed partial class PackHistoryJson : JsonSerializerContext;
