using System.Diagnostics;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Stream.Tests;

/// <summary>The post-dump gate's action script, run as CRIU runs it (CRTOOLS_SCRIPT_ACTION), without CRIU.</summary>
public class PostDumpGateTests
{
    private static Process RunScript(PostDumpGate gate, string action)
    {
        var info = new ProcessStartInfo(gate.ScriptPath) { UseShellExecute = false };
        info.Environment["CRTOOLS_SCRIPT_ACTION"] = action;
        return Process.Start(info)!;
    }

    private static int ExitCodeWithin(Process script, int milliseconds)
    {
        Assert.True(script.WaitForExit(milliseconds), $"the script still runs after {milliseconds} ms");
        return script.ExitCode;
    }

    [Fact]
    public void Other_actions_pass_at_once_and_post_dump_waits_for_the_sealed_verdict()
    {
        using var work = WorkDirectory.Create(null, "gate-test");
        using var gate = PostDumpGate.Create(work);
        Assert.Equal(0, ExitCodeWithin(RunScript(gate, "pre-dump"), 5000));
        Assert.False(gate.WaitReached(0), "reached before any post-dump");

        using var script = RunScript(gate, "post-dump");
        Assert.True(gate.WaitReached(5000), "the script never said it reached post-dump");
        Assert.False(script.WaitForExit(300), "the script ended without a verdict");
        gate.Sealed();
        Assert.Equal(0, ExitCodeWithin(script, 5000));
    }

    [Fact]
    public void A_failed_verdict_fails_the_script()
    {
        using var work = WorkDirectory.Create(null, "gate-test");
        using var gate = PostDumpGate.Create(work);
        using var script = RunScript(gate, "post-dump");
        Assert.True(gate.WaitReached(5000));
        gate.Failed();
        Assert.Equal(1, ExitCodeWithin(script, 5000));
    }

    [Fact]
    public void The_script_fails_without_a_verdict_once_the_gate_is_closed_as_when_sealpoint_dies()
    {
        using var work = WorkDirectory.Create(null, "gate-test");
        var gate = PostDumpGate.Create(work);
        using var script = RunScript(gate, "post-dump");
        Assert.True(gate.WaitReached(5000));
        Assert.False(script.WaitForExit(300), "the script ended without a verdict");
        gate.Dispose(); // what the kernel does to a dead process's descriptors
        Assert.Equal(1, ExitCodeWithin(script, 5000));
    }

    [Fact]
    public void A_gate_closed_before_the_script_runs_fails_it_at_once_instead_of_blocking()
    {
        using var work = WorkDirectory.Create(null, "gate-test");
        var gate = PostDumpGate.Create(work);
        gate.Dispose();
        using var script = RunScript(gate, "post-dump");
        Assert.Equal(1, ExitCodeWithin(script, 5000));
    }

    [Fact]
    public void Its_files_are_removed_with_the_work_directory_s_own_files()
    {
        string dir = Directory.CreateTempSubdirectory("gate-test").FullName;
        try
        {
            using (var work = WorkDirectory.Create(dir, "gate-test"))
            using (PostDumpGate.Create(work)) { }
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
