using System.Text;
using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Oci.Layout;
using Sealpoint.Oci.Models;
using Sealpoint.Packaging;
using Sealpoint.Packaging.Incremental;
using Sealpoint.Packaging.Lineage;
using Sealpoint.Packaging.Packing;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>
/// Packing and pulling through an OCI image layout, with synthetic checkpoints sealed on node A for node B: the rebuilt
/// sealed checkpoint is byte-identical to the one sealed, later generations reuse unchanged chunks, and anything
/// altered, rolled back, forked or addressed to someone else is refused with nothing left behind.
/// </summary>
public sealed class PackagingTests : IDisposable
{
    private readonly TestNodes _nodes = new();
    private readonly TempDir _temp = TempDir.Create("oci-pack");
    private readonly TempDir _shm = TempDir.Create("oci-pull", inShm: true);

    public void Dispose()
    {
        _nodes.Dispose();
        _temp.Dispose();
        _shm.Dispose();
    }

    private string Layout => _temp.File("layout");

    private PublishResult Pack(string source, string tag, bool incremental = true, string? layout = null)
    {
        using var src = CheckpointSource.Open(source);
        using var image = Packer.Pack(src, new PackOptions
        {
            State = _nodes.StateA, Incremental = incremental, Recipients = src.Envelope.Recipients.Select(r => _nodes.Recipient(SubjectName(r.Subject))).ToList(),
            TargetChunks = 64,
        });
        var store = OciLayout.OpenOrCreate(layout ?? Layout);
        return Publisher.PublishAsync(image, store, tag, _nodes.StateA, CancellationToken.None).GetAwaiter().GetResult();
    }

    private static string SubjectName(string? subject) => subject!.Replace("CN=", "");

    private PullResult Pull(string tag, string output, string identity = "nodeB", bool force = false, NodeState? state = null, string? layout = null)
    {
        using var id = _nodes.Identity(identity);
        return Unpacker.PullToDirectoryAsync(OciLayout.Open(layout ?? Layout), tag, output, new PullOptions { Identity = id, State = state ?? _nodes.StateB, Force = force },
            CancellationToken.None).GetAwaiter().GetResult();
    }

    private (string Plain, string Sealed, Envelope Envelope) Generation1(int pages = 2048, string[]? recipients = null, string? secret = null)
    {
        string plain = SyntheticCheckpoint.Create(_shm.File("g1-plain"), pages, secret: secret);
        string sealedDir = _temp.File("g1-sealed");
        var env = _nodes.SealOnA(plain, sealedDir, recipients ?? ["nodeB"]);
        return (plain, sealedDir, env);
    }

    [Fact]
    public void PullRebuildsTheSealedCheckpointExactly()
    {
        var (plain, sealedDir, env) = Generation1();
        var published = Pack(sealedDir, "g1");
        var result = Pull("g1", _shm.File("out"));
        Assert.Equal(env.CheckpointId, result.Envelope.CheckpointId);
        Assert.Equal(LineageVerdict.FirstUse, result.Verdict);
        SyntheticCheckpoint.AssertSameTree(sealedDir, Path.Combine(result.Output, "checkpoint"));
        // And B can open it: the plaintext is the original.
        using var id = _nodes.Identity("nodeB");
        using var opened = SealedCheckpoint.Open(Path.Combine(result.Output, "checkpoint"), id);
        opened.DecryptTo(_shm.File("opened"));
        SyntheticCheckpoint.AssertSameTree(plain, _shm.File("opened"));
        Assert.True(published.BlobsWritten > 3);
    }

    [Fact]
    public void SecondGenerationReusesUnchangedChunksAndRebuildsExactly()
    {
        var (plain1, sealed1, env1) = Generation1(pages: 4096);
        Pack(sealed1, "g1");
        // 5 % of the pages change (a contiguous run, as memhog does).
        string plain2 = SyntheticCheckpoint.ChangePages(plain1, _shm.File("g2-plain"), first: 1000, count: 205, seed: 99);
        string sealed2 = _temp.File("g2-sealed");
        var env2 = _nodes.SealOnA(plain2, sealed2, ["nodeB"], parent: env1);

        using var src = CheckpointSource.Open(sealed2);
        using var image = Packer.Pack(src, new PackOptions { State = _nodes.StateA, TargetChunks = 64 });
        Assert.Null(image.Stats.IncrementalNote);
        Assert.True(image.Stats.ReusedChunks > image.Stats.NewChunks, $"reused {image.Stats.ReusedChunks}, new {image.Stats.NewChunks}");
        long memory = 4096L * 4096;
        Assert.True(image.Stats.NewChunkBytes < memory / 5, $"new chunk bytes {image.Stats.NewChunkBytes} of {memory}");
        var published = Publisher.PublishAsync(image, OciLayout.Open(Layout), "g2", _nodes.StateA, CancellationToken.None).GetAwaiter().GetResult();
        Assert.True(published.Subject, "generation 2 names generation 1's manifest as its subject");

        var r1 = Pull("g1", _shm.File("out1"));
        var r2 = Pull("g2", _shm.File("out2"));
        Assert.Equal(LineageVerdict.Newer, r2.Verdict);
        Assert.True(r2.ReusedChunks > 0);
        SyntheticCheckpoint.AssertSameTree(sealed2, Path.Combine(r2.Output, "checkpoint"));
        using var id = _nodes.Identity("nodeB");
        using var opened = SealedCheckpoint.Open(Path.Combine(r2.Output, "checkpoint"), id);
        Assert.Equal(env2.Generation, opened.Envelope.Generation);
        opened.DecryptTo(_shm.File("opened2"));
        SyntheticCheckpoint.AssertSameTree(plain2, _shm.File("opened2"));
    }

    [Fact]
    public void InsertedPagesShiftOnlyNearbyChunkBoundaries()
    {
        var (plain1, sealed1, env1) = Generation1(pages: 4096);
        Pack(sealed1, "g1");
        string plain2 = SyntheticCheckpoint.InsertPages(plain1, _shm.File("g2-plain"), at: 100, count: 3, seed: 5);
        string sealed2 = _temp.File("g2-sealed");
        _nodes.SealOnA(plain2, sealed2, ["nodeB"], parent: env1);
        using var src = CheckpointSource.Open(sealed2);
        using var image = Packer.Pack(src, new PackOptions { State = _nodes.StateA });
        // With fixed chunks every chunk after page 100 would change; content-defined cuts keep most.
        Assert.True(image.Stats.ReusedChunks >= image.Stats.Chunks * 3 / 4, $"reused {image.Stats.ReusedChunks} of {image.Stats.Chunks}");
        Publisher.PublishAsync(image, OciLayout.Open(Layout), "g2", _nodes.StateA, CancellationToken.None).GetAwaiter().GetResult();
        var r = Pull("g2", _shm.File("out"));
        SyntheticCheckpoint.AssertSameTree(sealed2, Path.Combine(r.Output, "checkpoint"));
    }

    [Fact]
    public void WithoutAKeyedIndexEverythingIsUploadedAndSaidSo()
    {
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 300);
        var env = CheckpointSealer.SealDirectory(plain, _temp.File("sealed"), new SealOptions { Recipients = [_nodes.Recipient("nodeB")], Sync = false });
        using var src = CheckpointSource.Open(_temp.File("sealed"));
        using var image = Packer.Pack(src, new PackOptions { State = _nodes.StateA });
        Assert.Contains("no keyed page index", image.Stats.IncrementalNote);
        Assert.Equal(0, image.Stats.ReusedChunks);
    }

    [Fact]
    public void ANonRecipientGetsAClearErrorAndNothing()
    {
        var (_, sealedDir, _) = Generation1(pages: 300);
        Pack(sealedDir, "g1");
        var e = Assert.Throws<SealpointException>(() => Pull("g1", _shm.File("outC"), identity: "nodeC"));
        Assert.Equal(ErrorKind.Key, e.Kind);
        Assert.Contains("is not a recipient", e.Message);
        Assert.Contains("CN=nodeB", e.Message);
        Assert.False(Directory.Exists(_shm.File("outC")));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_shm.Path), p => p.Contains("outC"));
    }

    [Fact]
    public void RollbackAndForkAreRefusedUnlessForced()
    {
        var (plain1, sealed1, env1) = Generation1(pages: 300);
        Pack(sealed1, "g1");
        string sealed2 = _temp.File("g2"), sealed2b = _temp.File("g2b");
        _nodes.SealOnA(SyntheticCheckpoint.ChangePages(plain1, _shm.File("p2"), 10, 5, 1), sealed2, ["nodeB"], env1);
        _nodes.SealOnA(SyntheticCheckpoint.ChangePages(plain1, _shm.File("p2b"), 20, 5, 2), sealed2b, ["nodeB"], env1);
        Pack(sealed2, "g2");
        Pack(sealed2b, "g2b");

        Pull("g2", _shm.File("o2"));
        var rollback = Assert.Throws<SealpointException>(() => Pull("g1", _shm.File("o1")));
        Assert.Equal(ErrorKind.Policy, rollback.Kind);
        Assert.Contains("rollback refused", rollback.Message);
        Assert.Contains("generation 1", rollback.Message);
        Assert.False(Directory.Exists(_shm.File("o1")));

        var fork = Assert.Throws<SealpointException>(() => Pull("g2b", _shm.File("o2b")));
        Assert.Equal(ErrorKind.Policy, fork.Kind);
        Assert.Contains("fork refused", fork.Message);

        // Forced: allowed, and the operator's choice becomes the reference, so the runtime restores exactly it.
        Assert.Equal(LineageVerdict.Rollback, Pull("g1", _shm.File("o1f"), force: true).Verdict);
        Assert.Equal(1, new LineageGuard(_nodes.StateB).Find(env1.LineageId)!.Generation);
        Assert.Equal(LineageVerdict.Same, Pull("g1", _shm.File("o1again")).Verdict);
        // Its child is newer again.
        Assert.Equal(LineageVerdict.Newer, Pull("g2", _shm.File("o2again")).Verdict);
        // A node that never saw the lineage (state removed) accepts generation 1: first use cannot be protected.
        Assert.Equal(LineageVerdict.FirstUse, Pull("g1", _shm.File("fresh"), state: new NodeState(_temp.File("other-state"))).Verdict);
    }

    [Fact]
    public void ForgedGenerationAnnotationIsCaught()
    {
        var (_, sealedDir, _) = Generation1(pages: 100);
        Pack(sealedDir, "g1");
        var layout = OciLayout.Open(Layout);
        var desc = layout.Resolve("g1");
        var manifest = OciJson.ParseManifest(File.ReadAllBytes(layout.Blobs.PathOf(desc.Digest)), "test");
        var forged = OciJson.Serialize(manifest with
        {
            Annotations = new Dictionary<string, string>(manifest.Annotations!) { [CheckpointImage.GenerationAnnotation] = "9" },
        });
        layout.PutManifestAsync(forged, MediaTypes.ImageManifest, "forged", CancellationToken.None).GetAwaiter().GetResult();
        var e = Assert.Throws<IntegrityException>(() => Pull("forged", _shm.File("out")));
        Assert.Contains("contradicts the authenticated envelope", e.Message);
    }

    [Fact]
    public void TamperedMemoryLayerIsRefusedAndNothingIsLeft()
    {
        var (_, sealedDir, _) = Generation1(pages: 300);
        Pack(sealedDir, "g1");
        var layout = OciLayout.Open(Layout);
        var manifest = OciJson.ParseManifest(File.ReadAllBytes(layout.Blobs.PathOf(layout.Resolve("g1").Digest)), "test");
        var chunk = manifest.Layers.First(l => l.Annotation(CheckpointImage.LayerAnnotation) == CheckpointImage.MemoryLayer);
        string path = layout.Blobs.PathOf(chunk.Digest);
        var bytes = File.ReadAllBytes(path);
        bytes[2000] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<OciException>(() => Pull("g1", _shm.File("out")));
        Assert.Equal(OciErrorKind.Integrity, e.Kind);
        Assert.False(Directory.Exists(_shm.File("out")));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_shm.Path), p => p.Contains("out.sealpoint-partial"));
    }

    /// <summary>
    /// A memory map that moves a reused chunk onto other pages: the rebuilt tags do not match the authenticated ones, so
    /// the pull fails before writing those pages (a different plaintext sealed at a position would reuse a nonce).
    /// </summary>
    [Fact]
    public void ReusedPagesMovedByAForgedMapAreRefused()
    {
        var (plain1, sealed1, env1) = Generation1(pages: 2048);
        Pack(sealed1, "g1");
        string sealed2 = _temp.File("g2");
        _nodes.SealOnA(SyntheticCheckpoint.ChangePages(plain1, _shm.File("p2"), 100, 50, 3), sealed2, ["nodeB"], env1);
        Pack(sealed2, "g2");

        var layout = OciLayout.Open(Layout);
        var manifest = OciJson.ParseManifest(File.ReadAllBytes(layout.Blobs.PathOf(layout.Resolve("g2").Digest)), "test");
        var mainLayer = manifest.Layers[0];
        // Rewrite the map inside the checkpoint layer: swap the targets of two reused chunks.
        string extracted = _temp.Dir("layer");
        System.Formats.Tar.TarFile.ExtractToDirectory(layout.Blobs.PathOf(mainLayer.Digest), extracted, overwriteFiles: false);
        string mapPath = Path.Combine(extracted, CheckpointImage.MemoryMapPath);
        var map = MemoryMap.Parse(File.ReadAllBytes(mapPath), "test");
        // Move one reused chunk's pages one page back: every page lands where other content was sealed.
        int victim = Array.FindIndex(map.Chunks.ToArray(), c => c.Source != 0 && c.To.Count == 1 && c.To[0].First >= 1);
        Assert.True(victim >= 0, "generation 2 reuses no chunk of generation 1");
        var chunks = map.Chunks.ToArray();
        chunks[victim] = chunks[victim] with { To = [chunks[victim].To[0] with { First = chunks[victim].To[0].First - 1 }] };
        File.WriteAllBytes(mapPath, (map with { Chunks = chunks }).Serialize());
        string newLayer = _temp.File("layer.tar");
        System.Formats.Tar.TarFile.CreateFromDirectory(extracted, newLayer, includeBaseDirectory: false);
        var layerBytes = File.ReadAllBytes(newLayer);
        var layerDesc = Descriptor.For(MediaTypes.Layer, layerBytes, mainLayer.Annotations);
        layout.Blobs.WriteBytesAsync(layerDesc, layerBytes, CancellationToken.None).GetAwaiter().GetResult();
        var forged = OciJson.Serialize(manifest with { Layers = [layerDesc, .. manifest.Layers.Skip(1)] });
        layout.PutManifestAsync(forged, MediaTypes.ImageManifest, "forged", CancellationToken.None).GetAwaiter().GetResult();

        var e = Assert.Throws<IntegrityException>(() => Pull("forged", _shm.File("out")));
        Assert.Contains("does not match its authenticated tag", e.Message);
        Assert.False(Directory.Exists(_shm.File("out")));
    }

    [Fact]
    public void RecipientsMissingFromAnEarlierGenerationPreventReuse()
    {
        var (plain1, sealed1, env1) = Generation1(pages: 1024, recipients: ["nodeB"]);
        Pack(sealed1, "g1");
        string sealed2 = _temp.File("g2");
        _nodes.SealOnA(SyntheticCheckpoint.ChangePages(plain1, _shm.File("p2"), 10, 5, 1), sealed2, ["nodeB", "nodeC"], env1);
        using var src = CheckpointSource.Open(sealed2);
        using var image = Packer.Pack(src, new PackOptions { State = _nodes.StateA });
        // C could not open generation 1's records, so none are reused.
        Assert.Equal(0, image.Stats.ReusedChunks);
        Assert.Contains("not sealed for all", image.Stats.IncrementalNote);
    }

    [Fact]
    public void EngineFilesAreSealedAtPackTimeAndOpenedOnPull()
    {
        string secretEnv = "SPENV-" + Guid.NewGuid().ToString("N"), secretFile = "SPFILE-" + Guid.NewGuid().ToString("N"), secretMem = "SPMEM-" + Guid.NewGuid().ToString("N");
        // A podman-like bundle: checkpoint/ (sealed CRIU images) beside spec.dump, config.dump, rootfs-diff.tar, volumes/.
        string bundle = _temp.Dir("bundle");
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 300, secret: secretMem);
        _nodes.SealOnA(plain, Path.Combine(bundle, "checkpoint"), ["nodeB"]);
        File.WriteAllText(Path.Combine(bundle, "spec.dump"), $"{{\"process\":{{\"env\":[\"SECRET={secretEnv}\"]}}}}");
        File.WriteAllText(Path.Combine(bundle, "config.dump"), "{\"name\":\"web\",\"runtime\":\"sealpoint-runc\"}");
        File.WriteAllText(Path.Combine(bundle, "rootfs-diff.tar"), $"pretend tar holding {secretFile}");
        Directory.CreateDirectory(Path.Combine(bundle, "volumes"));
        File.WriteAllText(Path.Combine(bundle, "volumes", "data.tar"), "volume");
        var published = Pack(bundle, "web");

        // Nothing in the layout holds any secret; the control: the bundle does.
        SecretScan.AssertPresent(secretEnv, bundle);
        foreach (var s in new[] { secretEnv, secretFile, secretMem }) SecretScan.AssertAbsent(s, Layout);

        var inspection = Inspector.InspectAsync(OciLayout.Open(Layout), "web", CancellationToken.None).GetAwaiter().GetResult();
        Assert.Equal("web", inspection.Manifest.Annotation(CheckpointImage.PodmanName));
        Assert.Equal("web", inspection.Manifest.Annotation(CheckpointImage.CrioName));
        Assert.Equal(["config.dump", "rootfs-diff.tar", "spec.dump", "volumes" + CheckpointImage.FolderTarSuffix], inspection.EngineEnvelope!.Files.Select(f => f.Name).Order(StringComparer.Ordinal));

        var r = Pull("web", _shm.File("out"));
        Assert.Equal(File.ReadAllText(Path.Combine(bundle, "spec.dump")), File.ReadAllText(Path.Combine(r.Output, "spec.dump")));
        Assert.Equal("volume", File.ReadAllText(Path.Combine(r.Output, "volumes", "data.tar")));
        Assert.True(SealedCheckpoint.IsSealed(Path.Combine(r.Output, "checkpoint")));
        SecretScan.AssertAbsent(secretMem, Path.Combine(r.Output, "checkpoint"));

        // As a podman export archive.
        using var id = _nodes.Identity("nodeB");
        string archive = _shm.File("restore.tar");
        Unpacker.PullToArchiveAsync(OciLayout.Open(Layout), "web", archive, new PullOptions { Identity = id, State = _nodes.StateB }, CancellationToken.None).GetAwaiter().GetResult();
        var names = new List<string>();
        using (var reader = new System.Formats.Tar.TarReader(File.OpenRead(archive)))
            while (reader.GetNextEntry() is { } entry) names.Add(entry.Name.TrimEnd('/'));
        Assert.Contains("checkpoint/sealpoint.envelope", names);
        Assert.Contains("spec.dump", names);
        Assert.Contains("volumes/data.tar", names);
    }

    [Fact]
    public void WrongRecipientsForEngineFilesAreRefused()
    {
        string bundle = _temp.Dir("bundle");
        _nodes.SealOnA(SyntheticCheckpoint.Create(_shm.File("plain"), 50), Path.Combine(bundle, "checkpoint"), ["nodeB"]);
        File.WriteAllText(Path.Combine(bundle, "spec.dump"), "{}");
        using var src = CheckpointSource.Open(bundle);
        var e = Assert.Throws<SealpointException>(() => Packer.Pack(src, new PackOptions { State = _nodes.StateA, Recipients = [_nodes.Recipient("nodeC")] }));
        Assert.Contains("not the checkpoint's", e.Message);
        e = Assert.Throws<SealpointException>(() => Packer.Pack(src, new PackOptions { State = _nodes.StateA }));
        Assert.Contains("--recipient", e.Fix);
    }

    [Fact]
    public void UnsealedSourcesAreRefused()
    {
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 10);
        var e = Assert.Throws<SealpointException>(() => CheckpointSource.Open(plain));
        Assert.Equal(ErrorKind.Policy, e.Kind);
        Assert.Contains("not sealed", e.Message);
    }

    [Fact]
    public void CliPackInspectPullThroughALayout()
    {
        var (_, sealedDir, env) = Generation1(pages: 200);
        string pki = _nodes.PkiRoot;
        var pack = Cli.Ok("pack", sealedDir, "--out", $"oci:{Layout}:v1", "--state-dir", _nodes.StateA.Root, "--pki", pki, "--json");
        using (var doc = JsonDocument.Parse(pack.Out)) Assert.Equal(env.CheckpointId, doc.RootElement.GetProperty("checkpointId").GetString());
        var inspect = Cli.Ok("inspect", $"oci:{Layout}:v1");
        Assert.Contains($"lineage     {env.LineageId}  generation 1", inspect.Out);
        Assert.Contains("CN=nodeB", inspect.Out);
        Assert.Contains("verified    no", inspect.Out);
        var pullC = Cli.Run("pull", $"oci:{Layout}:v1", "--key", "nodeC", "--pki", pki, "--out", _shm.File("c"), "--state-dir", _nodes.StateB.Root);
        Assert.Equal((int)ErrorKind.Key, pullC.ExitCode);
        Assert.Contains("not a recipient", pullC.Err);
        var pull = Cli.Ok("pull", $"oci:{Layout}:v1", "--key", "nodeB", "--pki", pki, "--out", _shm.File("b"), "--state-dir", _nodes.StateB.Root);
        Assert.Contains("lineage check: FirstUse", pull.Out);
        SyntheticCheckpoint.AssertSameTree(sealedDir, Path.Combine(_shm.File("b"), "checkpoint"));
    }
}
