using System.Diagnostics;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Streaming;

public sealed record StreamRestoreOptions
{
    public required string CriuPath { get; init; }
    /// <summary>The sealed checkpoint.</summary>
    public required string ImagesDirectory { get; init; }
    /// <summary>
    /// Loads the recipient's key, once CRIU is starting: reading it is the process's first use of OpenSSL (~25 ms) and
    /// CRIU probes the kernel for ~50 ms before it asks for its first image. The restore disposes it. Check that the key
    /// file exists before (<see cref="Identity.RequireOwnerOnly"/>), so that a missing one refuses the restore before
    /// CRIU starts.
    /// </summary>
    public required Func<Identity> Identity { get; init; }
    public string? WorkDirectory { get; init; }
    /// <summary>Further CRIU options (--shell-job, -d, --pidfile, --tcp-established, -v4, ...).</summary>
    public IReadOnlyList<string> CriuArguments { get; init; } = [];
    /// <summary>What is checked before CRIU is given any image (docs/streaming.md, "Restore"); see <see cref="RestoreCheck"/>.</summary>
    public RestoreCheck Check { get; init; } = RestoreCheck.Tables;
}

/// <summary>
/// Checks of a sealed checkpoint before CRIU is given any image of a streamed restore. Whatever is chosen, every chunk
/// and page is still verified (its AEAD tag) before its plaintext goes into CRIU's pipe, and a bad one kills CRIU and
/// what it restored so far; these checks only decide how much is refused before CRIU restores anything at all.
/// </summary>
public enum RestoreCheck
{
    /// <summary>Nothing beyond the envelope and the directory listing (<c>--no-preverify</c>).</summary>
    None,
    /// <summary>
    /// Default. Every file except page files verified completely (they are small), and every page file's header and
    /// tag table checked against the envelope's digest, without decrypting a page: one pass over the page data.
    /// Refuses everything but a modified page body, which is caught when it is served.
    /// </summary>
    Tables,
    /// <summary>Every file read and verified completely first, then served (a second pass; <c>--verify-first</c>).</summary>
    Full,
}

public sealed record StreamRestoreResult(string CheckpointId, int Images, long Bytes, int MaxOpenImages, int ImagesMissing,
    TimeSpan Elapsed, TimeSpan VerifyElapsed, string? LogPath);

/// <summary><c>criu restore --stream</c> fed from a sealed checkpoint, plaintext only ever in a pipe (docs/streaming.md).</summary>
public static class StreamingRestore
{
    /// <summary>
    /// Reads every file through its verifying stream and discards the plaintext: nothing is written, and memory stays
    /// bounded (per thread one open file and one buffer) whatever the checkpoint's size, unlike a whole-file verify
    /// that keeps all of a page file's tags. With <paramref name="tablesOnly"/>, page files are checked by their
    /// header and tag table only (<see cref="SealedCheckpoint.CheckPageTable"/>): 16 bytes read per page, none decrypted.
    /// </summary>
    /// <param name="keep">Where small images, once verified in full, are kept to be served without a second decryption.</param>
    public static void VerifyAll(SealedCheckpoint checkpoint, bool tablesOnly = false, VerifiedImageCache? keep = null)
    {
        var files = checkpoint.Envelope.Files.Where(f => f.IsSealed || f.Kind == Format.FileEntryKinds.Plain)
            .OrderByDescending(f => f.Size ?? 0).ToList();
        try
        {
            Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, () => new byte[StreamingLimits.PagesBuffer],
                (file, _, buffer) =>
                {
                    if (tablesOnly && file.Kind == Format.FileEntryKinds.Pages)
                        checkpoint.CheckPageTable(file.Name, buffer);
                    else if (keep is not null && file.Size is { } size && size <= VerifiedImageCache.MaxImageSize)
                        KeepVerified(checkpoint, file.Name, (int)size, keep);
                    else
                        using (var s = checkpoint.OpenFile(file.Name, Environment.ProcessorCount))
                            while (s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) > 0) { }
                    GarbageBudget.AfterWork();
                    return buffer;
                },
                buffer => System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer));
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is SealpointException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    /// <summary>Reads a small image through its verifying stream; only once it ended verified is the plaintext kept.</summary>
    private static void KeepVerified(SealedCheckpoint checkpoint, string name, int size, VerifiedImageCache keep)
    {
        byte[] plaintext = GC.AllocateUninitializedArray<byte>(size);
        bool kept = false;
        try
        {
            using (var s = checkpoint.OpenFile(name))
            {
                int n = s.ReadAtLeast(plaintext, size, throwOnEndOfStream: false);
                // The stream checks the digest at its end: reading past the expected size proves both.
                if (n != size || s.Read(stackalloc byte[1]) != 0)
                    throw new IntegrityException($"'{name}' does not have the size the envelope gives it ({size} bytes)");
            }
            kept = keep.TryAdd(name, plaintext);
        }
        finally
        {
            if (!kept) System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    public static StreamRestoreResult Run(StreamRestoreOptions options, Action<string>? progress = null)
    {
        var timer = new PhaseTimer("sealpoint");
        timer.Mark("start-up, arguments");
        CriuArguments.Check(options.CriuArguments, "restore");
        // A mistyped directory is refused before CRIU starts; anything else about the checkpoint is checked beside it.
        Format.EnvelopeFile.RequireExists(Path.Combine(Path.GetFullPath(options.ImagesDirectory), Format.ImageFiles.EnvelopeName));
        var clock = Stopwatch.StartNew();
        using var work = WorkDirectory.Create(options.WorkDirectory, "restore");
        string log = CriuArguments.LogFileOf(options.CriuArguments, work.Path) ?? work.File("restore.log");
        UnixListener? listener = null;
        CriuProcess? criu = null;
        ServeSession? session = null;
        Identity? identity = null;
        SealedCheckpoint? checkpoint = null;
        using var verified = new VerifiedImageCache();
        // Interrupted while CRIU still reads images: the restore is incomplete, so CRIU and its tasks are killed.
        // Once CRIU has closed the stream the tree is restored; the signal then acts as it would on CRIU alone.
        using var interrupt = new InterruptGuard(() =>
        {
            if (session is null)
            {
                criu?.KillTree(); // given no image yet: nothing restored
                return false;
            }
            if (session.Disconnected) return false;
            session.Fail(new SealpointException(ErrorKind.External, "sealpoint was interrupted during the restore", "run the restore again"));
            return true;
        });
        try
        {
            // CRIU first: it probes the kernel for ~50 ms before it asks for its first image, while the key, the
            // envelope and the checks below take about as long. Its connection waits in the socket's backlog, unanswered,
            // until they passed; a refusal stops it there, given nothing (docs/streaming.md, "Restore").
            listener = new UnixListener(work.OwnFile(StreamerProtocol.ServeSocketName));
            var args = new List<string> { "restore", "--stream", "-D", work.Path, "-W", work.Path };
            if (!CriuArguments.SetsLogFile(options.CriuArguments)) args.AddRange(["-o", "restore.log"]);
            args.AddRange(options.CriuArguments);
            progress?.Invoke($"running {options.CriuPath} {string.Join(' ', args)}");
            criu = CriuProcess.Start(options.CriuPath, args, log);
            timer.Mark("CRIU started");

            identity = options.Identity();
            timer.Mark("identity (beside CRIU)");
            checkpoint = SealedCheckpoint.Open(options.ImagesDirectory, identity);
            timer.Mark("envelope and listing");
            if (options.Check != RestoreCheck.None)
            {
                progress?.Invoke($"checking the {checkpoint.Envelope.Files.Count} files of checkpoint {checkpoint.Envelope.CheckpointId} ({options.Check})");
                VerifyAll(checkpoint, tablesOnly: options.Check == RestoreCheck.Tables, keep: verified);
            }
            var verifyElapsed = clock.Elapsed;
            timer.Mark($"checks before CRIU is served ({options.Check})");

            // A failure kills CRIU and what it forked before the failing pipe closes: CRIU must never take a
            // cut-short image for a complete one.
            session = new ServeSession(checkpoint, listener, verified) { OnFailure = _ => criu?.KillTree() };
            listener = null; // the session's now
            work.Keep = true; // CRIU's log explains a failure from here on
            session.Start();
            criu.WaitForExit();
            timer.Mark("criu restore, images served");
            // CRIU is gone: an image it left unread can never be read; stop its thread.
            session.Stop();
            if (session.Failure is SealpointException se)
                throw new SealpointException(se.Kind, $"the streamed restore failed: {se.Message}",
                    $"{se.Fix ?? "see the log"}; CRIU and the tasks it was restoring were killed; {CriuProcess.SeeLog(log)}", se);
            if (session.Failure is { } other)
                throw new SealpointException(ErrorKind.Internal, $"the streamed restore failed: {other.Message}", CriuProcess.SeeLog(log), other);
            if (criu.ExitCode != 0)
                throw new SealpointException(ErrorKind.External, $"criu restore failed with exit code {criu.ExitCode}{(criu.LogSummary() is { Length: > 0 } s ? ": " + s : "")}",
                    $"{CriuProcess.SeeLog(log)}; the sealed checkpoint in {checkpoint.Directory} is unchanged and can be restored again");
            work.Keep = false;
            return new StreamRestoreResult(checkpoint.Envelope.CheckpointId, session.ImagesStreamed, session.BytesStreamed, session.MaxOpenAtOnce,
                session.ImagesMissing, clock.Elapsed, verifyElapsed, options.WorkDirectory is null ? null : log);
        }
        finally
        {
            if (criu is { HasExited: false })
            {
                criu.KillTree();
                criu.WaitForExit();
            }
            // Refused before CRIU was given an image: its own log only shows it starting, and is not kept.
            if (session is null && criu is not null && !CriuArguments.SetsLogFile(options.CriuArguments)) TryDelete(log);
            listener?.Dispose();
            session?.Dispose();
            criu?.Dispose();
            checkpoint?.Dispose();
            identity?.Dispose();
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
