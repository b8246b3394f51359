namespace Sealpoint.TestSupport;

/// <summary>Process facts from /proc: liveness (a zombie is dead), process trees, reaping.</summary>
public static class Pids
{
    /// <summary>True while the process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid) => State(pid) is { } s && s != 'Z' && s != 'X';

    /// <summary>True while /proc has the pid at all, zombies included (its pid is not free yet).</summary>
    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>Single-letter state from /proc/PID/stat, or null if there is no such process.</summary>
    public static char? State(int pid) => Stat(pid) is { } f ? f[0][0] : null;

    /// <summary>Short command name (/proc/PID/comm, at most 15 characters), or null.</summary>
    public static string? Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>The process and all its live descendants.</summary>
    public static IReadOnlyList<int> Tree(int root)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir), out var pid) || Stat(pid) is not { } f) continue;
            var ppid = int.Parse(f[1]);
            if (!children.TryGetValue(ppid, out var list)) children[ppid] = list = [];
            list.Add(pid);
        }
        var tree = new List<int>();
        var pending = new Stack<int>([root]);
        while (pending.Count > 0)
        {
            var pid = pending.Pop();
            if (!Exists(pid)) continue;
            tree.Add(pid);
            foreach (var child in children.GetValueOrDefault(pid) ?? []) pending.Push(child);
        }
        return tree;
    }

    /// <summary>
    /// Waits until none of the pids exists any more, zombies included. Needed before CRIU restores
    /// a tree with the same pids: on this machine pid 1 reaps orphans only every second or two.
    /// </summary>
    public static void WaitReaped(IEnumerable<int> pids, TimeSpan timeout)
    {
        var list = pids.ToList();
        Poll.Until(() => list.All(p => !Exists(p)), timeout,
            () => $"processes {string.Join(", ", list.Where(Exists).Select(p => $"{p} (state {State(p)})"))} to be gone and reaped",
            TimeSpan.FromMilliseconds(50));
    }

    /// <summary>Fields of /proc/PID/stat after the command name: [0]=state, [1]=ppid, [2]=pgrp, [3]=session.</summary>
    private static string[]? Stat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        var end = text.LastIndexOf(')'); // the command name may contain spaces and parentheses
        return end < 0 ? null : text[(end + 2)..].Split(' ');
    }
}
