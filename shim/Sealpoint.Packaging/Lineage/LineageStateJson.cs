using System.Text.Json;
using Sealpoint.Core.Format;
using static Sealpoint.Core.Format.StrictJson;

namespace Sealpoint.Packaging.Lineage;

/// <summary>
/// The node's lineage records on disk (<see cref="LineageGuard.FileName"/>, <see cref="ContainerLineages.FileName"/>):
/// written with a <see cref="Utf8JsonWriter"/> (indented, camelCase, as the serializer wrote them before) and read member
/// by member (<see cref="StrictJson"/>). Not System.Text.Json's serializer: a restore reads and writes both records
/// before CRIU may start, and the serializer's one-time set-up (15-25 ms of CPU here) was on that critical path.
/// </summary>
public static class LineageStateJson
{
    private static readonly JsonWriterOptions Indented = new() { Indented = true };

    public static LineageFile ReadLineages(ReadOnlySpan<byte> json) => ReadDocument(json, "the lineage record", (ref Utf8JsonReader reader) =>
    {
        RequireObject(ref reader, "the lineage record");
        int version = 1;
        Dictionary<string, LineageRecord>? lineages = null;
        int seen = 0;
        while (NextMember(ref reader, "the lineage record"))
        {
            if (Is(ref reader, "version"u8, ref seen, 0)) version = Int32(ref reader, "version");
            else if (Is(ref reader, "lineages"u8, ref seen, 1)) lineages = ReadMap(ref reader, "lineages", ReadLineage);
            else reader.Skip();
        }
        return new LineageFile { Version = version, Lineages = lineages ?? throw Missing("lineages") };
    });

    private static LineageRecord ReadLineage(ref Utf8JsonReader reader)
    {
        RequireObject(ref reader, "a lineage");
        long? generation = null;
        string? checkpointId = null, parentId = null;
        DateTimeOffset? updated = null;
        int seen = 0;
        while (NextMember(ref reader, "a lineage"))
        {
            if (Is(ref reader, "generation"u8, ref seen, 0)) generation = Int64(ref reader, "generation");
            else if (Is(ref reader, "checkpointId"u8, ref seen, 1)) checkpointId = RequiredString(ref reader, "checkpointId");
            else if (Is(ref reader, "parentId"u8, ref seen, 2)) parentId = OptionalString(ref reader, "parentId");
            else if (Is(ref reader, "updated"u8, ref seen, 3)) updated = Time(ref reader, "updated");
            else reader.Skip();
        }
        return new LineageRecord
        {
            Generation = generation ?? throw Missing("generation"),
            CheckpointId = checkpointId ?? throw Missing("checkpointId"),
            ParentId = parentId,
            Updated = updated ?? throw Missing("updated"),
        };
    }

    public static byte[] Write(LineageFile file) => Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteNumber("version"u8, file.Version);
        writer.WriteStartObject("lineages"u8);
        foreach (var (id, record) in file.Lineages)
        {
            writer.WriteStartObject(id);
            writer.WriteNumber("generation"u8, record.Generation);
            writer.WriteString("checkpointId"u8, record.CheckpointId);
            if (record.ParentId is null) writer.WriteNull("parentId"u8);
            else writer.WriteString("parentId"u8, record.ParentId);
            writer.WriteString("updated"u8, record.Updated);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
    });

    public static Dictionary<string, ContainerCheckpoint> ReadContainers(ReadOnlySpan<byte> json) =>
        ReadDocument(json, "the container lineage record", (ref Utf8JsonReader reader) =>
            reader.TokenType == JsonTokenType.Null ? new(StringComparer.Ordinal) : ReadMap(ref reader, "the container lineage record", ReadContainer));

    private static ContainerCheckpoint ReadContainer(ref Utf8JsonReader reader)
    {
        RequireObject(ref reader, "a container's checkpoint");
        string? checkpointId = null, lineageId = null;
        long? generation = null;
        DateTimeOffset? updated = null;
        int seen = 0;
        while (NextMember(ref reader, "a container's checkpoint"))
        {
            if (Is(ref reader, "checkpointId"u8, ref seen, 0)) checkpointId = RequiredString(ref reader, "checkpointId");
            else if (Is(ref reader, "lineageId"u8, ref seen, 1)) lineageId = RequiredString(ref reader, "lineageId");
            else if (Is(ref reader, "generation"u8, ref seen, 2)) generation = Int64(ref reader, "generation");
            else if (Is(ref reader, "updated"u8, ref seen, 3)) updated = Time(ref reader, "updated");
            else reader.Skip();
        }
        return new ContainerCheckpoint
        {
            CheckpointId = checkpointId ?? throw Missing("checkpointId"),
            LineageId = lineageId ?? throw Missing("lineageId"),
            Generation = generation ?? throw Missing("generation"),
            Updated = updated ?? throw Missing("updated"),
        };
    }

    public static byte[] Write(IReadOnlyDictionary<string, ContainerCheckpoint> containers) => Write(writer =>
    {
        writer.WriteStartObject();
        foreach (var (id, last) in containers)
        {
            writer.WriteStartObject(id);
            writer.WriteString("checkpointId"u8, last.CheckpointId);
            writer.WriteString("lineageId"u8, last.LineageId);
            writer.WriteNumber("generation"u8, last.Generation);
            writer.WriteString("updated"u8, last.Updated);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
    });

    /// <summary>
    /// Writes and reads back a throwaway record of each kind, in memory: the writer's and reader's one-time set-up
    /// (~6 ms measured for the first write), for a restore to run on a spare core before it records the checkpoint.
    /// </summary>
    public static void WarmUp()
    {
        var record = new LineageRecord { Generation = 1, CheckpointId = new string('0', 32), ParentId = null, Updated = DateTimeOffset.UtcNow };
        var lineages = new LineageFile();
        lineages.Lineages[new string('0', 32)] = record;
        ReadLineages(Write(lineages));
        ReadContainers(Write(new Dictionary<string, ContainerCheckpoint>
        {
            ["warm-up"] = new() { CheckpointId = record.CheckpointId, LineageId = record.CheckpointId, Generation = 1, Updated = record.Updated },
        }));
    }

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, Indented)) write(writer);
        return buffer.WrittenSpan.ToArray();
    }
}
