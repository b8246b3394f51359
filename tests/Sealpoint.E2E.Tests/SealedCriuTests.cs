using System.Text;
using Sealpoint.TestSupport;

namespace Sealpoint.E2E.Tests;

/// <summary>
/// The core issue's promise on real CRIU 4.x: a real process with a random secret in memory is dumped, sealed,
/// the secret is nowhere in the sealed files, the checkpoint is opened and CRIU restores a process that still
/// has its secret (secretholder exits 3 if it changed) and keeps counting.
/// </summary>
public sealed class SealedCriuTests(SealpointCli cli) : IClassFixture<SealpointCli>
{
    private static string NewSecret() => "sealpoint-secret-" + Guid.NewGuid().ToString("N");

    [Fact]
    public void SecretHolder_IsSealedInPlace_OpenedIntoTmpfs_AndRestoredByCriu()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("sealed-criu");
        using var shm = TempDir.Create("sealed-criu-open", inShm: true);
        string secret = NewSecret();
        using var workload = Workload.StartSecretHolder(secret, dir.Dir("workload"));
        workload.WaitForCounter(5);

        string images = dir.Dir("images");
        Criu.Dump(workload.Pid, images);
        long atDump = workload.ReadCounter();
        SecretScan.AssertPresent(secret, images); // the plain dump leaks it: the test can fail

        cli.Run("seal", images, "--recipient", "node-a", "--recipient", "node-b");
        SecretScan.AssertAbsent(secret, dir.Path);
        Assert.True(File.Exists(Path.Combine(images, "sealpoint.envelope")));
        Assert.True(File.Exists(Path.Combine(images, "inventory.img")), "engines check inventory.img exists");

        var inspected = cli.Json("inspect", images, "--verify", "--key", cli.KeyOf("node-b"));
        Assert.True((bool)inspected["verified"]!);
        Assert.Equal(2, inspected["recipients"]!.AsArray().Count);
        Assert.Contains(inspected["files"]!.AsArray(), f => ((string)f!["name"]!).StartsWith("pages-") && (string)f["kind"]! == "pages");

        string opened = Path.Combine(shm.Path, "images");
        cli.Run("open", images, "--key", cli.KeyOf("node-a"), "--out", opened);
        SecretScan.AssertPresent(secret, opened);

        var restored = Criu.Restore(opened);
        Assert.Equal(workload.Pid, restored.Pid);
        CounterCheck.Continues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        Assert.True(workload.IsAlive, "the restored secretholder must still hold its secret" + workload.OutputTail());
        workload.Kill();
    }

    [Fact]
    public void MemHog_SealedWithOut_OpensToByteIdenticalImages_AndRestores()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("sealed-memhog");
        using var shm = TempDir.Create("sealed-memhog-open", inShm: true);
        string secret = NewSecret();
        using var workload = Workload.StartMemHog(64, secret, dir.Dir("workload"));
        string images = dir.Dir("images");
        Criu.Dump(workload.Pid, images);
        long atDump = workload.ReadCounter();

        string sealedDir = Path.Combine(dir.Path, "sealed");
        cli.Run("seal", images, "--out", sealedDir, "-r", "node-c", "--cipher", "aes-256-gcm");
        SecretScan.AssertAbsent(secret, sealedDir);

        string opened = Path.Combine(shm.Path, "images");
        cli.Run("open", sealedDir, "--key", cli.KeyOf("node-c"), "--out", opened);
        foreach (var file in Directory.EnumerateFiles(images))
            Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(opened, Path.GetFileName(file)))),
                $"{Path.GetFileName(file)} differs after seal and open");

        Criu.Restore(opened);
        CounterCheck.Continues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        workload.Kill();
    }

    [Fact]
    public void ProcessTree_SealedFilesInPlace_RestoresEveryProcess()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("sealed-tree");
        using var shm = TempDir.Create("sealed-tree-open", inShm: true);
        using var workload = Workload.StartProcTree(20, dir.Dir("workload"));
        Poll.Until(() => Pids.Tree(workload.Pid).Count == 20, TimeSpan.FromSeconds(10), () => "20 processes");
        string images = dir.Dir("images");
        var dump = Criu.Dump(workload.Pid, images);
        Assert.Equal(20, dump.DumpedPids.Count);
        long atDump = workload.ReadCounter();

        cli.Run("seal", images, "--in-place", "-r", "node-a");
        string opened = Path.Combine(shm.Path, "images");
        cli.Run("open", images, "--key", cli.KeyOf("node-a"), "--out", opened);
        Criu.Restore(opened);
        CounterCheck.Continues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        Assert.Equal(20, Pids.Tree(workload.Pid).Count);
        workload.Kill();
    }

    [Fact]
    public void RealImages_Tampered_OrWrongKey_AreRefusedBeforeAnyPlaintextAppears()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("sealed-tamper");
        using var shm = TempDir.Create("sealed-tamper-open", inShm: true);
        using var workload = Workload.StartSecretHolder(NewSecret(), dir.Dir("workload"));
        string images = dir.Dir("images");
        Criu.Dump(workload.Pid, images);
        cli.Run("seal", images, "-r", "node-a");
        string output = Path.Combine(shm.Path, "out");

        var wrongKey = cli.Try("open", images, "--key", cli.KeyOf("node-b"), "--out", output);
        Assert.Equal(4, wrongKey.ExitCode);
        Assert.Contains("not a recipient", wrongKey.StandardError);
        Assert.False(Directory.Exists(output));

        string core = Directory.EnumerateFiles(images, "core-*.img").First();
        byte[] bytes = File.ReadAllBytes(core);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(core, bytes);
        var tampered = cli.Try("open", images, "--key", cli.KeyOf("node-a"), "--out", output);
        Assert.Equal(5, tampered.ExitCode);
        Assert.Contains(Path.GetFileName(core), tampered.StandardError);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetFileSystemEntries(shm.Path));
    }
}
