using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>
/// The run's private folder under --work-dir (a tmpfs by default) and everything that must be undone at the end:
/// workloads, containers, gpg agents. Cleanup runs on normal exit, on exceptions and on SIGINT/SIGTERM/SIGHUP, so a
/// failure mid-run does not leave gigabytes in /dev/shm. A run killed with SIGKILL leaves its folder behind; the next
/// run removes folders whose owner process is gone.
/// </summary>
public sealed class Scratch : IDisposable
{
    private const string Prefix = "sealpoint-bench-";
    private readonly object _gate = new();
    private readonly List<(string What, Action Undo)> _undo = [];
    private bool _cleaned;
    private int _counter;

    public string Root { get; }

    private Scratch(string root) => Root = root;

    public static Scratch Create(string workDir)
    {
        Directory.CreateDirectory(workDir);
        RemoveStale(workDir);
        string root = Path.Combine(Path.GetFullPath(workDir), $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(root, "owner.pid"), Environment.ProcessId.ToString());
        return new Scratch(root);
    }

    /// <summary>A new, empty, uniquely named folder (created) under the run's folder.</summary>
    public string NewDir(string label)
    {
        string path = Path.Combine(Root, $"{Interlocked.Increment(ref _counter):D4}-{label}");
        // Private, like everything that may hold a checkpoint or key material (tools such as the node state insist).
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>A unique path under the run's folder that does not exist yet (for tools that create their output folder).</summary>
    public string NewPath(string label) => Path.Combine(Root, $"{Interlocked.Increment(ref _counter):D4}-{label}");

    /// <summary>Registers something to undo at cleanup (last registered, first undone). Returns a handle that undoes it early.</summary>
    public IDisposable OnCleanup(string what, Action undo)
    {
        var entry = (what, undo);
        lock (_gate) _undo.Add(entry);
        return new Handle(this, entry);
    }

    /// <summary>Disposes <paramref name="item"/> at cleanup unless it was disposed (through the returned handle) before.</summary>
    public T Track<T>(T item, string what) where T : IDisposable
    {
        OnCleanup(what, item.Dispose);
        return item;
    }

    private void RunEarly((string What, Action Undo) entry)
    {
        lock (_gate) if (!_undo.Remove(entry)) return;
        entry.Undo();
    }

    /// <summary>Removes a folder now (dumps are large; they must not pile up between repetitions).</summary>
    public static void Remove(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        else if (File.Exists(path)) File.Delete(path);
    }

    public void Dispose()
    {
        List<(string What, Action Undo)> todo;
        lock (_gate)
        {
            if (_cleaned) return;
            _cleaned = true;
            todo = [.. _undo];
            _undo.Clear();
        }
        // A baseline script, CRIU or runc may still be writing into the folder (cleanup after a signal runs while the
        // main thread is mid-step): stop them first, or the removal races their writes.
        KillDescendants();
        todo.Reverse();
        foreach (var (what, undo) in todo)
        {
            try { undo(); }
            catch (Exception e) { Console.Error.WriteLine($"cleanup: {what} failed: {e.Message}"); }
        }
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                Remove(Root);
                return;
            }
            catch (Exception e) when (attempt < 5)
            {
                _ = e;
                Thread.Sleep(200 * attempt);
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"cleanup: could not remove {Root}: {e.Message}. Remove it by hand (rm -rf {Root}) to free its memory.");
                return;
            }
        }
    }

    /// <summary>SIGKILLs every process this one started that still runs. Workloads are not among them (setsid
    /// reparents them); they and containers are undone by their own cleanup entries.</summary>
    private static void KillDescendants()
    {
        int self = Environment.ProcessId;
        var children = Pids.Tree(self).Where(p => p != self).ToList();
        if (children.Count == 0) return;
        foreach (int pid in children) NativeSignal.Send(pid, NativeSignal.SIGKILL);
        try { Pids.WaitReaped(children.Where(p => Pids.IsAlive(p)), TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { /* zombies of ours are reaped by the runtime; removal retries below */ }
    }

    /// <summary>Folders of earlier runs whose process is gone (killed with SIGKILL, or a crashed VM).</summary>
    private static void RemoveStale(string workDir)
    {
        foreach (var dir in Directory.EnumerateDirectories(workDir, Prefix + "*"))
        {
            string ownerFile = Path.Combine(dir, "owner.pid");
            if (!File.Exists(ownerFile) || !int.TryParse(File.ReadAllText(ownerFile).Trim(), out int owner)) continue;
            if (Pids.Exists(owner) && Pids.Comm(owner) is { } comm && comm.StartsWith("sealpoint-bench", StringComparison.Ordinal)) continue;
            Console.WriteLine($"removing {dir}, left by an earlier benchmark run (process {owner} is gone)");
            try { Remove(dir); } catch (Exception e) { Console.Error.WriteLine($"could not remove {dir}: {e.Message}"); }
        }
    }

    private sealed class Handle(Scratch owner, (string What, Action Undo) entry) : IDisposable
    {
        public void Dispose() => owner.RunEarly(entry);
    }
}
