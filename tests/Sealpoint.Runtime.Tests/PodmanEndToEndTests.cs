using System.Text.Json;
using Sealpoint.TestSupport;

namespace Sealpoint.Runtime.Tests;

/// <summary>
/// podman 4.3 with sealpoint-runc as its OCI runtime (--runtime PATH, or the containers.conf snippet), on the
/// test image (busybox + secretholder): export/import, checkpoint images through a loopback registry, the OCI hook.
/// Every podman call names a hooks dir of the test's own, so hooks installed on the machine play no part.
/// </summary>
public sealed class PodmanEndToEndTests : IDisposable
{
    private readonly SealpointNode _node = new();
    private readonly TempDir _temp = TempDir.Create("podman-e2e");
    private readonly List<string> _containers = [];
    private readonly List<string> _images = [];
    private readonly string _emptyHooks;

    public PodmanEndToEndTests()
    {
        Tools.Require("podman");
        _emptyHooks = _temp.Dir("no-hooks");
    }

    private IReadOnlyDictionary<string, string?>? _confEnv;

    public void Dispose()
    {
        // Removed through the configuration that created them: podman needs the container's runtime to stop it.
        if (_confEnv is not null) foreach (string c in _containers) PodmanWith(null, _emptyHooks, _confEnv, "rm", "-f", "--ignore", c);
        foreach (string c in _containers) Podman(null, "rm", "-f", "--ignore", c);
        foreach (string i in _images) Podman(null, "rmi", "-f", i);
        _node.Dispose();
        _temp.Dispose();
    }

    /// <summary>podman --runtime RUNTIME --hooks-dir HOOKS ARGS, whatever its exit code.</summary>
    private ProcessResult Podman(string? hooksDir, params string[] args) => PodmanWith(_node.Runtime, hooksDir, null, args);

    private ProcessResult PodmanWith(string? runtime, string? hooksDir, IReadOnlyDictionary<string, string?>? env, params string[] args)
    {
        var global = new List<string> { "--hooks-dir", hooksDir ?? _emptyHooks };
        if (runtime is not null) global.InsertRange(0, ["--runtime", runtime]);
        return ProcessRunner.RunUnchecked(Tools.Require("podman"), [.. global, .. args], new RunOptions { Timeout = TimeSpan.FromMinutes(3), Environment = env });
    }

    private static void Ok(ProcessResult r) => Assert.True(r.Succeeded, r.Describe());

    private string RunSecretHolder(string secret, string? hooksDir = null, params string[] annotations)
    {
        string name = "sp-" + Guid.NewGuid().ToString("N")[..10];
        _containers.Add(name);
        var args = new List<string> { "run", "-d", "--network", "none", "--name", name };
        foreach (string a in annotations) args.AddRange(["--annotation", a]);
        args.AddRange([InstallPaths.TestImage, "secretholder", secret, "/tmp/counter"]);
        Ok(Podman(hooksDir, [.. args]));
        return name;
    }

    private long Counter(string name, IReadOnlyDictionary<string, string?>? env = null)
    {
        var r = PodmanWith(env is null ? _node.Runtime : null, null, env, "exec", name, "cat", "/tmp/counter");
        return r.Succeeded && long.TryParse(r.StandardOutput.Trim(), out long v) ? v : 0;
    }

    private long WaitForCounter(string name, long value, IReadOnlyDictionary<string, string?>? env = null)
    {
        long seen = 0;
        Poll.Until(() => (seen = Counter(name, env)) >= value, TimeSpan.FromSeconds(30), () => $"container {name} to count to {value} (last {seen})");
        return seen;
    }

    /// <summary>After a restore: the first value is not below the checkpoint's (a restarted process would count from 1).</summary>
    private void AssertContinues(string name, long atCheckpoint)
    {
        long first = WaitForCounter(name, 1);
        Assert.True(first >= atCheckpoint, $"container {name} counts from {first}, below {atCheckpoint} at checkpoint: it was restarted, not restored");
        WaitForCounter(name, first + 3);
    }

    private static string Extract(string archive, string into)
    {
        Directory.CreateDirectory(into);
        Ok(ProcessRunner.RunUnchecked("tar", ["-xf", archive, "-C", into]));
        return into;
    }

    private static void AssertSealedImages(string checkpointDir, string secret)
    {
        Assert.True(File.Exists(Path.Combine(checkpointDir, "sealpoint.envelope")), $"{checkpointDir} holds no sealpoint.envelope");
        Assert.True(File.Exists(Path.Combine(checkpointDir, "inventory.img")), $"{checkpointDir} holds no inventory.img");
        SecretScan.AssertAbsent(secret, checkpointDir);
    }

    [Fact]
    public void ExportIsSealedAndImportRestores()
    {
        string secret = Secrets.New();
        string name = RunSecretHolder(secret);
        // First a checkpoint that leaves it running (-R): podman then checkpoints into the same folder again.
        Ok(Podman(null, "container", "checkpoint", "-R", "--export", _temp.File("first.tar.zst"), name));
        long atCheckpoint = WaitForCounter(name, 30);
        string archive = _temp.File("export.tar.zst");
        Ok(Podman(null, "container", "checkpoint", "--export", archive, name));
        string ex = Extract(archive, _temp.Dir("x"));
        AssertSealedImages(Path.Combine(ex, "checkpoint"), secret);
        // podman itself stores the container's command line (which holds this test's secret) in spec.dump and
        // config.dump; the memory images carry it nowhere.
        var hits = SecretScan.Scan(System.Text.Encoding.UTF8.GetBytes(secret), ex).Files.Select(f => Path.GetRelativePath(ex, f)).ToList();
        Assert.All(hits, f => Assert.Contains(f, new[] { "spec.dump", "config.dump" }));
        _node.AssertStagingEmpty();

        Ok(Podman(null, "rm", "-f", name));
        Ok(Podman(null, "container", "restore", "--import", archive));
        AssertContinues(name, atCheckpoint);
        _node.AssertStagingEmpty();
        string calls = File.ReadAllText(_node.CallLog);
        Assert.Contains("checkpoint --image-path", calls);
        Assert.Contains("restore --bundle", calls);
    }

    /// <summary>The same export with podman's own runtime: its memory images hold the secret (the control for the scan above).</summary>
    [Fact]
    public void ExportWithPlainRuncHoldsTheSecret()
    {
        string secret = Secrets.New();
        string name = "sp-" + Guid.NewGuid().ToString("N")[..10];
        _containers.Add(name);
        Ok(PodmanWith(Tools.Require("runc"), _emptyHooks, null, "run", "-d", "--network", "none", "--name", name, InstallPaths.TestImage, "secretholder", secret, "/tmp/counter"));
        WaitForCounter(name, 3);
        string archive = _temp.File("plain.tar.zst");
        Ok(PodmanWith(Tools.Require("runc"), _emptyHooks, null, "container", "checkpoint", "--export", archive, name));
        SecretScan.AssertPresent(secret, Path.Combine(Extract(archive, _temp.Dir("plain")), "checkpoint"));
    }

    [Fact]
    public void CheckpointImageThroughARegistryIsSealedAndRestores()
    {
        using var registry = Registry.Start();
        string secret = Secrets.New();
        string name = RunSecretHolder(secret);
        long atCheckpoint = WaitForCounter(name, 30);
        string reference = $"{registry.Host}/sealpoint/{name}:checkpoint";
        _images.Add(reference);
        Ok(Podman(null, "container", "checkpoint", "--create-image", reference, name));
        Ok(Podman(null, "push", "--tls-verify=false", reference));

        // Remove everything local of the checkpoint: the container and the checkpoint image.
        Ok(Podman(null, "rm", "-f", name));
        Ok(Podman(null, "rmi", reference));
        Assert.NotEqual(0, Podman(null, "image", "exists", reference).ExitCode);

        // What the registry holds is sealed.
        string copy = _temp.Dir("oci");
        Ok(ProcessRunner.RunUnchecked(Tools.Require("skopeo"), ["copy", "--src-tls-verify=false", $"docker://{reference}", $"dir:{copy}"]));
        using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(copy, "manifest.json"))))
        {
            var layers = manifest.RootElement.GetProperty("layers").EnumerateArray().ToList();
            Assert.Single(layers);
            string digest = layers[0].GetProperty("digest").GetString()!.Split(':')[1];
            string layer = Extract(Path.Combine(copy, digest), _temp.Dir("layer"));
            AssertSealedImages(Path.Combine(layer, "checkpoint"), secret);
        }

        Ok(Podman(null, "pull", "--tls-verify=false", reference));
        Ok(Podman(null, "container", "restore", reference));
        AssertContinues(name, atCheckpoint);
        _node.AssertStagingEmpty();
    }

    [Fact]
    public void ContainersConfSnippetSelectsSealpoint()
    {
        // The snippet as shipped, with its runtime path pointed at this build, and the two engine settings this
        // machine needs (no systemd) inserted into its [engine] table; CONTAINERS_CONF makes podman read only it.
        string snippet = File.ReadAllText(Path.Combine(RepoPaths.Root, "packaging", "engines", "podman", "containers.conf"));
        Assert.Contains("/opt/sealpoint/bin/sealpoint-runc", snippet);
        string conf = _temp.File("containers.conf");
        File.WriteAllText(conf, "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n" +
            snippet.Replace("/opt/sealpoint/bin/sealpoint-runc", _node.Runtime)
                .Replace("[engine]\n", "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"));
        var env = new Dictionary<string, string?> { ["CONTAINERS_CONF"] = conf };
        _confEnv = env;

        string secret = Secrets.New();
        string name = "sp-" + Guid.NewGuid().ToString("N")[..10];
        _containers.Insert(0, name);
        Ok(PodmanWith(null, _emptyHooks, env, "run", "-d", "--network", "none", "--name", name, InstallPaths.TestImage, "secretholder", secret, "/tmp/counter"));
        var inspect = PodmanWith(null, _emptyHooks, env, "inspect", "--format", "{{.OCIRuntime}}", name);
        Ok(inspect);
        Assert.Equal("sealpoint-runc", inspect.StandardOutput.Trim());
        WaitForCounter(name, 3, env);
        string archive = _temp.File("conf.tar.zst");
        Ok(PodmanWith(null, _emptyHooks, env, "container", "checkpoint", "--export", archive, name));
        AssertSealedImages(Path.Combine(Extract(archive, _temp.Dir("conf")), "checkpoint"), secret);
        Ok(PodmanWith(null, _emptyHooks, env, "rm", "-f", name));
        Ok(PodmanWith(null, _emptyHooks, env, "container", "restore", "--import", archive));
        WaitForCounter(name, 1, env);
        // runtime_supports_json: conmon gave the runtime a JSON log, as it does for runc.
        Assert.Contains("--log-format=json", File.ReadAllText(_node.CallLog));
    }

    private string HooksDir(string label)
    {
        string dir = _temp.Dir(label);
        string wrapper = Path.Combine(dir, "sealpoint-hook.sh");
        File.WriteAllText(wrapper, $"#!/bin/sh\nSEALPOINT_CONFIG='{_node.ConfigPath}' exec '{_node.Hook}' \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string hooks = Path.Combine(dir, "hooks.d");
        Directory.CreateDirectory(hooks);
        foreach (string f in Directory.GetFiles(Path.Combine(RepoPaths.Root, "hooks", "hooks.d"), "*.json"))
            File.WriteAllText(Path.Combine(hooks, Path.GetFileName(f)), File.ReadAllText(f).Replace("/opt/sealpoint/bin/sealpoint-hook", wrapper));
        return hooks;
    }

    [Fact]
    public void HookRefusesAContainerWhoseCheckpointsCouldNotBeSealed()
    {
        string hooks = HooksDir("hooks");
        _node.Pki.Issue("revoked-node");
        _node.Pki.Revoke("revoked-node");
        foreach (var (annotation, expected) in new[]
                 {
                     ("io.sealpoint.recipients=nobody", "recipient 'nobody' (annotation io.sealpoint.recipients)"),
                     ("io.sealpoint.recipients=revoked-node", "is revoked"),
                     ("io.sealpoint.encrypt=perhaps", "is not true or false"), // runc quotes the hook's stderr: no quotes here
                 })
        {
            string name = "sp-" + Guid.NewGuid().ToString("N")[..10];
            _containers.Add(name);
            var r = Podman(hooks, "run", "-d", "--network", "none", "--name", name, "--annotation", annotation, InstallPaths.TestImage, "secretholder", "x", "/tmp/counter");
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("cannot be created: its checkpoints could not be sealed", r.StandardError);
            Assert.Contains(expected, r.StandardError);
        }
        // A container whose policy works is created, and its checkpoint restored (the hook runs again at restore).
        // podman splits --annotation values at commas: spaces separate recipients too.
        string ok = RunSecretHolder(Secrets.New(), hooks, "io.sealpoint.recipients=node1 node2");
        WaitForCounter(ok, 3);
        Ok(Podman(hooks, "container", "checkpoint", ok));
        Ok(Podman(hooks, "container", "restore", ok));
        WaitForCounter(ok, 1);
    }

    [Fact]
    public void PoststopHookWipesLeftoverStagingButKeepsAnUnsealedDump()
    {
        string hooks = HooksDir("hooks");
        string name = RunSecretHolder(Secrets.New(), hooks, "io.sealpoint.encrypt=true");
        string id = Podman(null, "inspect", "--format", "{{.Id}}", name).StandardOutput.Trim();
        // Leftovers as a killed checkpoint would leave them, and a dump whose sealing failed.
        string containerStaging = Path.Combine(_node.StagingRoot, id);
        string leftover = Path.Combine(containerStaging, "checkpoint-killed");
        string pending = Path.Combine(containerStaging, "checkpoint-pending");
        Directory.CreateDirectory(leftover);
        Directory.CreateDirectory(pending);
        File.WriteAllText(Path.Combine(leftover, "pages-1.img"), "x");
        File.WriteAllText(Path.Combine(pending, "sealpoint-pending.json"), "{}");
        Ok(Podman(hooks, "rm", "-f", name));
        Poll.Until(() => !Directory.Exists(leftover), TimeSpan.FromSeconds(30), () => $"the poststop hook to remove {leftover}");
        Assert.True(Directory.Exists(pending), $"{pending} (an unsealed dump) was removed");
    }
}
