using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Sealpoint.TestSupport;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Sealpoint.E2E.Tests;

/// <summary>
/// Proves the test infrastructure on this machine: install.sh's tools, the workloads, real CRIU
/// dump/restore, runc bundles, podman with the test image, the private registry and the secret
/// scanner. Every test fails (never skips) with the fix when something is missing.
/// </summary>
public sealed class InfraTests
{
    private static string NewSecret() => "sealpoint-secret-" + Guid.NewGuid().ToString("N");

    [Fact]
    public void InstalledTools_AreAllPresent_AndCriuChecksGood()
    {
        Tools.RequireRoot();
        foreach (var tool in new[] { "criu", "runc", "podman", "skopeo", "buildah", "docker-registry", "busybox",
                     "openssl", "gpg", "age", "zstd", "htpasswd", "setsid", "gcc" })
            Assert.True(File.Exists(Tools.Require(tool)), tool);
        Assert.Contains("Looks good", Criu.Check());
        foreach (var workload in new[] { "secretholder", "memhog", "proctree" })
            Tools.Workload(workload);
        Assert.True(File.Exists(Path.Combine(Tools.BusyboxRootfs(), "bin", "memhog")));
    }

    [Fact]
    public void Criu_DumpsAndRestoresSecretHolder_CounterContinues_AndPlainDumpHoldsSecret()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("criu-secretholder");
        var secret = NewSecret();
        using var workload = Workload.StartSecretHolder(secret, dir.Dir("workload"));
        workload.WaitForCounter(10);

        var images = dir.Dir("images");
        var dump = Criu.Dump(workload.Pid, images);
        Assert.Contains(workload.Pid, dump.DumpedPids);
        Assert.False(Pids.Exists(workload.Pid), "criu dump (without --leave-running) should have ended the process");
        var atDump = workload.ReadCounter();

        // Sanity for the encryption tests: an unencrypted dump leaks the heap secret, in the pages.
        var scan = SecretScan.AssertPresent(secret, images);
        Assert.Contains(scan.Files, f => Path.GetFileName(f).StartsWith("pages-"));

        var restored = Criu.Restore(images);
        Assert.Equal(workload.Pid, restored.Pid);
        AssertCounterContinues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        Assert.True(workload.IsAlive, "secretholder exits 3 when its secret changed in memory" + workload.OutputTail());
        workload.Kill();
    }

    [Fact]
    public void Criu_DumpsAndRestoresMemHog_EveryPageIntact()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("criu-memhog");
        var secret = NewSecret();
        using var workload = Workload.StartMemHog(64, secret, dir.Dir("workload"), modifyPercent: 10);
        Assert.Contains("modified", ModifyAndReadOutput(workload));
        workload.WaitForProgress();

        var images = dir.Dir("images");
        Criu.Dump(workload.Pid, images);
        var atDump = workload.ReadCounter();
        var pages = new DirectoryInfo(images).GetFiles("pages-*.img").Sum(f => f.Length);
        Assert.True(pages >= 64L << 20, $"pages images hold {pages} bytes, less than memhog's 64 MiB");
        // The secret is embedded at 8 places in the random area plus the heap copy.
        Assert.True(SecretScan.AssertPresent(secret, images).Hits.Count >= 9);

        Criu.Restore(images);
        AssertCounterContinues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        workload.VerifyMemory();
        Assert.Contains($"verify ok {64 * 256} pages", File.ReadAllText(workload.OutputFile));
        workload.Kill();
    }

    [Fact]
    public void Criu_DumpsAndRestoresProcTree_AllProcessesBack()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("criu-proctree");
        using var workload = Workload.StartProcTree(4, dir.Dir("workload"));
        Poll.Until(() => Pids.Tree(workload.Pid).Count == 4, TimeSpan.FromSeconds(10), () => "proctree to have 4 processes");
        workload.WaitForCounter(3);

        var images = dir.Dir("images");
        var dump = Criu.Dump(workload.Pid, images);
        Assert.Equal(4, dump.DumpedPids.Count);
        var atDump = workload.ReadCounter();

        Criu.Restore(images);
        AssertCounterContinues(() => workload.TryReadCounter(), atDump, workload.OutputTail);
        Assert.Equal(dump.DumpedPids.Order(), Pids.Tree(workload.Pid).Order());
        workload.Kill();
        Assert.All(dump.DumpedPids, pid => Assert.False(Pids.Exists(pid)));
    }

    [Fact]
    public void RuncBundle_ContainerRuns_CounterAdvances_AndRuncCheckpointRestoreWorks()
    {
        Tools.RequireRoot();
        var secret = NewSecret();
        using var bundle = RuncBundle.Create(["/bin/secretholder", secret, "/tmp/counter"],
            new RuncBundleOptions { Annotations = new Dictionary<string, string> { ["org.sealpoint.test"] = "infra" } });
        Assert.Equal("infra", bundle.LoadConfig()["annotations"]?["org.sealpoint.test"]?.GetValue<string>());

        bundle.Run();
        bundle.WaitForStatus("running");
        var first = bundle.WaitForCounter("/tmp/counter", 3);
        Assert.True(bundle.WaitForCounter("/tmp/counter", first + 3) > first);
        Assert.True(Pids.IsAlive(bundle.Pid()));

        // runc must find the CRIU 4.x launcher (RuncBundle puts it first on PATH).
        using var checkpoint = TempDir.Create("runc-checkpoint");
        var imagePath = checkpoint.Dir("images");
        bundle.Runc(["checkpoint", "--image-path", imagePath, "--work-path", checkpoint.Dir("work"), bundle.Id],
            new RunOptions { Timeout = TimeSpan.FromMinutes(2) });
        Assert.True(File.Exists(Path.Combine(imagePath, "inventory.img")));
        Assert.True(File.Exists(Path.Combine(imagePath, "descriptors.json")));
        var atCheckpoint = bundle.TryReadCounter("/tmp/counter") ?? 0;
        Assert.NotEqual("running", bundle.Status());
        SecretScan.AssertPresent(secret, imagePath);

        bundle.RuncDetached(["restore", "-d", "--bundle", bundle.Dir, "--image-path", imagePath, "--work-path", checkpoint.Dir("restore-work"), bundle.Id],
            TimeSpan.FromMinutes(2));
        bundle.WaitForStatus("running");
        AssertCounterContinues(() => bundle.TryReadCounter("/tmp/counter"), atCheckpoint, bundle.OutputTail);
        bundle.Kill();
        bundle.WaitForStatus("stopped");
        bundle.Delete();
        Assert.Null(bundle.Status());
    }

    [Fact]
    public void Podman_RunsTestImage_WithRuncAndTheUlimitDefaults()
    {
        Tools.RequireRoot();
        var result = ProcessRunner.Run(Tools.Require("podman"),
            ["run", "--rm", "--network", "none", InstallPaths.TestImage, "/bin/sh", "-c", "echo hello-from-sealpoint; ulimit -n"],
            new RunOptions { Timeout = TimeSpan.FromMinutes(2), FailureHint = "check podman info and /etc/containers/containers.conf.d/50-sealpoint.conf (install.sh writes it)" });
        Assert.Equal(["hello-from-sealpoint", "20000"], result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var info = ProcessRunner.Run(Tools.Require("podman"), ["info", "--format", "{{.Host.OCIRuntime.Name}}"]).StandardOutput.Trim();
        Assert.Equal("runc", info);
    }

    [Fact]
    public void Registry_Plain_AnswersV2()
    {
        using var registry = Registry.Start();
        Assert.Equal(HttpStatusCode.OK, registry.GetV2());
        Assert.StartsWith("http://127.0.0.1:", registry.BaseUri.ToString());
    }

    [Fact]
    public async Task Registry_WithTlsAndAuth_RejectsAnonymous_AndTakesAPushFromSkopeo()
    {
        Tools.RequireRoot(); // skopeo reads podman's root image store
        using var registry = Registry.Start(new RegistryOptions { Username = "tester", Password = "pa55-" + Guid.NewGuid().ToString("N")[..8], Tls = true });
        Assert.StartsWith("https://", registry.BaseUri.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, registry.GetV2(authenticate: false));
        Assert.Equal(HttpStatusCode.OK, registry.GetV2(authenticate: true));

        ProcessRunner.Run(Tools.Require("skopeo"),
            ["copy", "--quiet", "--dest-cert-dir", registry.CertDir!, "--dest-creds", $"{registry.Username}:{registry.Password}",
             "containers-storage:" + InstallPaths.TestImage, $"docker://{registry.Host}/sealpoint/test:v1"],
            new RunOptions { Timeout = TimeSpan.FromMinutes(2) });
        using var client = registry.CreateClient();
        var tags = JsonNode.Parse(await client.GetStringAsync("v2/sealpoint/test/tags/list"))!;
        Assert.Equal("v1", tags["tags"]![0]!.GetValue<string>());
    }

    [Fact]
    public void SecretScan_FindsAllForms_AcrossChunkEdges_AndIgnoresSymlinks()
    {
        using var dir = TempDir.Create("scan");
        var secret = NewSecret();
        var clean = dir.Dir("clean");
        File.WriteAllBytes(Path.Combine(clean, "noise.bin"), new byte[3 << 20]);
        var outside = dir.Dir("outside");
        File.WriteAllText(Path.Combine(outside, "leak.txt"), secret);
        File.CreateSymbolicLink(Path.Combine(clean, "link-to-leak"), Path.Combine(outside, "leak.txt"));
        Directory.CreateSymbolicLink(Path.Combine(clean, "link-to-dir"), outside);
        Assert.Equal(1, SecretScan.AssertAbsent(secret, clean).FilesScanned);

        var dirty = dir.Dir("dirty");
        var straddling = new byte[(2 << 20) + 100];
        var utf8 = Encoding.UTF8.GetBytes(secret);
        utf8.CopyTo(straddling, (1 << 20) - 5); // across the scanner's 1 MiB chunk edge
        File.WriteAllBytes(Path.Combine(dirty, "edge.bin"), straddling);
        File.WriteAllBytes(Path.Combine(dirty, "utf16.bin"), [1, 2, .. Encoding.Unicode.GetBytes(secret), 3]);
        var error = Assert.Throws<SecretFoundException>(() => SecretScan.AssertAbsent(secret, dirty));
        Assert.Equal(2, error.Report.Files.Count);
        Assert.Contains(error.Report.Hits, h => h.Form == "bytes" && h.Offset == (1 << 20) - 5);
        Assert.Contains(error.Report.Hits, h => h.Form == "UTF-16LE" && h.Offset == 2);
        Assert.Contains("edge.bin", error.Message);

        Assert.Throws<InvalidOperationException>(() => SecretScan.AssertAbsent(secret, dir.Dir("empty")));
        Assert.Throws<DirectoryNotFoundException>(() => SecretScan.AssertAbsent(secret, dir.File("missing")));
    }

    [Fact]
    public void RepoPaths_FindTheFreshBuildOfThePrograms()
    {
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "Shim.sln")));
        foreach (var (project, assembly) in new[] { ("Sealpoint.Cli", "sealpoint"), ("Sealpoint.Runtime", "sealpoint-runc-core"), ("Sealpoint.Hook", "sealpoint-hook") })
        {
            var program = RepoPaths.Program(project);
            Assert.Equal(Path.Combine(RepoPaths.ProjectDir(project), "bin", RepoPaths.Configuration, RepoPaths.TargetFramework, assembly), program);
            Assert.True(File.Exists(program + ".dll"), $"{program}.dll missing");
        }
        Assert.Throws<TestEnvironmentException>(() => RepoPaths.ProjectDir("Sealpoint.NoSuchProject"));
    }

    [Fact]
    public void ProcessRunner_ReportsFailures_AndKillsOnTimeout()
    {
        var failure = Assert.Throws<ProcessFailedException>(() =>
            ProcessRunner.Run("/bin/sh", ["-c", "echo to-out; echo to-err >&2; exit 7"], new RunOptions { FailureHint = "the hint" }));
        Assert.Equal(7, failure.Result.ExitCode);
        Assert.Contains("to-out", failure.Message);
        Assert.Contains("to-err", failure.Message);
        Assert.Contains("fix: the hint", failure.Message);

        var input = ProcessRunner.Run("cat", [], new RunOptions { StandardInput = "piped text" });
        Assert.Equal("piped text", input.StandardOutput);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Throws<TimeoutException>(() => ProcessRunner.Run("sleep", ["30"], new RunOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));

        var missing = Assert.Throws<TestEnvironmentException>(() => Tools.Require("no-such-tool-sealpoint"));
        Assert.Contains("run packaging/install.sh", missing.Message);
    }

    /// <summary>After a restore the counter must go on from the checkpointed value: every value seen is
    /// at least that (a restarted process would count from 1 again) and it keeps growing.</summary>
    private static void AssertCounterContinues(Func<long?> read, long atCheckpoint, Func<string> context) =>
        CounterCheck.Continues(read, atCheckpoint, context);

    private static string ModifyAndReadOutput(Workload workload)
    {
        workload.ModifyMemory();
        return File.ReadAllText(workload.OutputFile);
    }
}
