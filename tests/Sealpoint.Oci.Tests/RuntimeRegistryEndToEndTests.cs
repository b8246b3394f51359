using System.Text.Json.Nodes;
using Sealpoint.Core;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>
/// The whole path with real parts only: podman on node A checkpoints through sealpoint-runc (sealed for node B), two
/// successive checkpoints of the container form a lineage, both are packed and pushed to a real registry (the second
/// one incrementally), node B pulls the newest and podman restores it through sealpoint-runc with B's key.
/// </summary>
public sealed class RuntimeRegistryEndToEndTests : IDisposable
{
    private readonly TestNodes _nodes = new();
    private readonly TempDir _temp = TempDir.Create("oci-runtime");
    private readonly TempDir _shm = TempDir.Create("oci-runtime", inShm: true);
    private readonly List<string> _containers = [];
    private readonly string _runtime;

    public RuntimeRegistryEndToEndTests()
    {
        // One runtime path, as on real nodes (podman records it in the archive and wants the same one at restore).
        _runtime = Path.Combine(Directory.CreateDirectory(_temp.File("bin")).FullName, "sealpoint-runc");
        BecomeNode("a");
    }

    /// <summary>Makes the runtime this machine's node A or B: its config and its state (podman gives the runtime a clean environment).</summary>
    private void BecomeNode(string node)
    {
        string identity = node == "a" ? "nodeA" : "nodeB", recipients = "nodeB";
        string config = _temp.File($"config-{node}.toml");
        File.WriteAllText(config, $"""
            [runtime]
            runc = "{Tools.Require("runc")}"
            criu = "{Tools.Require("criu")}"
            staging = "{_shm.File("staging-" + node)}"
            [keys]
            pki = "{_nodes.PkiRoot}"
            identity = "{identity}"
            recipients = ["{recipients}"]
            """);
        string launcher = Path.Combine(RepoPaths.BuildOutput("Sealpoint.Runtime"), "sealpoint-runc");
        File.WriteAllText(_runtime, $"#!/bin/sh\nSEALPOINT_CONFIG='{config}' SEALPOINT_STATE_DIR='{StateDir(node)}' exec '{launcher}' \"$@\"\n");
        File.SetUnixFileMode(_runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string StateDir(string node) => node == "a" ? _nodes.StateA.Root : _nodes.StateB.Root;

    private static ProcessResult Podman(string runtime, params string[] args) =>
        ProcessRunner.RunUnchecked(Tools.Require("podman"), ["--runtime", runtime, .. args], new RunOptions { Timeout = TimeSpan.FromMinutes(3) });

    private static ProcessResult Ok(ProcessResult r)
    {
        Assert.True(r.Succeeded, r.Describe());
        return r;
    }

    private long WaitForCounter(string runtime, string name, long value)
    {
        long seen = 0;
        Poll.Until(() =>
        {
            var r = Podman(runtime, "exec", name, "cat", "/tmp/counter");
            seen = r.Succeeded && long.TryParse(r.StandardOutput.Trim(), out long v) ? v : 0;
            return seen >= value;
        }, TimeSpan.FromSeconds(30), () => $"container {name} to count to {value} (last {seen})");
        return seen;
    }

    private JsonObject Pack(string archive, string reference) =>
        JsonNode.Parse(Cli.Ok("pack", archive, "--out", reference, "--insecure", "--state-dir", _nodes.StateA.Root, "--pki", _nodes.PkiRoot, "--json").Out)!.AsObject();

    [Fact]
    public void SuccessiveCheckpointsThroughSealpointRunc_PushIncrementally_AndRestoreOnNodeB()
    {
        using var registry = TestSupport.Registry.Start();
        string secret = "SPMEM-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        string name = "spr-" + Guid.NewGuid().ToString("N")[..10];
        _containers.Add(name);
        Ok(Podman(_runtime, "run", "-d", "--network", "none", "--name", name, InstallPaths.TestImage, "memhog", "64", secret, "/tmp/counter", "5"));
        WaitForCounter(_runtime, name, 3);

        // Generation 1, the container keeps running.
        string first = _shm.File("gen1.tar");
        Ok(Podman(_runtime, "container", "checkpoint", "-R", "--export", first, name));
        var pack1 = Pack(first, $"{registry.Host}/ckpt/{name}:g1");
        Assert.Equal(1, (long)pack1["generation"]!);

        // 5 % of its memory changes; generation 2 continues the lineage and uploads little.
        Ok(Podman(_runtime, "kill", "--signal", "USR1", name));
        Thread.Sleep(1000);
        string second = _shm.File("gen2.tar");
        Ok(Podman(_runtime, "container", "checkpoint", "--export", second, name));
        var pack2 = Pack(second, $"{registry.Host}/ckpt/{name}:g2");
        Assert.Equal((string)pack1["lineageId"]!, (string)pack2["lineageId"]!);
        Assert.Equal(2, (long)pack2["generation"]!);
        long sent1 = (long)pack1["bytesSent"]!, sent2 = (long)pack2["bytesSent"]!;
        Assert.True((long)pack2["reusedChunks"]! > 0, $"generation 2 reused no chunk of generation 1: {pack2}");
        Assert.True(sent2 < sent1 / 2, $"the incremental push sent {sent2} bytes, the full one {sent1}");
        SecretScan.AssertAbsent(secret, registry.StorageDir);

        // Node B: pulls the newest generation with its key only, podman restores through sealpoint-runc.
        Ok(Podman(_runtime, "rm", "-f", name));
        BecomeNode("b");
        string restoreArchive = _shm.File("restore.tar");
        Cli.Ok("pull", $"{registry.Host}/ckpt/{name}:g2", "--insecure", "--key", "nodeB", "--pki", _nodes.PkiRoot,
            "--archive", restoreArchive, "--state-dir", _nodes.StateB.Root);
        Ok(Podman(_runtime, "container", "restore", "--import", restoreArchive));
        WaitForCounter(_runtime, name, 1);

        // Rolling node B back to generation 1 is refused by the pull and, for an archive copied in by hand, by the runtime.
        var rollback = Cli.Run("pull", $"{registry.Host}/ckpt/{name}:g1", "--insecure", "--key", "nodeB", "--pki", _nodes.PkiRoot,
            "--archive", _shm.File("old.tar"), "--state-dir", _nodes.StateB.Root);
        Assert.Equal((int)ErrorKind.Policy, rollback.ExitCode);
        Assert.Contains("rollback refused", rollback.Err);
    }

    public void Dispose()
    {
        foreach (var c in _containers) Podman(_runtime, "rm", "-f", "--ignore", c);
        _nodes.Dispose();
        _temp.Dispose();
        _shm.Dispose();
    }
}
