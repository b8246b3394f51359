namespace Sealpoint.Oci;

/// <summary>Media types of the OCI image-spec and Docker schema 2, and Sealpoint's own.</summary>
public static class MediaTypes
{
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";
    public const string Layer = "application/vnd.oci.image.layer.v1.tar";
    public const string LayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string LayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string Empty = "application/vnd.oci.empty.v1+json";
    public const string LayoutHeader = "application/vnd.oci.layout.header.v1+json";

    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";

    /// <summary>The manifest types a GET asks for (Accept) and accepts back.</summary>
    public static readonly IReadOnlyList<string> Manifests = [ImageManifest, ImageIndex, DockerManifest, DockerManifestList];

    public static bool IsIndex(string? mediaType) => mediaType is ImageIndex or DockerManifestList;
    public static bool IsManifest(string? mediaType) => mediaType is ImageManifest or DockerManifest;

    /// <summary>The empty JSON object <c>{}</c> (image-spec manifest.md, "Guidance for an Empty Descriptor").</summary>
    public static readonly byte[] EmptyJson = "{}"u8.ToArray();
}

/// <summary>Pre-defined annotation keys of the image-spec (annotations.md).</summary>
public static class OciAnnotations
{
    public const string Created = "org.opencontainers.image.created";
    public const string RefName = "org.opencontainers.image.ref.name";
    public const string Title = "org.opencontainers.image.title";
    public const string Description = "org.opencontainers.image.description";
}
