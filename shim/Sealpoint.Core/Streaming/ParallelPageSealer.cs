using System.Collections.Concurrent;
using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// Seals a memory-page image that arrives as one sequential stream (a CRIU pipe) on several threads. Pages are
/// independent records at fixed offsets, so batches are sealed in parallel and written positionally; the digest
/// (header, then every tag in page order) is fed in batch order. Byte for byte the same file as
/// <see cref="SealingStream"/> writes for a page image. Memory: <see cref="Batches"/> batches of
/// <see cref="BatchPages"/> pages (plaintext and sealed), whatever the image's size; a writer that gets ahead
/// waits for a free batch, which is how CRIU's pipe is throttled.
/// </summary>
internal sealed class ParallelPageSealer : Stream
{
    public const int BatchPages = 64;
    private const int Record = SealedFile.PageSize + SealedFile.TagSize;

    private readonly FileStream _output;
    private readonly byte[] _headerBytes;
    private readonly BlockingCollection<Batch> _work = new();
    private readonly BlockingCollection<Batch> _free = new();
    private readonly Thread[] _workers;
    private readonly CancellationTokenSource _abort = new();
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly Dictionary<long, Batch> _done = [];
    private readonly object _gate = new();
    private long _digested;
    private Batch? _current;
    private long _submitted;
    private long _plaintextSize;
    private Exception? _error;
    private SealedFileInfo? _result;

    public int Batches { get; }

    public ParallelPageSealer(FileStream output, SealedFileHeader header, Func<FileCipher> newCipher, int threads)
    {
        if (header.Kind != SealedFileKind.Pages) throw new ArgumentException("page images only", nameof(header));
        _output = output;
        _headerBytes = header.ToBytes();
        _output.Write(_headerBytes);
        _output.Flush();
        _digest.AppendData(_headerBytes);
        Batches = threads + 2;
        for (int i = 0; i < Batches; i++) _free.Add(new Batch());
        _workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            var cipher = newCipher();
            _workers[i] = new Thread(() => Work(cipher), 256 * 1024) { IsBackground = true, Name = "page-sealer" };
            _workers[i].Start();
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_result is not null) throw new InvalidOperationException("sealed file already finished");
        while (!buffer.IsEmpty)
        {
            ThrowIfFailed();
            _current ??= TakeFree();
            int n = Math.Min(buffer.Length, _current.Plain.Length - _current.Filled);
            buffer[..n].CopyTo(_current.Plain.AsSpan(_current.Filled));
            _current.Filled += n;
            _plaintextSize += n;
            buffer = buffer[n..];
            if (_current.Filled == _current.Plain.Length) Submit();
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>Free space of the current batch, to read into directly (saves a copy); then call <see cref="Advance"/>.</summary>
    public Span<byte> GetWriteBuffer()
    {
        ThrowIfFailed();
        _current ??= TakeFree();
        return _current.Plain.AsSpan(_current.Filled);
    }

    public void Advance(int count)
    {
        _current!.Filled += count;
        _plaintextSize += count;
        if (_current.Filled == _current.Plain.Length) Submit();
    }

    /// <summary>Seals the last batch, waits for every batch, and returns the file's size and digest.</summary>
    public SealedFileInfo Finish()
    {
        if (_result is not null) return _result;
        if (_current is { Filled: > 0 }) Submit();
        _work.CompleteAdding();
        foreach (var w in _workers) w.Join();
        ThrowIfFailed();
        long records = SealedFile.RecordCount(SealedFileKind.Pages, _plaintextSize);
        if (_digested != _submitted)
            throw new SealpointException(ErrorKind.Internal, $"page sealer digested {_digested} of {_submitted} batches");
        _output.Flush();
        _result = new SealedFileInfo(_plaintextSize, SealedFile.HeaderSize + _plaintextSize + records * SealedFile.TagSize,
            "sha256:" + Hex.Lower(_digest.GetHashAndReset()));
        return _result;
    }

    private Batch TakeFree()
    {
        try { return _free.Take(_abort.Token); }
        catch (OperationCanceledException) { ThrowIfFailed(); throw; }
    }

    private void Submit()
    {
        var batch = _current!;
        _current = null;
        batch.Index = _submitted++;
        _work.Add(batch);
    }

    private void Work(FileCipher cipher)
    {
        try
        {
            foreach (var batch in _work.GetConsumingEnumerable(_abort.Token))
            {
                long firstPage = batch.Index * BatchPages;
                int outLen = 0;
                for (int p = 0, off = 0; off < batch.Filled; p++, off += SealedFile.PageSize)
                {
                    int len = Math.Min(SealedFile.PageSize, batch.Filled - off);
                    cipher.Seal(firstPage + p, false, batch.Plain.AsSpan(off, len), batch.Sealed.AsSpan(outLen, len), batch.Sealed.AsSpan(outLen + len, SealedFile.TagSize));
                    outLen += len + SealedFile.TagSize;
                }
                CryptographicOperations.ZeroMemory(batch.Plain.AsSpan(0, batch.Filled));
                RandomAccess.Write(_output.SafeFileHandle, batch.Sealed.AsSpan(0, outLen), SealedFile.HeaderSize + firstPage * Record);
                batch.SealedLength = outLen;
                Digest(batch);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e)
        {
            lock (_gate) _error ??= e;
            _abort.Cancel();
        }
        finally { cipher.Dispose(); }
    }

    /// <summary>Feeds finished batches' tags to the digest in page order, then frees them.</summary>
    private void Digest(Batch finished)
    {
        lock (_gate)
        {
            _done[finished.Index] = finished;
            while (_done.Remove(_digested, out var next))
            {
                for (int off = 0; off < next.SealedLength;)
                {
                    int len = Math.Min(Record, next.SealedLength - off);
                    _digest.AppendData(next.Sealed.AsSpan(off + len - SealedFile.TagSize, SealedFile.TagSize));
                    off += len;
                }
                next.Filled = 0;
                _digested++;
                _free.Add(next);
            }
        }
    }

    private void ThrowIfFailed()
    {
        Exception? e;
        lock (_gate) e = _error;
        if (e is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _plaintextSize;
    public override long Position { get => _plaintextSize; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_result is null) _abort.Cancel();
            _work.CompleteAdding();
            foreach (var w in _workers) w.Join();
            while (_work.TryTake(out var queued)) CryptographicOperations.ZeroMemory(queued.Plain);
            foreach (var b in _free.Concat(_done.Values).Append(_current))
                if (b is not null) CryptographicOperations.ZeroMemory(b.Plain);
            _digest.Dispose();
            _output.Dispose();
            _abort.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class Batch
    {
        public byte[] Plain { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * SealedFile.PageSize);
        public byte[] Sealed { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * Record);
        public long Index;
        public int Filled;
        public int SealedLength;
    }
}
