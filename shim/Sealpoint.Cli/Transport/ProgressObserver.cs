using System.Collections.Concurrent;
using Sealpoint.Oci;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;

namespace Sealpoint.Cli.Transport;

/// <summary>
/// Progress of registry transfers: a one-line bar redrawn on stderr when it is a terminal; otherwise only retries are
/// reported (one line each), so logs stay readable. Shows digests and sizes, never credentials.
/// </summary>
public sealed class ProgressObserver(TextWriter stderr, bool terminal) : ITransferObserver
{
    private readonly ConcurrentDictionary<Digest, (long Size, long Done)> _active = new();
    private readonly object _lock = new();
    private long _lastDraw;

    public void Started(Descriptor blob, string action)
    {
        _active[blob.Digest] = (blob.Size, 0);
        Draw(force: true);
    }

    public void Progress(Descriptor blob, long bytesDone)
    {
        _active[blob.Digest] = (blob.Size, bytesDone);
        Draw(force: false);
    }

    public void Finished(Descriptor blob, TransferOutcome outcome)
    {
        _active.TryRemove(blob.Digest, out _);
        Draw(force: true);
    }

    public void Retrying(string operation, int attempt, TimeSpan delay, string reason)
    {
        lock (_lock)
        {
            if (terminal) stderr.Write("\r\x1b[K");
            stderr.WriteLine($"sealpoint: {operation} failed (attempt {attempt}): {reason}; retrying in {delay.TotalSeconds:0.0} s");
        }
    }

    private void Draw(bool force)
    {
        if (!terminal) return;
        long now = Environment.TickCount64;
        if (!force && now - Interlocked.Read(ref _lastDraw) < 100) return;
        Interlocked.Exchange(ref _lastDraw, now);
        lock (_lock)
        {
            var items = _active.ToArray();
            if (items.Length == 0) { stderr.Write("\r\x1b[K"); return; }
            long size = items.Sum(i => i.Value.Size), done = items.Sum(i => Math.Min(i.Value.Done, i.Value.Size));
            double fraction = size == 0 ? 1 : (double)done / size;
            int width = 30, filled = (int)(fraction * width);
            stderr.Write($"\r\x1b[K[{new string('#', filled)}{new string(' ', width - filled)}] {fraction * 100,5:0.0}% {done / 1048576.0:0.0}/{size / 1048576.0:0.0} MiB, {items.Length} blob(s)");
        }
    }

    /// <summary>Clears the bar before the command prints its result.</summary>
    public void Clear()
    {
        if (terminal) lock (_lock) stderr.Write("\r\x1b[K");
    }
}
