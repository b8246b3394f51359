using Sealpoint.Bench.Running;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>
/// `sealpoint-runc checkpoint`/`restore` on the runc container: the runtime has runc dump into tmpfs staging, seals
/// into the image path, and on restore opens into staging and has runc restore from there. Its node config (PKI,
/// recipient, staging under the run's folder) reaches it through SEALPOINT_CONFIG, set in this process's environment
/// so that every call (also the pass-through ones) runs the launcher directly, without a wrapper script.
/// </summary>
public sealed class RuntimeContender : Contender
{
    private readonly string _runtime;

    public RuntimeContender(string runtime) => _runtime = runtime;

    /// <summary>
    /// Writes the benchmark's node config (this run's PKI and recipient, staging under the run's folder) and points
    /// SEALPOINT_CONFIG at it for every program this process starts.
    /// </summary>
    public static void Configure(SealpointSetup sealpoint, Scratch scratch)
    {
        string config = Path.Combine(scratch.NewDir("runtime-config"), "config.toml");
        File.WriteAllText(config, $"""
            # sealpoint-bench node config: everything private to this run.
            [runtime]
            runc = "{Tools.Require("runc")}"
            criu = "{Tools.Require("criu")}"
            staging = "{Path.Combine(scratch.Root, "runtime-staging")}"

            [keys]
            pki = "{sealpoint.PkiRoot}"
            identity = "{SealpointSetup.RecipientName}"
            recipients = ["{SealpointSetup.RecipientName}"]
            """);
        Environment.SetEnvironmentVariable("SEALPOINT_CONFIG", config);
    }

    public override string Name => "sealpoint-runc";
    public override string Family => "container";
    public override ContenderKind Kind => ContenderKind.Sealpoint;
    public override string Describe => "`sealpoint-runc checkpoint --image-path DIR --work-path WORK ID` (runc dumps into tmpfs staging, then sealed into DIR); " +
                                       "`sealpoint-runc restore -d --bundle B --image-path DIR --work-path WORK ID` (opened into tmpfs staging, then runc restores); " +
                                       "wall time of the runtime as an engine sees it, .NET start-up included";

    public override Timing Checkpoint(Subject subject, string images, string work)
    {
        var c = (ContainerSubject)subject;
        // SEALPOINT_TRACE=1: the runtime's own phase times go to its stderr (a few lines), for "where the time goes".
        var result = c.Bundle.Runtime(_runtime, ["checkpoint", "--image-path", images, "--work-path", work, c.Bundle.Id],
            new RunOptions { Timeout = TimeSpan.FromMinutes(20), Environment = new Dictionary<string, string?> { ["SEALPOINT_TRACE"] = "1" } });
        return new Timing(result.Elapsed.TotalSeconds, TracedPhases(result.StandardError));
    }

    /// <summary>"sealpoint-runc: timing: seal (of which 370 MiB while runc dumped) 317.0 ms (at 960 ms ...)" → ("seal", 0.317).
    /// Only the phases that take time enough to matter (runc checkpoint, seal); the rest are a few ms each.</summary>
    internal static IReadOnlyList<(string Part, double Seconds)> TracedPhases(string stderr)
    {
        var parts = new List<(string, double)>();
        foreach (var line in stderr.Split('\n'))
        {
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^sealpoint-runc: timing: (runc checkpoint|seal)\b.*? ([0-9.]+) ms \(at ");
            if (m.Success) parts.Add((m.Groups[1].Value, double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) / 1000));
        }
        return parts;
    }

    public override Timing Restore(Subject subject, string images, string work)
    {
        var c = (ContainerSubject)subject;
        return Timing.Single(c.Bundle.RuntimeDetached(_runtime,
            ["restore", "-d", "--bundle", c.Bundle.Dir, "--image-path", images, "--work-path", work, c.Bundle.Id], TimeSpan.FromMinutes(20)).Elapsed);
    }
}
