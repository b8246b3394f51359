using System.Formats.Tar;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Oci;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;
using Sealpoint.Packaging.Incremental;

namespace Sealpoint.Packaging.Packing;

public sealed record PackOptions
{
    public required NodeState State { get; init; }
    /// <summary>Recipients for the engine files: must be exactly the checkpoint's. Needed only when there are engine files.</summary>
    public IReadOnlyList<Recipient>? Recipients { get; init; }
    /// <summary>Reuse layers of earlier generations packed on this node (needs the keyed page index recorded at seal time).</summary>
    public bool Incremental { get; init; } = true;
    /// <summary>About how many memory chunks (image layers) the first generation is cut into; later generations keep its chunk size.</summary>
    public int TargetChunks { get; init; } = ChunkingParameters.DefaultTargetChunks;
    /// <summary>Where ciphertext is staged (default: the system temp folder).</summary>
    public string? WorkDir { get; init; }
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

public sealed record PackStats(int Chunks, int NewChunks, int ReusedChunks, long NewChunkBytes, long ReusedChunkBytes, long CheckpointLayerBytes,
    ChunkingParameters Chunking, string? IncrementalNote);

/// <summary>
/// A packed checkpoint image ready to be written to a store: its new blobs (config, checkpoint layer, new memory
/// chunks) staged locally, the reused chunk layers it only refers to, and the manifest. Disposing removes the staging.
/// </summary>
public sealed class PackedImage : IDisposable
{
    private readonly Staging _staging;

    internal PackedImage(Staging staging) => _staging = staging;

    public required Envelope Envelope { get; init; }
    public required IReadOnlyList<BlobContent> NewBlobs { get; init; }
    public required IReadOnlyList<Descriptor> ReusedLayers { get; init; }
    public required Descriptor Config { get; init; }
    public required IReadOnlyList<Descriptor> Layers { get; init; }
    public required IReadOnlyDictionary<string, string> Annotations { get; init; }
    public required PackStats Stats { get; init; }
    /// <summary>The previous generation's manifest as packed on this node (for <c>subject</c>), with where it went.</summary>
    public PackedCheckpoint? Parent { get; init; }
    internal PackedCheckpoint HistoryEntry { get; init; } = null!;
    internal IReadOnlyDictionary<string, PackedSource> HistorySources { get; init; } = null!;
    internal int AveragePages { get; init; }

    public long NewBytes => NewBlobs.Sum(b => b.Descriptor.Size);

    /// <summary>The manifest bytes; with a subject (the parent generation's manifest) when it is in the same store.</summary>
    public byte[] ManifestBytes(Descriptor? subject) => OciJson.Serialize(new Manifest
    {
        ArtifactType = CheckpointImage.ArtifactType,
        Config = Config,
        Layers = Layers,
        Subject = subject,
        Annotations = Annotations,
    });

    /// <summary>Remembers the packed chunks on this node, so that the next generation can reuse them.</summary>
    public void RecordInHistory(NodeState state, string location, Digest manifest)
    {
        if (HistoryEntry.Chunks.Count == 0) return;
        var entry = HistoryEntry with { Manifest = manifest, Locations = [location], Packed = DateTimeOffset.UtcNow };
        PackHistory.Record(state, Envelope.LineageId, AveragePages, entry, HistorySources);
    }

    public void Dispose() => _staging.Dispose();
}

/// <summary>
/// Turns a sealed checkpoint into a checkpoint image (docs/registry.md): one layer with the sealed CRIU images
/// except memory, the sealed engine files, the memory map and the page tags; then one layer per memory chunk holding
/// sealed page records, reused from earlier generations where the keyed page hashes say the pages are unchanged.
/// Runs on the node that sealed the checkpoint and needs no key: everything packed is already ciphertext.
/// </summary>
public static class Packer
{
    public static PackedImage Pack(CheckpointSource source, PackOptions options)
    {
        var envelope = source.Envelope;
        CheckComplete(source.CheckpointDirectory, envelope);
        var recipientIds = envelope.Recipients.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var staging = Staging.ForCiphertext(options.WorkDir, "image");
        try
        {
            string? engineDir = null;
            if (source.EngineEntries.Count > 0)
            {
                var recipients = options.Recipients ?? throw new SealpointException(ErrorKind.Usage,
                    $"{source.Description} holds engine files (spec.dump, config.dump …) that must be sealed for the checkpoint's recipients",
                    "give the recipients' certificates with --recipient (the same as the checkpoint's)");
                var given = recipients.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
                if (!given.SetEquals(recipientIds))
                    throw new SealpointException(ErrorKind.Usage,
                        $"the recipients given ({string.Join(", ", given.Select(Short))}) are not the checkpoint's ({string.Join(", ", recipientIds.Select(Short))})",
                        "give exactly the certificates the checkpoint was sealed for, so every recipient can open both the images and the engine files");
                engineDir = Path.Combine(staging.Path, CheckpointImage.EngineDir);
                EngineFiles.Seal(source.EngineEntries, engineDir, recipients, envelope.CheckpointId, source.Engine);
            }

            // Memory images: their header and tags (authenticated by the envelope digest) travel in the checkpoint layer.
            var pageFiles = envelope.Files.Where(f => f.Kind == FileEntryKinds.Pages).ToList();
            var tags = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var f in pageFiles) tags[f.Name] = ReadHeaderAndTags(Path.Combine(source.CheckpointDirectory, f.Name), f);

            var (plan, maps, reusedSources, history, stats) = PlanMemory(source, envelope, pageFiles, recipientIds, options, staging);

            var mapBytes = maps.Map.Serialize();
            string layerPath = Path.Combine(staging.Path, "checkpoint-layer.tar");
            WriteCheckpointLayer(layerPath, source.CheckpointDirectory, envelope, tags, mapBytes, engineDir);
            var (layerDigest, layerSize) = SegmentContent.Measure([new Segment.FileRange(layerPath, 0, new FileInfo(layerPath).Length)]);
            var checkpointLayer = new Descriptor
            {
                MediaType = MediaTypes.Layer, Digest = layerDigest, Size = layerSize,
                Annotations = new Dictionary<string, string> { [CheckpointImage.LayerAnnotation] = CheckpointImage.CheckpointLayer },
            };

            var layers = new List<Descriptor> { checkpointLayer };
            foreach (var d in plan.Select(p => p.Descriptor).DistinctBy(d => d.Digest)) layers.Add(d);
            var annotations = Annotate(source, envelope, options);
            var config = new ImageConfig
            {
                Created = envelope.Created,
                Architecture = Platform.Current.Architecture,
                Os = Platform.Current.Os,
                Config = new ImageRuntimeConfig { Labels = annotations.Where(a => a.Key.StartsWith("io.sealpoint.", StringComparison.Ordinal)).ToDictionary() },
                Rootfs = new RootFs { DiffIds = layers.Select(l => l.Digest).ToList() },
                History = [new HistoryEntry { Created = envelope.Created, CreatedBy = "sealpoint pack", Comment = $"checkpoint {envelope.CheckpointId} generation {envelope.Generation}" }],
            };
            var configBlob = BlobContent.FromBytes(MediaTypes.ImageConfig, OciJson.Serialize(config));

            var newBlobs = new List<BlobContent> { configBlob, BlobContent.FromFile(checkpointLayer, layerPath) };
            newBlobs.AddRange(plan.Where(p => p.Content is not null).Select(p => p.Content!).DistinctBy(c => c.Descriptor.Digest));
            var reused = plan.Where(p => p.Content is null).Select(p => p.Descriptor).DistinctBy(d => d.Digest).ToList();

            return new PackedImage(staging)
            {
                Envelope = envelope,
                NewBlobs = newBlobs,
                ReusedLayers = reused,
                Config = configBlob.Descriptor,
                Layers = layers,
                Annotations = annotations,
                Stats = stats with { CheckpointLayerBytes = layerSize },
                Parent = history.Parent,
                HistoryEntry = history.Entry,
                HistorySources = reusedSources,
                AveragePages = stats.Chunking.AveragePages,
            };
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    private static string Short(string id) => id[..Math.Min(16, id.Length)] + "…";

    /// <summary>Every file the envelope lists is there with its sealed size: packing a damaged checkpoint helps nobody.</summary>
    private static void CheckComplete(string dir, Envelope envelope)
    {
        foreach (var f in envelope.Files)
        {
            string path = Path.Combine(dir, f.Name);
            if (f.Kind == FileEntryKinds.Symlink)
            {
                if (new FileInfo(path).LinkTarget != f.Target) throw new IntegrityException($"symlink '{f.Name}' in {dir} does not match the envelope");
                continue;
            }
            var info = new FileInfo(path);
            long expected = f.Kind switch
            {
                FileEntryKinds.Pages => SealedPageCodec.SealedSize(f.Size!.Value),
                FileEntryKinds.Plain => f.Size!.Value,
                _ => -1,
            };
            if (!info.Exists || (expected >= 0 && info.Length != expected))
                throw new IntegrityException($"'{f.Name}' in {dir} is missing or has the wrong size for its envelope entry", "pack an intact sealed checkpoint");
        }
    }

    /// <summary>Header then every page's tag: exactly what the envelope digest covers, checked here.</summary>
    private static byte[] ReadHeaderAndTags(string path, FileEntry entry)
    {
        long size = entry.Size!.Value, pages = SealedPageCodec.PageCount(size);
        var result = new byte[SealedPageCodec.HeaderSize + pages * SealedPageCodec.TagSize];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        ReadAt(handle, result.AsSpan(0, SealedPageCodec.HeaderSize), SealedPageCodec.HeaderOffset(size), path);
        ReadAt(handle, result.AsSpan(SealedPageCodec.HeaderSize), SealedPageCodec.TagOffset(size, 0), path);
        string digest = SealedPageCodec.DigestOf(result.AsSpan(0, SealedPageCodec.HeaderSize), result.AsSpan(SealedPageCodec.HeaderSize));
        if (digest != entry.Digest)
            throw new IntegrityException($"sealed memory image {path} does not match its envelope digest (modified or truncated)", "pack an intact sealed checkpoint");
        return result;
    }

    private static void ReadAt(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset, string path)
    {
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n == 0) throw new IntegrityException($"{path} is truncated");
            buffer = buffer[n..];
            offset += n;
        }
    }

    private sealed record PlannedLayer(Descriptor Descriptor, BlobContent? Content);
    private sealed record MapResult(MemoryMap Map);
    private sealed record HistoryResult(PackedCheckpoint Entry, PackedCheckpoint? Parent);

    private static (List<PlannedLayer>, MapResult, Dictionary<string, PackedSource>, HistoryResult, PackStats) PlanMemory(
        CheckpointSource source, Envelope envelope, List<FileEntry> pageFiles, HashSet<string> recipientIds, PackOptions options, Staging staging)
    {
        var files = pageFiles.Select(f => (f.Name, SealedPageCodec.PageCount(f.Size!.Value))).ToList();
        long totalPages = files.Sum(f => f.Item2);
        var history = options.Incremental ? PackHistory.Load(options.State, envelope.LineageId) : null;
        var index = PageHashIndex.TryLoad(options.State, envelope.CheckpointId);
        var parameters = history is not null ? ChunkingParameters.FromAverage(history.AveragePages) : ChunkingParameters.ForTotal(totalPages, options.TargetChunks);
        var chunks = Chunker.Plan(files, index, parameters);
        bool keyed = chunks.Count == 0 || chunks[0].KeyedId is not null;

        string? note = null;
        if (!keyed) note = $"no keyed page index for checkpoint {envelope.CheckpointId} on this node: memory is uploaded in full, and the next generation cannot reuse it (the sealer records the index; see docs/registry.md)";
        // The generation to reuse from: the parent if this node packed it, else the newest earlier one it packed.
        PackedCheckpoint? parent = null;
        if (history is not null && keyed)
        {
            parent = history.Checkpoints.FirstOrDefault(c => c.CheckpointId == envelope.ParentId)
                ?? history.Checkpoints.Where(c => c.Generation < envelope.Generation).MaxBy(c => c.Generation);
            if (parent is null) note = $"no earlier generation of lineage {envelope.LineageId} was packed on this node: memory is uploaded in full";
        }
        else if (keyed && options.Incremental && envelope.Generation > 1)
        {
            note = $"no pack history for lineage {envelope.LineageId} on this node: memory is uploaded in full";
        }

        // Reusable chunks: keyed id → chunk, when every recipient of this checkpoint can open the records' source.
        var reusable = new Dictionary<string, PackedChunk>(StringComparer.Ordinal);
        var excludedSources = new HashSet<string>(StringComparer.Ordinal);
        if (parent is not null)
        {
            foreach (var c in parent.Chunks)
            {
                if (!history!.Sources.TryGetValue(c.Source, out var src) || !recipientIds.IsSubsetOf(src.Recipients)) { excludedSources.Add(c.Source); continue; }
                reusable.TryAdd(c.Id, c);
            }
            if (excludedSources.Count > 0)
                note = $"{excludedSources.Count} earlier checkpoint(s) are not sealed for all of this checkpoint's recipients; their chunks are uploaded again";
        }

        var sourcesOrder = new List<string> { envelope.CheckpointId };
        var usedSources = new Dictionary<string, PackedSource>(StringComparer.Ordinal);
        var layers = new PlannedLayer[chunks.Count];
        var mapChunks = new MapChunk[chunks.Count];
        var historyChunks = new List<PackedChunk>();
        var pageFilePaths = pageFiles.ToDictionary(f => f.Name, f => (Path: Path.Combine(source.CheckpointDirectory, f.Name), Size: f.Size!.Value), StringComparer.Ordinal);

        var toMeasure = new List<int>();
        for (int i = 0; i < chunks.Count; i++)
        {
            var chunk = chunks[i];
            if (chunk.IdHex is { } id && reusable.TryGetValue(id, out var old))
            {
                int sourceIndex = sourcesOrder.IndexOf(old.Source);
                if (sourceIndex < 0) { sourcesOrder.Add(old.Source); sourceIndex = sourcesOrder.Count - 1; usedSources[old.Source] = history!.Sources[old.Source]; }
                var descriptor = ChunkDescriptor(old.Layer, old.LayerSize);
                layers[i] = new PlannedLayer(descriptor, null);
                mapChunks[i] = new MapChunk { Layer = old.Layer, LayerSize = old.LayerSize, PayloadSize = old.PayloadSize, Source = sourceIndex, From = old.From, To = chunk.Runs };
                historyChunks.Add(old with { Id = id });
                continue;
            }
            toMeasure.Add(i);
        }

        // New chunks: records straight from this checkpoint's sealed files, in a deterministic one-file tar.
        Parallel.ForEach(toMeasure, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var chunk = chunks[i];
            // Per run: its ciphertext pages, then their tags (see MemoryMap: the payload layout).
            var payload = new List<Segment>();
            foreach (var run in chunk.Runs)
            {
                var (path, size) = pageFilePaths[run.File];
                long start = SealedPageCodec.CiphertextOffset(run.First);
                long end = Math.Min(SealedPageCodec.CiphertextOffset(run.First + run.Count), size);
                payload.Add(new Segment.FileRange(path, start, end - start));
                payload.Add(new Segment.FileRange(path, SealedPageCodec.TagOffset(size, run.First), run.Count * SealedPageCodec.TagSize));
            }
            long payloadSize = payload.Sum(s => s.Length);
            var tar = LayerTar.OneFile($"{CheckpointImage.ChunksDir}/{envelope.CheckpointId}-{i:D6}", payload);
            var (digest, size2) = SegmentContent.Measure(tar);
            var descriptor = ChunkDescriptor(digest, size2);
            layers[i] = new PlannedLayer(descriptor, new SegmentContent(descriptor, tar));
            mapChunks[i] = new MapChunk { Layer = digest, LayerSize = size2, PayloadSize = payloadSize, Source = 0, To = chunk.Runs };
        });
        foreach (int i in toMeasure)
        {
            if (chunks[i].IdHex is { } id)
                historyChunks.Add(new PackedChunk { Id = id, Layer = mapChunks[i].Layer, LayerSize = mapChunks[i].LayerSize, PayloadSize = mapChunks[i].PayloadSize, Source = envelope.CheckpointId, From = chunks[i].Runs });
        }

        // This checkpoint becomes a source for the next generation.
        var self = new PackedSource
        {
            Envelope = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(source.CheckpointDirectory, ImageFiles.EnvelopeName))),
            Headers = pageFiles.ToDictionary(f => f.Name, f => Convert.ToBase64String(ReadHeader(pageFilePaths[f.Name].Path, pageFilePaths[f.Name].Size)), StringComparer.Ordinal),
            Recipients = recipientIds.ToList(),
        };
        var historySources = new Dictionary<string, PackedSource>(usedSources, StringComparer.Ordinal) { [envelope.CheckpointId] = self };

        var map = new MemoryMap
        {
            CheckpointId = envelope.CheckpointId,
            Chunking = new MapChunking(ChunkingParameters.Algorithm, parameters.AveragePages, parameters.MinPages, parameters.MaxPages),
            Files = pageFiles.Select(f => f.Name).ToList(),
            Sources = sourcesOrder.Select((id, n) => n == 0
                ? new MapSource { CheckpointId = id }
                : new MapSource { CheckpointId = id, Envelope = usedSources[id].Envelope, Headers = usedSources[id].Headers }).ToList(),
            Chunks = mapChunks,
        };
        var entry = new PackedCheckpoint
        {
            CheckpointId = envelope.CheckpointId, Generation = envelope.Generation, Packed = DateTimeOffset.UtcNow, Chunks = keyed ? historyChunks : [],
        };
        int reusedCount = mapChunks.Count(c => c.Source != 0);
        var stats = new PackStats(chunks.Count, chunks.Count - reusedCount, reusedCount,
            mapChunks.Where(c => c.Source == 0).Sum(c => c.LayerSize), mapChunks.Where(c => c.Source != 0).Sum(c => c.LayerSize), 0, parameters, note);
        return (layers.ToList(), new MapResult(map), historySources, new HistoryResult(entry, parent), stats);
    }

    private static Descriptor ChunkDescriptor(Digest digest, long size) => new()
    {
        MediaType = MediaTypes.Layer, Digest = digest, Size = size,
        Annotations = new Dictionary<string, string> { [CheckpointImage.LayerAnnotation] = CheckpointImage.MemoryLayer },
    };

    private static byte[] ReadHeader(string path, long size)
    {
        var header = new byte[SealedPageCodec.HeaderSize];
        using var handle = File.OpenHandle(path);
        ReadAt(handle, header, SealedPageCodec.HeaderOffset(size), path);
        return header;
    }

    private static Dictionary<string, string> Annotate(CheckpointSource source, Envelope envelope, PackOptions options)
    {
        var a = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [OciAnnotations.Created] = envelope.Created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            [CheckpointImage.FormatAnnotation] = CheckpointImage.FormatVersion.ToString(),
            [CheckpointImage.CheckpointIdAnnotation] = envelope.CheckpointId,
            [CheckpointImage.LineageAnnotation] = envelope.LineageId,
            [CheckpointImage.GenerationAnnotation] = envelope.Generation.ToString(),
            [CheckpointImage.RecipientsAnnotation] = string.Join(",", envelope.Recipients.Select(r => r.Id)),
        };
        if (envelope.ParentId is not null) a[CheckpointImage.ParentAnnotation] = envelope.ParentId;
        if (source.Engine is not null)
        {
            a[CheckpointImage.EngineAnnotation] = source.Engine;
            a[CheckpointImage.CriuEngineName] = source.Engine;
            a[CheckpointImage.PodmanHostArch] = Platform.Current.Architecture;
            a[CheckpointImage.PodmanRuntimeName] = source.RuntimeName ?? "sealpoint-runc";
        }
        if (source.ContainerName is { Length: > 0 } name)
        {
            a[CheckpointImage.PodmanName] = name;
            a[CheckpointImage.CrioName] = name;
            a[CheckpointImage.CriuContainerName] = name;
        }
        foreach (var (k, v) in options.Annotations ?? new Dictionary<string, string>()) a[k] = v;
        return a;
    }

    /// <summary>The checkpoint layer: checkpoint/ without the memory images, page tags, memory map, sealed engine files.</summary>
    private static void WriteCheckpointLayer(string path, string checkpointDir, Envelope envelope, Dictionary<string, byte[]> tags, byte[] map, string? engineDir)
    {
        var mtime = envelope.Created;
        using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            void Dir(string name) => writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name + "/")
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
                ModificationTime = mtime,
            });
            void FileFrom(string name, Stream data) => writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                ModificationTime = mtime, DataStream = data,
            });

            Dir(CheckpointImage.CheckpointDir);
            foreach (var f in envelope.Files.Where(f => f.Kind != FileEntryKinds.Pages))
            {
                string name = $"{CheckpointImage.CheckpointDir}/{f.Name}";
                if (f.Kind == FileEntryKinds.Symlink)
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = f.Target!, ModificationTime = mtime });
                    continue;
                }
                using var data = File.OpenRead(Path.Combine(checkpointDir, f.Name));
                FileFrom(name, data);
            }
            using (var env = File.OpenRead(Path.Combine(checkpointDir, ImageFiles.EnvelopeName)))
                FileFrom($"{CheckpointImage.CheckpointDir}/{ImageFiles.EnvelopeName}", env);

            Dir(CheckpointImage.MetadataDir);
            FileFrom(CheckpointImage.MemoryMapPath, new MemoryStream(map));
            Dir(CheckpointImage.TagsDir);
            foreach (var (name, bytes) in tags.OrderBy(t => t.Key, StringComparer.Ordinal))
                FileFrom($"{CheckpointImage.TagsDir}/{name}{CheckpointImage.TagsSuffix}", new MemoryStream(bytes));

            if (engineDir is not null)
            {
                Dir(CheckpointImage.EngineDir);
                foreach (var f in new DirectoryInfo(engineDir).EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
                {
                    using var data = f.OpenRead();
                    FileFrom($"{CheckpointImage.EngineDir}/{f.Name}", data);
                }
            }
        }
        output.Flush(flushToDisk: false);
    }
}
