namespace Sealpoint.Core.Streaming;

/// <summary>
/// Holds CRIU at its post-dump step, the dumped tasks still frozen, until the sealed checkpoint is on disk
/// (docs/streaming.md). CRIU runs the gate's action script; at post-dump the script says "reached" into one FIFO and
/// waits for the verdict on another, and each message wakes its reader at once (a polled marker file cost ~6 ms per
/// dump while the tasks were frozen). This process holds both FIFOs open read-write (close-on-exec: no child holds
/// them), so none of its opens blocks. The script fails, so CRIU resumes the tasks, on a "failed" verdict and when
/// this process is gone: it then holds the only writing end of the verdict FIFO, so this process's exit, for any
/// reason, is an end of file there.
/// </summary>
public sealed class PostDumpGate : IDisposable
{
    public const string ScriptName = "sealpoint-post-dump.sh";
    private const string ReachedName = "sealpoint-post-dump.reached";
    private const string VerdictName = "sealpoint-post-dump.verdict";

    private readonly OwnedFd _reached, _verdict;
    private bool _decided;

    private PostDumpGate(string script, OwnedFd reached, OwnedFd verdict)
    {
        ScriptPath = script;
        _reached = reached;
        _verdict = verdict;
    }

    /// <summary>The action script to give CRIU (--action-script).</summary>
    public string ScriptPath { get; }

    /// <summary>Writes the script and makes the FIFOs in <paramref name="work"/> (removed with it).</summary>
    public static PostDumpGate Create(WorkDirectory work)
    {
        string script = work.OwnFile(ScriptName), reached = work.OwnFile(ReachedName), verdict = work.OwnFile(VerdictName);
        var reachedEnd = OpenFifo(reached);
        OwnedFd verdictEnd;
        try { verdictEnd = OpenFifo(verdict); }
        catch
        {
            reachedEnd.Dispose();
            throw;
        }
        var gate = new PostDumpGate(script, reachedEnd, verdictEnd);
        try { WriteScript(script, reached, verdict); }
        catch
        {
            gate.Dispose();
            throw;
        }
        return gate;
    }

    /// <summary>True once CRIU reached post-dump (it has written every image); false after <paramref name="timeoutMs"/>.</summary>
    public bool WaitReached(int timeoutMs) => _reached.Wait(Posix.POLLIN, null, timeoutMs);

    /// <summary>Lets CRIU finish as asked: the sealed checkpoint, envelope included, is on disk.</summary>
    public void Sealed() => Decide("sealed\n"u8);

    /// <summary>Makes CRIU fail its dump and resume the tasks. Harmless before post-dump (CRIU then fails there).</summary>
    public void Failed() => Decide("failed\n"u8);

    private unsafe void Decide(ReadOnlySpan<byte> verdict)
    {
        if (_decided) return;
        _decided = true;
        // A few bytes into an empty FIFO that this process holds open: the write completes at once.
        fixed (byte* p = verdict)
            if (Posix.Write(_verdict.Fd, p, (nuint)verdict.Length) != verdict.Length)
                throw new SealpointException(ErrorKind.Io, $"cannot give CRIU the verdict: {Posix.ErrorText(Posix.Errno)}",
                    "CRIU's post-dump step fails without it, and CRIU resumes the tasks; run the dump again");
    }

    private static OwnedFd OpenFifo(string path)
    {
        if (Posix.MkFifo(path, 0b110_000_000) != 0)
            throw new SealpointException(ErrorKind.Io, $"cannot make the FIFO {path}: {Posix.ErrorText(Posix.Errno)}",
                "use a work directory (--work-dir) on a local file system that you can write to");
        // Read-write: opening a FIFO so never waits for the other side.
        int fd = Posix.Open(path, Posix.O_RDWR | Posix.O_CLOEXEC);
        if (fd < 0)
            throw new SealpointException(ErrorKind.Io, $"cannot open the FIFO {path}: {Posix.ErrorText(Posix.Errno)}",
                "use a work directory (--work-dir) on a local file system that you can write to");
        return new OwnedFd(fd);
    }

    /// <summary>
    /// The action script, POSIX sh. CRIU runs it for every action; only post-dump waits. Opening a FIFO read-write never
    /// blocks, and opening it read-only does not either while the script's own read-write end is open; that end is then
    /// closed, so the script's read ends with the verdict, or with an end of file once this process is gone.
    /// </summary>
    private static void WriteScript(string path, string reached, string verdict)
    {
        static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        string script = $$"""
            #!/bin/sh
            # Written by 'sealpoint dump' for this dump only: holds CRIU at post-dump until the sealed checkpoint is on disk.
            [ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
            exec 3<>{{Quote(reached)}} 4<>{{Quote(verdict)}} 5<{{Quote(verdict)}} 4>&- || exit 1
            echo reached >&3 || exit 1
            read -r verdict <&5 || exit 1
            [ "$verdict" = sealed ]

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
