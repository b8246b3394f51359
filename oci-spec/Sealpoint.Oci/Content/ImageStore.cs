using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Content;

/// <summary>A manifest as fetched: its bytes (verified against the descriptor's digest) and where it came from.</summary>
public sealed record FetchedManifest(Descriptor Descriptor, byte[] Bytes, string Source)
{
    public bool IsIndex => MediaTypes.IsIndex(Descriptor.MediaType);
    public Manifest ParseManifest() => OciJson.ParseManifest(Bytes, Source);
    public ImageIndex ParseIndex() => OciJson.ParseIndex(Bytes, Source);
}

/// <summary>
/// Something images are read from and written to: an OCI layout or a registry repository. Small on purpose;
/// copying, packing and pulling are written once against it.
/// </summary>
public interface IImageStore : IBlobSource, IBlobTarget
{
    string Describe { get; }

    /// <summary>The manifest a tag or digest names (null: the store's only/default one).</summary>
    Task<FetchedManifest> GetManifestAsync(string? reference, CancellationToken ct);

    /// <summary>Stores a manifest or index (its blobs must be stored first), tagged when a tag is given.</summary>
    Task<Descriptor> PutManifestAsync(byte[] bytes, string mediaType, string? tag, CancellationToken ct);
}
