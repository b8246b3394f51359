using System.Text.Json.Serialization;

namespace Sealpoint.Oci.Models;

/// <summary>An image manifest (image-spec manifest.md, v1.1: artifactType and subject included).</summary>
public sealed record Manifest
{
    public int SchemaVersion { get; init; } = 2;
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; } = MediaTypes.ImageManifest;
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }
    public required Descriptor Config { get; init; }
    public required IReadOnlyList<Descriptor> Layers { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Descriptor? Subject { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    public string? Annotation(string key) => Annotations is not null && Annotations.TryGetValue(key, out var v) ? v : null;

    /// <summary>Every blob the manifest references (config first, then layers; subject is a manifest, not included).</summary>
    public IEnumerable<Descriptor> Blobs => Layers.Prepend(Config);
}

/// <summary>An image index (image-spec image-index.md); also the content of index.json and of referrers responses.</summary>
public sealed record ImageIndex
{
    public int SchemaVersion { get; init; } = 2;
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; } = MediaTypes.ImageIndex;
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }
    public IReadOnlyList<Descriptor> Manifests { get; init; } = [];
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Descriptor? Subject { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>The image layout's <c>oci-layout</c> file.</summary>
public sealed record LayoutHeader
{
    public string ImageLayoutVersion { get; init; } = "1.0.0";
}

/// <summary>
/// The part of an OCI image configuration (image-spec config.md) engines need to pull an image:
/// platform, rootfs diff ids (one per layer), labels and history. Other fields are not modelled.
/// </summary>
public sealed record ImageConfig
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? Created { get; init; }
    public required string Architecture { get; init; }
    public required string Os { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ImageRuntimeConfig? Config { get; init; }
    public required RootFs Rootfs { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<HistoryEntry>? History { get; init; }
}

public sealed record ImageRuntimeConfig
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
}

public sealed record RootFs
{
    public string Type { get; init; } = "layers";
    [JsonPropertyName("diff_ids")]
    public required IReadOnlyList<Digest> DiffIds { get; init; }
}

public sealed record HistoryEntry
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? Created { get; init; }
    [JsonPropertyName("created_by"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CreatedBy { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Comment { get; init; }
}

/// <summary>The body of <c>GET /v2/NAME/tags/list</c>.</summary>
public sealed record TagList
{
    public string? Name { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }
}

/// <summary>The body of a distribution-spec error response.</summary>
public sealed record RegistryErrors
{
    public IReadOnlyList<RegistryError>? Errors { get; init; }
}

public sealed record RegistryError
{
    public string? Code { get; init; }
    public string? Message { get; init; }
}

/// <summary>A bearer token response (distribution token.md): token and/or access_token.</summary>
public sealed record TokenResponse
{
    public string? Token { get; init; }
    [JsonPropertyName("access_token")]
    public string? AccessToken { get; init; }
    [JsonPropertyName("expires_in")]
    public int? ExpiresIn { get; init; }
}
