using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sealpoint.Oci.Models;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false,
    ReadCommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 32)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageConfig))]
[JsonSerializable(typeof(LayoutHeader))]
[JsonSerializable(typeof(TagList))]
[JsonSerializable(typeof(RegistryErrors))]
[JsonSerializable(typeof(TokenResponse))]
internal sealed partial class OciJsonContext : JsonSerializerContext;

/// <summary>
/// Serialization of the OCI documents, and parsing of untrusted ones: malformed JSON, missing required fields,
/// invalid digests or negative sizes all become one <see cref="OciException"/> naming the source.
/// </summary>
public static class OciJson
{
    /// <summary>Manifests and indexes larger than this are refused (registries must accept 4 MiB; we allow twice that).</summary>
    public const int MaxManifestSize = 8 << 20;

    public static byte[] Serialize(Manifest m) => JsonSerializer.SerializeToUtf8Bytes(m, OciJsonContext.Default.Manifest);
    public static byte[] Serialize(ImageIndex i) => JsonSerializer.SerializeToUtf8Bytes(i, OciJsonContext.Default.ImageIndex);
    public static byte[] Serialize(ImageConfig c) => JsonSerializer.SerializeToUtf8Bytes(c, OciJsonContext.Default.ImageConfig);
    public static byte[] Serialize(LayoutHeader h) => JsonSerializer.SerializeToUtf8Bytes(h, OciJsonContext.Default.LayoutHeader);

    public static Manifest ParseManifest(ReadOnlySpan<byte> json, string source)
    {
        var m = Parse(json, OciJsonContext.Default.Manifest, source, "image manifest");
        if (m.SchemaVersion != 2) throw Invalid(source, $"schemaVersion is {m.SchemaVersion}, not 2");
        if (m.MediaType is not null && !MediaTypes.IsManifest(m.MediaType))
            throw Invalid(source, $"mediaType is '{Digest.Truncate(m.MediaType)}', not an image manifest");
        Check(m.Config, source, "config");
        if (m.Layers is null) throw Invalid(source, "it has no layers array");
        for (int i = 0; i < m.Layers.Count; i++) Check(m.Layers[i], source, $"layer {i}");
        if (m.Subject is not null) Check(m.Subject, source, "subject");
        return m;
    }

    public static ImageIndex ParseIndex(ReadOnlySpan<byte> json, string source)
    {
        var i = Parse(json, OciJsonContext.Default.ImageIndex, source, "image index");
        if (i.SchemaVersion != 2) throw Invalid(source, $"schemaVersion is {i.SchemaVersion}, not 2");
        if (i.Manifests is null) throw Invalid(source, "it has no manifests array");
        for (int n = 0; n < i.Manifests.Count; n++) Check(i.Manifests[n], source, $"manifest {n}");
        return i;
    }

    public static ImageConfig ParseConfig(ReadOnlySpan<byte> json, string source)
    {
        var c = Parse(json, OciJsonContext.Default.ImageConfig, source, "image config");
        if (c.Rootfs?.DiffIds is null) throw Invalid(source, "it has no rootfs.diff_ids");
        return c;
    }

    public static LayoutHeader ParseLayoutHeader(ReadOnlySpan<byte> json, string source) =>
        Parse(json, OciJsonContext.Default.LayoutHeader, source, "oci-layout file");

    internal static TagList ParseTags(ReadOnlySpan<byte> json, string source) => Parse(json, OciJsonContext.Default.TagList, source, "tag list");
    internal static TokenResponse ParseToken(ReadOnlySpan<byte> json, string source) => Parse(json, OciJsonContext.Default.TokenResponse, source, "token response");

    /// <summary>The registry's error codes and messages, or null when the body is not the spec's error JSON.</summary>
    internal static RegistryErrors? TryParseErrors(ReadOnlySpan<byte> json)
    {
        try { return JsonSerializer.Deserialize(json, OciJsonContext.Default.RegistryErrors); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException) { return null; }
    }

    /// <summary>The mediaType field of a manifest or index, to tell them apart before parsing fully.</summary>
    public static string? PeekMediaType(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 32 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isMediaType = reader.ValueTextEquals("mediaType"u8);
                if (!reader.Read()) return null;
                if (isMediaType) return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                reader.Skip();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { }
        return null;
    }

    private static T Parse<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string source, string what)
    {
        if (json.Length > MaxManifestSize)
            throw new OciException(OciErrorKind.Protocol, $"{what} from {source} is {json.Length} bytes, more than the {MaxManifestSize} allowed");
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw Invalid(source, $"it is JSON null, not an {what}");
        }
        catch (JsonException e)
        {
            throw new OciException(OciErrorKind.Protocol, $"{what} from {source} is not valid: {e.Message}",
                "the registry or layout returned something else than an OCI document; check the reference and the registry");
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or ArgumentException)
        {
            throw new OciException(OciErrorKind.Protocol, $"{what} from {source} is not valid: {e.Message}");
        }
    }

    private static void Check(Descriptor? d, string source, string what)
    {
        if (d is null) throw Invalid(source, $"{what} is missing");
        if (string.IsNullOrEmpty(d.MediaType) || d.MediaType.Length > 255) throw Invalid(source, $"{what} has no valid mediaType");
        if (d.Digest.Algorithm is null) throw Invalid(source, $"{what} has no digest");
        if (d.Size < 0) throw Invalid(source, $"{what} has a negative size");
        if (d.Data is not null && (d.Data.Length != d.Size || !d.Digest.Verify(d.Data)))
            throw new OciException(OciErrorKind.Integrity, $"{what} in {source} embeds data that does not match its digest and size");
    }

    private static OciException Invalid(string source, string why) =>
        new(OciErrorKind.Protocol, $"document from {source} is not valid: {why}", "check the reference; the content is not a well-formed OCI document");
}
