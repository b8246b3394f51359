using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sealpoint.TestSupport;

public sealed record RuncBundleOptions
{
    /// <summary>Container id; default a random "sp-..." id.</summary>
    public string? Id { get; init; }

    /// <summary>Added to config.json "annotations" (e.g. for the Sealpoint runtime).</summary>
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Extra "KEY=value" entries for process.env.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>Rootfs to copy; default the busybox test rootfs from install.sh.</summary>
    public string? RootfsSource { get; init; }

    /// <summary>Put the bundle under /dev/shm instead of /tmp.</summary>
    public bool InShm { get; init; }
}

/// <summary>
/// An OCI bundle in a temporary folder — `runc spec` edited for tests: the given args, no terminal,
/// a writable private copy of the busybox rootfs — and runc commands on it with a private state
/// root (`runc --root`), so tests never see or touch other containers. The container's output goes
/// through a pipe to <see cref="OutputFile"/>. Dispose deletes the container (forced) and the folder.
/// </summary>
public sealed class RuncBundle : IDisposable
{
    private readonly TempDir _temp;

    public string Id { get; }
    public string Dir { get; }
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string ConfigPath => Path.Combine(Dir, "config.json");
    public string StateRoot { get; }
    public string OutputFile { get; }

    private RuncBundle(TempDir temp, string id)
    {
        _temp = temp;
        Id = id;
        Dir = temp.Dir("bundle");
        StateRoot = temp.Dir("runc-root");
        OutputFile = temp.File("container.log");
    }

    public static RuncBundle Create(IReadOnlyList<string> args, RuncBundleOptions? options = null)
    {
        options ??= new RuncBundleOptions();
        Tools.RequireRoot();
        var source = options.RootfsSource ?? Tools.BusyboxRootfs();
        var bundle = new RuncBundle(TempDir.Create("bundle", options.InShm), options.Id ?? "sp-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            ProcessRunner.Run("cp", ["-a", "--", source + "/.", bundle.Rootfs + "/"],
                new RunOptions { Timeout = TimeSpan.FromMinutes(2) });
            bundle.Runc(["spec", "--bundle", bundle.Dir]);
            bundle.EditConfig(config =>
            {
                var process = config["process"]!.AsObject();
                process["terminal"] = false;
                process["args"] = new JsonArray(args.Select(a => (JsonNode)a!).ToArray());
                var env = process["env"] as JsonArray ?? [];
                foreach (var e in options.Env) env.Add(e);
                process["env"] = env;
                config["root"] = new JsonObject { ["path"] = "rootfs", ["readonly"] = false };
                config["hostname"] = "sealpoint-test";
                var annotations = config["annotations"] as JsonObject ?? [];
                foreach (var (key, value) in options.Annotations ?? new Dictionary<string, string>())
                    annotations[key] = value;
                config["annotations"] = annotations;
            });
        }
        catch
        {
            bundle.Dispose();
            throw;
        }
        return bundle;
    }

    public JsonObject LoadConfig() => JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();

    public void SaveConfig(JsonObject config) =>
        File.WriteAllText(ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public void EditConfig(Action<JsonObject> edit)
    {
        var config = LoadConfig();
        edit(config);
        SaveConfig(config);
    }

    /// <summary>Path on the host of a path inside the container's rootfs.</summary>
    public string HostPath(string containerPath) => Path.Combine(Rootfs, containerPath.TrimStart('/'));

    /// <summary>runc --root STATE ARGS. PATH starts with the CRIU launcher's folder, so runc's
    /// checkpoint/restore run CRIU 4.x (runc finds criu on PATH).</summary>
    public ProcessResult Runc(IEnumerable<string> args, RunOptions? options = null) =>
        ProcessRunner.Run(RuncPath, ["--root", StateRoot, .. args], WithPath(options ?? new RunOptions { Timeout = TimeSpan.FromSeconds(60) }));

    /// <summary>Same as <see cref="Runc"/> with another runc-compatible runtime (e.g. sealpoint-runc).</summary>
    public ProcessResult Runtime(string runtime, IEnumerable<string> args, RunOptions? options = null) =>
        ProcessRunner.Run(runtime, ["--root", StateRoot, .. args], WithPath(options ?? new RunOptions { Timeout = TimeSpan.FromSeconds(60) }));

    /// <summary>
    /// A runtime command that leaves the container running (run -d, create, restore -d): stdin is
    /// /dev/null and stdout/stderr are a pipe into <see cref="OutputFile"/>. Why a pipe and not the
    /// file itself: CRIU cannot dump a container whose fd points to a host file outside its mount
    /// namespace, while runc passes pipes through checkpoint/restore (descriptors.json).
    /// </summary>
    public ProcessResult RuntimeDetached(string runtime, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        // bash starts `cat` (stderr silenced, so it holds no pipe to us), then execs the runtime with
        // its output going into cat; cat ends when the container's last writer closes the pipe.
        const string script = "log=$1; shift; exec \"$@\" </dev/null > >(exec cat >>\"$log\" 2>/dev/null) 2>&1";
        return ProcessRunner.Run("/bin/bash", ["-c", script, "bash", OutputFile, runtime, "--root", StateRoot, .. args],
            WithPath(new RunOptions { Timeout = timeout ?? TimeSpan.FromSeconds(60) }));
    }

    /// <summary><see cref="RuntimeDetached"/> with runc.</summary>
    public ProcessResult RuncDetached(IEnumerable<string> args, TimeSpan? timeout = null) => RuntimeDetached(RuncPath, args, timeout);

    /// <summary>runc run -d: create and start, output to <see cref="OutputFile"/>.</summary>
    public void Run() => RuncDetached(["run", "-d", "--bundle", Dir, Id]);

    public void CreateContainer() => RuncDetached(["create", "--bundle", Dir, Id]);

    public void Start() => Runc(["start", Id]);

    /// <summary>runc state: "created", "running", "paused", "stopped"; null when runc has no such container.</summary>
    public string? Status()
    {
        var result = ProcessRunner.RunUnchecked(RuncPath, ["--root", StateRoot, "state", Id], WithPath(new RunOptions()));
        return result.Succeeded ? JsonNode.Parse(result.StandardOutput)?["status"]?.GetValue<string>() : null;
    }

    /// <summary>The container's init pid on the host.</summary>
    public int Pid()
    {
        var state = JsonNode.Parse(Runc(["state", Id]).StandardOutput)!;
        return state["pid"]!.GetValue<int>();
    }

    public void WaitForStatus(string status, TimeSpan? timeout = null)
    {
        string? seen = null;
        Poll.Until(() => (seen = Status()) == status, timeout ?? TimeSpan.FromSeconds(20),
            () => $"container {Id} to be {status} (it is {seen ?? "gone"}){OutputTail()}");
    }

    public void Kill(string signal = "KILL") => Runc(["kill", Id, signal]);

    public void Delete(bool force = true) => Runc(force ? ["delete", "--force", Id] : ["delete", Id]);

    /// <summary>Counter value a workload in the container writes to <paramref name="containerPath"/>, or null.</summary>
    public long? TryReadCounter(string containerPath)
    {
        try { return long.TryParse(File.ReadAllText(HostPath(containerPath)).Trim(), out var v) ? v : null; }
        catch (IOException) { return null; }
    }

    public long WaitForCounter(string containerPath, long value, TimeSpan? timeout = null)
    {
        long seen = 0;
        Poll.Until(() => (seen = TryReadCounter(containerPath) ?? 0) >= value, timeout ?? TimeSpan.FromSeconds(20),
            () => $"container {Id} counter {containerPath} to reach {value}; last value {seen}, status {Status() ?? "gone"}{OutputTail()}");
        return seen;
    }

    /// <summary>
    /// memhog only: has it check every page against the checksums it keeps (SIGUSR2) and waits until it has (its counter
    /// moves on by two); throws when it found a changed page (it exits) or is not running.
    /// </summary>
    public void VerifyMemhogMemory(string counter)
    {
        long before = TryReadCounter(counter) ?? 0;
        if (!Native.Kill(Pid(), Native.SIGUSR2)) throw new InvalidOperationException($"container {Id} is not running{OutputTail()}");
        WaitForCounter(counter, before + 2);
        if (Status() != "running") throw new InvalidOperationException($"memhog in container {Id} found its memory changed and exited{OutputTail()}");
    }

    public string OutputTail() => File.Exists(OutputFile) ? $"\n--- {OutputFile} (last lines) ---\n{FileTail.Read(OutputFile, 15)}" : "";

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Path.Combine(StateRoot, Id)))
                ProcessRunner.RunUnchecked(RuncPath, ["--root", StateRoot, "delete", "--force", Id], WithPath(new RunOptions()));
        }
        finally
        {
            _temp.Dispose();
        }
    }

    private static string RuncPath => Tools.Require("runc");

    private static RunOptions WithPath(RunOptions options)
    {
        var criuDir = Path.GetDirectoryName(Tools.Require("criu"))!;
        var env = new Dictionary<string, string?>(options.Environment ?? new Dictionary<string, string?>())
        {
            ["PATH"] = criuDir + ":" + (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"),
        };
        return options with { Environment = env };
    }
}
