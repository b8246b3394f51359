using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Transfer;

/// <summary>
/// Copies an image (manifest or index, recursively) between stores: config and layers first, then the manifest,
/// so a target never holds a manifest whose blobs are missing. Blobs the target has are skipped. A blob the
/// source lacks (a layout may omit blobs that live in the registry) is fine only when the target already has it.
/// </summary>
public sealed class ImageCopier(IImageStore source, IImageStore target)
{
    public int Parallelism { get; init; } = 2;

    public async Task<Descriptor> CopyAsync(string? sourceReference, string? targetTag, CancellationToken ct)
    {
        var fetched = await source.GetManifestAsync(sourceReference, ct).ConfigureAwait(false);
        return await CopyManifestAsync(fetched, targetTag, ct).ConfigureAwait(false);
    }

    public async Task<Descriptor> CopyManifestAsync(FetchedManifest fetched, string? targetTag, CancellationToken ct)
    {
        if (fetched.IsIndex)
        {
            var index = fetched.ParseIndex();
            foreach (var child in index.Manifests)
            {
                if (!MediaTypes.IsManifest(child.MediaType) && !MediaTypes.IsIndex(child.MediaType)) continue;
                var childManifest = await source.GetManifestAsync(child.Digest.ToString(), ct).ConfigureAwait(false);
                await CopyManifestAsync(childManifest, null, ct).ConfigureAwait(false);
            }
        }
        else
        {
            var manifest = fetched.ParseManifest();
            await CopyBlobsAsync(manifest.Blobs.DistinctBy(b => b.Digest).ToList(), ct).ConfigureAwait(false);
        }
        return await target.PutManifestAsync(fetched.Bytes, fetched.Descriptor.MediaType, targetTag, ct).ConfigureAwait(false);
    }

    public Task CopyBlobsAsync(IReadOnlyList<Descriptor> blobs, CancellationToken ct) =>
        Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (blob, token) =>
        {
            if (await target.HasBlobAsync(blob, token).ConfigureAwait(false)) return;
            await target.PutBlobAsync(new StoreBlobContent(source, blob), null, token).ConfigureAwait(false);
        });
}

/// <summary>A blob read from another store; re-opened (and re-verified) for each upload attempt.</summary>
public sealed class StoreBlobContent(IBlobSource source, Descriptor blob) : BlobContent
{
    public override Descriptor Descriptor { get; } = blob;

    public override Stream Open(long offset = 0)
    {
        if (source is Layout.OciLayout layout) return OpenLayout(layout.Blobs, offset);
        if (source is FileContentStore store) return OpenLayout(store, offset);
        var stream = source.OpenBlobAsync(Descriptor, CancellationToken.None).GetAwaiter().GetResult();
        if (offset > 0) SkipExactly(stream, offset);
        return stream;
    }

    private Stream OpenLayout(FileContentStore store, long offset)
    {
        if (!store.Has(Descriptor))
            throw new OciException(OciErrorKind.NotFound, $"blob {Descriptor.Digest} is neither in {store.Root} nor in the target",
                "copy the complete image, or push the image it reuses blobs from to the target first");
        // Seekable file: verification of the whole blob happened when it was stored; re-check on full reads.
        if (offset == 0) return store.OpenRead(Descriptor);
        var fs = new FileStream(store.PathOf(Descriptor.Digest), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        fs.Position = offset;
        return fs;
    }

    private static void SkipExactly(Stream s, long count)
    {
        byte[] buffer = new byte[1 << 16];
        while (count > 0)
        {
            int n = s.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new OciException(OciErrorKind.Integrity, "blob ended early while skipping to the resume offset");
            count -= n;
        }
    }
}
