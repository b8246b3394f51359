using System.Formats.Tar;
using Sealpoint.Core;
using Sealpoint.Core.Format;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;
using Sealpoint.Packaging.Incremental;

namespace Sealpoint.Packaging.Packing;

/// <summary>What a checkpoint image says about itself, read without a key: nothing here is authenticated.</summary>
public sealed record ImageInspection(string Source, Descriptor ManifestDescriptor, Manifest Manifest, Envelope Envelope, Envelope? EngineEnvelope, MemoryMap? Map)
{
    public long MemoryLayerBytes => Manifest.Layers.Where(l => l.Annotation(CheckpointImage.LayerAnnotation) == CheckpointImage.MemoryLayer).Sum(l => l.Size);
}

/// <summary>Reads a checkpoint image's manifest and checkpoint layer (envelopes, memory map) for <c>sealpoint inspect REF</c>.</summary>
public static class Inspector
{
    public static async Task<ImageInspection> InspectAsync(IImageStore store, string? reference, CancellationToken ct)
    {
        var (descriptor, manifest) = await Unpacker.ResolveAsync(store, reference, ct).ConfigureAwait(false);
        var layer = Unpacker.CheckpointLayerOf(manifest, store.Describe);
        byte[]? envelope = null, engineEnvelope = null, map = null;
        await using (var blob = await store.OpenBlobAsync(layer, ct).ConfigureAwait(false))
        {
            try
            {
                using var reader = new TarReader(blob, leaveOpen: true);
                TarEntry? entry;
                while ((entry = await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false)) is not null)
                {
                    string name = entry.Name;
                    if (name == $"{CheckpointImage.CheckpointDir}/{ImageFiles.EnvelopeName}") envelope = await ReadAsync(entry, EnvelopeFile.MaxSize, ct).ConfigureAwait(false);
                    else if (name == $"{CheckpointImage.EngineDir}/{ImageFiles.EnvelopeName}") engineEnvelope = await ReadAsync(entry, EnvelopeFile.MaxSize, ct).ConfigureAwait(false);
                    else if (name == CheckpointImage.MemoryMapPath) map = await ReadAsync(entry, 256 << 20, ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
            {
                throw new IntegrityException($"the checkpoint layer of {store.Describe} is not a valid tar: {e.Message}");
            }
            // Read to the end so the layer's digest is checked too.
            await blob.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
        }
        if (envelope is null) throw new IntegrityException($"the checkpoint layer of {store.Describe} holds no envelope");
        return new ImageInspection($"{store.Describe}@{descriptor.Digest}", descriptor, manifest,
            EnvelopeFile.Parse(envelope, store.Describe).Envelope,
            engineEnvelope is null ? null : EnvelopeFile.Parse(engineEnvelope, store.Describe + " (engine files)").Envelope,
            map is null ? null : MemoryMap.Parse(map, store.Describe));
    }

    private static async Task<byte[]> ReadAsync(TarEntry entry, long max, CancellationToken ct)
    {
        if (entry.Length > max) throw new IntegrityException($"'{LayerTar.Sanitize(entry.Name)}' in the checkpoint layer is too large");
        var data = new byte[entry.Length];
        if (entry.DataStream is not null) await entry.DataStream.ReadExactlyAsync(data, ct).ConfigureAwait(false);
        return data;
    }
}
