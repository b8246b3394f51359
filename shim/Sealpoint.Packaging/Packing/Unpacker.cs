using System.Collections.Concurrent;
using System.Formats.Tar;
using System.Security.Cryptography;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Oci;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;
using Sealpoint.Packaging.Incremental;
using Sealpoint.Packaging.Lineage;

namespace Sealpoint.Packaging.Packing;

public sealed record PullOptions
{
    public required Identity Identity { get; init; }
    public required NodeState State { get; init; }
    /// <summary>Accept a rollback or fork (warned about, still recorded).</summary>
    public bool Force { get; init; }
    public Action<string>? Warn { get; init; }
    /// <summary>Where ciphertext is staged for --archive (default: the system temp folder).</summary>
    public string? WorkDir { get; init; }
    public int Parallelism { get; init; } = 2;
}

public sealed record PullResult(Envelope Envelope, Envelope? EngineEnvelope, LineageVerdict Verdict, Descriptor Manifest,
    int Chunks, int ReusedChunks, int Sources, string Output);

/// <summary>
/// Pulls a checkpoint image onto the restoring node: authenticates the envelope with the node's key, applies the
/// rollback/fork check, rebuilds the sealed memory images (records reused from earlier generations are opened with
/// those generations' keys and sealed again into this checkpoint's positions, each checked against the page tags
/// this checkpoint's envelope authenticates before it is written), verifies the whole sealed checkpoint, and opens
/// the engine files. The CRIU images stay sealed; plaintext of memory exists only in memory, one page at a time.
/// </summary>
public static class Unpacker
{
    private const long MaxCheckpointLayer = 16L << 30;
    private const long MaxChunkLayer = 2L << 30;

    /// <summary>
    /// Writes DIR/checkpoint (sealed, verified) and the opened engine files at DIR's top level (podman's bundle layout).
    /// DIR must be missing or empty; it appears only when everything verified.
    /// </summary>
    public static async Task<PullResult> PullToDirectoryAsync(IImageStore store, string? reference, string directory, PullOptions options, CancellationToken ct)
    {
        directory = Path.GetFullPath(directory).TrimEnd('/');
        if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
            throw new SealpointException(ErrorKind.Usage, $"{directory} is not empty", "give a new or empty output folder");
        string partial = $"{directory}.sealpoint-partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        Directory.CreateDirectory(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var scratch = Staging.ForPlaintext("pull");
        try
        {
            var result = await MaterializeAsync(store, reference, partial, partial, scratch.Path, options, ct).ConfigureAwait(false);
            if (Directory.Exists(directory)) Directory.Delete(directory);
            Directory.Move(partial, directory);
            new LineageGuard(options.State).Record(result.Envelope, forced: options.Force);
            return result with { Output = directory };
        }
        catch
        {
            FileSystem.RemoveTree(partial);
            throw;
        }
    }

    /// <summary>
    /// Writes a podman checkpoint export archive (uncompressed tar: checkpoint/ sealed, engine files opened) for
    /// <c>podman container restore --import FILE</c> with the sealpoint-runc runtime.
    /// </summary>
    public static async Task<PullResult> PullToArchiveAsync(IImageStore store, string? reference, string archive, PullOptions options, CancellationToken ct)
    {
        archive = Path.GetFullPath(archive);
        if (File.Exists(archive)) throw new SealpointException(ErrorKind.Usage, $"{archive} already exists", "give a new file name, or remove it first");
        using var sealedStage = Staging.ForCiphertext(options.WorkDir ?? Path.GetDirectoryName(archive), "pull");
        using var plainStage = Staging.ForPlaintext("pull");
        string engineOut = plainStage.Sub("engine");
        var result = await MaterializeAsync(store, reference, sealedStage.Path, engineOut, plainStage.Path, options, ct).ConfigureAwait(false);
        string partial = archive + ".partial";
        try
        {
            using (var output = new FileStream(partial, new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            using (var writer = new TarWriter(output, TarEntryFormat.Pax))
            {
                writer.WriteEntry(Path.Combine(sealedStage.Path, CheckpointImage.CheckpointDir), CheckpointImage.CheckpointDir);
                foreach (var e in new DirectoryInfo(Path.Combine(sealedStage.Path, CheckpointImage.CheckpointDir)).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
                    writer.WriteEntry(e.FullName, $"{CheckpointImage.CheckpointDir}/{e.Name}");
                AddTree(writer, engineOut, "");
            }
            File.Move(partial, archive);
        }
        catch
        {
            if (File.Exists(partial)) File.Delete(partial);
            throw;
        }
        new LineageGuard(options.State).Record(result.Envelope, forced: options.Force);
        return result with { Output = archive };
    }

    private static void AddTree(TarWriter writer, string dir, string prefix)
    {
        foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            string name = prefix + e.Name;
            writer.WriteEntry(e.FullName, name);
            if (e is DirectoryInfo && e.LinkTarget is null) AddTree(writer, e.FullName, name + "/");
        }
    }

    /// <summary>Resolves the image; rebuilds DIR/checkpoint in <paramref name="sealedRoot"/> and opens engine files into <paramref name="engineOut"/>.</summary>
    private static async Task<PullResult> MaterializeAsync(IImageStore store, string? reference, string sealedRoot, string engineOut, string scratch,
        PullOptions options, CancellationToken ct)
    {
        var (manifestDescriptor, manifest) = await ResolveAsync(store, reference, ct).ConfigureAwait(false);
        var layer = CheckpointLayerOf(manifest, store.Describe);
        if (layer.Size > MaxCheckpointLayer)
            throw new IntegrityException($"the checkpoint layer of {store.Describe} is {layer.Size} bytes, more than allowed");

        // 1. The checkpoint layer, verified against its digest, unpacked with only the expected paths.
        string layerFile = Path.Combine(sealedRoot, ".checkpoint-layer.tar");
        await DownloadAsync(store, layer, layerFile, ct).ConfigureAwait(false);
        string checkpointDir = Path.Combine(sealedRoot, CheckpointImage.CheckpointDir);
        string engineSealed = Path.Combine(sealedRoot, ".sealpoint-engine");
        var extras = ExtractCheckpointLayer(layerFile, checkpointDir, engineSealed, store.Describe);
        File.Delete(layerFile);

        // 2. Authenticate: from here on, lineage and generation are facts, not hints.
        byte[] envelopeBytes = File.ReadAllBytes(Path.Combine(checkpointDir, ImageFiles.EnvelopeName));
        using var codec = SealedPageCodec.Open(envelopeBytes, options.Identity, $"{store.Describe}@{manifestDescriptor.Digest}");
        var envelope = codec.Envelope;
        CheckHints(manifest, envelope, store.Describe);
        var verdict = new LineageGuard(options.State).Check(envelope, options.Force, options.Warn);

        // 3. Memory images, rebuilt and checked page by page.
        var map = MemoryMap.Parse(extras.Map ?? throw new IntegrityException($"{store.Describe} has no memory map"), store.Describe);
        var rebuild = new MemoryRebuild(codec, map, extras.Tags, checkpointDir, options.Identity, manifest, store);
        await rebuild.RunAsync(options.Parallelism, ct).ConfigureAwait(false);

        // 4. The whole sealed checkpoint, as the runtime will see it.
        using (var check = SealedCheckpoint.Open(checkpointDir, options.Identity)) check.Verify();

        // 5. The engine's files, opened where the engine needs them.
        Envelope? engineEnvelope = null;
        if (Directory.Exists(engineSealed))
        {
            engineEnvelope = EngineFiles.Open(engineSealed, options.Identity, envelope.CheckpointId, engineOut, scratch);
            FileSystem.RemoveTree(engineSealed);
        }
        return new PullResult(envelope, engineEnvelope, verdict, manifestDescriptor, map.Chunks.Count, map.Chunks.Count(c => c.Source != 0), map.Sources.Count, "");
    }

    /// <summary>The manifest a reference names; an index resolves to its Sealpoint checkpoint manifest.</summary>
    internal static async Task<(Descriptor, Manifest)> ResolveAsync(IImageStore store, string? reference, CancellationToken ct)
    {
        var fetched = await store.GetManifestAsync(reference, ct).ConfigureAwait(false);
        if (fetched.IsIndex)
        {
            var index = fetched.ParseIndex();
            var pick = index.Manifests.FirstOrDefault(m => m.ArtifactType == CheckpointImage.ArtifactType)
                ?? index.Manifests.FirstOrDefault(m => m.Platform is { } p && p.Os == "linux" && p.Architecture == Platform.Current.Architecture)
                ?? throw new SealpointException(ErrorKind.NotFound, $"{fetched.Source} is an index without a Sealpoint checkpoint manifest", "give the checkpoint image's reference");
            fetched = await store.GetManifestAsync(pick.Digest.ToString(), ct).ConfigureAwait(false);
        }
        var manifest = fetched.ParseManifest();
        if (manifest.ArtifactType != CheckpointImage.ArtifactType && manifest.Annotation(CheckpointImage.FormatAnnotation) is null)
            throw new SealpointException(ErrorKind.Usage, $"{fetched.Source} is not a Sealpoint checkpoint image (artifactType '{manifest.ArtifactType ?? "(none)"}')",
                "give a reference written by 'sealpoint pack' or 'sealpoint push'");
        if (manifest.Annotation(CheckpointImage.FormatAnnotation) is { } format && format != CheckpointImage.FormatVersion.ToString())
            throw new SealpointException(ErrorKind.Usage, $"{fetched.Source} uses Sealpoint image format {format}; this build reads {CheckpointImage.FormatVersion}",
                "pull it with a Sealpoint release that reads that format");
        return (fetched.Descriptor, manifest);
    }

    internal static Descriptor CheckpointLayerOf(Manifest manifest, string source) =>
        manifest.Layers.FirstOrDefault(l => l.Annotation(CheckpointImage.LayerAnnotation) == CheckpointImage.CheckpointLayer)
        ?? (manifest.Layers.Count > 0 ? manifest.Layers[0] : throw new IntegrityException($"{source} has no layers"));

    /// <summary>Manifest annotations are hints; if they contradict the authenticated envelope, something is being forged.</summary>
    private static void CheckHints(Manifest manifest, Envelope envelope, string source)
    {
        void Check(string key, string actual)
        {
            if (manifest.Annotation(key) is { } hint && hint != actual)
                throw new IntegrityException($"{source}: annotation {key}='{LayerTar.Sanitize(hint)}' contradicts the authenticated envelope ('{actual}')",
                    "the manifest was altered; do not restore this image");
        }
        Check(CheckpointImage.CheckpointIdAnnotation, envelope.CheckpointId);
        Check(CheckpointImage.LineageAnnotation, envelope.LineageId);
        Check(CheckpointImage.GenerationAnnotation, envelope.Generation.ToString());
    }

    internal static async Task DownloadAsync(IImageStore store, Descriptor blob, string path, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await using var input = await store.OpenBlobAsync(blob, ct).ConfigureAwait(false);
                await using var output = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite, Options = FileOptions.Asynchronous,
                });
                await input.CopyToAsync(output, 1 << 20, ct).ConfigureAwait(false);
                return;
            }
            catch (OciException e) when (e.Transient && attempt < 4)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), ct).ConfigureAwait(false);
            }
        }
    }

    internal sealed record LayerExtras(byte[]? Map, Dictionary<string, byte[]> Tags);

    /// <summary>Unpacks the checkpoint layer; only checkpoint/NAME (files, symlinks), the map, page tags and sealpoint-engine/NAME are accepted.</summary>
    internal static LayerExtras ExtractCheckpointLayer(string layerFile, string checkpointDir, string engineDir, string source)
    {
        Directory.CreateDirectory(checkpointDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        byte[]? map = null;
        var tags = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        try
        {
            using var file = File.OpenRead(layerFile);
            using var reader = new TarReader(file);
            TarEntry? entry;
            int count = 0;
            while ((entry = reader.GetNextEntry()) is not null)
            {
                if (++count > 200_000) throw new IntegrityException($"the checkpoint layer of {source} has too many entries");
                string name = entry.Name.TrimEnd('/');
                if (entry.EntryType == TarEntryType.Directory)
                {
                    if (name is CheckpointImage.CheckpointDir or CheckpointImage.MetadataDir or CheckpointImage.TagsDir or CheckpointImage.EngineDir) continue;
                    throw Unexpected(name, source);
                }
                var parts = name.Split('/');
                bool regular = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile;
                if (parts.Length == 2 && parts[0] == CheckpointImage.CheckpointDir && ImageFiles.IsValidName(parts[1]))
                {
                    string target = Path.Combine(checkpointDir, parts[1]);
                    if (entry.EntryType == TarEntryType.SymbolicLink) File.CreateSymbolicLink(target, entry.LinkName);
                    else if (regular) WriteEntry(entry, target);
                    else throw Unexpected(name, source);
                }
                else if (regular && name == CheckpointImage.MemoryMapPath)
                {
                    map = ReadSmall(entry, 256 << 20, name, source);
                }
                else if (regular && parts.Length == 3 && $"{parts[0]}/{parts[1]}" == CheckpointImage.TagsDir && parts[2].EndsWith(CheckpointImage.TagsSuffix, StringComparison.Ordinal))
                {
                    tags[parts[2][..^CheckpointImage.TagsSuffix.Length]] = ReadSmall(entry, 1L << 30, name, source);
                }
                else if (regular && parts.Length == 2 && parts[0] == CheckpointImage.EngineDir && ImageFiles.IsValidName(parts[1]))
                {
                    Directory.CreateDirectory(engineDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                    WriteEntry(entry, Path.Combine(engineDir, parts[1]));
                }
                else
                {
                    throw Unexpected(name, source);
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new IntegrityException($"the checkpoint layer of {source} is not a valid tar: {e.Message}");
        }
        catch (IOException e) when (e is not FileNotFoundException && e.Message.Contains("exists", StringComparison.OrdinalIgnoreCase))
        {
            throw new IntegrityException($"the checkpoint layer of {source} holds an entry twice");
        }
        if (!File.Exists(Path.Combine(checkpointDir, ImageFiles.EnvelopeName)))
            throw new IntegrityException($"the checkpoint layer of {source} holds no envelope (checkpoint/{ImageFiles.EnvelopeName})");
        return new LayerExtras(map, tags);
    }

    private static IntegrityException Unexpected(string name, string source) =>
        new($"the checkpoint layer of {source} holds an unexpected entry '{LayerTar.Sanitize(name)}'", "it was not written by Sealpoint, or was altered");

    private static void WriteEntry(TarEntry entry, string target)
    {
        using var output = new FileStream(target, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        entry.DataStream?.CopyTo(output);
    }

    private static byte[] ReadSmall(TarEntry entry, long max, string name, string source)
    {
        if (entry.Length > max) throw new IntegrityException($"{name} in the checkpoint layer of {source} is too large");
        var data = new byte[entry.Length];
        entry.DataStream?.ReadExactly(data);
        return data;
    }

    /// <summary>
    /// Rebuilds the sealed memory images of one checkpoint from its memory map. Every page written is either this
    /// checkpoint's own record whose tag equals the authenticated tag, or a record of an earlier checkpoint (opened with
    /// that checkpoint's authenticated key) sealed again at its new position, whose new tag equals the authenticated
    /// tag. A page whose tag differs is never written: sealing different plaintext at a position would reuse a nonce.
    /// </summary>
    private sealed class MemoryRebuild
    {
        private readonly SealedPageCodec _codec;
        private readonly MemoryMap _map;
        private readonly string _dir;
        private readonly Identity _identity;
        private readonly IImageStore _store;
        private readonly Dictionary<Digest, Descriptor> _layers;
        private readonly Dictionary<string, TargetFile> _targets = new(StringComparer.Ordinal);
        private readonly SealedPageCodec?[] _sources;
        private readonly ConcurrentBag<Worker> _workers = [];

        public MemoryRebuild(SealedPageCodec codec, MemoryMap map, Dictionary<string, byte[]> tags, string dir, Identity identity, Manifest manifest, IImageStore store)
        {
            _codec = codec;
            _map = map;
            _dir = dir;
            _identity = identity;
            _store = store;
            _layers = manifest.Layers.GroupBy(l => l.Digest).ToDictionary(g => g.Key, g => g.First());
            var env = codec.Envelope;
            if (map.CheckpointId != env.CheckpointId) throw new IntegrityException($"the memory map of {store.Describe} is for checkpoint {map.CheckpointId}, not {env.CheckpointId}");
            var pageFiles = env.Files.Where(f => f.Kind == FileEntryKinds.Pages).ToDictionary(f => f.Name, StringComparer.Ordinal);
            if (!map.Files.ToHashSet(StringComparer.Ordinal).SetEquals(pageFiles.Keys) || map.Files.Count != pageFiles.Count)
                throw new IntegrityException($"the memory map of {store.Describe} does not list the envelope's memory images");
            foreach (var (name, entry) in pageFiles)
            {
                if (!tags.TryGetValue(name, out var t))
                    throw new IntegrityException($"{store.Describe} lacks the page tags of '{name}'");
                long pages = SealedPageCodec.PageCount(entry.Size!.Value);
                if (t.LongLength != SealedPageCodec.HeaderSize + pages * SealedPageCodec.TagSize
                    || SealedPageCodec.DigestOf(t.AsSpan(0, SealedPageCodec.HeaderSize), t.AsSpan(SealedPageCodec.HeaderSize)) != entry.Digest)
                    throw new IntegrityException($"the page tags of '{name}' in {store.Describe} do not match the authenticated envelope");
                _targets[name] = new TargetFile(name, entry.Size!.Value, pages, t);
            }
            _sources = new SealedPageCodec?[map.Sources.Count];
        }

        public async Task RunAsync(int parallelism, CancellationToken ct)
        {
            try
            {
                foreach (var t in _targets.Values) t.Create(_dir);
                OpenSources();
                await Parallel.ForEachAsync(_map.Chunks, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = ct },
                    async (chunk, token) =>
                    {
                        var payload = await FetchAsync(chunk, token).ConfigureAwait(false);
                        var worker = _workers.TryTake(out var w) ? w : new Worker(this);
                        try { worker.Apply(chunk, payload); }
                        finally
                        {
                            CryptographicOperations.ZeroMemory(payload);
                            _workers.Add(worker);
                        }
                    }).ConfigureAwait(false);
                foreach (var t in _targets.Values)
                    if (t.Missing() is { } page)
                        throw new IntegrityException($"the memory map of {_store.Describe} leaves page {page} of '{t.Name}' out");
            }
            finally
            {
                foreach (var w in _workers) w.Dispose();
                foreach (var t in _targets.Values) t.Dispose();
                foreach (var s in _sources.Skip(1)) s?.Dispose();
            }
        }

        /// <summary>Earlier checkpoints whose records are reused: authenticated with this node's key, same lineage, older.</summary>
        private void OpenSources()
        {
            var env = _codec.Envelope;
            for (int i = 1; i < _map.Sources.Count; i++)
            {
                var s = _map.Sources[i];
                byte[] bytes;
                try { bytes = Convert.FromBase64String(s.Envelope!); }
                catch (FormatException) { throw new IntegrityException($"source {i} of the memory map of {_store.Describe} has a malformed envelope"); }
                var codec = SealedPageCodec.Open(bytes, _identity, $"earlier checkpoint {s.CheckpointId} referenced by {_store.Describe}");
                _sources[i] = codec;
                if (codec.Envelope.CheckpointId != s.CheckpointId || codec.Envelope.LineageId != env.LineageId || codec.Envelope.Generation >= env.Generation)
                    throw new IntegrityException($"{_store.Describe} reuses pages of checkpoint {codec.Envelope.CheckpointId}, which is not an earlier generation of lineage {env.LineageId}");
            }
        }

        private async Task<byte[]> FetchAsync(MapChunk chunk, CancellationToken ct)
        {
            if (!_layers.TryGetValue(chunk.Layer, out var layer) || layer.Size != chunk.LayerSize)
                throw new IntegrityException($"the memory map of {_store.Describe} names layer {chunk.Layer}, which the manifest does not list");
            if (layer.Size > MaxChunkLayer) throw new IntegrityException($"memory layer {chunk.Layer} is too large ({layer.Size} bytes)");
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    byte[] tar = _store is RegistryRepository r
                        ? await r.Client.ReadBlobAsync(r.Repository, layer, MaxChunkLayer, ct).ConfigureAwait(false)
                        : await ReadAllAsync(layer, ct).ConfigureAwait(false);
                    return LayerTar.ReadChunk(new MemoryStream(tar, writable: false), chunk.PayloadSize, $"memory layer {chunk.Layer.Short}");
                }
                catch (OciException e) when (e.Transient && attempt < 4)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), ct).ConfigureAwait(false);
                }
            }
        }

        private async Task<byte[]> ReadAllAsync(Descriptor layer, CancellationToken ct)
        {
            await using var s = await _store.OpenBlobAsync(layer, ct).ConfigureAwait(false);
            return await VerifyingStream.ReadAllAsync(s, layer.Size, ct).ConfigureAwait(false);
        }

        private sealed class TargetFile(string name, long size, long pages, byte[] headerAndTags) : IDisposable
        {
            private int[] _written = new int[pages];
            private FileStream? _file;

            public string Name { get; } = name;
            public long Size { get; } = size;
            public long Pages { get; } = pages;
            public ReadOnlySpan<byte> Header => headerAndTags.AsSpan(0, SealedPageCodec.HeaderSize);
            public ReadOnlySpan<byte> Tag(long index) => headerAndTags.AsSpan((int)(SealedPageCodec.HeaderSize + index * SealedPageCodec.TagSize), SealedPageCodec.TagSize);

            /// <summary>The file at its sealed size, with the authenticated tag table and header already in place.</summary>
            public void Create(string dir)
            {
                _file = new FileStream(Path.Combine(dir, Name), new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                _file.SetLength(SealedPageCodec.SealedSize(Size));
                RandomAccess.Write(_file.SafeFileHandle, headerAndTags.AsSpan(SealedPageCodec.HeaderSize), SealedPageCodec.TagOffset(Size, 0));
                RandomAccess.Write(_file.SafeFileHandle, Header, SealedPageCodec.HeaderOffset(Size));
            }

            public void Write(long index, ReadOnlySpan<byte> ciphertext, string source)
            {
                if (Interlocked.Exchange(ref _written[index], 1) != 0)
                    throw new IntegrityException($"the memory map of {source} writes page {index} of '{Name}' twice");
                RandomAccess.Write(_file!.SafeFileHandle, ciphertext, SealedPageCodec.CiphertextOffset(index));
            }

            public long? Missing()
            {
                for (long i = 0; i < Pages; i++) if (_written[i] == 0) return i;
                return null;
            }

            public void Dispose()
            {
                _file?.Flush(flushToDisk: true);
                _file?.Dispose();
                _file = null;
            }
        }

        /// <summary>Per-thread ciphers (they are not thread-safe) and page buffers wiped after use.</summary>
        private sealed class Worker(MemoryRebuild owner) : IDisposable
        {
            private readonly Dictionary<(int, string), SealedPageCodec.PageFile> _files = [];
            private readonly byte[] _plain = new byte[SealedPageCodec.PageSize];
            private readonly byte[] _cipher = new byte[SealedPageCodec.PageSize];
            private readonly byte[] _tag = new byte[SealedPageCodec.TagSize];

            private SealedPageCodec.PageFile Cipher(int source, string file)
            {
                if (_files.TryGetValue((source, file), out var f)) return f;
                if (source == 0)
                {
                    if (!owner._targets.TryGetValue(file, out var t)) throw new IntegrityException($"'{LayerTar.Sanitize(file)}' is not a memory image of this checkpoint");
                    f = owner._codec.OpenFile(file, t.Header);
                }
                else
                {
                    var s = owner._map.Sources[source];
                    if (s.Headers is null || !s.Headers.TryGetValue(file, out var b64)) throw new IntegrityException($"source {source} of the memory map lacks the header of '{LayerTar.Sanitize(file)}'");
                    byte[] h;
                    try { h = Convert.FromBase64String(b64); }
                    catch (FormatException) { throw new IntegrityException($"source {source} of the memory map has a malformed header for '{LayerTar.Sanitize(file)}'"); }
                    f = owner._sources[source]!.OpenFile(file, h);
                }
                _files[(source, file)] = f;
                return f;
            }

            /// <summary>Walks the payload run by run (ciphertext pages, then their tags) and places each page at its target.</summary>
            public void Apply(MapChunk chunk, byte[] payload)
            {
                string where = owner._store.Describe;
                using var to = Pages(chunk.To).GetEnumerator();
                long pos = 0;
                foreach (var run in chunk.From ?? chunk.To)
                {
                    long fileSize = chunk.Source == 0
                        ? (owner._targets.TryGetValue(run.File, out var own) ? own.Size : throw new IntegrityException($"a chunk of {where} names an unknown memory image"))
                        : Cipher(chunk.Source, run.File).Size;
                    long pages = SealedPageCodec.PageCount(fileSize);
                    if (run.First + run.Count > pages) throw new IntegrityException($"a chunk of {where} reads past the end of '{LayerTar.Sanitize(run.File)}'");
                    long cipherLen = Math.Min(SealedPageCodec.CiphertextOffset(run.First + run.Count), fileSize) - SealedPageCodec.CiphertextOffset(run.First);
                    long tagsAt = pos + cipherLen;
                    if (tagsAt + run.Count * SealedPageCodec.TagSize > payload.LongLength) throw new IntegrityException($"a chunk of {where} is shorter than its pages");
                    for (long k = 0; k < run.Count; k++)
                    {
                        if (!to.MoveNext()) throw new IntegrityException($"a chunk of {where} has more source than target pages");
                        var (tFile, tIndex) = to.Current;
                        long sIndex = run.First + k;
                        if (!owner._targets.TryGetValue(tFile, out var target) || tIndex >= target.Pages)
                            throw new IntegrityException($"a chunk of {where} writes outside the memory images ('{LayerTar.Sanitize(tFile)}' page {tIndex})");
                        int sLen = SealedPageCodec.PageLength(fileSize, sIndex);
                        int tLen = SealedPageCodec.PageLength(target.Size, tIndex);
                        var ciphertext = payload.AsSpan((int)(pos + k * SealedPageCodec.PageSize), sLen);
                        var tag = payload.AsSpan((int)(tagsAt + k * SealedPageCodec.TagSize), SealedPageCodec.TagSize);
                        if (chunk.Source == 0)
                        {
                            if (run.File != tFile || sIndex != tIndex) throw new IntegrityException($"a chunk of {where} moves this checkpoint's own pages");
                            if (!tag.SequenceEqual(target.Tag(tIndex)))
                                throw new IntegrityException($"page {tIndex} of '{tFile}' in {where} does not carry its authenticated tag");
                            target.Write(tIndex, ciphertext, where);
                            continue;
                        }
                        if (sLen != tLen) throw new IntegrityException($"a chunk of {where} maps a {sLen}-byte page onto a {tLen}-byte one");
                        var source = Cipher(chunk.Source, run.File);
                        if (!source.TryOpen(sIndex, ciphertext, tag, _plain))
                            throw new IntegrityException($"page {sIndex} of '{run.File}' from earlier checkpoint {owner._map.Sources[chunk.Source].CheckpointId} failed authentication");
                        Cipher(0, tFile).Seal(tIndex, _plain.AsSpan(0, tLen), _cipher.AsSpan(0, tLen), _tag);
                        CryptographicOperations.ZeroMemory(_plain);
                        // Only a page identical to the sealer's may be written (same key, nonce and plaintext).
                        if (!_tag.AsSpan().SequenceEqual(target.Tag(tIndex)))
                            throw new IntegrityException($"page {tIndex} of '{tFile}' rebuilt from checkpoint {owner._map.Sources[chunk.Source].CheckpointId} does not match its authenticated tag",
                                "the memory map or an earlier generation's layer is wrong; do not restore this image");
                        target.Write(tIndex, _cipher.AsSpan(0, tLen), where);
                    }
                    pos = tagsAt + run.Count * SealedPageCodec.TagSize;
                }
                if (to.MoveNext()) throw new IntegrityException($"a chunk of {where} has fewer source than target pages");
                if (pos != payload.LongLength) throw new IntegrityException($"a chunk of {where} holds {payload.LongLength - pos} bytes more than its pages");
            }

            private static IEnumerable<(string, long)> Pages(IReadOnlyList<PageRun> runs)
            {
                foreach (var r in runs)
                    for (long i = 0; i < r.Count; i++) yield return (r.File, r.First + i);
            }

            public void Dispose()
            {
                foreach (var f in _files.Values) f.Dispose();
                CryptographicOperations.ZeroMemory(_plain);
            }
        }
    }
}
