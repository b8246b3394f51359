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
    private const string HookName = "sealpoint-post-dump.sh";
    private const string ReachedName = "sealpoint-post-dump.reached";
    private const string SealedName = "sealpoint-verdict.sealed";
    private const string FailedName = "sealpoint-verdict.failed";

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
        // The writer first: it checks the output directory (and, unless they load later, the recipients) before CRIU touches the process.
        var (writer, recipientChecks) = StartWriter(options);
        // The envelope is written while the tasks are frozen: its code's one-time set-up runs now, on the spare core.
        EnvelopeFile.StartWarmUp();
        WorkDirectory work;
        try { work = WorkDirectory.Create(options.WorkDirectory, "dump"); }
        catch
        {
            writer.Dispose();
            throw;
        }
        CaptureSession? session = null;
        CriuProcess? criu = null;
        bool sealedVerdict = false;
        using var interrupt = new InterruptGuard(() =>
        {
            session?.Fail(new SealpointException(ErrorKind.External, "sealpoint was interrupted during the dump", "run the dump again; the process was left running"));
            return true;
        });
        try
        {
            if (Posix.IsNoExec(work.Path))
                throw new SealpointException(ErrorKind.Usage, $"the work directory {work.Path} is on a file system mounted noexec, so CRIU cannot run Sealpoint's post-dump step there",
                    "give --work-dir on a file system that allows executables");
            string hook = work.OwnFile(HookName);
            string reached = work.OwnFile(ReachedName), sealedMark = work.OwnFile(SealedName), failedMark = work.OwnFile(FailedName);
            WriteHook(hook, work.Path, Environment.ProcessId);
            session = new CaptureSession(writer, work.OwnFile(StreamerProtocol.CaptureSocketName));
            session.Start();

            string log = CriuArguments.LogFileOf(options.CriuArguments, work.Path) ?? work.File("dump.log");
            var args = new List<string> { "dump", "--stream", "-D", work.Path, "-W", work.Path, "-t", options.Pid.ToString(), "--action-script", hook };
            if (!CriuArguments.SetsLogFile(options.CriuArguments)) args.AddRange(["-o", "dump.log"]);
            args.AddRange(options.CriuArguments);
            progress?.Invoke($"running {options.CriuPath} {string.Join(' ', args)}");
            if (recipientChecks.IsFaulted) recipientChecks.GetAwaiter().GetResult();
            timer.Mark("writer, work directory, socket");
            work.Keep = true; // CRIU's log explains a failure from here on
            criu = CriuProcess.Start(options.CriuPath, args, log);
            var failing = session;
            recipientChecks.ContinueWith(t => failing.Fail(t.Exception!.InnerException!), CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

            bool sawReached = false;
            while (!criu.WaitForExit(5))
            {
                if (sawReached || !File.Exists(reached)) continue;
                sawReached = true;
                timer.Mark("criu until post-dump");
                // CRIU wrote every image and waits in its post-dump step, the tasks still frozen.
                try
                {
                    AwaitRecipientChecks(recipientChecks, options.FinishTimeout);
                    session.Finish(options.FinishTimeout);
                    timer.Mark("last images sealed");
                    writer.Complete();
                    File.WriteAllBytes(sealedMark, []);
                    sealedVerdict = true;
                    timer.Mark("envelope");
                }
                catch (Exception e)
                {
                    File.WriteAllBytes(failedMark, []);
                    session.Fail(e);
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
            // Without the sealed verdict the writer was never completed: disposing removes every sealed file.
            if (criu is { HasExited: false })
            {
                criu.KillTree();
                criu.WaitForExit();
            }
            session?.Dispose();
            criu?.Dispose();
            writer.Dispose();
            work.Dispose();
        }
    }

    /// <summary>The checkpoint's writer, and the recipients' work left to do beside CRIU (loading, CA and CRL checks, wrapping).</summary>
    private static (SealedCheckpointWriter Writer, Task Recipients) StartWriter(StreamDumpOptions options)
    {
        if (options.LoadRecipients is not { } load)
        {
            var checks = options.RecipientChecks is { } c ? Task.Run(c) : Task.CompletedTask;
            return (SealedCheckpointWriter.Create(options.ImagesDirectory, options.Seal), checks);
        }
        var writer = SealedCheckpointWriter.CreateBeforeRecipients(options.ImagesDirectory, options.Seal);
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

    /// <summary>
    /// The post-dump action script. CRIU runs it for every action; at post-dump it says "reached" and waits for the
    /// verdict. Exiting non-zero makes CRIU resume the tasks and fail; so does Sealpoint vanishing (kill -0).
    /// </summary>
    private static void WriteHook(string path, string workDir, int sealpointPid)
    {
        string w = "'" + workDir.Replace("'", "'\\''") + "'";
        string script = $$"""
            #!/bin/sh
            # Written by 'sealpoint dump' for this dump only: holds CRIU at post-dump until the sealed checkpoint is on disk.
            [ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
            w={{w}}
            : > "$w/{{ReachedName}}" || exit 1
            while :; do
                [ -e "$w/{{SealedName}}" ] && exit 0
                [ -e "$w/{{FailedName}}" ] && exit 1
                kill -0 {{sealpointPid}} 2>/dev/null || exit 1
                sleep 0.005
            done

            """;
        File.WriteAllText(path, script.Replace("\r\n", "\n"));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
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
