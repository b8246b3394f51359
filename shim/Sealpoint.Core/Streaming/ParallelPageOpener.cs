using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// Reads a sealed memory-page file as one plaintext stream, with several threads verifying and decrypting batches
/// of pages ahead of the reader (pages are independent records at fixed offsets). The reader gets a batch only
/// after every page in it verified; the size and the digest (header, then every tag in page order) are checked at
/// the end, as <see cref="OpeningStream"/> does. Memory: <c>threads + 2</c> batches of 64 pages.
/// </summary>
internal sealed class ParallelPageOpener : Stream
{
    private const int BatchPages = 64;
    private const int Record = SealedFile.PageSize + SealedFile.TagSize;

    private readonly FileStream _input;
    private readonly SafeFileHandle _handle;
    private readonly string _name;
    private readonly long _plaintextSize;
    private readonly long _batchCount;
    private readonly string _expectedDigest;
    private readonly Slot[] _slots;
    private readonly Thread[] _workers;
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly object _gate = new();
    private long _nextToSchedule;
    private long _nextToRead;
    private int _offset;
    private long _position;
    private bool _closed;
    private bool _finished;
    private Exception? _error;

    public ParallelPageOpener(FileStream input, ReadOnlySpan<byte> headerBytes, string name, long plaintextSize, string expectedDigest,
        Func<FileCipher> newCipher, int threads)
    {
        _input = input;
        _handle = input.SafeFileHandle;
        _name = name;
        _plaintextSize = plaintextSize;
        _expectedDigest = expectedDigest;
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize);
        _batchCount = (pages + BatchPages - 1) / BatchPages;
        _digest.AppendData(headerBytes);
        _slots = new Slot[threads + 2];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = new Slot();
        _workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            var cipher = newCipher();
            _workers[i] = new Thread(() => Work(cipher), 256 * 1024) { IsBackground = true, Name = "page-opener" };
            _workers[i].Start();
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_nextToRead == _batchCount)
        {
            FinishChecks();
            return 0;
        }
        var slot = _slots[_nextToRead % _slots.Length];
        lock (_gate)
        {
            while (!(slot.Index == _nextToRead && slot.Ready) && _error is null) Monitor.Wait(_gate);
            if (_error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_error).Throw();
        }
        int n = Math.Min(buffer.Length, slot.PlainLength - _offset);
        slot.Plain.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        _position += n;
        if (_offset == slot.PlainLength)
        {
            for (int off = 0; off < slot.SealedLength;)
            {
                int len = Math.Min(Record, slot.SealedLength - off);
                _digest.AppendData(slot.Sealed.AsSpan(off + len - SealedFile.TagSize, SealedFile.TagSize));
                off += len;
            }
            CryptographicOperations.ZeroMemory(slot.Plain.AsSpan(0, slot.PlainLength));
            _offset = 0;
            lock (_gate)
            {
                slot.Index = -1;
                slot.Ready = false;
                _nextToRead++;
                Monitor.PulseAll(_gate);
            }
        }
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    private void FinishChecks()
    {
        if (_finished) return;
        _finished = true;
        long expectedLength = SealedFile.SealedSize(SealedFileKind.Pages, _plaintextSize);
        if (RandomAccess.GetLength(_handle) != expectedLength)
            throw new IntegrityException($"'{_name}' has {RandomAccess.GetLength(_handle)} bytes, the envelope says {expectedLength} (truncated or extended)");
        string digest = "sha256:" + Hex.Lower(_digest.GetHashAndReset());
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(digest), System.Text.Encoding.ASCII.GetBytes(_expectedDigest)))
            throw new IntegrityException($"'{_name}' does not match the digest in the envelope");
    }

    private void Work(FileCipher cipher)
    {
        try
        {
            while (true)
            {
                long index;
                Slot slot;
                lock (_gate)
                {
                    while (!_closed && _error is null && _nextToSchedule < _batchCount && _slots[_nextToSchedule % _slots.Length].Index != -1)
                        Monitor.Wait(_gate);
                    if (_closed || _error is not null || _nextToSchedule >= _batchCount) return;
                    index = _nextToSchedule++;
                    slot = _slots[index % _slots.Length];
                    slot.Index = index;
                    slot.Ready = false;
                }
                long firstPage = index * BatchPages;
                long plainOffset = firstPage * SealedFile.PageSize;
                int plainLen = (int)Math.Min((long)BatchPages * SealedFile.PageSize, _plaintextSize - plainOffset);
                int count = (plainLen + SealedFile.PageSize - 1) / SealedFile.PageSize;
                int sealedLen = plainLen + count * SealedFile.TagSize;
                long at = SealedFile.HeaderSize + firstPage * Record;
                for (int got = 0; got < sealedLen;)
                {
                    int n = RandomAccess.Read(_handle, slot.Sealed.AsSpan(got, sealedLen - got), at + got);
                    if (n == 0) throw new IntegrityException($"'{_name}' is truncated: page {firstPage + got / Record} is incomplete");
                    got += n;
                }
                for (int p = 0, inOff = 0, off = 0; off < plainLen; p++, off += SealedFile.PageSize)
                {
                    int len = Math.Min(SealedFile.PageSize, plainLen - off);
                    var tag = slot.Sealed.AsSpan(inOff + len, SealedFile.TagSize);
                    if (!cipher.TryOpen(firstPage + p, false, slot.Sealed.AsSpan(inOff, len), tag, slot.Plain.AsSpan(off, len)))
                    {
                        CryptographicOperations.ZeroMemory(slot.Plain.AsSpan(0, plainLen));
                        throw new IntegrityException($"'{_name}' failed authentication at page {firstPage + p} (modified, reordered or from another checkpoint)");
                    }
                    inOff += len + SealedFile.TagSize;
                }
                lock (_gate)
                {
                    slot.PlainLength = plainLen;
                    slot.SealedLength = sealedLen;
                    slot.Ready = true;
                    Monitor.PulseAll(_gate);
                }
            }
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                _error ??= e;
                Monitor.PulseAll(_gate);
            }
        }
        finally { cipher.Dispose(); }
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _plaintextSize;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _closed = true;
                Monitor.PulseAll(_gate);
            }
            foreach (var w in _workers) w.Join();
            foreach (var s in _slots) CryptographicOperations.ZeroMemory(s.Plain);
            _digest.Dispose();
            _input.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class Slot
    {
        public byte[] Plain { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * SealedFile.PageSize);
        public byte[] Sealed { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * Record);
        public long Index = -1;
        public bool Ready;
        public int PlainLength;
        public int SealedLength;
    }
}
