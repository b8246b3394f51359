using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Checkpoint;

/// <summary>
/// Seals a CRIU image directory into a sealed checkpoint while CRIU is still dumping into it. CRIU's dump is one
/// thread; meanwhile a follower thread seals each memory-page image up to the whole 1 MiB blocks CRIU has appended
/// so far (CRIU writes page images once, front to back). <see cref="Complete"/>, called once CRIU has succeeded,
/// seals the rest on every core: the page images' last blocks and every other file, which CRIU may rewrite until
/// it ends. The source is only read, so a dump that fails loses nothing; a page image that was replaced or shrank
/// is sealed again from the start. For the runtime, where CRIU runs inside runc and cannot stream (docs/benchmarks.md).
/// </summary>
public sealed partial class FollowingSealer : IDisposable
{
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(3);
    /// <summary>Sealed per file and step: small enough that stopping never waits long for a single thread.</summary>
    private const long StepBytes = 8 << 20;

    private readonly string _source;
    private readonly SealedCheckpointWriter _writer;
    private readonly Dictionary<string, Followed> _files = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private volatile bool _stop;
    private Exception? _failure;

    private FollowingSealer(string source, SealedCheckpointWriter writer)
    {
        _source = source;
        _writer = writer;
        _thread = new Thread(Follow) { IsBackground = true, Name = "following-sealer" };
    }

    /// <summary>Starts following <paramref name="source"/> (CRIU's image directory) into a new sealed checkpoint in <paramref name="destination"/>.</summary>
    public static FollowingSealer Start(string source, string destination, SealOptions options)
    {
        var writer = SealedCheckpointWriter.Create(destination, options);
        var sealer = new FollowingSealer(Path.GetFullPath(source), writer);
        sealer._thread.Start();
        return sealer;
    }

    /// <summary>Bytes of page images sealed while CRIU was still writing (for the trace), known after <see cref="Complete"/>.</summary>
    public long SealedWhileFollowing { get; private set; }

    /// <summary>What the follower has sealed up to now (tests).</summary>
    internal long SealedWhileFollowingSoFar() => _progress;

    private long _progress;

    /// <summary>Stops following and seals everything CRIU left: call only after CRIU succeeded.</summary>
    public Envelope Complete()
    {
        StopFollowing();
        if (_failure is not null)
        {
            // What the follower met (a full image path, most likely) ends the sealing; the source is untouched, so the
            // caller still has the plaintext dump (the runtime keeps it in staging and says how to recover).
            throw new SealpointException(ErrorKind.Io, $"sealing the page images while CRIU wrote them failed: {Describe(_failure)}",
                "check free space and permissions of the image path; the plaintext dump is still in staging");
        }
        SealedWhileFollowing = _files.Values.Sum(f => f.Pages.Sealed);
        var entries = CheckpointSealer.Scan(_source);
        foreach (var link in entries.Where(e => e.LinkTarget is not null)) _writer.AddSymlink(link.Name, link.LinkTarget!);
        var files = entries.Where(e => e.LinkTarget is null).OrderByDescending(e => ((FileInfo)e).Length).ToList();
        if (_files.Keys.Except(files.Select(f => f.Name)).FirstOrDefault() is { } stale)
            throw new SealpointException(ErrorKind.Internal, $"page image '{stale}' disappeared from {_source} while CRIU was dumping",
                "take the checkpoint again");
        CheckpointSealer.ForEachInParallel(files, f =>
        {
            if (_files.TryGetValue(f.Name, out var followed)) FinishFollowed(followed, f.FullName);
            else _writer.SealFile(f.Name, f.FullName);
        });
        return _writer.Complete();
    }

    private static void FinishFollowed(Followed followed, string path)
    {
        if (!FileSystem.SameFile(followed.Source, path))
            throw new SealpointException(ErrorKind.Internal, $"page image {path} was replaced while CRIU was dumping", "take the checkpoint again");
        followed.Pages.Finish(followed.Source, RandomAccess.GetLength(followed.Source));
    }

    private void Follow()
    {
        // Only the cores CRIU leaves idle: at the lowest priority the follower never slows the dump down.
        LowerPriority();
        try
        {
            while (!_stop)
            {
                bool progressed = false;
                foreach (string path in Directory.EnumerateFiles(_source, "pages-*.img"))
                {
                    if (_stop) break;
                    string name = Path.GetFileName(path);
                    if (!ImageFiles.IsPages(name) || !FileSystem.IsRegularFile(path)) continue;
                    if (!_files.TryGetValue(name, out var followed))
                    {
                        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                        try { followed = new Followed(handle, _writer.BeginGrowingPages(name)); }
                        catch { handle.Dispose(); throw; }
                        _files.Add(name, followed);
                    }
                    long before = followed.Pages.Sealed;
                    followed.Pages.Advance(followed.Source, RandomAccess.GetLength(followed.Source), StepBytes);
                    progressed |= followed.Pages.Sealed > before;
                    Interlocked.Add(ref _progress, followed.Pages.Sealed - before);
                }
                if (!progressed) Thread.Sleep(Idle);
            }
        }
        catch (Exception e)
        {
            _failure = e;
        }
    }

    /// <summary>nice 19 for this thread only (Linux: a thread's own priority, by its thread id).</summary>
    private static void LowerPriority()
    {
        try { _ = setpriority(0 /* PRIO_PROCESS */, gettid(), 19); }
        catch (EntryPointNotFoundException) { }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int setpriority(int which, int who, int priority);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int gettid();

    private void StopFollowing()
    {
        _stop = true;
        if (_thread.IsAlive) _thread.Join();
    }

    private static string Describe(Exception e) => e is SealpointException s ? s.Describe() : e.Message;

    /// <summary>Removes everything written unless <see cref="Complete"/> succeeded.</summary>
    public void Dispose()
    {
        StopFollowing();
        foreach (var f in _files.Values) f.Dispose();
        _writer.Dispose();
    }

    private sealed record Followed(SafeFileHandle Source, GrowingPageFile Pages) : IDisposable
    {
        public void Dispose()
        {
            Pages.Dispose();
            Source.Dispose();
        }
    }
}
