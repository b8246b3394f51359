using System.Diagnostics;
using System.Runtime.InteropServices;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Streaming;

public sealed record StreamDumpOptions
{
    public required string CriuPath { get; init; }
    public required int Pid { get; init; }
    /// <summary>Where the sealed checkpoint goes (missing or empty).</summary>
    public required string ImagesDirectory { get; init; }
    public required SealOptions Seal { get; init; }
    /// <summary>CRIU's work directory (log, stats); null for a temporary one removed after success.</summary>
    public string? WorkDirectory { get; init; }
    /// <summary>Further CRIU options (--shell-job, --tcp-established, --leave-running, -v4, ...).</summary>
    public IReadOnlyList<string> CriuArguments { get; init; } = [];
    /// <summary>How long CRIU may keep images open after it reported the dump complete.</summary>
    public TimeSpan FinishTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// Checks of the recipients that need not delay CRIU (their CA and CRL checks: the first certificate chain of a
    /// process costs about 60 ms). They run on another thread from the start; a failure before CRIU starts refuses the
    /// dump, a later one fails it at once (CRIU resumes the process), and the checkpoint is only completed, and the
    /// process only stopped, after they passed: no envelope (the data key wrapped for the recipients) is written before.
    /// </summary>
    public Action? RecipientChecks { get; init; }
    /// <summary>
    /// Loads the recipients beside CRIU instead of before it: parsing the certificates is the process's first use of
    /// OpenSSL (about 30 ms), and wrapping the data key for them the first key agreement (about 10 ms), while CRIU
    /// spends its first 30 ms before it seizes anything. When set, <see cref="SealOptions.Recipients"/> is ignored; it
    /// runs on another thread from the start, before <see cref="RecipientChecks"/>, and its failure is handled as
    /// theirs is. The data key is wrapped once both passed.
    /// </summary>
    public Func<IReadOnlyList<Recipient>>? LoadRecipients { get; init; }
}

public sealed record StreamDumpResult(Envelope Envelope, int Images, long Bytes, int MaxOpenImages, TimeSpan Elapsed, string? LogPath, bool ProcessLeftRunning);

/// <summary>
/// <c>criu dump --stream</c> with every image sealed as CRIU writes it (docs/streaming.md). The dumped tasks stay
/// frozen until the sealed checkpoint, envelope included, is on disk: CRIU runs a post-dump action script that
/// waits for Sealpoint's verdict. On "sealed" CRIU finishes as asked (kills the tasks, or with --leave-running
/// resumes them); on any failure the script fails, and CRIU resumes the tasks, so a failed dump never costs the
/// process. Without the verdict no envelope exists and the partial sealed files are removed.
/// </summary>
public static class StreamingDump
{
    public static StreamDumpResult Run(StreamDumpOptions options, Action<string>? progress = null)
    {
        var timer = new PhaseTimer("sealpoint");
        CriuArguments.Check(options.CriuArguments, "dump");
        if (options.Pid <= 0 || !CriuProcess.IsRunning(options.Pid))
            throw new SealpointException(ErrorKind.NotFound, $"process {options.Pid} is not running", "give the pid of a running process tree (-t PID)");
        var clock = Stopwatch.StartNew();
        string images = Path.GetFullPath(options.ImagesDirectory).TrimEnd('/');
        if (options.WorkDirectory is { } given && (Path.GetFullPath(given).TrimEnd('/') + "/").StartsWith(images + "/", StringComparison.Ordinal))
            throw new SealpointException(ErrorKind.Usage, "the work directory is the sealed checkpoint's directory or inside it",
                "give --work-dir outside -D: the checkpoint directory holds only sealed files");
        // Before CRIU starts: everything that can refuse the dump without touching the process (the output and work
        // directories; the recipients too, unless they load beside CRIU) and everything CRIU needs at once (its hook,
        // the listening socket). The rest is set up while CRIU starts, which takes it ~30 ms before it seizes the tasks.
        var reserved = SealedCheckpointWriter.ReserveDirectory(options.ImagesDirectory);
        SealedCheckpointWriter? writer = null;
        Task recipientChecks = Task.CompletedTask;
        WorkDirectory? work = null;
        UnixListener? listener = null;
        CaptureSession? session = null;
        CriuProcess? criu = null;
        Exception? interrupted = null;
        PostDumpGate? gate = null;
        bool sealedVerdict = false;
        using var interrupt = new InterruptGuard(() =>
        {
            interrupted = new SealpointException(ErrorKind.External, "sealpoint was interrupted during the dump", "run the dump again; the process was left running");
            session?.Fail(interrupted);
            return true;
        });
        try
        {
            if (options.LoadRecipients is null) (writer, recipientChecks) = StartWriter(reserved, options);
            work = WorkDirectory.Create(options.WorkDirectory, "dump");
            if (Posix.IsNoExec(work.Path))
                throw new SealpointException(ErrorKind.Usage, $"the work directory {work.Path} is on a file system mounted noexec, so CRIU cannot run Sealpoint's post-dump step there",
                    "give --work-dir on a file system that allows executables");
            gate = PostDumpGate.Create(work);
            listener = new UnixListener(work.OwnFile(StreamerProtocol.CaptureSocketName));

            string log = CriuArguments.LogFileOf(options.CriuArguments, work.Path) ?? work.File("dump.log");
            var args = new List<string> { "dump", "--stream", "-D", work.Path, "-W", work.Path, "-t", options.Pid.ToString(), "--action-script", gate.ScriptPath };
            if (!CriuArguments.SetsLogFile(options.CriuArguments)) args.AddRange(["-o", "dump.log"]);
            args.AddRange(options.CriuArguments);
            progress?.Invoke($"running {options.CriuPath} {string.Join(' ', args)}");
            if (recipientChecks.IsFaulted) recipientChecks.GetAwaiter().GetResult();
            timer.Mark("directories, hook, socket");
            if (interrupted is not null) throw interrupted;
            work.Keep = true; // CRIU's log explains a failure from here on
            criu = CriuProcess.Start(options.CriuPath, args, log);

            // CRIU is starting; its connection waits in the listener's backlog until the session accepts it. A failure
            // from here on goes through the session (or the listener's reset), so CRIU resumes the tasks itself.
            if (writer is null) (writer, recipientChecks) = StartWriter(reserved, options);
            // The envelope is written while the tasks are frozen: its code's one-time set-up runs now, on the spare core.
            EnvelopeFile.StartWarmUp(writing: true);
            session = new CaptureSession(writer, listener);
            listener = null; // the session's now
            session.Start();
            if (interrupted is not null) session.Fail(interrupted);
            var failing = session;
            recipientChecks.ContinueWith(t => failing.Fail(t.Exception!.InnerException!), CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            timer.Mark("writer, session (beside CRIU)");

            bool reached = false;
            while (!reached && !criu.HasExited) reached = gate.WaitReached(5);
            if (reached)
            {
                timer.Mark("criu until post-dump");
                // CRIU wrote every image and waits in its post-dump step, the tasks still frozen.
                try
                {
                    AwaitRecipientChecks(recipientChecks, options.FinishTimeout);
                    session.Finish(options.FinishTimeout);
                    timer.Mark("last images sealed");
                    writer.Complete();
                    gate.Sealed();
                    sealedVerdict = true;
                    timer.Mark("envelope");
                }
                catch (Exception e)
                {
                    try { gate.Failed(); }
                    finally { session.Fail(e); }
                }
            }
            criu.WaitForExit();
            timer.Mark("criu after post-dump");
            session.Stop();

            if (!sealedVerdict)
            {
                bool alive = CriuProcess.IsRunning(options.Pid);
                string state = alive ? $"process {options.Pid} is still running" : $"process {options.Pid} is no longer running";
                string fix = $"{CriuProcess.SeeLog(log)}; {state}; no checkpoint was written to {writer.Directory}";
                if (session.Failure is SealpointException se)
                    throw new SealpointException(se.Kind, $"the streamed dump failed: {se.Message}", se.Fix is null ? fix : $"{se.Fix}; {fix}", se);
                if (session.Failure is { } other)
                    throw new SealpointException(ErrorKind.Internal, $"the streamed dump failed: {other.Message}", fix, other);
                if (criu.ExitCode != 0)
                    throw new SealpointException(ErrorKind.External, $"criu dump failed with exit code {criu.ExitCode}{Summary(criu)}", fix);
                throw new SealpointException(ErrorKind.External, "criu dump ended without reaching its post-dump step, so the checkpoint is not known to be complete", fix);
            }
            if (criu.ExitCode != 0)
                throw new SealpointException(ErrorKind.External,
                    $"criu dump failed with exit code {criu.ExitCode} after the sealed checkpoint in {writer.Directory} was complete{Summary(criu)}",
                    $"the checkpoint is complete and can be restored; check whether process {options.Pid} is still running; {CriuProcess.SeeLog(log)}");
            work.Keep = false;
            bool leftRunning = CriuProcess.IsRunning(options.Pid);
            var envelope = SealedCheckpoint.ReadEnvelopeUnverified(writer.Directory);
            return new StreamDumpResult(envelope, session.ImagesStreamed, session.BytesStreamed, session.MaxOpenAtOnce, clock.Elapsed,
                options.WorkDirectory is null ? null : log, leftRunning);
        }
        finally
        {
            // Only an unexpected exception leaves CRIU running here. It is told to fail first (no session or a failed
            // one resets its socket and pipes; the hook sees the failed verdict), so it resumes the tasks itself; it is
            // killed only if it does not end.
            listener?.Dispose();
            if (criu is { HasExited: false })
            {
                session?.Fail(new SealpointException(ErrorKind.Internal, "the streamed dump was abandoned", "see the error above"));
                try { gate?.Failed(); } catch (SealpointException) { }
                if (!criu.WaitForExit((int)options.FinishTimeout.TotalMilliseconds)) criu.KillTree();
                criu.WaitForExit();
            }
            session?.Dispose();
            criu?.Dispose();
            // Without the sealed verdict the writer was never completed: disposing removes every sealed file.
            if (writer is not null) writer.Dispose();
            else reserved.Release();
            gate?.Dispose();
            work?.Dispose();
        }
    }

    /// <summary>The checkpoint's writer, and the recipients' work left to do beside CRIU (loading, CA and CRL checks, wrapping).</summary>
    private static (SealedCheckpointWriter Writer, Task Recipients) StartWriter(ReservedDirectory reserved, StreamDumpOptions options)
    {
        if (options.LoadRecipients is not { } load)
        {
            var checks = options.RecipientChecks is { } c ? Task.Run(c) : Task.CompletedTask;
            return (SealedCheckpointWriter.Create(reserved, options.Seal), checks);
        }
        var writer = SealedCheckpointWriter.CreateBeforeRecipients(reserved, options.Seal);
        return (writer, Task.Run(() =>
        {
            var recipients = load();
            options.RecipientChecks?.Invoke();
            writer.WrapFor(recipients);
        }));
    }

    /// <summary>Bounded: the tasks are frozen while this waits, and a CRL on a stalled file system must not hold them.</summary>
    private static void AwaitRecipientChecks(Task checks, TimeSpan timeout)
    {
        bool done;
        try { done = checks.Wait(timeout); }
        catch (AggregateException) { done = true; }
        if (!done)
            throw new SealpointException(ErrorKind.External, $"the recipients' CA and CRL checks did not finish within {timeout.TotalSeconds:F0} s",
                "check that the PKI folder (CA certificate and CRL) can be read, then run the dump again");
        checks.GetAwaiter().GetResult(); // the check's own error, if it failed
    }

    private static string Summary(CriuProcess criu) => criu.LogSummary() is { Length: > 0 } s ? $": {s}" : "";
}

/// <summary>Turns SIGINT/SIGTERM during a CRIU run into a clean abort instead of an exit that strands CRIU.</summary>
internal sealed class InterruptGuard : IDisposable
{
    private readonly PosixSignalRegistration _int, _term;

    /// <param name="abort">Aborts the run; returns false when there is nothing left to abort (the signal then acts as usual).</param>
    public InterruptGuard(Func<bool> abort)
    {
        void Handler(PosixSignalContext c) => c.Cancel = abort();
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handler);
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handler);
    }

    public void Dispose()
    {
        _int.Dispose();
        _term.Dispose();
    }
}
