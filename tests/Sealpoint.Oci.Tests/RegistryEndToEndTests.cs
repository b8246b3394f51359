using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Oci.Layout;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;
using Sealpoint.Packaging.Incremental;
using Sealpoint.Packaging.Packing;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>
/// The real distribution registry (docker-registry 2.8) on loopback, and CRIU dumping a real process: node A
/// checkpoints and seals for node B, packs and pushes; the registry's storage holds no secret; node B (its key only,
/// fresh state) pulls, opens and restores, and the process continues; a second, incremental checkpoint pushes only
/// changed chunks; an interrupted push is retried or reported as failed.
/// </summary>
[Collection("e2e")]
public sealed class RegistryEndToEndTests : IDisposable
{
    private readonly TestNodes _nodes = new();
    private readonly TempDir _temp = TempDir.Create("oci-e2e");
    private readonly TempDir _shm = TempDir.Create("oci-e2e", inShm: true);
    private readonly List<Workload> _workloads = [];

    public RegistryEndToEndTests() => Tools.RequireRoot();

    public void Dispose()
    {
        foreach (var w in _workloads) w.Dispose();
        _nodes.Dispose();
        _temp.Dispose();
        _shm.Dispose();
    }

    private static string Secret(string kind) => $"SP{kind}-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12))}";

    private string[] StateA => ["--state-dir", _nodes.StateA.Root, "--pki", _nodes.PkiRoot];
    private string[] StateB(string dir) => ["--state-dir", dir, "--pki", _nodes.PkiRoot];

    /// <summary>CRIU dump into tmpfs, then sealing on node A (as the runtime does); the plaintext is removed.</summary>
    private (string Sealed, Core.Format.Envelope Envelope) CheckpointOnA(Workload w, string label, bool leaveRunning, Core.Format.Envelope? parent, params string[] secretsInMemory)
    {
        string plain = _shm.Dir(label + "-plain");
        Criu.Dump(w.Pid, plain, new CriuOptions { LeaveRunning = leaveRunning, WorkDir = _shm.Dir(label + "-work") });
        foreach (var s in secretsInMemory) SecretScan.AssertPresent(s, plain); // the control: the scan sees them in plaintext
        string sealedDir = _temp.File(label + "-sealed");
        var envelope = _nodes.SealOnA(plain, sealedDir, ["nodeB"], parent);
        Directory.Delete(plain, recursive: true);
        return (sealedDir, envelope);
    }

    [Fact]
    public void ProcessCheckpointTravelsSealedAndIncrementallyThroughARealRegistry()
    {
        using var registry = TestSupport.Registry.Start();
        string memSecret = Secret("MEM"), envSecret = Secret("ENV");
        // The workload inherits this environment: the variable lives in its memory (its stack), as a container's does.
        Environment.SetEnvironmentVariable("SEALPOINT_TEST_ENV_SECRET", envSecret);
        Workload w;
        try { w = Workload.StartMemHog(128, memSecret, _temp.Dir("memhog"), modifyPercent: 5); }
        finally { Environment.SetEnvironmentVariable("SEALPOINT_TEST_ENV_SECRET", null); }
        _workloads.Add(w);
        w.WaitForCounter(3);

        // Generation 1 (the process keeps running), then 5 % of its memory changes, then generation 2.
        var (sealed1, env1) = CheckpointOnA(w, "g1", leaveRunning: true, null, memSecret, envSecret);
        string reference = $"{registry.Host}/ckpt/memhog";
        var push1 = Cli.Ok(["pack", sealed1, "--out", $"{reference}:g1", "--insecure", "--json", .. StateA]);
        w.ModifyMemory();
        long beforeDump = w.ReadCounter();
        var (sealed2, env2) = CheckpointOnA(w, "g2", leaveRunning: false, env1, memSecret);
        var push2 = Cli.Ok(["pack", sealed2, "--out", $"{reference}:g2", "--insecure", "--json", .. StateA]);

        using var j1 = JsonDocument.Parse(push1.Out);
        using var j2 = JsonDocument.Parse(push2.Out);
        long sent1 = j1.RootElement.GetProperty("bytesSent").GetInt64(), sent2 = j2.RootElement.GetProperty("bytesSent").GetInt64();
        int chunks = j2.RootElement.GetProperty("chunks").GetInt32(), reused = j2.RootElement.GetProperty("reusedChunks").GetInt32();
        int newChunks = j2.RootElement.GetProperty("newChunks").GetInt32();
        // Only the changed chunks went up: 5 % of memory in one run touches a handful of ~1 % chunks.
        Assert.True(reused > 0 && newChunks <= chunks / 5, $"generation 2: {newChunks} new and {reused} reused of {chunks} chunks\n{push2}");
        Assert.True(sent2 < sent1 / 4, $"generation 2 sent {sent2} bytes, generation 1 sent {sent1}");
        Assert.True(j2.RootElement.GetProperty("blobsPresent").GetInt32() >= 0);

        // What left node A is ciphertext: neither secret is anywhere in the registry's storage.
        foreach (var s in new[] { memSecret, envSecret }) SecretScan.AssertAbsent(s, registry.StorageDir);

        // The registry's view: skopeo reads the image, and the manifest carries lineage and generation as hints.
        var skopeo = ProcessRunner.Run(Tools.Require("skopeo"), ["inspect", "--tls-verify=false", $"docker://{reference}:g2"]);
        using (var s = JsonDocument.Parse(skopeo.StandardOutput))
        {
            Assert.Equal(env2.LineageId, s.RootElement.GetProperty("Labels").GetProperty("io.sealpoint.lineage").GetString());
            Assert.Equal("2", s.RootElement.GetProperty("Labels").GetProperty("io.sealpoint.generation").GetString());
        }
        // Generation 2 names generation 1 as its subject; distribution 2.8 has no referrers API, so the fallback tag links them.
        using (var client = new RegistryClient(registry.Host, new RegistryClientOptions { Insecure = true }))
        {
            var g1 = client.GetManifestAsync("ckpt/memhog", "g1").GetAwaiter().GetResult();
            var g2 = client.GetManifestAsync("ckpt/memhog", "g2").GetAwaiter().GetResult();
            Assert.Equal(g1.Descriptor.Digest, g2.ParseManifest().Subject?.Digest);
            var (referrers, viaTag) = client.GetReferrersAsync("ckpt/memhog", g1.Descriptor.Digest, "application/vnd.sealpoint.checkpoint.v1").GetAwaiter().GetResult();
            Assert.True(viaTag);
            Assert.Equal(g2.Descriptor.Digest, Assert.Single(referrers).Digest);
        }
        // podman pulls the incremental image (all of its layers, old and new).
        var podmanPull = ProcessRunner.RunUnchecked(Tools.Require("podman"), ["pull", "--tls-verify=false", $"{reference}:g2"], new RunOptions { Timeout = TimeSpan.FromMinutes(5) });
        ProcessRunner.RunUnchecked(Tools.Require("podman"), ["rmi", "-f", $"{reference}:g2"]);
        Assert.True(podmanPull.Succeeded, podmanPull.Describe());
        var inspect = Cli.Ok("inspect", $"{reference}:g2", "--insecure");
        Assert.Contains($"lineage     {env1.LineageId}  generation 2", inspect.Out);
        Assert.Contains("reused from 1 earlier checkpoint(s)", inspect.Out);

        // Node C is not a recipient.
        var pullC = Cli.Run(["pull", $"{reference}:g2", "--insecure", "--key", "nodeC", "--out", _shm.File("c"), .. StateB(_temp.File("state-c"))]);
        Assert.Equal((int)ErrorKind.Key, pullC.ExitCode);
        Assert.Contains("is not a recipient", pullC.Err);
        Assert.False(Directory.Exists(_shm.File("c")));

        // Node B: its key only, no state from before. Pull generation 2, open, restore: the process continues.
        string stateB = _temp.File("state-b-fresh");
        var pull = Cli.Ok(["pull", $"{reference}:g2", "--insecure", "--key", "nodeB", "--out", _shm.File("b"), .. StateB(stateB)]);
        Assert.Contains("lineage check: FirstUse", pull.Out);
        Assert.Contains("from earlier generations", pull.Out);
        string plainB = NodeRuntimeStandIn.OpenForRestore(_nodes, Path.Combine(_shm.File("b"), "checkpoint"), "nodeB", _shm.File("b-plain"));
        Criu.Restore(plainB);
        Directory.Delete(plainB, recursive: true);
        long after = w.WaitForProgress(3);
        Assert.True(after > beforeDump, $"the restored process counts from {after}, it was at {beforeDump} at the checkpoint");
        w.VerifyMemory(); // every page of its 128 MiB as it was

        // Rollback: generation 1 after generation 2 is refused on B.
        var rollback = Cli.Run(["pull", $"{reference}:g1", "--insecure", "--key", "nodeB", "--out", _shm.File("b1"), .. StateB(stateB)]);
        Assert.Equal((int)ErrorKind.Policy, rollback.ExitCode);
        Assert.Contains("rollback refused", rollback.Err);
    }

    [Fact]
    public void BasicAuthAndTlsRegistry()
    {
        using var registry = TestSupport.Registry.Start(new TestSupport.RegistryOptions { Username = "spuser", Password = "sp-pass-123", Tls = true });
        string authFile = _temp.File("auth.json");
        File.WriteAllText(authFile, AuthFileCredentials.Format(registry.Host, new RegistryCredentials("spuser", "sp-pass-123")));
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 512, secret: Secret("SYN"));
        string sealedDir = _temp.File("sealed");
        var env = _nodes.SealOnA(plain, sealedDir, ["nodeB"]);
        string reference = $"{registry.Host}/private/ckpt:v1";

        // Without the CA: a TLS error that says what to do. Without credentials: an auth error. Neither claims success.
        var noCa = Cli.Run(["pack", sealedDir, "--out", reference, "--authfile", authFile, "--retries", "1", .. StateA]);
        Assert.NotEqual(0, noCa.ExitCode);
        Assert.Contains("--ca-file", noCa.Err);
        Assert.DoesNotContain("packed checkpoint", noCa.Out);
        string emptyAuth = _temp.File("empty.json");
        File.WriteAllText(emptyAuth, "{\"auths\":{}}");
        var noCreds = Cli.Run(["pack", sealedDir, "--out", reference, "--ca-file", registry.CertificateFile!, "--authfile", emptyAuth, .. StateA]);
        Assert.Equal((int)ErrorKind.Key, noCreds.ExitCode);
        Assert.Contains("requires", noCreds.Err);
        Assert.DoesNotContain("sp-pass-123", noCreds.Err);

        Cli.Ok(["pack", sealedDir, "--out", reference, "--ca-file", registry.CertificateFile!, "--authfile", authFile, .. StateA]);
        var pull = Cli.Ok(["pull", reference, "--ca-file", registry.CertificateFile!, "--authfile", authFile, "--key", "nodeB", "--out", _shm.File("b"), .. StateB(_temp.File("sb"))]);
        Assert.Contains(env.CheckpointId, pull.Out);
        SyntheticCheckpoint.AssertSameTree(sealedDir, Path.Combine(_shm.File("b"), "checkpoint"));

        // $REGISTRY_AUTH_FILE is honoured like podman does.
        Environment.SetEnvironmentVariable("REGISTRY_AUTH_FILE", authFile);
        try { Cli.Ok("inspect", reference, "--ca-file", registry.CertificateFile!); }
        finally { Environment.SetEnvironmentVariable("REGISTRY_AUTH_FILE", null); }

        // skopeo reads what Sealpoint pushed, with the same credentials and CA.
        ProcessRunner.Run(Tools.Require("skopeo"), ["inspect", "--cert-dir", registry.CertDir!, "--authfile", authFile, $"docker://{reference}"]);
    }

    /// <summary>
    /// The registry is killed in the middle of a chunked upload. Restarted, the push resumes and completes; left dead,
    /// the push fails with a clear error, nothing is recorded as pushed, and the CLI exits non-zero.
    /// </summary>
    [Fact]
    public async Task InterruptedPushIsRetriedOrReportedFailed()
    {
        using var registry = new RestartableRegistry();
        string plain = SyntheticCheckpoint.Create(_shm.File("plain"), 24 * 1024); // 96 MiB of memory
        string sealedDir = _temp.File("sealed"), sealedAgain = _temp.File("sealed-again");
        _nodes.SealOnA(plain, sealedDir, ["nodeB"]);
        _nodes.SealOnA(plain, sealedAgain, ["nodeB"]); // same memory, fresh key: none of its blobs is in the registry
        Directory.Delete(plain, recursive: true);

        async Task<Exception?> PushOnce(string source, string tag, bool restart)
        {
            long killed = 0;
            var observer = new KillingObserver(() =>
            {
                if (Interlocked.Exchange(ref killed, 1) != 0) return;
                registry.Kill();
                if (restart) _ = Task.Run(async () => { await Task.Delay(1500); registry.Start(); });
            }, afterBytes: 20L << 20);
            using var client = new RegistryClient(registry.Host, new RegistryClientOptions
            {
                Insecure = true, MonolithicLimit = 4 << 20, ChunkSize = 4 << 20, MaxAttempts = 5, Observer = observer,
                RetryBaseDelay = TimeSpan.FromMilliseconds(500), RequestTimeout = TimeSpan.FromSeconds(10), StallTimeout = TimeSpan.FromSeconds(10),
            });
            using var src = CheckpointSource.Open(source);
            using var image = Packer.Pack(src, new PackOptions { State = _nodes.StateA, TargetChunks = 4, Incremental = false });
            try
            {
                await Publisher.PublishAsync(image, new RegistryRepository(client, "ckpt/big"), tag, _nodes.StateA, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(5));
                Assert.NotEmpty(observer.Retries);
                return null;
            }
            catch (OciException e)
            {
                return e;
            }
        }

        // Restarted registry: retried and completed, and what B pulls is intact.
        Assert.Null(await PushOnce(sealedDir, "resumed", restart: true));
        Cli.Ok(["pull", $"{registry.Host}/ckpt/big:resumed", "--insecure", "--key", "nodeB", "--out", _shm.File("b"), .. StateB(_temp.File("sb"))]);
        SyntheticCheckpoint.AssertSameTree(sealedDir, Path.Combine(_shm.File("b"), "checkpoint"));
        Directory.Delete(_shm.File("b"), recursive: true);

        // Dead registry: a failure, never a success.
        string lineage = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(sealedAgain).LineageId;
        var failure = await PushOnce(sealedAgain, "lost", restart: false);
        Assert.NotNull(failure);
        Assert.Equal(OciErrorKind.Network, ((OciException)failure!).Kind);
        Assert.Contains("gave up", failure.Message);
        var cli = Cli.Run(["pack", sealedAgain, "--out", $"{registry.Host}/ckpt/big:lost2", "--insecure", "--retries", "2", .. StateA]);
        Assert.Equal((int)ErrorKind.External, cli.ExitCode);
        Assert.DoesNotContain("packed checkpoint", cli.Out);
        Assert.Contains(registry.Host, cli.Err);
        // Nothing was recorded as packed on A by the failed pushes.
        Assert.Null(PackHistory.Load(_nodes.StateA, lineage));

        // Back up: the tag that failed does not exist.
        registry.Start();
        var missing = Cli.Run("inspect", $"{registry.Host}/ckpt/big:lost", "--insecure");
        Assert.Equal((int)ErrorKind.NotFound, missing.ExitCode);
    }

    /// <summary>
    /// Generation 1 goes to a registry repository; generation 2 is packed into its own layout (without the layers it reuses)
    /// and pushed with sealpoint push: the registry already has them. Generation 2 pushed to another repository of the same
    /// registry gets them by cross-repository mount. An incomplete layout cannot be pushed to a registry that lacks them.
    /// </summary>
    [Fact]
    public void IncrementalLayoutsPushAndReusedLayersMountAcrossRepositories()
    {
        using var registry = TestSupport.Registry.Start();
        string plain1 = SyntheticCheckpoint.Create(_shm.File("p1"), 2048);
        string sealed1 = _temp.File("s1"), sealed2 = _temp.File("s2");
        var env1 = _nodes.SealOnA(plain1, sealed1, ["nodeB"]);
        _nodes.SealOnA(SyntheticCheckpoint.ChangePages(plain1, _shm.File("p2"), 100, 40, 7), sealed2, ["nodeB"], env1);

        Cli.Ok(["pack", sealed1, "--out", $"{registry.Host}/ckpt/a:g1", "--insecure", .. StateA]);
        string layout = _temp.File("layout-g2");
        var packed = Cli.Ok(["pack", sealed2, "--out", $"oci:{layout}:g2", .. StateA]);
        Assert.Contains("reused memory layer(s) are not in", packed.Err);

        // Into the same repository: push copies what the layout has, the rest is there.
        var push = Cli.Ok(["push", $"oci:{layout}:g2", $"{registry.Host}/ckpt/a:g2", "--insecure"]);
        Assert.Contains("pushed", push.Out);
        Cli.Ok(["pull", $"{registry.Host}/ckpt/a:g2", "--insecure", "--key", "nodeB", "--out", _shm.File("b"), .. StateB(_temp.File("sb"))]);
        SyntheticCheckpoint.AssertSameTree(sealed2, Path.Combine(_shm.File("b"), "checkpoint"));

        // Into an empty registry: the reused layers are missing, and the push says so instead of writing a broken image.
        using var other = TestSupport.Registry.Start();
        var broken = Cli.Run("push", $"oci:{layout}:g2", $"{other.Host}/ckpt/a:g2", "--insecure");
        Assert.Equal((int)ErrorKind.NotFound, broken.ExitCode);
        Assert.Contains("neither in", broken.Err);
        Assert.Equal((int)ErrorKind.NotFound, Cli.Run("inspect", $"{other.Host}/ckpt/a:g2", "--insecure").ExitCode);

        // Generation 2 packed straight into another repository of the first registry: reused layers are mounted from ckpt/a.
        var mounted = Cli.Ok(["pack", sealed2, "--out", $"{registry.Host}/ckpt/b:g2", "--insecure", "--json", .. StateA]);
        Assert.Contains("mount=", File.ReadAllText(registry.LogFile));
        Cli.Ok(["pull", $"{registry.Host}/ckpt/b:g2", "--insecure", "--key", "nodeB", "--out", _shm.File("b2"), .. StateB(_temp.File("sb2"))]);
        SyntheticCheckpoint.AssertSameTree(sealed2, Path.Combine(_shm.File("b2"), "checkpoint"));
        using var doc = JsonDocument.Parse(mounted.Out);
        Assert.True(doc.RootElement.GetProperty("reusedChunks").GetInt32() > 0);
    }

    private sealed class KillingObserver(Action kill, long afterBytes) : ITransferObserver
    {
        private long _total;
        private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, long> _done = new();
        public System.Collections.Concurrent.ConcurrentQueue<string> Retries { get; } = new();
        public void Started(Descriptor blob, string action) { }
        public void Finished(Descriptor blob, TransferOutcome outcome) { }
        public void Retrying(string operation, int attempt, TimeSpan delay, string reason)
        {
            Retries.Enqueue(reason);
        }

        public void Progress(Descriptor blob, long bytesDone)
        {
            long before = _done.TryGetValue(blob.Digest, out var b) ? b : 0;
            _done[blob.Digest] = bytesDone;
            if (Interlocked.Add(ref _total, Math.Max(0, bytesDone - before)) > afterBytes) kill();
        }
    }
}
