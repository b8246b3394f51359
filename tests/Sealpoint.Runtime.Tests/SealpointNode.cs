using Sealpoint.Core.Config;
using Sealpoint.Core.Keys;
using Sealpoint.TestSupport;

namespace Sealpoint.Runtime.Tests;

/// <summary>
/// A test node: a PKI (CA; node1, node2), a node config in a temporary folder, a private staging root on /dev/shm,
/// and a runtime script that runs the freshly built sealpoint-runc launcher with SEALPOINT_CONFIG pointing at that
/// config. The script is what engines are given (podman passes the runtime only PATH and XDG_RUNTIME_DIR, so the
/// config cannot travel in the environment); it only sets the variable and execs the launcher.
/// </summary>
public sealed class SealpointNode : IDisposable
{
    private readonly TempDir _temp;

    public SealpointNode(string identity = "node1", string recipients = "\"node1\"", string extraPolicy = "", string extraTables = "")
    {
        Tools.RequireRoot();
        _temp = TempDir.Create("node");
        Pki = new TestPki("node1", "node2");
        Launcher = Path.Combine(RepoPaths.BuildOutput("Sealpoint.Runtime"), "sealpoint-runc");
        Core = RepoPaths.Program("Sealpoint.Runtime");
        Hook = RepoPaths.Program("Sealpoint.Hook");
        if (!File.Exists(Launcher))
            throw new TestEnvironmentException($"{Launcher} missing: the Sealpoint.Runtime build compiles it with gcc (apt-get install gcc)");
        StagingRoot = $"/dev/shm/sealpoint-test-{Guid.NewGuid():N}";
        ConfigPath = _temp.File("config.toml");
        WriteConfig(identity, recipients, extraPolicy, extraTables);
        Runtime = WriteRuntimeScript("sealpoint-runc", ConfigPath);
    }

    public TestPki Pki { get; }
    public string Launcher { get; }
    public string Core { get; }
    public string Hook { get; }
    public string StagingRoot { get; }
    public string ConfigPath { get; }
    /// <summary>The runtime to give engines: a script exec'ing the launcher with this node's config.</summary>
    public string Runtime { get; }
    public string Dir => _temp.Path;
    /// <summary>The arguments of every call of the runtime scripts, one line each.</summary>
    public string CallLog => _temp.File("calls.log");
    public IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?> { ["SEALPOINT_CONFIG"] = ConfigPath, ["SEALPOINT_STATE_DIR"] = StateDir };

    /// <summary>This node's state folder (lineage records, page-hash key), instead of /var/lib/sealpoint.</summary>
    public string StateDir => _temp.File("state");

    public void WriteConfig(string identity = "node1", string recipients = "\"node1\"", string extraPolicy = "", string extraTables = "", string? path = null) =>
        File.WriteAllText(path ?? ConfigPath, $"""
            [runtime]
            runc = "{Tools.Require("runc")}"
            criu = "{Tools.Require("criu")}"
            staging = "{StagingRoot}"

            [keys]
            pki = "{Pki.Root}"
            identity = "{identity}"
            recipients = [{recipients}]

            [policy]
            {extraPolicy}

            {extraTables}
            """);

    /// <summary>Another config of this node (e.g. with the test switch on) and a runtime script using it.</summary>
    public (string Config, string Runtime) Variant(string name, string identity = "node1", string recipients = "\"node1\"", string extraPolicy = "", string extraTables = "")
    {
        string config = _temp.File($"{name}.toml");
        WriteConfig(identity, recipients, extraPolicy, extraTables, config);
        return (config, WriteRuntimeScript($"sealpoint-runc-{name}", config));
    }

    private string WriteRuntimeScript(string name, string config)
    {
        string path = _temp.File(name);
        // Each call is logged (one line of arguments) so tests can see how an engine called the runtime.
        File.WriteAllText(path, $"#!/bin/sh\necho \"$*\" >> '{CallLog}'\nSEALPOINT_CONFIG='{config}' SEALPOINT_STATE_DIR='{StateDir}' exec '{Launcher}' \"$@\"\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Every file left in staging (should be none once an operation ended).</summary>
    public IReadOnlyList<string> StagingLeftovers() =>
        Directory.Exists(StagingRoot) ? Directory.EnumerateFileSystemEntries(StagingRoot, "*", SearchOption.AllDirectories).ToList() : [];

    public void AssertStagingEmpty()
    {
        var left = StagingLeftovers();
        Assert.True(left.Count == 0, $"staging {StagingRoot} still holds: {string.Join(", ", left.Take(10))}");
    }

    /// <summary>Runs the sealpoint-runc-core program directly (e.g. seal-pending) with this node's config.</summary>
    public ProcessResult RunCore(IEnumerable<string> args, string? config = null) =>
        ProcessRunner.RunUnchecked(Core, args, new RunOptions { Environment = new Dictionary<string, string?> { ["SEALPOINT_CONFIG"] = config ?? ConfigPath, ["SEALPOINT_STATE_DIR"] = StateDir } });

    public void Dispose()
    {
        // An operation's staging is its own tmpfs: unmount what a failed test left mounted before deleting.
        foreach (string mount in StagedImages.MountsUnder(StagingRoot).OrderByDescending(m => m.Length)) Staging.Unmount(mount);
        try { Directory.Delete(StagingRoot, recursive: true); } catch (DirectoryNotFoundException) { }
        Pki.Dispose();
        _temp.Dispose();
    }
}

public static class Secrets
{
    /// <summary>A random secret; its form makes accidental matches impossible.</summary>
    public static string New() => "SPSECRET-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
}
