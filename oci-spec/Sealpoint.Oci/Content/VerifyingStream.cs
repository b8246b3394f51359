using System.Security.Cryptography;

namespace Sealpoint.Oci.Content;

/// <summary>
/// Reads content of a known digest and size and fails instead of returning anything beyond the size, and at
/// the end unless size and digest match. A consumer that reads to the end has therefore verified the blob;
/// one that stops early has not (and must not act on what it read).
/// </summary>
public sealed class VerifyingStream : ForwardReadStream
{
    private readonly Stream _inner;
    private readonly Digest _digest;
    private readonly long _size;
    private readonly string _what;
    private readonly IncrementalHash _hash;
    private long _read;
    private bool _verified;

    public VerifyingStream(Stream inner, Digest digest, long size, string what)
    {
        _inner = inner;
        _digest = digest;
        _size = size;
        _what = what;
        _hash = digest.NewHasher();
    }

    public bool Verified => _verified;

    public override int Read(Span<byte> buffer)
    {
        if (_verified) return 0;
        // Ask for one byte more than remains, so an over-long body is noticed without reading all of it.
        long remaining = _size - _read;
        int want = (int)Math.Min(buffer.Length, remaining + 1);
        if (want == 0) want = 1;
        int n = _inner.Read(buffer[..want]);
        return Account(buffer, n);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_verified) return 0;
        long remaining = _size - _read;
        int want = (int)Math.Min(buffer.Length, remaining + 1);
        if (want == 0) want = 1;
        int n = await _inner.ReadAsync(buffer[..want], ct).ConfigureAwait(false);
        return Account(buffer.Span, n);
    }

    private int Account(Span<byte> buffer, int n)
    {
        if (n > 0)
        {
            if (_read + n > _size)
                throw new OciException(OciErrorKind.Integrity, $"{_what} is longer than its descriptor's {_size} bytes",
                    "the content does not match the manifest: it was replaced or corrupted");
            _hash.AppendData(buffer[..n]);
            _read += n;
            if (_read == _size && _size > 0)
            {
                // Content complete: check now, and again at EOF below for zero-length blobs.
                Finish();
            }
            return n;
        }
        Finish();
        return 0;
    }

    private void Finish()
    {
        if (_verified) return;
        if (_read != _size)
            throw new OciException(OciErrorKind.Integrity, $"{_what} ended after {_read} of {_size} bytes",
                "the transfer was cut short or the content is truncated; try again") { Transient = true };
        if (!_digest.Matches(_hash.GetHashAndReset()))
            throw new OciException(OciErrorKind.Integrity, $"{_what} does not match its digest {_digest}",
                "the content was corrupted or substituted; do not use it");
        _verified = true;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override long Length => _size;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _inner.Dispose(); _hash.Dispose(); }
        base.Dispose(disposing);
    }

    /// <summary>Reads a whole small blob into memory, verified.</summary>
    public static async Task<byte[]> ReadAllAsync(Stream verifying, long size, CancellationToken ct)
    {
        if (size > int.MaxValue) throw new OciException(OciErrorKind.Protocol, $"content of {size} bytes is too large to hold in memory");
        var buffer = new byte[size];
        int off = 0;
        while (off < buffer.Length)
        {
            int n = await verifying.ReadAsync(buffer.AsMemory(off), ct).ConfigureAwait(false);
            if (n == 0) break;
            off += n;
        }
        // One more read drives the check at EOF (also for empty blobs).
        var probe = new byte[1];
        if (await verifying.ReadAsync(probe, ct).ConfigureAwait(false) != 0)
            throw new OciException(OciErrorKind.Integrity, "content is longer than its descriptor says");
        return buffer;
    }
}
