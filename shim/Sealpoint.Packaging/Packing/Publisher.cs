using Sealpoint.Core;
using Sealpoint.Oci;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Layout;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;

namespace Sealpoint.Packaging.Packing;

public sealed record PublishResult(Descriptor Manifest, string Location, int BlobsWritten, int BlobsPresent, int ReusedMissing, bool Subject, bool ReferrersFallback);

/// <summary>
/// Writes a packed image into a store: blobs first (new ones uploaded, reused ones checked for, and mounted from the
/// repository they were pushed to when on the same registry), the manifest last, so a tag never names an image
/// whose blobs are missing. Only after the manifest is stored is the pack recorded as history on this node.
/// </summary>
public static class Publisher
{
    public static async Task<PublishResult> PublishAsync(PackedImage image, IImageStore target, string? tag, NodeState state, CancellationToken ct)
    {
        int written = 0, present = 0, missing = 0;
        var registry = target as RegistryRepository;

        await Parallel.ForEachAsync(image.NewBlobs, new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = ct }, async (blob, token) =>
        {
            if (await target.HasBlobAsync(blob.Descriptor, token).ConfigureAwait(false)) { Interlocked.Increment(ref present); return; }
            await target.PutBlobAsync(blob, null, token).ConfigureAwait(false);
            Interlocked.Increment(ref written);
        }).ConfigureAwait(false);

        var missingBlobs = new List<Descriptor>();
        foreach (var reused in image.ReusedLayers)
        {
            if (await target.HasBlobAsync(reused, ct).ConfigureAwait(false)) { present++; continue; }
            bool mounted = false;
            if (registry is not null)
            {
                foreach (var from in MountCandidates(image, registry))
                {
                    if (await registry.Client.TryMountAsync(registry.Repository, reused, from, ct).ConfigureAwait(false)) { mounted = true; break; }
                }
            }
            if (mounted) { written++; continue; }
            missingBlobs.Add(reused);
        }
        if (missingBlobs.Count > 0)
        {
            string where = image.Parent is { } p ? $" (generation {p.Generation} went to {string.Join(", ", p.Locations)})" : "";
            if (target is OciLayout)
            {
                missing = missingBlobs.Count;
            }
            else
            {
                throw new SealpointException(ErrorKind.NotFound,
                    $"{missingBlobs.Count} memory chunk(s) reused from an earlier generation are not in {target.Describe}{where}, e.g. {missingBlobs[0].Digest}",
                    "push the earlier generation to the same registry first, or pack with --full to upload all memory");
            }
        }

        // The parent generation's manifest as subject, when it lives in the same store.
        Descriptor? subject = null;
        if (image.Parent?.Manifest is { } parentDigest && image.Parent.Locations.Contains(target.Describe))
        {
            try
            {
                var parent = await target.GetManifestAsync(parentDigest.ToString(), ct).ConfigureAwait(false);
                subject = new Descriptor { MediaType = parent.Descriptor.MediaType, Digest = parent.Descriptor.Digest, Size = parent.Descriptor.Size };
            }
            catch (OciException e) when (e.Kind == OciErrorKind.NotFound) { }
        }

        byte[] manifestBytes = image.ManifestBytes(subject);
        Descriptor manifest;
        bool fallback = false;
        if (registry is not null)
        {
            var (stored, processed) = await registry.Client.PutManifestAsync(registry.Repository, tag ?? Descriptor.For(MediaTypes.ImageManifest, manifestBytes).Digest.ToString(),
                manifestBytes, MediaTypes.ImageManifest, ct).ConfigureAwait(false);
            manifest = stored;
            if (subject is not null && !processed)
            {
                // Registries without the referrers API: maintain the fallback tag (distribution-spec, "Referrers Tag Schema").
                var referrer = stored with { ArtifactType = CheckpointImage.ArtifactType, Annotations = image.Annotations };
                await registry.Client.AddToReferrersTagAsync(registry.Repository, subject.Digest, referrer, ct).ConfigureAwait(false);
                fallback = true;
            }
        }
        else
        {
            manifest = await target.PutManifestAsync(manifestBytes, MediaTypes.ImageManifest, tag, ct).ConfigureAwait(false);
        }
        image.RecordInHistory(state, target.Describe, manifest.Digest);
        return new PublishResult(manifest, target.Describe, written, present, missing, subject is not null, fallback);
    }

    /// <summary>Other repositories of the same registry that earlier generations were pushed to.</summary>
    private static IEnumerable<string> MountCandidates(PackedImage image, RegistryRepository target)
    {
        string prefix = target.Client.Registry + "/";
        return (image.Parent?.Locations ?? [])
            .Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => l[prefix.Length..])
            .Where(r => r != target.Repository && Reference.IsValidRepository(r))
            .Distinct();
    }
}
