namespace Sealpoint.Core.Format;

/// <summary>The members every forward-only, write-only stream of Sealpoint shares, in one place.</summary>
public abstract class WriteOnlyStream : Stream
{
    public sealed override bool CanRead => false;
    public sealed override bool CanSeek => false;
    public sealed override bool CanWrite => true;
    public override void Flush() { }
    public sealed override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public abstract override void Write(ReadOnlySpan<byte> buffer);
}

/// <summary>The members every forward-only, read-only stream of Sealpoint shares, in one place.</summary>
public abstract class ReadOnlyStream : Stream
{
    public sealed override bool CanRead => true;
    public sealed override bool CanSeek => false;
    public sealed override bool CanWrite => false;
    public sealed override void Flush() { }
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public abstract override int Read(Span<byte> buffer);
}

/// <summary>
/// A reader that releases plaintext one verified block at a time: <see cref="NextBlock"/> fills <see cref="Plain"/>
/// only after the block's tags checked, and reads are served from it. The buffer is wiped on dispose.
/// </summary>
internal abstract class VerifiedBlockReader(int blockSize) : ReadOnlyStream
{
    private int _available;
    private int _offset;
    private long _position;
    private int _highWater;

    protected byte[] Plain { get; } = GC.AllocateUninitializedArray<byte>(blockSize);

    /// <summary>Verifies and decrypts the next block into <see cref="Plain"/>; returns its length, or -1 at the end.</summary>
    protected abstract int NextBlock();

    public override int Read(Span<byte> buffer)
    {
        while (_offset == _available)
        {
            int n = NextBlock();
            if (n < 0) return 0;
            (_available, _offset) = (n, 0);
            _highWater = Math.Max(_highWater, n);
        }
        int count = Math.Min(buffer.Length, _available - _offset);
        Plain.AsSpan(_offset, count).CopyTo(buffer);
        _offset += count;
        _position += count;
        return count;
    }

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        // Later blocks overwrite earlier ones, so everything plaintext ever touched lies below the high-water mark.
        if (disposing) System.Security.Cryptography.CryptographicOperations.ZeroMemory(Plain.AsSpan(0, _highWater));
        base.Dispose(disposing);
    }
}
