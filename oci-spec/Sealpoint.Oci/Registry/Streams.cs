using Sealpoint.Oci.Content;
namespace Sealpoint.Oci.Registry;

/// <summary>A cancellation source that fires when nothing happened for <c>idle</c>: re-armed on every kick.</summary>
internal sealed class Watchdog : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly TimeSpan _idle;

    public Watchdog(TimeSpan idle, CancellationToken outer)
    {
        _idle = idle;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _cts.CancelAfter(idle);
    }

    public CancellationToken Token => _cts.Token;
    public bool Fired => _cts.IsCancellationRequested;
    public TimeSpan Idle => _idle;

    public void Kick()
    {
        try { _cts.CancelAfter(_idle); }
        catch (ObjectDisposedException) { }
    }

    public void Dispose() => _cts.Dispose();
}

/// <summary>Reads at most <c>length</c> bytes of an inner stream, counting them, kicking a watchdog and reporting progress.</summary>
internal sealed class CountingReadStream(Stream inner, long length, Watchdog? watchdog, Action<long>? onRead) : ForwardReadStream
{
    private long _read;

    public override int Read(Span<byte> buffer)
    {
        long left = length - _read;
        if (left <= 0) return 0;
        int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, left)]);
        Account(n);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        long left = length - _read;
        if (left <= 0) return 0;
        int n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, left)], ct).ConfigureAwait(false);
        Account(n);
        return n;
    }

    private void Account(int n)
    {
        if (n <= 0) return;
        _read += n;
        watchdog?.Kick();
        onRead?.Invoke(n);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override long Length => length;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// A response body read under a stall watchdog: each read gets the watchdog's token, so a server that stops
/// sending fails the read instead of hanging it. Disposes the response with the stream.
/// </summary>
internal sealed class GuardedResponseStream(Stream inner, HttpResponseMessage response, Watchdog watchdog, string what, Action<long>? onRead) : ForwardReadStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, watchdog.Token);
        try
        {
            int n = await inner.ReadAsync(buffer, linked.Token).ConfigureAwait(false);
            if (n > 0) { watchdog.Kick(); onRead?.Invoke(n); }
            return n;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new OciException(OciErrorKind.Network, $"{what}: no data for {watchdog.Idle.TotalSeconds:0} s", "check the registry and the network; try again") { Transient = true };
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new OciException(OciErrorKind.Network, $"{what}: connection lost ({e.Message})", "try again") { Transient = true };
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { inner.Dispose(); response.Dispose(); watchdog.Dispose(); }
        base.Dispose(disposing);
    }
}
