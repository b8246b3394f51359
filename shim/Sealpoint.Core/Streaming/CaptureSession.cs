using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// The dump side: CRIU sends each image through its own pipe, and each is sealed as it arrives into
/// <see cref="SealedCheckpointWriter.CreateFile"/>. Plaintext exists only in the per-image buffers.
/// An image that reaches end of file is committed; whether the dump as a whole succeeded is decided by the
/// caller (CRIU's post-dump step), since a pipe also ends when CRIU dies.
/// </summary>
public sealed class CaptureSession : ImageStreamSession
{
    private readonly SealedCheckpointWriter writer;
    private readonly SmallImageLoop _small;
    private volatile bool _sealed;

    public CaptureSession(SealedCheckpointWriter writer, string socketPath) : this(writer, new UnixListener(socketPath)) { }

    /// <summary>A session on a socket CRIU may already be connected to (see <see cref="ImageStreamSession(UnixListener)"/>).</summary>
    public CaptureSession(SealedCheckpointWriter writer, UnixListener listener) : base(listener)
    {
        this.writer = writer;
        _small = new SmallImageLoop(writer, Cancellation, Fail, EndImage, AddBytes, (name, pipe, initial) =>
        {
            pipe.TryGrowPipe(StreamingLimits.PipeSize);
            ContinueImage(name, pipe, p => CapturePages(name, p, initial));
        });
    }

    protected override void OnStart() => StartThread("criu-small-images", () => _small.Run(Describe));

    protected override void HandleRequest(StreamerConnection connection, string filename)
    {
        if (!ImageFiles.IsValidName(filename) || filename == ImageFiles.EnvelopeName || filename.StartsWith(ImageFiles.EnvelopeName, StringComparison.Ordinal))
            throw StreamerProtocol.Violation($"CRIU asked to write an image named '{filename}', which is not a plain file name");
        var pipe = connection.ReceivePipe(filename, Cancellation);
        if (_sealed)
        {
            pipe.Dispose();
            throw StreamerProtocol.Violation($"image '{filename}' arrived after the dump was reported complete");
        }
        // Every image starts on the shared polling thread; a page image that grows past one chunk gets its own.
        try { BeginImage(filename); }
        catch
        {
            pipe.Dispose();
            throw;
        }
        _small.Add(filename, pipe);
    }

    /// <summary>A memory-page image (nearly all of a dump's bytes): its own thread, sealed on every core.</summary>
    private void CapturePages(string filename, OwnedFd pipe, byte[] initial)
    {
        using var sealing = writer.CreateFile(filename, Environment.ProcessorCount);
        try { sealing.Write(initial); }
        finally { CryptographicOperations.ZeroMemory(initial); }
        if (sealing.Inner is ParallelPageSealer pages)
        {
            // Page images (nearly all of a dump's bytes) are read straight into the sealer's batch buffers.
            int n;
            while ((n = pipe.ReadSome(pages.GetWriteBuffer(), Cancellation, -1, $"image '{filename}'")) > 0)
            {
                pages.Advance(n);
                AddBytes(n);
            }
        }
        else
        {
            byte[] buffer = RentBuffer(pages: true);
            try
            {
                int n;
                while ((n = pipe.ReadSome(buffer, Cancellation, -1, $"image '{filename}'")) > 0)
                {
                    sealing.Write(buffer.AsSpan(0, n));
                    AddBytes(n);
                }
            }
            finally { ReturnBuffer(buffer); }
        }
        sealing.Commit();
    }

    /// <summary>
    /// Called when CRIU reports the dump complete: waits for every open image to reach its end and be sealed.
    /// Throws the session's failure, if any.
    /// </summary>
    public void Finish(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        // A request CRIU sent just before post-dump may still be on its way to an image thread.
        while (!RequestsDrained() && Failure is null && Environment.TickCount64 < deadline) Thread.Sleep(1);
        if (!RequestsDrained() || !WaitForOpenImages(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64))))
            Fail(new SealpointException(ErrorKind.External, $"CRIU reported the dump complete but {OpenImages} image(s) were still open after {timeout.TotalSeconds:F0} s",
                "see CRIU's log in the work directory"));
        _sealed = true;
        if (Failure is { } failure) throw failure;
    }

    protected override void OnDispose() => _small.Dispose();
}
