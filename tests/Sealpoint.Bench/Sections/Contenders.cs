using Sealpoint.Bench.Running;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

public enum ContenderKind { Plain, Sealpoint, Baseline }

/// <summary>The timed parts of one checkpoint or restore; Total is what the tables show.</summary>
public sealed record Timing(double Total, IReadOnlyList<(string Part, double Seconds)> Parts)
{
    public static Timing Single(TimeSpan t) => new(t.TotalSeconds, []);
}

/// <summary>One way to checkpoint (and restore) a workload. Each is measured on the same running subject.</summary>
public abstract class Contender
{
    public abstract string Name { get; }
    public abstract string Family { get; }
    public abstract ContenderKind Kind { get; }
    /// <summary>Exact commands, for the report.</summary>
    public abstract string Describe { get; }
    public virtual bool SlowByNature => false;
    public abstract Timing Checkpoint(Subject subject, string images, string work);
    public abstract Timing Restore(Subject subject, string images, string work);
}

// ---- process family: CRIU's command line on a plain process tree ----

public sealed class PlainCriu(string logs) : Contender
{
    public override string Name => "criu (plain)";
    public override string Family => "process";
    public override ContenderKind Kind => ContenderKind.Plain;
    public override string Describe => "`criu dump -t PID -D DIR -o LOG`; `criu restore -D DIR -d -o LOG`";

    public override Timing Checkpoint(Subject subject, string images, string work)
    {
        var p = (ProcessSubject)subject;
        p.BeforeCheckpoint();
        return Timing.Single(TimedCriu.Dump(p.Pid, images, logs).Elapsed);
    }

    public override Timing Restore(Subject subject, string images, string work) => Timing.Single(TimedCriu.Restore(images, logs).Elapsed);
}

/// <summary>criu dump with the baseline script as CRIU's post-dump action script: the paper's setup, end to end.</summary>
public sealed class PostDumpScript(BaselineTool tool, string logs) : Contender
{
    public override string Name => $"{tool.Name} post-dump";
    public override string Family => "process";
    public override ContenderKind Kind => ContenderKind.Baseline;
    public override bool SlowByNature => tool.Name == "gpg";
    public override string Describe => $"`criu dump -t PID -D DIR --action-script post-dump-{tool.Name}.sh` (per file: `{tool.EncryptCommand}`, `rm IN`); " +
                                       $"restore: per file `{tool.DecryptCommand}`, then `criu restore -D DIR -d`";

    public override Timing Checkpoint(Subject subject, string images, string work)
    {
        var p = (ProcessSubject)subject;
        p.BeforeCheckpoint();
        string timing = Path.Combine(work, "hook-timing");
        var dump = TimedCriu.Dump(p.Pid, images, logs, ["--action-script", tool.ScriptPath],
            new Dictionary<string, string?> { ["BENCH_TIMING_FILE"] = timing });
        var hook = BaselineTool.ReadHookTime(timing)
            ?? throw new InvalidOperationException($"the {tool.Name} post-dump script did not run (no {timing}): CRIU ignored --action-script?");
        return new Timing(dump.Elapsed.TotalSeconds, [("post-dump hook", hook.TotalSeconds), ("criu without hook", (dump.Elapsed - hook).TotalSeconds)]);
    }

    public override Timing Restore(Subject subject, string images, string work)
    {
        var decrypt = tool.DecryptInPlace(images);
        var restore = TimedCriu.Restore(images, logs).Elapsed;
        return new Timing((decrypt + restore).TotalSeconds, [("decrypt", decrypt.TotalSeconds), ("criu restore", restore.TotalSeconds)]);
    }
}

/// <summary>`sealpoint dump`/`sealpoint restore`: CRIU streams images to Sealpoint, no plaintext file is written.</summary>
public sealed class StreamingDump(SealpointSetup sealpoint, string logs) : Contender
{
    public override string Name => "sealpoint dump (stream)";
    public override string Family => "process";
    public override ContenderKind Kind => ContenderKind.Sealpoint;
    public override string Describe => $"`sealpoint dump -t PID -D DIR -r {SealpointSetup.RecipientName} --no-sync -W WORK`; " +
                                       "`sealpoint restore -D DIR --key KEY -d -W WORK` (wall time of the CLI, .NET start-up included)";

    private readonly Dictionary<string, long> _peakRss = [];

    /// <summary>The streamer's largest peak RSS (VmHWM, as `sealpoint dump --json` reports it) per workload, over every dump.</summary>
    public IReadOnlyDictionary<string, long> PeakRssBytes => _peakRss;

    public override Timing Checkpoint(Subject subject, string images, string work)
    {
        var p = (ProcessSubject)subject;
        p.BeforeCheckpoint();
        var r = Cli(["dump", "-t", p.Pid.ToString(), "-D", images, "-r", SealpointSetup.RecipientName, "--no-sync", "-W", work, "--json"], null);
        long peak = (long)(System.Text.Json.Nodes.JsonNode.Parse(r.StandardOutput)?["peakRssBytes"]
            ?? throw new InvalidOperationException($"sealpoint dump --json printed no peakRssBytes: {r.StandardOutput}"));
        _peakRss[subject.Spec.Name] = Math.Max(peak, _peakRss.GetValueOrDefault(subject.Spec.Name));
        return Timing.Single(r.Elapsed);
    }

    public override Timing Restore(Subject subject, string images, string work)
    {
        // -d leaves the restored tree running: its output must go to a file, not to our pipes.
        var r = Cli(["restore", "-D", images, "--key", sealpoint.KeyPath, "-d", "-W", work], Path.Combine(logs, $"stream-restore-{Guid.NewGuid():N}.out"));
        return Timing.Single(r.Elapsed);
    }

    private ProcessResult Cli(IReadOnlyList<string> args, string? outputFile)
    {
        var env = new Dictionary<string, string?>(sealpoint.CliEnvironment) { ["SEALPOINT_CRIU"] = Tools.Require("criu") };
        var r = ProcessRunner.RunUnchecked(SealpointSetup.Cli, args, new RunOptions { Timeout = TimeSpan.FromMinutes(20), Environment = env, OutputFile = outputFile });
        if (!r.Succeeded)
        {
            string output = outputFile is not null && File.Exists(outputFile) ? "\n" + FileTail.Read(outputFile, 30) : "";
            throw new InvalidOperationException($"sealpoint {args[0]} failed: {r.Describe()}{output}");
        }
        return r;
    }
}

// ---- container family: runc and runc-compatible runtimes on a runc container ----

public sealed class PlainRunc : Contender
{
    public override string Name => "runc (plain)";
    public override string Family => "container";
    public override ContenderKind Kind => ContenderKind.Plain;
    public override string Describe => "`runc checkpoint --image-path DIR --work-path WORK ID`; `runc restore -d --bundle B --image-path DIR --work-path WORK ID`";

    public override Timing Checkpoint(Subject subject, string images, string work) => Timing.Single(RuncCheckpoint((ContainerSubject)subject, images, work));
    public override Timing Restore(Subject subject, string images, string work) => Timing.Single(RuncRestore((ContainerSubject)subject, images, work));

    public static TimeSpan RuncCheckpoint(ContainerSubject c, string images, string work) =>
        c.Bundle.Runc(["checkpoint", "--image-path", images, "--work-path", work, c.Bundle.Id], new RunOptions { Timeout = TimeSpan.FromMinutes(20) }).Elapsed;

    public static TimeSpan RuncRestore(ContainerSubject c, string images, string work) =>
        c.Bundle.RuncDetached(["restore", "-d", "--bundle", c.Bundle.Dir, "--image-path", images, "--work-path", work, c.Bundle.Id], TimeSpan.FromMinutes(20)).Elapsed;
}

/// <summary>`runc checkpoint`, then the same per-file script over the image folder (runc's CRIU runs in RPC mode and
/// takes no action script from the command line, so the script runs right after, as a hook would).</summary>
public sealed class RuncThenScript(BaselineTool tool) : Contender
{
    public override string Name => $"{tool.Name} post-dump";
    public override string Family => "container";
    public override ContenderKind Kind => ContenderKind.Baseline;
    public override bool SlowByNature => tool.Name == "gpg";
    public override string Describe => $"`runc checkpoint`, then post-dump-{tool.Name}.sh on the image folder (per file: `{tool.EncryptCommand}`, `rm IN`); " +
                                       $"restore: per file `{tool.DecryptCommand}`, then `runc restore -d`";

    public override Timing Checkpoint(Subject subject, string images, string work)
    {
        var dump = PlainRunc.RuncCheckpoint((ContainerSubject)subject, images, work);
        var hook = tool.PostDump(images);
        return new Timing((dump + hook).TotalSeconds, [("runc checkpoint", dump.TotalSeconds), ("per-file script", hook.TotalSeconds)]);
    }

    public override Timing Restore(Subject subject, string images, string work)
    {
        var decrypt = tool.DecryptInPlace(images);
        var restore = PlainRunc.RuncRestore((ContainerSubject)subject, images, work);
        return new Timing((decrypt + restore).TotalSeconds, [("decrypt", decrypt.TotalSeconds), ("runc restore", restore.TotalSeconds)]);
    }
}
