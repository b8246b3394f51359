namespace Sealpoint.Core.Streaming;

/// <summary>
/// Holds CRIU at its post-dump step, the dumped tasks still frozen, until the sealed checkpoint is on disk
/// (docs/streaming.md). CRIU runs the gate's action script; at post-dump the script says "reached" into one FIFO and
/// waits for the verdict on another. Both FIFOs are open read-write on both sides, so neither open ever blocks, and
/// each message wakes its reader at once (a polled marker file cost ~6 ms per dump while the tasks were frozen). The
/// script fails, so CRIU resumes the tasks, on a "failed" verdict and when this process is gone.
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
    public static PostDumpGate Create(WorkDirectory work) => Create(work, Environment.ProcessId);

    /// <param name="holder">The process whose end the script watches (tests give one that is gone).</param>
    internal static PostDumpGate Create(WorkDirectory work, int holder)
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
        try { WriteScript(script, reached, verdict, holder); }
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
    /// The action script. CRIU runs it for every action; only post-dump waits. A verdict read fails only on timeout
    /// (the script holds the FIFO open itself, so no end of file); each timeout checks that this process still lives.
    /// </summary>
    private static void WriteScript(string path, string reached, string verdict, int sealpointPid)
    {
        static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        string script = $$"""
            #!/bin/bash
            # Written by 'sealpoint dump' for this dump only: holds CRIU at post-dump until the sealed checkpoint is on disk.
            [ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
            exec 3<>{{Quote(reached)}} 4<>{{Quote(verdict)}} || exit 1
            echo reached >&3 || exit 1
            while :; do
                read -r -t 0.2 verdict <&4
                status=$?
                if [ $status -eq 0 ]; then [ "$verdict" = sealed ]; exit; fi
                [ $status -gt 128 ] || exit 1
                kill -0 {{sealpointPid}} 2>/dev/null || exit 1
            done

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
