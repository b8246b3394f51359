using System.Security.Cryptography;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>What sealing one file produced; goes into the envelope's file list.</summary>
public sealed record SealedFileInfo(long PlaintextSize, long SealedSize, string Digest);

/// <summary>
/// A write-only stream that seals what is written into <c>output</c> as one sealed stream file, in bounded memory
/// (one 64 KiB chunk is held back so that the last chunk can be flagged).
/// Call <see cref="Finish"/> to seal the tail; disposing without it leaves an unfinished file that fails verification.
/// </summary>
internal sealed class SealingStream : WriteOnlyStream
{
    private readonly Stream _output;
    private readonly bool _ownsOutput;
    private readonly FileCipher _cipher;
    private readonly SealedFileKind _kind;
    private readonly int _chunk;
    private readonly byte[] _plain;
    private readonly byte[] _sealed;
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private int _filled;
    private long _index;
    private long _plaintextSize;
    private long _sealedSize;
    private SealedFileInfo? _result;

    public SealingStream(Stream output, FileCipher cipher, SealedFileHeader header, bool ownsOutput)
    {
        _output = output;
        _ownsOutput = ownsOutput;
        _cipher = cipher;
        _kind = header.Kind;
        _chunk = header.ChunkSize;
        if (_kind != SealedFileKind.Stream) throw new ArgumentException("page files are sealed by PagesSealingStream");
        _plain = GC.AllocateUninitializedArray<byte>(_chunk);
        _sealed = GC.AllocateUninitializedArray<byte>(_chunk + SealedFile.TagSize);
        byte[] h = header.ToBytes();
        _output.Write(h);
        _digest.AppendData(h);
        _sealedSize = h.Length;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_result is not null) throw new InvalidOperationException("sealed file already finished");
        while (!buffer.IsEmpty)
        {
            // A full buffer is only sealed once more data proves it is not the last chunk.
            if (_filled == _plain.Length) SealBuffer(final: false);
            int n = Math.Min(buffer.Length, _plain.Length - _filled);
            buffer[..n].CopyTo(_plain.AsSpan(_filled));
            _filled += n;
            _plaintextSize += n;
            buffer = buffer[n..];
        }
    }


    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Seals the tail, flushes, and returns the file's size and digest.</summary>
    public SealedFileInfo Finish()
    {
        if (_result is not null) return _result;
        SealBuffer(final: true);
        _output.Flush();
        _result = new SealedFileInfo(_plaintextSize, _sealedSize, "sha256:" + Hex.Lower(_digest.GetHashAndReset()));
        return _result;
    }

    private void SealBuffer(bool final)
    {
        var tag = _sealed.AsSpan(_filled, SealedFile.TagSize);
        _cipher.Seal(_index++, final, _plain.AsSpan(0, _filled), _sealed.AsSpan(0, _filled), tag);
        _digest.AppendData(tag);
        int outLen = _filled + SealedFile.TagSize;
        _output.Write(_sealed, 0, outLen);
        _sealedSize += outLen;
        CryptographicOperations.ZeroMemory(_plain.AsSpan(0, _filled));
        _filled = 0;
    }

    public override long Length => _plaintextSize;
    public override long Position { get => _plaintextSize; set => throw new NotSupportedException(); }
    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            CryptographicOperations.ZeroMemory(_plain.AsSpan(0, _filled)); // sealed chunks were wiped as they went
            _digest.Dispose();
            _cipher.Dispose();
            if (_ownsOutput) _output.Dispose();
        }
        base.Dispose(disposing);
    }
}
