using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>
/// The Sealpoint programs whose wall time is measured (`sealpoint`, `sealpoint-runc`). By default they are published
/// from this source by packaging/publish.sh, exactly as packaging/install.sh installs them, into the run's folder:
/// that is what users run, and it starts faster than a JIT build. `--programs
/// build` uses the repository's Release build instead (JIT; what `dotnet run` built), e.g. for a quick run.
/// </summary>
public sealed record Programs(string Cli, string? RuntimeLauncher, string? RuntimeMissing, string Description)
{
    public static Programs FromBuild()
    {
        string? launcher = null, missing = null;
        try
        {
            string dir = RepoPaths.BuildOutput("Sealpoint.Runtime");
            launcher = Path.Combine(dir, "sealpoint-runc");
            if (!File.Exists(launcher) || !File.Exists(Path.Combine(dir, "sealpoint-runc-core")))
            {
                missing = $"{launcher} is not built (the runtime branch is not part of this build, or gcc is missing)";
                launcher = null;
            }
        }
        catch (TestEnvironmentException e) { missing = $"Sealpoint.Runtime is not built: {e.Message}"; }
        return new Programs(RepoPaths.Program("Sealpoint.Cli"), launcher, missing,
            $"the repository's {RepoPaths.Configuration} build (JIT-compiled at start-up)");
    }

    public static Programs Publish(string dir)
    {
        Console.WriteLine($"publishing the Sealpoint programs with packaging/publish.sh (as packaging/install.sh installs them) into {dir} ...");
        ProcessRunner.Run(Tools.Require("bash"), [Path.Combine(RepoPaths.Root, "packaging/publish.sh"), dir],
            new RunOptions { Timeout = TimeSpan.FromMinutes(20), FailureHint = $"check the build: dotnet build {RepoPaths.Root}/Shim.sln -c Release; or pass --programs build" });
        string cli = Path.Combine(dir, "sealpoint"), launcher = Path.Combine(dir, "sealpoint-runc");
        if (!File.Exists(cli) || !File.Exists(launcher))
            throw new InvalidOperationException($"packaging/publish.sh produced no {cli} or {launcher}");
        return new Programs(cli, launcher, null, "published from this source by packaging/publish.sh, as packaging/install.sh installs them (CLI framework-dependent ReadyToRun, runtime self-contained composite ReadyToRun, tiered compilation off)");
    }

    /// <summary>Adds the OpenSSL the programs run on, as `sealpoint --version` reports it (the baselines' `openssl`
    /// is the machine's own, in the report's machine table).</summary>
    public Programs WithOpenSsl()
    {
        string text = ProcessRunner.Run(Cli, ["--version"]).StandardOutput.Trim();
        int at = text.IndexOf("OpenSSL ", StringComparison.Ordinal);
        return this with { Description = $"{Description}; cryptography on {(at >= 0 ? text[at..^1] : $"an OpenSSL `{Cli} --version` does not name")}" };
    }
}
