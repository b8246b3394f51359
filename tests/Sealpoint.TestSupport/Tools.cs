using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Sealpoint.TestSupport;

/// <summary>
/// Finds the external tools and test binaries the end-to-end tests need. A missing tool is an
/// error with the fix in its message, never a reason to skip a test.
/// </summary>
public static class Tools
{
    private static readonly string[] SearchPath =
        (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .Distinct()
        .ToArray();

    // Tools with a fixed preferred location; everything else is looked up on PATH.
    private static readonly Dictionary<string, string[]> Preferred = new()
    {
        ["criu"] = [InstallPaths.CriuLauncher],
        ["busybox"] = ["/bin/busybox"],
    };

    private static readonly Dictionary<string, string> Packages = new()
    {
        ["gpg"] = "gnupg", ["htpasswd"] = "apache2-utils", ["setsid"] = "util-linux",
        ["ctr"] = "containerd", ["busybox"] = "busybox-static",
    };

    private static readonly ConcurrentDictionary<string, string> Resolved = new();

    /// <summary>Absolute path of a tool, or null. For criu only the 4.x launcher counts.</summary>
    public static string? Find(string name)
    {
        if (Resolved.TryGetValue(name, out var cached)) return cached;
        var candidates = Preferred.TryGetValue(name, out var preferred)
            ? preferred
            : SearchPath.Select(dir => Path.Combine(dir, name));
        var found = candidates.FirstOrDefault(IsExecutable);
        if (found != null) Resolved[name] = found;
        return found;
    }

    /// <summary>Absolute path of a tool; throws with the fix when it is missing.</summary>
    public static string Require(string name)
    {
        var path = Find(name);
        if (path == null)
        {
            var package = Packages.GetValueOrDefault(name, name);
            throw new TestEnvironmentException(
                $"{name} not found: {InstallPaths.InstallHint} (it installs the Debian package '{package}'" +
                (name == "criu" ? $" and the CRIU 4.x launcher {InstallPaths.CriuLauncher})" : ")"));
        }
        if (name == "criu") CheckCriuVersion(path);
        return path;
    }

    private static readonly Lazy<string> CriuVersion = new(() =>
        ProcessRunner.Run(InstallPaths.CriuLauncher, ["--version"]).StandardOutput.Trim());

    private static void CheckCriuVersion(string path)
    {
        var version = CriuVersion.Value;
        if (!version.Contains("Version: 4."))
            throw new TestEnvironmentException(
                $"{path} is not CRIU 4.x (it says '{version}'): {InstallPaths.InstallHint}");
    }

    /// <summary>Path of a test workload (secretholder, memhog, proctree) built by install.sh.
    /// Throws when it is missing or was built from other sources than this checkout's.</summary>
    public static string Workload(string name)
    {
        var path = Path.Combine(InstallPaths.Workloads, name);
        var fix = $"run: bash tests/workloads/build.sh {InstallPaths.Workloads} (or {InstallPaths.InstallHint})";
        if (!IsExecutable(path))
            throw new TestEnvironmentException($"workload {name} not found at {path}: {fix}");
        // build.sh records the sources' checksums; compare contents, not times (worktrees differ in mtimes).
        var recordFile = Path.Combine(InstallPaths.Workloads, "sources.sha256");
        var recorded = File.Exists(recordFile)
            ? File.ReadLines(recordFile).Select(l => l.Split("  ", 2)).Where(p => p.Length == 2).ToDictionary(p => p[1], p => p[0])
            : [];
        foreach (var source in new[] { $"{name}.c", "workload.h" })
        {
            var sourcePath = Path.Combine(RepoPaths.Root, "tests", "workloads", source);
            var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(sourcePath)));
            if (recorded.GetValueOrDefault(source) != actual)
                throw new TestEnvironmentException($"workload {path} was not built from this checkout's {sourcePath}: {fix}");
        }
        return path;
    }

    /// <summary>The busybox rootfs for runc bundles (busybox + workloads in /bin).</summary>
    public static string BusyboxRootfs()
    {
        var rootfs = InstallPaths.BusyboxRootfs;
        if (!File.Exists(Path.Combine(rootfs, "bin", "busybox")) || !File.Exists(Path.Combine(rootfs, "bin", "secretholder")))
            throw new TestEnvironmentException($"busybox test rootfs missing or incomplete at {rootfs}: {InstallPaths.InstallHint}");
        return rootfs;
    }

    /// <summary>Throws unless the tests run as root (CRIU, runc and podman need it here).</summary>
    public static void RequireRoot()
    {
        if (Native.GetEuid() != 0)
            throw new TestEnvironmentException(
                "these end-to-end tests need root (CRIU, runc, podman): run them as root, e.g. sudo bash tests/run.sh");
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
