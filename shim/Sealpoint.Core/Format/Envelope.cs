using System.Text.Json.Serialization;

namespace Sealpoint.Core.Format;

/// <summary>
/// The envelope of a sealed checkpoint: identity, lineage, algorithms, wrapped data keys and the list of
/// every file. Stored as <c>sealpoint.envelope</c> and authenticated by an HMAC under a key derived from the
/// data key (docs/format.md, "Envelope").
/// </summary>
public sealed record Envelope
{
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public required string CheckpointId { get; init; }
    public required string LineageId { get; init; }
    public required long Generation { get; init; }
    public string? ParentId { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required string MetadataCipher { get; init; }
    public required string PagesCipher { get; init; }
    public required IReadOnlyList<RecipientStanza> Recipients { get; init; }
    public required IReadOnlyList<FileEntry> Files { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>The data key wrapped for one recipient, named by the SHA-256 of its SubjectPublicKeyInfo.</summary>
public sealed record RecipientStanza
{
    public required string Id { get; init; }
    /// <summary><c>rsa-oaep-sha256</c>, <c>ecdh-p256</c> or <c>ecdh-p384</c>.</summary>
    public required string Type { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Subject { get; init; }
    /// <summary>For ECDH: the ephemeral public key, SubjectPublicKeyInfo in base64.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? EphemeralKey { get; init; }
    public required string WrappedKey { get; init; }
}

public static class FileEntryKinds
{
    public const string Stream = "stream";
    public const string Pages = "pages";
    public const string Plain = "plain";
    public const string Symlink = "symlink";
}

/// <summary>One file of the image directory. Size is the plaintext size; digest is defined per kind in docs/format.md.</summary>
public sealed record FileEntry
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Size { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Digest { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Target { get; init; }

    public bool IsSealed => Kind is FileEntryKinds.Stream or FileEntryKinds.Pages;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false)]
[JsonSerializable(typeof(Envelope))]
internal sealed partial class EnvelopeJsonContext : JsonSerializerContext;
