using Sealpoint.Core.Streaming;

namespace Sealpoint.Core.Tests;

/// <summary>The posix_spawn child runner CRIU and runc are started with: exit status, signals, environment, output.</summary>
public sealed class ChildProcessTests
{
    private static ChildProcess Shell(string script, ChildOptions? options = null) => ChildProcess.Start("/bin/sh", ["-c", script], options);

    [Fact]
    public void ReportsTheExitStatus_AndASignalAs128PlusItsNumber()
    {
        using (var exits = Shell("exit 3"))
        {
            exits.WaitForExit();
            Assert.Equal(3, exits.ExitCode);
        }
        using var killed = Shell("kill -9 $$");
        killed.WaitForExit();
        Assert.Equal(128 + 9, killed.ExitCode);
    }

    [Fact]
    public void WaitsWithATimeout_AndHasExitedFollowsTheChild()
    {
        using var child = Shell("exec sleep 30");
        Assert.False(child.HasExited);
        Assert.False(child.WaitForExit(50));
        Assert.Throws<InvalidOperationException>(() => child.ExitCode);
        Assert.Equal(0, Posix.Kill(child.Id, 15));
        Assert.True(child.WaitForExit(10_000));
        Assert.True(child.HasExited);
        Assert.Equal(128 + 15, child.ExitCode);
        Assert.True(child.WaitForExit(0)); // reaped once, asked again
    }

    [Fact]
    public void CapturesStdoutAndStderr_WithTheEnvironmentAsGiven()
    {
        var (exit, stdout, stderr) = ChildProcess.Capture("/bin/sh", ["-c", "echo out; echo err >&2; exit 4"]);
        Assert.Equal(4, exit);
        Assert.Equal("out\n", stdout);
        Assert.Equal("err\n", stderr);

        Environment.SetEnvironmentVariable("SEALPOINT_CHILD_TEST_REMOVED", "present");
        try
        {
            var env = new Dictionary<string, string?> { ["SEALPOINT_CHILD_TEST_SET"] = "given", ["SEALPOINT_CHILD_TEST_REMOVED"] = null };
            string file = Path.Combine(Path.GetTempPath(), $"sealpoint-child-{Guid.NewGuid():N}");
            try
            {
                using var child = Shell($"echo \"$SEALPOINT_CHILD_TEST_SET/${{SEALPOINT_CHILD_TEST_REMOVED:-absent}}\" > {file}", new ChildOptions { Environment = env });
                child.WaitForExit();
                Assert.Equal(0, child.ExitCode);
                Assert.Equal("given/absent\n", File.ReadAllText(file));
            }
            finally { File.Delete(file); }
        }
        finally { Environment.SetEnvironmentVariable("SEALPOINT_CHILD_TEST_REMOVED", null); }
    }

    [Fact]
    public void TheChildStartsWithDefaultSignalsAndAnEmptyMask()
    {
        // .NET ignores SIGPIPE in this process; runc, CRIU and the tasks they start must not inherit that.
        var (exit, stdout, _) = ChildProcess.Capture("/bin/sh", ["-c", "grep -E '^Sig(Ign|Blk):' /proc/self/status"]);
        Assert.Equal(0, exit);
        ulong Mask(string name) => Convert.ToUInt64(stdout.Split('\n').Single(l => l.StartsWith(name + ":")).Split('\t')[1], 16);
        Assert.Equal(0UL, Mask("SigBlk"));
        // A non-interactive shell (here grep, which it execs) ignores nothing by itself: an ignored signal came from
        // us. Standard signals only: glibc keeps its own two internal real-time signals out of posix_spawn's reach.
        Assert.Equal(0UL, Mask("SigIgn") & 0x7FFF_FFFF);
        // ... while this process does ignore SIGPIPE (bit 13), so the check above can fail.
        string own = File.ReadAllText("/proc/self/status");
        ulong ownIgnored = Convert.ToUInt64(own.Split('\n').Single(l => l.StartsWith("SigIgn:")).Split('\t')[1], 16);
        Assert.NotEqual(0UL, ownIgnored & (1UL << 12));
    }

    [Fact]
    public void AMissingProgramIsNamedInTheError()
    {
        var e = Assert.Throws<SealpointException>(() => ChildProcess.Start("/nonexistent/criu", ["--version"]));
        Assert.Equal(ErrorKind.External, e.Kind);
        Assert.Contains("/nonexistent/criu", e.Message);
        Assert.Contains("No such file", e.Message);
    }
}
