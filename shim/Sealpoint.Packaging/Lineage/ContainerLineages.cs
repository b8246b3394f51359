using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Packaging.Lineage;

/// <summary>The last checkpoint this node took or restored of a container: the next checkpoint continues its lineage.</summary>
public sealed record ContainerCheckpoint
{
    public required string CheckpointId { get; init; }
    public required string LineageId { get; init; }
    public required long Generation { get; init; }
    public required DateTimeOffset Updated { get; init; }
}

/// <summary>
/// Successive checkpoints of one container form a lineage (docs/registry.md): the runtime records, per container id,
/// the checkpoint it took or restored last (<c>STATE/containers.json</c>), and the next checkpoint of that container
/// is sealed as its child (same lineage, generation + 1, parent id). This is what lets incremental packs find the
/// previous generation and rollback protection compare generations, without CRIU memory tracking.
/// </summary>
public sealed class ContainerLineages(NodeState state)
{
    public const string FileName = "containers.json";

    public string FilePath => state.PathOf(FileName);

    /// <summary>The checkpoint a new checkpoint of <paramref name="containerId"/> continues, or null for a first one.</summary>
    public ParentCheckpoint? ParentFor(string containerId) =>
        Read().TryGetValue(containerId, out var last) ? new ParentCheckpoint(last.CheckpointId, last.LineageId, last.Generation) : null;

    /// <summary>Remembers <paramref name="authenticated"/> as the container's latest checkpoint.</summary>
    public void Record(string containerId, Envelope authenticated)
    {
        state.EnsureDirectory();
        using (state.Lock("containers"))
        {
            var all = Read();
            all[containerId] = new ContainerCheckpoint
            {
                CheckpointId = authenticated.CheckpointId, LineageId = authenticated.LineageId, Generation = authenticated.Generation,
                Updated = DateTimeOffset.UtcNow,
            };
            NodeState.WriteAtomic(FilePath, LineageStateJson.Write(all));
        }
    }

    private Dictionary<string, ContainerCheckpoint> Read()
    {
        if (!File.Exists(FilePath)) return new(StringComparer.Ordinal);
        try
        {
            return LineageStateJson.ReadContainers(File.ReadAllBytes(FilePath));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new SealpointException(ErrorKind.Config, $"the container lineage record {FilePath} cannot be read: {e.Message}",
                $"fix or remove {FilePath} (removing it starts new lineages for the next checkpoints)");
        }
    }
}
