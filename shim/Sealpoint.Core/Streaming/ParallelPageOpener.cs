using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// Reads a sealed memory-page file (docs/format.md: page i at 4096*i, tag i at P + 16*i, header last) as one plaintext
/// stream, with several threads verifying and decrypting batches of pages ahead of the reader. The reader gets a
/// batch only after every page in it verified; the size and the digest (header, then every tag in page order) are
/// checked at the end, as <see cref="PagesOpeningStream"/> does. Memory: <c>threads + 2</c> batches of 64 pages.
/// </summary>
internal sealed class ParallelPageOpener : ReadOnlyStream
{
    private const int BatchPages = 64;

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

    public ParallelPageOpener(SafeFileHandle handle, ReadOnlySpan<byte> headerBytes, string name, long plaintextSize, string expectedDigest,
        Func<FileCipher> newCipher, int threads)
    {
        _handle = handle;
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
            _digest.AppendData(slot.Tags.AsSpan(0, slot.TagLength));
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
                var tags = slot.Tags.AsSpan(0, count * SealedFile.TagSize);
                PagesFile.ReadExactly(_handle, tags, _plaintextSize + firstPage * SealedFile.TagSize, _name);
                PagesFile.ReadExactly(_handle, slot.Plain.AsSpan(0, plainLen), plainOffset, _name);
                // Decrypts in place; on a bad tag the block is wiped and the error names the page.
                PagesFile.OpenBlock(cipher, firstPage, slot.Plain.AsSpan(0, plainLen), tags, _name);
                lock (_gate)
                {
                    slot.PlainLength = plainLen;
                    slot.TagLength = tags.Length;
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

    public override long Length => _plaintextSize;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

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
            _handle.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class Slot
    {
        public byte[] Plain { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * SealedFile.PageSize);
        public byte[] Tags { get; } = new byte[BatchPages * SealedFile.TagSize];
        public long Index = -1;
        public bool Ready;
        public int PlainLength;
        public int TagLength;
    }
}
