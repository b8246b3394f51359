using Sealpoint.Core.Streaming;
using Sealpoint.TestSupport;

namespace Sealpoint.Stream.Tests;

/// <summary>Stopping CRIU's process tree, with a stand-in for CRIU that forks as its kernel probes do.</summary>
public class CriuProcessTests
{
    [Fact]
    public void KillTree_leaves_no_child_behind_even_one_that_stopped_itself()
    {
        using var dir = TempDir.Create("criu-killtree");
        // Like CRIU's kernel probes: a child that SIGSTOPs itself, waiting for its parent to continue it, and a
        // grandchild that forks on. Killed first, the parent would hand both to init, the stopped one stopped for ever.
        string fake = dir.File("fake-criu");
        File.WriteAllText(fake, $$"""
            #!/bin/sh
            sh -c 'kill -STOP $$; exit 0' &
            echo $! > {{dir.File("stopped")}}
            sh -c 'while :; do sleep 600 & wait; done' &
            echo $! > {{dir.File("forking")}}
            exec sleep 600

            """);
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        using var criu = CriuProcess.Start(fake, [], dir.File("log"));
        int stopped = WaitForPid(dir.File("stopped")), forking = WaitForPid(dir.File("forking"));
        Assert.True(WaitUntil(() => State(stopped) == 'T'), "the probe-like child never stopped itself");
        // The forking shell starts its sleep a moment after it has written its pid: wait for it rather than race it.
        Assert.True(WaitUntil(() => CriuProcess.Descendants(criu.Pid).Count >= 3),
            $"expected the stopped child, the forking one and its sleep, found {CriuProcess.Descendants(criu.Pid).Count}");
        var tree = CriuProcess.Descendants(criu.Pid);
        Assert.Contains(stopped, tree);
        Assert.Contains(forking, tree);

        criu.KillTree();
        Assert.True(criu.WaitForExit(5000), "CRIU's stand-in survived KillTree");
        foreach (int pid in tree)
            Assert.True(WaitUntil(() => !CriuProcess.IsRunning(pid)), $"KillTree left {pid} ({State(pid)}) running");
    }

    private static int WaitForPid(string file)
    {
        Assert.True(WaitUntil(() => File.Exists(file) && File.ReadAllText(file).EndsWith('\n')), $"{file} was never written");
        return int.Parse(File.ReadAllText(file).Trim());
    }

    private static char State(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2];
        }
        catch (IOException) { return '-'; }
    }

    private static bool WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(10);
        }
        return true;
    }
}
