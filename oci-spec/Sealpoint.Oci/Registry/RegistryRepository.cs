using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Registry;

/// <summary>One repository of a registry as an <see cref="IImageStore"/>. Blobs missing here are mounted from
/// <see cref="MountFrom"/> (same registry) when set, before they are uploaded.</summary>
public sealed class RegistryRepository(RegistryClient client, string repository) : IImageStore
{
    public RegistryClient Client { get; } = client;
    public string Repository { get; } = repository;
    public string? MountFrom { get; init; }
    public string Describe => $"{Client.Registry}/{Repository}";

    public static RegistryRepository For(Reference reference, RegistryClientOptions options) =>
        new(new RegistryClient(reference.Registry, options), reference.Repository);

    public Task<bool> HasBlobAsync(Descriptor blob, CancellationToken ct) => Client.BlobExistsAsync(Repository, blob, ct);

    public async Task PutBlobAsync(BlobContent content, IProgress<long>? progress, CancellationToken ct) =>
        await Client.PushBlobAsync(Repository, content, MountFrom, ct).ConfigureAwait(false);

    public Task<Stream> OpenBlobAsync(Descriptor blob, CancellationToken ct) => Client.OpenBlobAsync(Repository, blob, ct);

    public Task<FetchedManifest> GetManifestAsync(string? reference, CancellationToken ct) => Client.GetManifestAsync(Repository, reference ?? "latest", ct);

    public async Task<Descriptor> PutManifestAsync(byte[] bytes, string mediaType, string? tag, CancellationToken ct)
    {
        var descriptor = Descriptor.For(mediaType, bytes);
        var (stored, _) = await Client.PutManifestAsync(Repository, tag ?? descriptor.Digest.ToString(), bytes, mediaType, ct).ConfigureAwait(false);
        return stored;
    }
}
