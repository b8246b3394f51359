using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// The restore side: CRIU asks for images by name; those in the checkpoint are answered "exists" and their
/// plaintext is written into the pipe CRIU passes, straight from <see cref="SealedCheckpoint.OpenFile"/>, which
/// releases a chunk or page only after it verified. Images not in the checkpoint are answered "does not exist"
/// (CRIU asks for optional images). A file may be asked for more than once: an image kept by the checks before
/// CRIU started (<see cref="VerifiedImageCache"/>) is served again from memory, any other is read afresh.
/// </summary>
public sealed class ServeSession(SealedCheckpoint checkpoint, UnixListener listener, VerifiedImageCache? verified = null) : ImageStreamSession(listener)
{
    public ServeSession(SealedCheckpoint checkpoint, string socketPath, VerifiedImageCache? verified = null)
        : this(checkpoint, new UnixListener(socketPath), verified) { }

    private readonly Dictionary<string, FileEntry> _files = checkpoint.Envelope.Files
        .Where(f => f.Kind != FileEntryKinds.Symlink).ToDictionary(f => f.Name, StringComparer.Ordinal);
    private int _missing;
    private int _stoppedEarly;
    private readonly object _parallelGate = new();
    private int _parallelPageImages, _maxParallelPageImages;

    /// <summary>
    /// Large page images verified and decrypted by all cores at once. Each holds (cores + 2) MiB of batches, and CRIU
    /// restoring a tree reads every task's pages at the same time: past this many, an image is served by one thread
    /// with one buffer, so memory does not grow with the number of large processes (the cores are busy by then anyway).
    /// </summary>
    public const int ParallelPageImagesAtOnce = 2;

    /// <summary>Requests answered "does not exist".</summary>
    public int ImagesMissing => _missing;

    /// <summary>Images CRIU closed before reading all of them (it may legitimately read only a prefix).</summary>
    public int ImagesStoppedEarly => _stoppedEarly;

    /// <summary>The most page images served by all cores at the same time (at most <see cref="ParallelPageImagesAtOnce"/>).</summary>
    public int MaxParallelPageImages { get { lock (_parallelGate) return _maxParallelPageImages; } }

    /// <summary>
    /// A restore opens an image in four turns (request, reply, pipe, data), and CRIU forks a tree's tasks one after the
    /// other, each opening its images: a tree of 100 processes asks for ~700. Looking for CRIU's next message for 50 µs
    /// before sleeping saves two wake-ups of a sleeping core per image (tree of 100: 346 ms against 371 ms, medians of 9).
    /// </summary>
    protected override int ControlSpinMicroseconds => 50;

    protected override void HandleRequest(StreamerConnection connection, string filename)
    {
        bool exists = _files.TryGetValue(filename, out var entry);
        if (!exists) Interlocked.Increment(ref _missing);
        connection.SendReply(exists, Cancellation);
        if (!exists) return;
        var pipe = connection.ReceivePipe(filename, Cancellation);
        pipe.TryGrowPipe(StreamingLimits.PipeSize);
        if (entry!.Size is { } size && size <= StreamingLimits.StreamBuffer && size <= pipe.PipeCapacity)
        {
            // A small image fits the empty pipe whole, so writing it never waits for CRIU to read: served here, on the
            // control thread, instead of on a thread of its own (a tree of 100 processes asks for ~700 of them).
            StartImage(filename, pipe, p => ServeSmall(entry, p), onThisThread: true);
            return;
        }
        StartImage(filename, pipe, p => Serve(entry, p));
    }

    /// <summary>From the plaintext the checks before CRIU verified, when kept; otherwise read and verified now.</summary>
    private void ServeSmall(FileEntry entry, OwnedFd pipe)
    {
        if (verified?.TryGet(entry.Name, out var plaintext) != true)
        {
            Serve(entry, pipe);
            return;
        }
        try
        {
            pipe.WriteAll(plaintext.Span, Cancellation, -1, $"image '{entry.Name}'");
            AddBytes(plaintext.Length);
        }
        catch (PeerClosedException)
        {
            Interlocked.Increment(ref _stoppedEarly);
        }
    }

    private void Serve(FileEntry entry, OwnedFd pipe)
    {
        bool parallel = SealedCheckpoint.OpensInParallel(entry) && TakeParallelTurn();
        try
        {
            Serve(entry, pipe, parallel ? Environment.ProcessorCount : 1);
        }
        finally
        {
            if (parallel) lock (_parallelGate) _parallelPageImages--;
        }
    }

    private bool TakeParallelTurn()
    {
        lock (_parallelGate)
        {
            if (_parallelPageImages == ParallelPageImagesAtOnce) return false;
            _parallelPageImages++;
            _maxParallelPageImages = Math.Max(_maxParallelPageImages, _parallelPageImages);
            return true;
        }
    }

    private void Serve(FileEntry entry, OwnedFd pipe, int threads)
    {
        using var input = checkpoint.OpenFile(entry.Name, threads);
        if (input is ParallelPageOpener pages)
        {
            string what = $"image '{entry.Name}'";
            try { pages.SpliceInto(pipe, Cancellation, what, n => AddBytes(n)); }
            catch (PeerClosedException) { Interlocked.Increment(ref _stoppedEarly); }
            catch (Exception e) when (e is not StreamCancelledException)
            {
                // The pipe may still refer to verified batches: CRIU is stopped (OnFailure) before disposing wipes them.
                Fail(Describe(e, entry.Name));
                throw;
            }
            return;
        }
        byte[] buffer = RentBuffer(entry.Kind == FileEntryKinds.Pages);
        try
        {
            int n;
            while ((n = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false)) > 0)
            {
                pipe.WriteAll(buffer.AsSpan(0, n), Cancellation, -1, $"image '{entry.Name}'");
                AddBytes(n);
            }
        }
        catch (PeerClosedException)
        {
            Interlocked.Increment(ref _stoppedEarly);
        }
        finally { ReturnBuffer(buffer); }
    }
}
