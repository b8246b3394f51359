using System.Text.Json.Serialization;

namespace Sealpoint.Oci.Models;

/// <summary>A content descriptor (image-spec descriptor.md): what a blob is, its digest and size.</summary>
public sealed record Descriptor
{
    public required string MediaType { get; init; }
    public required Digest Digest { get; init; }
    public required long Size { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Urls { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    /// <summary>Embedded content (base64 in JSON); must match digest and size when present.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public byte[]? Data { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Platform? Platform { get; init; }

    public string? Annotation(string key) => Annotations is not null && Annotations.TryGetValue(key, out var v) ? v : null;

    public static Descriptor For(string mediaType, byte[] content, IReadOnlyDictionary<string, string>? annotations = null) => new()
    {
        MediaType = mediaType, Digest = Digest.Sha256(content), Size = content.Length, Annotations = annotations,
    };

    public override string ToString() => $"{MediaType} {Digest} ({Size} bytes)";
}

public sealed record Platform
{
    public required string Architecture { get; init; }
    public required string Os { get; init; }
    [JsonPropertyName("os.version"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OsVersion { get; init; }
    [JsonPropertyName("os.features"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? OsFeatures { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    /// <summary>The platform this process runs on, in OCI/Go names.</summary>
    public static Platform Current => new()
    {
        Os = "linux",
        Architecture = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => "amd64",
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            System.Runtime.InteropServices.Architecture.Arm => "arm",
            System.Runtime.InteropServices.Architecture.S390x => "s390x",
            System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
            var other => other.ToString().ToLowerInvariant(),
        },
    };
}
