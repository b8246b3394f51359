using System.Diagnostics;
using System.Text.Json.Nodes;
using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Packaging;
using Sealpoint.Packaging.Incremental;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>
/// Bytes uploaded by a full and by an incremental push of a sealed checkpoint to a real registry (the distribution
/// registry on loopback). A memhog is dumped (left running), sealed with the node's keyed page index and pushed with
/// `sealpoint pack --out REGISTRY/REPO:g1`; then 5 % of its memory is re-randomized (SIGUSR1), it is dumped and sealed
/// again as the next generation, and pushed as g2. The figure is the client's own count of bytes sent.
/// </summary>
public sealed class PushBenchmark(BenchOptions options, Scratch scratch, Results results, SealpointSetup sealpoint)
{
    public const string Section = "oci";
    private const int ModifyPercent = 5;

    public void Run()
    {
        int mib = options.PushSize;
        string workload = $"memhog-{mib}";
        Console.WriteLine($"== registry push: {workload}, full push then an incremental one after {ModifyPercent}% of its memory changed");
        using var registry = scratch.Track(Registry.Start(), "stop the benchmark's registry");
        var state = new NodeState(scratch.NewDir("node-state"));
        string logs = scratch.NewDir("push-logs");
        using var memhog = scratch.Track(Workload.StartMemHog(mib, WorkloadSpec.Secret, scratch.NewDir("push-workload"), ModifyPercent), "kill push memhog");
        string repository = $"{registry.Host}/sealpoint-bench/{workload}";

        var (env1, full) = Generation(memhog, state, logs, parent: null, $"{repository}:g1", 1);
        memhog.ModifyMemory();
        var (_, incremental) = Generation(memhog, state, logs, parent: env1, $"{repository}:g2", 2);
        memhog.Kill();

        long plain = env1.Files.Sum(f => f.Size ?? 0);
        results.AddFact(new Fact(Section, $"full push ({workload}, {Format.Bytes(plain)} of images)", $"{Format.Bytes(full)} sent ({full:N0} bytes)",
            "`sealpoint pack SEALED --out REGISTRY/REPO:g1`, bytes counted by the client"));
        results.AddFact(new Fact(Section, $"incremental push after {ModifyPercent}% of memory changed", $"{Format.Bytes(incremental)} sent ({incremental:N0} bytes, {incremental * 100.0 / Math.Max(1, full):0.#}% of the full push)",
            "next generation sealed with the node's keyed page index; unchanged memory chunks are reused, not sent"));
    }

    private (Envelope Envelope, long BytesSent) Generation(Workload memhog, NodeState state, string logs, Envelope? parent, string reference, int generation)
    {
        string plain = scratch.NewDir($"push-g{generation}-plain");
        string sealedDir = scratch.NewPath($"push-g{generation}-sealed");
        TimedCriu.Dump(memhog.Pid, plain, logs, ["--leave-running"]);
        Envelope envelope;
        using (var recorder = PageHashRecorder.ForNode(state))
        {
            envelope = CheckpointSealer.SealDirectory(plain, sealedDir, sealpoint.SealOptions with
            {
                PageObserver = recorder,
                Parent = parent is null ? null : new ParentCheckpoint(parent.CheckpointId, parent.LineageId, parent.Generation),
            });
            recorder.Save(state, envelope);
        }
        Scratch.Remove(plain);
        var clock = Stopwatch.StartNew();
        var r = ProcessRunner.Run(SealpointSetup.Cli,
            ["pack", sealedDir, "--out", reference, "--insecure", "--state-dir", state.Root, "--no-progress", "--json"],
            new RunOptions { Timeout = TimeSpan.FromMinutes(20), Environment = sealpoint.CliEnvironment });
        clock.Stop();
        var json = JsonNode.Parse(r.StandardOutput) ?? throw new InvalidOperationException($"sealpoint pack printed no JSON: {r.Describe()}");
        long sent = json["bytesSent"]?.GetValue<long>() ?? throw new InvalidOperationException($"sealpoint pack did not report bytesSent: {r.StandardOutput}");
        results.Add(new Measurement
        {
            Section = Section, Workload = $"memhog-{options.PushSize}", Family = "-", Contender = "sealpoint pack + push",
            Phase = generation == 1 ? "full push" : "incremental push", Repetition = 1, Seconds = clock.Elapsed.TotalSeconds,
            Bytes = sent, Note = $"bytes sent {sent}",
        });
        Scratch.Remove(sealedDir);
        return (envelope, sent);
    }
}
