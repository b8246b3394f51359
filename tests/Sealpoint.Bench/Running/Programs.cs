using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>
/// The Sealpoint programs whose wall time is measured (`sealpoint`, `sealpoint-runc`). By default they are published
/// from this source exactly as packaging/install.sh installs them (framework-dependent, ReadyToRun, the C launcher
/// built with gcc), into the run's folder: that is what users run, and it starts faster than a JIT build. `--programs
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
        Console.WriteLine($"publishing sealpoint and sealpoint-runc (ReadyToRun, as packaging/install.sh does) into {dir} ...");
        string dotnet = Tools.Require("dotnet");
        foreach (var project in new[] { "shim/Sealpoint.Cli", "shim/Sealpoint.Runtime" })
        {
            if (!Directory.Exists(Path.Combine(RepoPaths.Root, project))) continue;
            ProcessRunner.Run(dotnet, ["publish", Path.Combine(RepoPaths.Root, project), "-c", "Release", "-r", "linux-x64", "--self-contained", "false",
                "-p:PublishReadyToRun=true", "-o", dir, "--nologo", "-v", "quiet"],
                new RunOptions { Timeout = TimeSpan.FromMinutes(15), FailureHint = $"check the build: dotnet build {RepoPaths.Root}/Shim.sln -c Release; or pass --programs build" });
        }
        string? launcher = null, missing = null;
        string source = Path.Combine(RepoPaths.Root, "shim/Sealpoint.Runtime/launcher/sealpoint-runc.c");
        if (File.Exists(source) && File.Exists(Path.Combine(dir, "sealpoint-runc-core")))
        {
            launcher = Path.Combine(dir, "sealpoint-runc");
            ProcessRunner.Run(Tools.Require("gcc"), ["-O2", "-Wall", "-o", launcher, source], new RunOptions { FailureHint = "apt-get install gcc" });
        }
        else missing = $"{source} or sealpoint-runc-core does not exist (the runtime branch is not part of this source)";
        string cli = Path.Combine(dir, "sealpoint");
        if (!File.Exists(cli)) throw new InvalidOperationException($"dotnet publish produced no {cli}");
        return new Programs(cli, launcher, missing, "published from this source as packaging/install.sh installs them (ReadyToRun, framework-dependent)");
    }
}
