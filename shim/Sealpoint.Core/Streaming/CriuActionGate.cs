namespace Sealpoint.Core.Streaming;

/// <summary>
/// Holds CRIU at one of its action-script steps until this process gives a verdict: at post-dump, the dumped tasks
/// still frozen, until the sealed checkpoint is on disk (docs/streaming.md); at pre-restore, before any task exists,
/// until the memory pages are decrypted and verified (sealpoint-runc's restore, shim/Sealpoint.Runtime/README.md).
/// CRIU runs the gate's action script for every action; at the gated one the script says "reached" into one
/// FIFO and waits for the verdict on another, and each message wakes its reader at once (a polled marker file cost
/// ~6 ms per dump while the tasks were frozen). This process holds both FIFOs open read-write (close-on-exec: no child
/// holds them), so none of its opens blocks. The script fails, so CRIU gives up the step, on a "failed" verdict and
/// when this process is gone: it then holds the only writing end of the verdict FIFO, so this process's exit, for any
/// reason, is an end of file there.
/// </summary>
public sealed class CriuActionGate : IDisposable
{
    public const string PostDump = "post-dump";
    public const string PreRestore = "pre-restore";

    private readonly OwnedFd _reached, _verdict;
    private bool _decided;

    private CriuActionGate(string action, string script, OwnedFd reached, OwnedFd verdict)
    {
        Action = action;
        ScriptPath = script;
        _reached = reached;
        _verdict = verdict;
    }

    /// <summary>The CRIU action the script holds (CRTOOLS_SCRIPT_ACTION): <see cref="PostDump"/> or <see cref="PreRestore"/>.</summary>
    public string Action { get; }

    /// <summary>The action script to give CRIU (--action-script, or action-script in a configuration file).</summary>
    public string ScriptPath { get; }

    /// <summary>Writes the script and makes the FIFOs as the work directory's own files (removed with them).</summary>
    public static CriuActionGate Create(WorkDirectory work, string action)
    {
        var (script, reached, verdict) = Names(action);
        return Create(action, work.OwnFile(script), work.OwnFile(reached), work.OwnFile(verdict));
    }

    /// <summary>Writes the script and makes the FIFOs in <paramref name="directory"/>; the caller removes them with it.</summary>
    public static CriuActionGate Create(string directory, string action)
    {
        var (script, reached, verdict) = Names(action);
        return Create(action, Path.Combine(directory, script), Path.Combine(directory, reached), Path.Combine(directory, verdict));
    }

    private static (string Script, string Reached, string Verdict) Names(string action)
    {
        if (action is not (PostDump or PreRestore)) throw new ArgumentOutOfRangeException(nameof(action), action, "not a CRIU action Sealpoint gates");
        return ($"sealpoint-{action}.sh", $"sealpoint-{action}.reached", $"sealpoint-{action}.verdict");
    }

    private static CriuActionGate Create(string action, string script, string reached, string verdict)
    {
        var reachedEnd = OpenFifo(reached);
        OwnedFd verdictEnd;
        try { verdictEnd = OpenFifo(verdict); }
        catch
        {
            reachedEnd.Dispose();
            throw;
        }
        var gate = new CriuActionGate(action, script, reachedEnd, verdictEnd);
        try { WriteScript(script, action, reached, verdict); }
        catch
        {
            gate.Dispose();
            throw;
        }
        return gate;
    }

    /// <summary>
    /// Writes a CRIU configuration file at <paramref name="path"/> that adds this gate's script (one `action-script`
    /// line): how a CRIU that another program starts, such as runc's `criu swrk`, is given the gate, through the
    /// CRIU_CONFIG_FILE environment variable, which CRIU reads in every mode. False, and nothing written, when CRIU
    /// could not run the script: its path holds characters CRIU's configuration parser splits or quotes at, or its
    /// file system is mounted noexec.
    /// </summary>
    public bool TryWriteConfigurationFile(string path)
    {
        if (ScriptPath.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '\\' or '#') || Posix.IsNoExec(Path.GetDirectoryName(ScriptPath)!)) return false;
        File.WriteAllText(path, $"action-script {ScriptPath}\n");
        return true;
    }

    /// <summary>True once CRIU reached the gated step; false after <paramref name="timeoutMs"/> (0: just look).</summary>
    public bool WaitReached(int timeoutMs) => _reached.Wait(Posix.POLLIN, null, timeoutMs);

    /// <summary>Lets CRIU go on with its step (post-dump: the sealed checkpoint is on disk; pre-restore: the pages are ready).</summary>
    public void Proceed() => Decide("proceed\n"u8);

    /// <summary>Makes CRIU fail the step: a dump resumes the tasks, a restore stops before any task exists. Harmless before the step.</summary>
    public void Fail() => Decide("failed\n"u8);

    private unsafe void Decide(ReadOnlySpan<byte> verdict)
    {
        if (_decided) return;
        _decided = true;
        // A few bytes into an empty FIFO that this process holds open: the write completes at once.
        fixed (byte* p = verdict)
            if (Posix.Write(_verdict.Fd, p, (nuint)verdict.Length) != verdict.Length)
                throw new SealpointException(ErrorKind.Io, $"cannot give CRIU the {Action} verdict: {Posix.ErrorText(Posix.Errno)}",
                    $"CRIU's {Action} step fails without it, so nothing is lost; run the {(Action == PostDump ? "dump" : "restore")} again");
    }

    private static OwnedFd OpenFifo(string path)
    {
        if (Posix.MkFifo(path, 0b110_000_000) != 0)
            throw new SealpointException(ErrorKind.Io, $"cannot make the FIFO {path}: {Posix.ErrorText(Posix.Errno)}",
                "use a work directory on a local file system that you can write to");
        // Read-write: opening a FIFO so never waits for the other side.
        int fd = Posix.Open(path, Posix.O_RDWR | Posix.O_CLOEXEC);
        if (fd < 0)
            throw new SealpointException(ErrorKind.Io, $"cannot open the FIFO {path}: {Posix.ErrorText(Posix.Errno)}",
                "use a work directory on a local file system that you can write to");
        return new OwnedFd(fd);
    }

    /// <summary>
    /// The action script, POSIX sh. CRIU runs it for every action; only the gated one waits. Opening a FIFO read-write
    /// never blocks, and opening it read-only does not either while the script's own read-write end is open; that end
    /// is then closed, so the script's read ends with the verdict, or with an end of file once this process is gone.
    /// </summary>
    private static void WriteScript(string path, string action, string reached, string verdict)
    {
        static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        string script = $$"""
            #!/bin/sh
            # Written by Sealpoint for one operation only: holds CRIU at {{action}} until Sealpoint's verdict.
            [ "$CRTOOLS_SCRIPT_ACTION" = {{action}} ] || exit 0
            exec 3<>{{Quote(reached)}} 4<>{{Quote(verdict)}} 5<{{Quote(verdict)}} 4>&- || exit 1
            echo reached >&3 || exit 1
            read -r verdict <&5 || exit 1
            [ "$verdict" = proceed ]

            """;
        File.WriteAllText(path, script.Replace("\r\n", "\n"));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose()
    {
        _reached.Dispose();
        _verdict.Dispose();
    }
}
