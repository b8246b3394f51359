using System.Text.Json;
using static Sealpoint.Core.Format.StrictJson;

namespace Sealpoint.Core.Format;

/// <summary>
/// Reads the envelope's JSON object (docs/format.md §3) member by member (<see cref="StrictJson"/>). Why not the
/// serializer that writes it (<see cref="EnvelopeJsonContext"/>): its one-time set-up in a process is 20–40 ms of CPU
/// here, and a restore reads an envelope on its critical path while runc and CRIU wait; this reader's is well under a
/// millisecond. It reads what the serializer writes (EnvelopeReaderTests round-trips every field). Structure rules
/// beyond JSON types (hex ids, names, sizes) are <see cref="EnvelopeFile"/>'s validation.
/// </summary>
public static class EnvelopeReader
{
    public static Envelope Read(ReadOnlySpan<byte> json) => ReadDocument(json, "the envelope", ReadEnvelope);

    private static Envelope ReadEnvelope(ref Utf8JsonReader reader)
    {
        RequireObject(ref reader, "the envelope");
        int version = Envelope.CurrentVersion;
        long? generation = null;
        string? checkpointId = null, lineageId = null, parentId = null, metadataCipher = null, pagesCipher = null;
        DateTimeOffset? created = null;
        List<RecipientStanza>? recipients = null;
        List<FileEntry>? files = null;
        Dictionary<string, string>? annotations = null;
        int seen = 0;
        while (NextMember(ref reader, "the envelope"))
        {
            if (Is(ref reader, "version"u8, ref seen, 0)) version = Int32(ref reader, "version");
            else if (Is(ref reader, "checkpointId"u8, ref seen, 1)) checkpointId = RequiredString(ref reader, "checkpointId");
            else if (Is(ref reader, "lineageId"u8, ref seen, 2)) lineageId = RequiredString(ref reader, "lineageId");
            else if (Is(ref reader, "generation"u8, ref seen, 3)) generation = Int64(ref reader, "generation");
            else if (Is(ref reader, "parentId"u8, ref seen, 4)) parentId = OptionalString(ref reader, "parentId");
            else if (Is(ref reader, "created"u8, ref seen, 5)) created = Time(ref reader, "created");
            else if (Is(ref reader, "metadataCipher"u8, ref seen, 6)) metadataCipher = RequiredString(ref reader, "metadataCipher");
            else if (Is(ref reader, "pagesCipher"u8, ref seen, 7)) pagesCipher = RequiredString(ref reader, "pagesCipher");
            else if (Is(ref reader, "recipients"u8, ref seen, 8)) recipients = ReadArray(ref reader, "recipients", ReadRecipient);
            else if (Is(ref reader, "files"u8, ref seen, 9)) files = ReadArray(ref reader, "files", ReadFile);
            else if (Is(ref reader, "annotations"u8, ref seen, 10)) annotations = ReadStringMap(ref reader, "annotations");
            else reader.Skip();
        }
        return new Envelope
        {
            Version = version,
            CheckpointId = checkpointId ?? throw Missing("checkpointId"),
            LineageId = lineageId ?? throw Missing("lineageId"),
            Generation = generation ?? throw Missing("generation"),
            ParentId = parentId,
            Created = created ?? throw Missing("created"),
            MetadataCipher = metadataCipher ?? throw Missing("metadataCipher"),
            PagesCipher = pagesCipher ?? throw Missing("pagesCipher"),
            Recipients = recipients ?? throw Missing("recipients"),
            Files = files ?? throw Missing("files"),
            Annotations = annotations,
        };
    }

    private static RecipientStanza ReadRecipient(ref Utf8JsonReader reader)
    {
        RequireObject(ref reader, "a recipient");
        string? id = null, type = null, subject = null, ephemeralKey = null, wrappedKey = null;
        int seen = 0;
        while (NextMember(ref reader, "a recipient"))
        {
            if (Is(ref reader, "id"u8, ref seen, 0)) id = RequiredString(ref reader, "recipients[].id");
            else if (Is(ref reader, "type"u8, ref seen, 1)) type = RequiredString(ref reader, "recipients[].type");
            else if (Is(ref reader, "subject"u8, ref seen, 2)) subject = OptionalString(ref reader, "recipients[].subject");
            else if (Is(ref reader, "ephemeralKey"u8, ref seen, 3)) ephemeralKey = OptionalString(ref reader, "recipients[].ephemeralKey");
            else if (Is(ref reader, "wrappedKey"u8, ref seen, 4)) wrappedKey = RequiredString(ref reader, "recipients[].wrappedKey");
            else reader.Skip();
        }
        return new RecipientStanza
        {
            Id = id ?? throw Missing("recipients[].id"),
            Type = type ?? throw Missing("recipients[].type"),
            Subject = subject,
            EphemeralKey = ephemeralKey,
            WrappedKey = wrappedKey ?? throw Missing("recipients[].wrappedKey"),
        };
    }

    private static FileEntry ReadFile(ref Utf8JsonReader reader)
    {
        RequireObject(ref reader, "a file entry");
        string? name = null, kind = null, digest = null, target = null;
        long? size = null;
        int seen = 0;
        while (NextMember(ref reader, "a file entry"))
        {
            if (Is(ref reader, "name"u8, ref seen, 0)) name = RequiredString(ref reader, "files[].name");
            else if (Is(ref reader, "kind"u8, ref seen, 1)) kind = RequiredString(ref reader, "files[].kind");
            else if (Is(ref reader, "size"u8, ref seen, 2)) size = reader.TokenType == JsonTokenType.Null ? null : Int64(ref reader, "files[].size");
            else if (Is(ref reader, "digest"u8, ref seen, 3)) digest = OptionalString(ref reader, "files[].digest");
            else if (Is(ref reader, "target"u8, ref seen, 4)) target = OptionalString(ref reader, "files[].target");
            else reader.Skip();
        }
        return new FileEntry
        {
            Name = name ?? throw Missing("files[].name"),
            Kind = kind ?? throw Missing("files[].kind"),
            Size = size,
            Digest = digest,
            Target = target,
        };
    }
}
