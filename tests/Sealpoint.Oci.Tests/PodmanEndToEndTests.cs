using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>
/// A podman container with secrets in its memory, in an environment variable and in a file it wrote. Checkpointed on
/// node A (podman export; its CRIU images sealed for node B as sealpoint-runc does: <see cref="NodeRuntimeStandIn"/>),
/// packed with its engine files sealed, pushed to the real registry, and nothing of it readable there; skopeo and
/// podman read the image; node B (its key only, fresh state) pulls a podman archive, and podman restores the
/// container, which continues with its file and environment.
/// </summary>
[Collection("e2e")]
public sealed class PodmanEndToEndTests : IDisposable
{
    private readonly TestNodes _nodes = new();
    private readonly TempDir _temp = TempDir.Create("oci-podman");
    private readonly TempDir _shm = TempDir.Create("oci-podman", inShm: true);
    private readonly List<string> _containers = [];
    private readonly List<string> _images = [];

    public PodmanEndToEndTests()
    {
        Tools.RequireRoot();
        Tools.Require("podman");
    }

    public void Dispose()
    {
        foreach (var c in _containers) Podman("rm", "-f", "--ignore", c);
        foreach (var i in _images) Podman("rmi", "-f", i);
        _nodes.Dispose();
        _temp.Dispose();
        _shm.Dispose();
    }

    private static ProcessResult Podman(params string[] args) =>
        ProcessRunner.RunUnchecked(Tools.Require("podman"), ["--runtime", Tools.Require("runc"), .. args], new RunOptions { Timeout = TimeSpan.FromMinutes(3) });

    private static ProcessResult Ok(ProcessResult r)
    {
        Assert.True(r.Succeeded, r.Describe());
        return r;
    }

    private static long Counter(string name)
    {
        var r = Podman("exec", name, "cat", "/tmp/counter");
        return r.Succeeded && long.TryParse(r.StandardOutput.Trim(), out long v) ? v : 0;
    }

    private static long WaitForCounter(string name, long value)
    {
        long seen = 0;
        Poll.Until(() => (seen = Counter(name)) >= value, TimeSpan.FromSeconds(30), () => $"container {name} to count to {value} (last {seen})");
        return seen;
    }

    private static string Secret(string kind) => $"SP{kind}-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12))}";

    [Fact]
    public void ContainerTravelsSealedThroughARegistryAndRestores()
    {
        using var registry = TestSupport.Registry.Start();
        string memSecret = Secret("MEM"), envSecret = Secret("ENV"), fileSecret = Secret("FILE");
        string name = "spo-" + Guid.NewGuid().ToString("N")[..10];
        _containers.Add(name);
        Ok(Podman("run", "-d", "--network", "none", "--name", name, "-e", $"SPENV={envSecret}", InstallPaths.TestImage,
            "sh", "-c", $"printf %s {fileSecret} > /written.txt; exec secretholder {memSecret} /tmp/counter"));
        long atCheckpoint = WaitForCounter(name, 5);

        // Node A: podman's export, then the CRIU images sealed for B (what sealpoint-runc does while podman checkpoints).
        string plainArchive = _shm.File("export.tar.zst");
        Ok(Podman("container", "checkpoint", "--export", plainArchive, name));
        string control = _shm.Dir("control");
        ProcessRunner.Run("tar", ["-xf", plainArchive, "-C", control]);
        // The control: each secret is readable in podman's own export (memory, environment in spec.dump, file in rootfs-diff.tar).
        SecretScan.AssertPresent(memSecret, Path.Combine(control, "checkpoint"));
        SecretScan.AssertPresent(envSecret, Path.Combine(control, "spec.dump"));
        SecretScan.AssertPresent(fileSecret, Path.Combine(control, "rootfs-diff.tar"));
        Directory.Delete(control, recursive: true);
        string sealedArchive = _temp.File("sealed-export.tar");
        var envelope = NodeRuntimeStandIn.SealPodmanExport(_nodes, plainArchive, sealedArchive, ["nodeB"], _shm);
        File.Delete(plainArchive);

        // Pack and push; the engine files are sealed for the checkpoint's recipients (found in the PKI by name).
        string reference = $"{registry.Host}/ckpt/{name}:v1";
        var pack = Cli.Ok("pack", sealedArchive, "--out", reference, "--insecure", "--state-dir", _nodes.StateA.Root, "--pki", _nodes.PkiRoot);
        Assert.Contains(envelope.CheckpointId, pack.Out);

        // Everything that left node A is ciphertext.
        foreach (var s in new[] { memSecret, envSecret, fileSecret }) SecretScan.AssertAbsent(s, registry.StorageDir);

        // Other tools read the image: skopeo (with podman's checkpoint annotations and Sealpoint's), podman pull.
        var raw = Ok(ProcessRunner.RunUnchecked(Tools.Require("skopeo"), ["inspect", "--raw", "--tls-verify=false", $"docker://{reference}"]));
        using (var manifest = JsonDocument.Parse(raw.StandardOutput))
        {
            var annotations = manifest.RootElement.GetProperty("annotations");
            Assert.Equal(name, annotations.GetProperty("io.podman.annotations.checkpoint.name").GetString());
            Assert.Equal(name, annotations.GetProperty("io.kubernetes.cri-o.annotations.checkpoint.name").GetString());
            Assert.Equal(envelope.LineageId, annotations.GetProperty("io.sealpoint.lineage").GetString());
            Assert.Equal("application/vnd.sealpoint.checkpoint.v1", manifest.RootElement.GetProperty("artifactType").GetString());
        }
        Ok(ProcessRunner.RunUnchecked(Tools.Require("skopeo"), ["inspect", "--tls-verify=false", $"docker://{reference}"]));
        _images.Add(reference);
        Ok(ProcessRunner.RunUnchecked(Tools.Require("podman"), ["pull", "--tls-verify=false", reference], new RunOptions { Timeout = TimeSpan.FromMinutes(3) }));
        Ok(Podman("rmi", reference));

        // Node C cannot pull it.
        var pullC = Cli.Run("pull", reference, "--insecure", "--key", "nodeC", "--pki", _nodes.PkiRoot, "--archive", _shm.File("c.tar"), "--state-dir", _temp.File("state-c"));
        Assert.Equal((int)ErrorKind.Key, pullC.ExitCode);
        Assert.False(File.Exists(_shm.File("c.tar")));

        // Node B: its key only and no earlier state. The container is gone from this machine first.
        Ok(Podman("rm", "-f", name));
        string restoreArchive = _shm.File("restore.tar");
        var pull = Cli.Ok("pull", reference, "--insecure", "--key", "nodeB", "--pki", _nodes.PkiRoot, "--archive", restoreArchive, "--state-dir", _temp.File("state-b"));
        Assert.Contains("engine files opened", pull.Out);
        Assert.Contains("spec.dump", pull.Out);
        // In the archive the CRIU images are still sealed; sealpoint-runc opens them just before restore.
        string check = _shm.Dir("check");
        ProcessRunner.Run("tar", ["-xf", restoreArchive, "-C", check]);
        Assert.True(File.Exists(Path.Combine(check, "checkpoint", "sealpoint.envelope")));
        SecretScan.AssertAbsent(memSecret, Path.Combine(check, "checkpoint"));
        Directory.Delete(check, recursive: true);

        string podmanArchive = _shm.File("restore-opened.tar");
        NodeRuntimeStandIn.OpenPodmanExport(_nodes, restoreArchive, podmanArchive, "nodeB", _shm);
        Ok(Podman("container", "restore", "--import", podmanArchive));
        long first = WaitForCounter(name, 1);
        Assert.True(first >= atCheckpoint, $"the container counts from {first}, below {atCheckpoint} at the checkpoint: it restarted instead of being restored");
        WaitForCounter(name, first + 3);
        Assert.Equal(fileSecret, Ok(Podman("exec", name, "cat", "/written.txt")).StandardOutput.Trim());
        Assert.Equal(envSecret, Ok(Podman("exec", name, "sh", "-c", "echo $SPENV")).StandardOutput.Trim());
    }
}
