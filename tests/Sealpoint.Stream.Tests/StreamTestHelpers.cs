using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Sealpoint.TestSupport;

// CRIU tests share two cores and the pid space: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Sealpoint.Stream.Tests;

/// <summary>Runs the freshly built CLI (local helper: TestSupport has no CLI runner).</summary>
public static class SealpointCli
{
    public static string Path => RepoPaths.Program("Sealpoint.Cli");

    /// <summary>
    /// The CLI packaging/install.sh installed (ReadyToRun, published by packaging/publish.sh): what users run. How it is
    /// compiled changes the code pages that count in the streamer's peak RSS (a composite image went over the bound),
    /// so the memory bound is tested on it as well as on the build.
    /// </summary>
    public static string Installed
    {
        get
        {
            string path = System.IO.Path.Combine(InstallPaths.Prefix, "bin", "sealpoint");
            return File.Exists(path) ? path : throw new TestEnvironmentException($"{path} is missing: {InstallPaths.InstallHint}");
        }
    }

    /// <summary>"build" (this repository's build) or "installed" (<see cref="Installed"/>).</summary>
    public static string Program(string which) => which == "installed" ? Installed : Path;

    public static ProcessResult Run(params string[] args) => RunProgram(Path, args);

    public static ProcessResult RunProgram(string program, params string[] args) =>
        ProcessRunner.RunUnchecked(program, args, new RunOptions { Timeout = TimeSpan.FromMinutes(5), Environment = CriuOnPath });

    /// <summary>For restores that leave a restored tree behind: output into a file instead of pipes the tree could hold.</summary>
    public static ProcessResult RunToFile(string outputFile, params string[] args) => RunProgramToFile(Path, outputFile, args);

    public static ProcessResult RunProgramToFile(string program, string outputFile, params string[] args) =>
        RunProgramToFileWith(program, outputFile, new Dictionary<string, string?>(), args);

    /// <summary>As <see cref="RunProgramToFile"/>, with <paramref name="environment"/> set as well.</summary>
    public static ProcessResult RunProgramToFileWith(string program, string outputFile, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var env = new Dictionary<string, string?>(CriuOnPath);
        foreach (var (k, v) in environment) env[k] = v;
        var result = ProcessRunner.RunUnchecked(program, args, new RunOptions { Timeout = TimeSpan.FromMinutes(5), OutputFile = outputFile, Environment = env });
        return result with { StandardOutput = File.Exists(outputFile) ? File.ReadAllText(outputFile) : "" };
    }

    /// <summary>Starts the CLI without waiting (for killing things mid-dump).</summary>
    public static Process Start(string outputFile, params string[] args)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var a in (string[])["-c", "f=$1; shift; exec \"$@\" </dev/null >\"$f\" 2>&1", "sh", outputFile, Path, .. args]) psi.ArgumentList.Add(a);
        foreach (var (k, v) in CriuOnPath) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    /// <summary>The CRIU 4.x launcher (a missing CRIU fails the test here, with the fix).</summary>
    private static IReadOnlyDictionary<string, string?> CriuOnPath => new Dictionary<string, string?>
    {
        ["SEALPOINT_CRIU"] = Tools.Require("criu"),
    };

    /// <summary>The last JSON object a --json run printed.</summary>
    public static JsonNode Json(ProcessResult result)
    {
        string text = result.StandardOutput;
        int start = text.IndexOf('{');
        Assert.True(start >= 0, $"no JSON in the output of {result.Describe()}");
        return JsonNode.Parse(text[start..(text.LastIndexOf('}') + 1)])!;
    }
}

/// <summary>
/// A secret search over whole folders that other processes change while it runs (/tmp, /dev/shm, /var/tmp):
/// files that vanish are skipped; symlinks are not followed; each file goes through TestSupport's SecretScan,
/// which reads regular files only. Local helper: SecretScan.AssertAbsent stops at the first vanished folder.
/// </summary>
public static class SecretSearch
{
    public static void AssertAbsentEverywhere(string secret, params string[] extraRoots)
    {
        var roots = extraRoots.Concat(["/tmp", "/dev/shm", "/var/tmp"]).ToArray();
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(secret);
        int files = 0;
        var hits = new List<string>();
        foreach (var file in Files(roots))
        {
            SecretScanReport report;
            try { report = SecretScan.Scan(bytes, file); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            files += report.FilesScanned;
            hits.AddRange(report.Hits.Select(h => $"{h.File} at {h.Offset} ({h.Form})"));
        }
        Assert.True(files > 0, "the secret search found no file at all: it proved nothing");
        Assert.True(hits.Count == 0, $"the secret is in plaintext on a file system:\n{string.Join('\n', hits)}");
    }

    private static IEnumerable<string> Files(string[] roots)
    {
        var pending = new Stack<string>(roots.Where(Directory.Exists));
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            List<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(dir).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var entry in entries)
            {
                FileAttributes attributes;
                try { attributes = File.GetAttributes(entry); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                if (attributes.HasFlag(FileAttributes.ReparsePoint)) continue;
                if (attributes.HasFlag(FileAttributes.Directory)) pending.Push(entry);
                else yield return entry;
            }
        }
    }
}

/// <summary>What every failed dump must leave: no checkpoint, and the process running on with its memory intact.</summary>
public static class FailedDump
{
    public static void AssertNoCheckpointAndProcessUntouched(Workload workload, params string[] imageDirectories)
    {
        foreach (string images in imageDirectories)
            Assert.False(Directory.Exists(images) && Directory.EnumerateFileSystemEntries(images).Any(),
                $"the failed dump left files in {images}: {string.Join(", ", Directory.Exists(images) ? Directory.EnumerateFileSystemEntries(images) : [])}");
        Assert.True(workload.IsAlive, $"process {workload.Pid} did not survive the failed dump");
        workload.WaitForProgress(3);
        workload.VerifyMemory();
    }
}

public static class Secrets
{
    /// <summary>A random secret no file on this machine can hold by chance.</summary>
    public static string New(string label) => $"SPSTREAM-{label}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}";
}

/// <summary>A PKI made with the CLI itself (keys init, keys issue), shared by a test class.</summary>
public sealed class CliPki : IDisposable
{
    public CliPki()
    {
        Dir = TempDir.Create("stream-cli-pki");
        Check(SealpointCli.Run("keys", "init", "--pki", Root));
        Check(SealpointCli.Run("keys", "issue", "node-a", "--pki", Root));
        Check(SealpointCli.Run("keys", "issue", "node-b", "--pki", Root));
    }

    public TempDir Dir { get; }
    public string Root => Dir.Path;
    public string Cert(string name) => System.IO.Path.Combine(Root, name, "cert.pem");
    public string Key(string name) => System.IO.Path.Combine(Root, name, "private", "key.pem");

    private static void Check(ProcessResult r)
    {
        if (!r.Succeeded) throw new InvalidOperationException(r.Describe());
    }

    public void Dispose() => Dir.Dispose();
}
