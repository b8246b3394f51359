using System.Diagnostics;
using System.Formats.Tar;
using System.Net;
using System.Net.Sockets;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Packaging.Incremental;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>End-to-end tests run one at a time: they share CRIU, podman and two cores.</summary>
[CollectionDefinition("e2e", DisableParallelization = true)]
public sealed class EndToEndCollection;

/// <summary>
/// The distribution registry on a fixed loopback port that can be stopped and started again on the same storage
/// (for interrupted uploads). It has a fixed http.secret, as a production registry would, so upload sessions
/// survive a restart. Infra's <see cref="Registry"/> covers auth and TLS; this one only restarts.
/// </summary>
public sealed class RestartableRegistry : IDisposable
{
    private readonly TempDir _temp = TempDir.Create("registry-restart");
    private Process? _process;

    public RestartableRegistry()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        StorageDir = _temp.Dir("storage");
        File.WriteAllText(_temp.File("config.yml"), $"""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {StorageDir}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{Port}
              secret: sealpoint-test-fixed-secret
            """);
        Start();
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string StorageDir { get; }
    public bool Running => _process is { HasExited: false };

    public void Start()
    {
        _process = Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "exec \"$0\" serve \"$1\" </dev/null >>\"$2\" 2>&1", Tools.Require("docker-registry"), _temp.File("config.yml"), _temp.File("registry.log") },
            UseShellExecute = false,
        })!;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        Poll.Until(() =>
        {
            if (_process.HasExited) throw new InvalidOperationException($"docker-registry exited: {File.ReadAllText(_temp.File("registry.log"))}");
            try { return http.GetAsync($"http://{Host}/v2/").GetAwaiter().GetResult().IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
            catch (TaskCanceledException) { return false; }
        }, TimeSpan.FromSeconds(20), () => $"the registry on {Host} to answer", TimeSpan.FromMilliseconds(50));
    }

    /// <summary>SIGKILL: connections drop mid-transfer, as when a registry host dies.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        _process?.Dispose();
        _temp.Dispose();
    }
}

/// <summary>
/// Stand-ins for what sealpoint-runc does on each node, so these tests run without the runtime branch: on node A it
/// seals the CRIU images (recording keyed page hashes), on node B it opens them just before restore. Plaintext lives
/// on /dev/shm only.
/// </summary>
public static class NodeRuntimeStandIn
{
    /// <summary>Seals a podman export archive's checkpoint/ for the recipients, as sealpoint-runc would have at checkpoint time.</summary>
    public static Envelope SealPodmanExport(TestNodes nodes, string plainArchive, string sealedArchive, string[] recipients, TempDir shm)
    {
        string dir = shm.Dir("export-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            ProcessRunner.Run("tar", ["-xf", plainArchive, "-C", dir]);
            string checkpoint = Path.Combine(dir, "checkpoint");
            string sealedCheckpoint = Path.Combine(dir, "checkpoint.sealed");
            var envelope = nodes.SealOnA(checkpoint, sealedCheckpoint, recipients);
            Directory.Delete(checkpoint, recursive: true);
            Directory.Move(sealedCheckpoint, checkpoint);
            TarFile.CreateFromDirectory(dir, sealedArchive, includeBaseDirectory: false);
            return envelope;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Opens the sealed checkpoint/ of an archive sealpoint pull wrote, into a plain export archive for podman with runc.</summary>
    public static void OpenPodmanExport(TestNodes nodes, string sealedArchive, string plainArchive, string identity, TempDir shm)
    {
        string dir = shm.Dir("import-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            ProcessRunner.Run("tar", ["-xf", sealedArchive, "-C", dir]);
            string checkpoint = Path.Combine(dir, "checkpoint");
            string opened = Path.Combine(dir, "checkpoint.opened");
            using (var id = nodes.Identity(identity))
            using (var sealedCheckpoint = SealedCheckpoint.Open(checkpoint, id))
                sealedCheckpoint.DecryptTo(opened);
            Directory.Delete(checkpoint, recursive: true);
            Directory.Move(opened, checkpoint);
            TarFile.CreateFromDirectory(dir, plainArchive, includeBaseDirectory: false);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Opens a pulled sealed CRIU image folder into plaintext for criu restore.</summary>
    public static string OpenForRestore(TestNodes nodes, string sealedDir, string identity, string plainDir)
    {
        using var id = nodes.Identity(identity);
        using var checkpoint = SealedCheckpoint.Open(sealedDir, id);
        checkpoint.DecryptTo(plainDir);
        return plainDir;
    }
}
