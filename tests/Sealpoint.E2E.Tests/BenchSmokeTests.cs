using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sealpoint.TestSupport;

namespace Sealpoint.E2E.Tests;

/// <summary>
/// The benchmark works: `sealpoint-bench --quick` runs every section on real CRIU and runc and writes a complete
/// report. Its figures are never asserted (a benchmark is not a test; speed targets live in the report), only that
/// they exist, are numbers, and that the run left nothing behind in its work folder.
/// </summary>
public sealed partial class BenchSmokeTests
{
    [Fact]
    public void QuickRun_WritesReportWithEverySection_NumericCells_AndCleansUp()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("bench-smoke");
        string report = Path.Combine(dir.Path, "report");
        var run = ProcessRunner.Run(RepoPaths.Program("Sealpoint.Bench"), ["--quick", "--out", report],
            new RunOptions { Timeout = TimeSpan.FromMinutes(15), FailureHint = "read sealpoint-bench's output above" });

        foreach (var file in new[] { "report.md", "core.svg", "suite.svg", "measurements.csv", "results.json" })
            Assert.True(File.Exists(Path.Combine(report, file)), $"{file} missing from {report}\n{run.StandardOutput}");

        string md = File.ReadAllText(Path.Combine(report, "report.md"));
        foreach (var section in new[] { "## Machine", "## Targets", "## Issue #2", "## Issue #6", "## Runtime pass-through and registry push", "## Exact commands" })
            Assert.Contains(section, md);
        foreach (var fact in new[] { "| CPU |", "| Cores |", "| Kernel |", "| CRIU |", "| runc |" })
            Assert.Contains(fact, md);
        // Every core step and every baseline has a row with a median time.
        foreach (var step in new[] { "criu dump", "seal in place (lib)", "seal to new dir (lib)", "open (lib)", "sealpoint seal (CLI)", "sealpoint open (CLI)", "openssl", "age", "gpg" })
            Assert.Matches(new Regex($@"^\| {Regex.Escape(step)} \| {Time}", RegexOptions.Multiline), md);
        // Suite rows: plain and every baseline, both families, with checkpoint and restore times and a ratio.
        foreach (var row in new[] { "process | criu (plain)", "container | runc (plain)", "process | openssl post-dump", "container | gpg post-dump" })
            Assert.Matches(new Regex($@"^\| {Regex.Escape(row)} \| {Time} \|.*\| {Ratio} \| {Time} \|", RegexOptions.Multiline), md);
        // Sealpoint's own contenders and the runtime/registry figures ran too.
        foreach (var row in new[] { "process | **sealpoint dump (stream)**", "container | **sealpoint-runc**" })
            Assert.Matches(new Regex($@"^\| {Regex.Escape(row)} \| {Time} \|", RegexOptions.Multiline), md);
        foreach (var fact in new[] { "`sealpoint-runc state` per call", "full push", "incremental push" })
            Assert.Contains(fact, md);
        Assert.DoesNotContain("**failed**", md);
        Assert.Contains("| #5 | 1 GiB streamed dump ≤ 1.15× plain, streamer peak RSS < 64 MiB |", md); // issue #5's row (not run in --quick)
        Assert.Matches(new Regex(@"\*\*(met|not met|not evaluated)\*\*"), md);

        string svg = File.ReadAllText(Path.Combine(report, "suite.svg"));
        Assert.StartsWith("<svg", svg);
        Assert.Contains("<rect", svg);

        var csv = File.ReadAllLines(Path.Combine(report, "measurements.csv"));
        Assert.Equal("section,workload,family,contender,phase,repetition,warmup,seconds,bytes,files,at,note", csv[0]);
        Assert.True(csv.Length > 20, $"only {csv.Length - 1} measurements");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(report, "results.json")))!;
        var measurements = json["measurements"]!.AsArray();
        Assert.NotEmpty(measurements);
        Assert.All(measurements, m => Assert.True(double.IsFinite((double)m!["seconds"]!) && (double)m["seconds"]! >= 0));
        Assert.NotEmpty(json["machine"]!["criu"]!.GetValue<string>());

        // Its work folder (dumps on /dev/shm) is gone.
        var work = WorkFolder().Match(run.StandardOutput);
        Assert.True(work.Success, "sealpoint-bench did not name its work folder");
        Assert.False(Directory.Exists(work.Groups[1].Value), $"{work.Groups[1].Value} was left behind");
    }

    /// <summary>
    /// The stream-floor command (tests/Sealpoint.Bench/stream-floor) restores a small tree once each way, from files,
    /// through CRIU's --stream protocol from its C streamer, and with the fresh build's `sealpoint restore`, and prints
    /// three medians; it leaves no folder in /dev/shm. Times are printed, never asserted.
    /// </summary>
    [Fact]
    public void StreamFloor_RestoresTheTreeThreeWays_AndCleansUp()
    {
        Tools.RequireRoot();
        static string[] Leftovers() => Directory.GetDirectories("/dev/shm", "sealpoint-stream-floor.*");
        var before = Leftovers();
        var run = ProcessRunner.Run("bash", [Path.Combine(RepoPaths.Root, "tests", "Sealpoint.Bench", "stream-floor", "run.sh"), "5", "1"],
            new RunOptions
            {
                Timeout = TimeSpan.FromMinutes(3),
                FailureHint = "read run.sh's message above",
                Environment = new Dictionary<string, string?> { ["SEALPOINT_CLI"] = RepoPaths.Program("Sealpoint.Cli"), ["SEALPOINT_CRIU"] = Tools.Require("criu") },
            });
        Assert.Matches(new Regex(@"^medians: plain [0-9.]+ ms; stream \(the protocol alone\) [0-9.]+ ms, [0-9.]+x plain; sealpoint restore [0-9.]+ ms, [0-9.]+x plain$",
            RegexOptions.Multiline), run.StandardOutput);
        foreach (var way in new[] { "plain", "stream", "sealpoint" })
            Assert.Matches(new Regex($@"^  {way} [0-9]+ ms$", RegexOptions.Multiline), run.StandardOutput);
        Assert.Equal(before, Leftovers());
    }

    private const string Time = @"[0-9]+(\.[0-9]+)? (µs|ms|s)";
    private const string Ratio = @"[0-9]+(\.[0-9]+)?×";

    [GeneratedRegex(@"^work folder (\S+) ", RegexOptions.Multiline)]
    private static partial Regex WorkFolder();
}
