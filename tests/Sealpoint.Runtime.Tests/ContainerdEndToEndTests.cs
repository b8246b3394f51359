using System.Diagnostics;
using System.Text.Json;
using Sealpoint.TestSupport;

namespace Sealpoint.Runtime.Tests;

/// <summary>
/// A private containerd 1.6 daemon (own config, root, state and sockets; CRI plugin disabled: no CNI here),
/// driven with ctr. Containers run through the runc v2 shim with sealpoint-runc as its runc binary
/// (ctr run --runc-binary, the shim option BinaryName).
/// </summary>
public sealed class ContainerdDaemon : IDisposable
{
    private readonly TempDir _temp;
    private readonly Process _process;

    public ContainerdDaemon()
    {
        string containerd = Tools.Require("containerd");
        Tools.Require("ctr");
        _temp = TempDir.Create("containerd");
        string id = Guid.NewGuid().ToString("N")[..10];
        State = $"/run/sealpoint-ctd-{id}";
        Socket = Path.Combine(State, "containerd.sock");
        Namespace = "sp" + id;
        Log = _temp.File("containerd.log");
        string config = _temp.File("config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{_temp.Dir("root")}"
            state = "{State}"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "{Socket}"
            [ttrpc]
              address = "{Path.Combine(State, "containerd-ttrpc.sock")}"
            """);
        var start = new ProcessStartInfo(containerd) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config);
        _process = Process.Start(start)!;
        var log = File.AppendText(Log);
        log.AutoFlush = true;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Poll.Until(() => Ctr("version").Succeeded || _process.HasExited, TimeSpan.FromSeconds(30), () => $"containerd to answer on {Socket}\n{FileTail.Read(Log, 20)}");
        if (_process.HasExited) throw new TestEnvironmentException($"containerd exited at start:\n{FileTail.Read(Log, 30)}");
    }

    public string State { get; }
    public string Socket { get; }
    public string Namespace { get; }
    public string Log { get; }

    public ProcessResult Ctr(params string[] args) =>
        ProcessRunner.RunUnchecked(Tools.Require("ctr"), ["-a", Socket, "-n", Namespace, .. args], new RunOptions { Timeout = TimeSpan.FromMinutes(2) });

    public string TempFile(string name) => _temp.File(name);
    public string TempDirectory(string name) => _temp.Dir(name);

    public void Dispose()
    {
        try
        {
            // Tasks first: their shims outlive the daemon otherwise.
            foreach (string line in Ctr("task", "ls", "-q").StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Ctr("task", "kill", "-s", "KILL", line.Trim());
                Poll.Until(() => Ctr("task", "delete", line.Trim()).Succeeded || !Ctr("task", "ls", "-q").StandardOutput.Contains(line.Trim()),
                    TimeSpan.FromSeconds(20), () => $"task {line} to be deleted");
            }
            foreach (string line in Ctr("container", "ls", "-q").StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                Ctr("container", "delete", line.Trim());
        }
        finally
        {
            if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(10000); }
            _process.Dispose();
            try { Directory.Delete(State, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            _temp.Dispose();
        }
    }
}

public sealed class ContainerdEndToEndTests : IDisposable
{
    private readonly SealpointNode _node = new();

    public void Dispose() => _node.Dispose();

    private static long Counter(ContainerdDaemon d, string container)
    {
        var r = d.Ctr("task", "exec", "--exec-id", "c" + Guid.NewGuid().ToString("N")[..8], container, "cat", "/tmp/counter");
        return r.Succeeded && long.TryParse(r.StandardOutput.Trim(), out long v) ? v : 0;
    }

    private static long WaitForCounter(ContainerdDaemon d, string container, long value)
    {
        long seen = 0;
        Poll.Until(() => (seen = Counter(d, container)) >= value, TimeSpan.FromSeconds(30), () => $"task {container} to count to {value} (last {seen})");
        return seen;
    }

    [Fact]
    public void CheckpointImageHoldsSealedImagesAndLiveRestoreWorks()
    {
        using var d = new ContainerdDaemon();
        string archive = d.TempFile("image.tar");
        var save = ProcessRunner.RunUnchecked(Tools.Require("podman"), ["save", "--format", "oci-archive", "-o", archive, InstallPaths.TestImage]);
        Assert.True(save.Succeeded, save.Describe());
        var import = d.Ctr("images", "import", "--base-name", "localhost/sealpoint-test", archive);
        Assert.True(import.Succeeded, import.Describe());

        string secret = Secrets.New();
        var run = d.Ctr("run", "-d", "--null-io", "--runtime", "io.containerd.runc.v2", "--runc-binary", _node.Runtime, InstallPaths.TestImage, "c1",
            "secretholder", secret, "/tmp/counter");
        Assert.True(run.Succeeded, run.Describe());
        long atCheckpoint = WaitForCounter(d, "c1", 20);

        string reference = "localhost/sealpoint-checkpoint/c1:1";
        var checkpoint = d.Ctr("container", "checkpoint", "--rw", "--task", "--image", "c1", reference);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        string calls = File.ReadAllText(_node.CallLog);
        Assert.Contains("--log-format json checkpoint --image-path", calls); // the shim called sealpoint-runc

        // The CRIU blob in containerd's content store is sealed.
        string index = d.Ctr("images", "ls").StandardOutput.Split('\n').Single(l => l.StartsWith(reference)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];
        using var doc = JsonDocument.Parse(d.Ctr("content", "get", index).StandardOutput);
        string criu = doc.RootElement.GetProperty("manifests").EnumerateArray()
            .Single(m => m.GetProperty("mediaType").GetString() == "application/vnd.containerd.container.criu.checkpoint.criu.tar").GetProperty("digest").GetString()!;
        string blob = d.TempFile("criu.tar");
        var get = ProcessRunner.RunUnchecked("/bin/sh", ["-c", "exec \"$@\" > \"$0\"", blob, Tools.Require("ctr"), "-a", d.Socket, "-n", d.Namespace, "content", "get", criu]);
        Assert.True(get.Succeeded, get.Describe());
        string images = d.TempDirectory("criu");
        Assert.True(ProcessRunner.RunUnchecked("tar", ["-xf", blob, "-C", images]).Succeeded);
        Assert.True(File.Exists(Path.Combine(images, "sealpoint.envelope")), "the CRIU blob holds no sealpoint.envelope");
        SecretScan.AssertAbsent(secret, images);
        _node.AssertStagingEmpty();

        // Everything of the running container goes; the checkpoint image restores it.
        Assert.True(d.Ctr("task", "kill", "-s", "KILL", "c1").Succeeded);
        Poll.Until(() => d.Ctr("task", "delete", "c1").Succeeded, TimeSpan.FromSeconds(20), () => "task c1 to be deleted");
        Assert.True(d.Ctr("container", "delete", "c1").Succeeded);
        var restore = d.Ctr("container", "restore", "--rw", "--live", "c1", reference);
        Assert.True(restore.Succeeded, restore.Describe() + "\n" + FileTail.Read(d.Log, 20));
        long first = WaitForCounter(d, "c1", 1);
        Assert.True(first >= atCheckpoint, $"the restored task counts from {first}, below {atCheckpoint}: restarted, not restored");
        WaitForCounter(d, "c1", first + 3);
        Assert.Contains("restore --image-path", File.ReadAllText(_node.CallLog));
        _node.AssertStagingEmpty();
    }

    [Fact]
    public void ErrorsReachTheShimsJsonLog()
    {
        using var d = new ContainerdDaemon();
        string archive = d.TempFile("image.tar");
        Assert.True(ProcessRunner.RunUnchecked(Tools.Require("podman"), ["save", "--format", "oci-archive", "-o", archive, InstallPaths.TestImage]).Succeeded);
        Assert.True(d.Ctr("images", "import", "--base-name", "localhost/sealpoint-test", archive).Succeeded);
        var run = d.Ctr("run", "-d", "--null-io", "--label", "x=y", "--runc-binary", _node.Runtime, InstallPaths.TestImage, "c2", "secretholder", "x", "/tmp/counter");
        Assert.True(run.Succeeded, run.Describe());
        WaitForCounter(d, "c2", 2);
        // A node without recipients: the checkpoint is refused before the dump, and ctr reports our message,
        // which containerd read back from the runtime's --log JSON file.
        File.WriteAllText(_node.ConfigPath, File.ReadAllText(_node.ConfigPath).Replace("recipients = [\"node1\"]", "recipients = []"));
        var checkpoint = d.Ctr("task", "checkpoint", "c2");
        Assert.NotEqual(0, checkpoint.ExitCode);
        Assert.Contains("no recipient is named", checkpoint.StandardError);
        Assert.Equal("RUNNING", d.Ctr("task", "ls").StandardOutput.Split('\n').Single(l => l.StartsWith("c2")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]);
    }

    [Fact]
    public void CriSnippetIsAcceptedByContainerd()
    {
        // The CRI handler cannot be driven here (no crictl, no CNI); containerd must at least load it as written.
        string snippet = File.ReadAllText(Path.Combine(RepoPaths.Root, "packaging", "engines", "containerd", "config.toml"));
        using var temp = TempDir.Create("ctd-conf");
        string config = temp.File("config.toml");
        File.WriteAllText(config, snippet.Replace("/opt/sealpoint/bin/sealpoint-runc", _node.Runtime));
        var dump = ProcessRunner.RunUnchecked(Tools.Require("containerd"), ["--config", config, "config", "dump"]);
        Assert.True(dump.Succeeded, dump.Describe());
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.sealpoint.options]", dump.StandardOutput);
        Assert.Contains($"BinaryName = \"{_node.Runtime}\"", dump.StandardOutput);
        Assert.Contains("runtime_type = \"io.containerd.runc.v2\"", dump.StandardOutput);
    }
}
