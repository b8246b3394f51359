using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Format;

namespace Sealpoint.Packaging.Lineage;

/// <summary>What the node has seen of one lineage: the newest generation and which checkpoint it was.</summary>
public sealed record LineageRecord
{
    public required long Generation { get; init; }
    public required string CheckpointId { get; init; }
    public string? ParentId { get; init; }
    public required DateTimeOffset Updated { get; init; }
}

public sealed record LineageFile
{
    public int Version { get; init; } = 1;
    public Dictionary<string, LineageRecord> Lineages { get; init; } = new(StringComparer.Ordinal);
}

public enum LineageVerdict
{
    /// <summary>The node has never seen this lineage (first use: nothing to compare with).</summary>
    FirstUse,
    /// <summary>Newer than anything seen, and continuing the checkpoint seen last when it is its direct child.</summary>
    Newer,
    /// <summary>The very checkpoint seen last (pulling or restoring it again).</summary>
    Same,
    /// <summary>Older than a generation already seen: a rollback.</summary>
    Rollback,
    /// <summary>Another checkpoint at the generation seen, or a child of another checkpoint than the one seen: a fork.</summary>
    Fork,
}

/// <summary>
/// Rollback and fork protection (docs/registry.md): a node-local record (<c>lineages.json</c> in the state folder)
/// of the newest generation pulled or restored per lineage. Only authenticated envelopes may be given here. An older
/// generation, or a different checkpoint claiming a generation already seen, is refused unless forced.
/// </summary>
public sealed class LineageGuard(NodeState state)
{
    public const string FileName = "lineages.json";

    public string FilePath => state.PathOf(FileName);

    public LineageRecord? Find(string lineageId) => Read().Lineages.GetValueOrDefault(lineageId);

    public LineageVerdict Judge(Envelope authenticated)
    {
        var seen = Find(authenticated.LineageId);
        if (seen is null) return LineageVerdict.FirstUse;
        if (authenticated.Generation < seen.Generation) return LineageVerdict.Rollback;
        if (authenticated.Generation == seen.Generation)
            return authenticated.CheckpointId == seen.CheckpointId ? LineageVerdict.Same : LineageVerdict.Fork;
        if (authenticated.Generation == seen.Generation + 1 && authenticated.ParentId != seen.CheckpointId) return LineageVerdict.Fork;
        return LineageVerdict.Newer;
    }

    /// <summary>Throws a policy error for a rollback or fork unless <paramref name="force"/>; returns the verdict.</summary>
    public LineageVerdict Check(Envelope authenticated, bool force, Action<string>? warn = null)
    {
        var verdict = Judge(authenticated);
        var seen = Find(authenticated.LineageId);
        string? problem = verdict switch
        {
            LineageVerdict.Rollback =>
                $"rollback refused: checkpoint {authenticated.CheckpointId} is generation {authenticated.Generation} of lineage {authenticated.LineageId}, " +
                $"but this node already pulled or restored generation {seen!.Generation} (checkpoint {seen.CheckpointId}, {seen.Updated:u})",
            LineageVerdict.Fork when authenticated.Generation == seen!.Generation =>
                $"fork refused: checkpoint {authenticated.CheckpointId} claims generation {authenticated.Generation} of lineage {authenticated.LineageId}, " +
                $"but this node already saw a different checkpoint {seen.CheckpointId} at that generation ({seen.Updated:u})",
            LineageVerdict.Fork =>
                $"fork refused: checkpoint {authenticated.CheckpointId} (generation {authenticated.Generation}) continues checkpoint {authenticated.ParentId}, " +
                $"not {seen!.CheckpointId} which this node saw as generation {seen.Generation} of lineage {authenticated.LineageId}",
            _ => null,
        };
        if (problem is null) return verdict;
        if (!force)
            throw new SealpointException(ErrorKind.Policy, problem,
                "restore the newest generation of the lineage; if the older or diverging checkpoint is really wanted, pass --force");
        warn?.Invoke(problem.Replace(" refused", " forced", StringComparison.Ordinal));
        return verdict;
    }

    /// <summary>
    /// Records the checkpoint as seen. The recorded generation never decreases, except when an operator forced an
    /// older or diverging checkpoint (<paramref name="forced"/>): it then becomes the lineage's reference, so that the
    /// runtime restores what the operator chose and refuses anything older than that.
    /// </summary>
    public void Record(Envelope authenticated, bool forced = false)
    {
        state.EnsureDirectory();
        using (state.Lock("lineages"))
        {
            var file = Read();
            var seen = file.Lineages.GetValueOrDefault(authenticated.LineageId);
            if (seen is not null && authenticated.Generation < seen.Generation && !forced) return;
            file.Lineages[authenticated.LineageId] = new LineageRecord
            {
                Generation = authenticated.Generation, CheckpointId = authenticated.CheckpointId, ParentId = authenticated.ParentId,
                Updated = DateTimeOffset.UtcNow,
            };
            NodeState.WriteAtomic(FilePath, LineageStateJson.Write(file));
        }
    }

    private LineageFile Read()
    {
        if (!File.Exists(FilePath)) return new LineageFile();
        try
        {
            var bytes = File.ReadAllBytes(FilePath);
            var file = LineageStateJson.ReadLineages(bytes);
            if (file.Version != 1) throw new JsonException($"unsupported version {file.Version}");
            return file;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            // Never silently start over: an unreadable record would disable the protection.
            throw new SealpointException(ErrorKind.Config, $"rollback record {FilePath} cannot be read: {e.Message}",
                "restore it from a backup; deleting it disables rollback protection for every lineage until they are seen again");
        }
    }
}
