using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// Reads a sealed memory-page file (docs/format.md: page i at 4096*i, tag i at P + 16*i, header last) as one plaintext
/// stream, with several threads verifying and decrypting batches of pages ahead of the reader. The reader gets a
/// batch only after every page in it verified; the size and the digest (header, then every tag in page order) are
/// checked at the end, as <see cref="PagesOpeningStream"/> does. Memory: <c>threads + 2</c> batches of 256 pages (the
/// two beyond one per thread are what a 1 MiB pipe holds by reference while the next batch goes in, see
/// <see cref="SpliceInto"/>), outside the garbage-collected heap so that they never move, and touched only as used.
/// </summary>
internal sealed unsafe class ParallelPageOpener : ReadOnlyStream
{
    // A batch fills a 1 MiB pipe: each vmsplice takes the pipe's lock, and spins while CRIU's read holds it copying
    // what the pipe has. 64-page batches made 4 times as many such meetings: a 1 GiB restore spent ~0.25 s more CPU
    // (1.30 s against 1.05 s) and took ~25% longer (docs/benchmarks.md, "Restore: batches that fill the pipe").
    private const int BatchPages = 256;
    private const int BatchBytes = BatchPages * SealedFile.PageSize;

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
        slot.Plain.Slice(_offset, n).CopyTo(buffer);
        _offset += n;
        _position += n;
        if (_offset == slot.PlainLength)
        {
            _digest.AppendData(slot.Tags.AsSpan(0, slot.TagLength));
            _offset = 0;
            _nextToRead++;
            Release(slot);
        }
        return n;
    }

    /// <summary>
    /// Moves the whole plaintext into <paramref name="pipe"/> with vmsplice(2): the pipe takes references to the
    /// verified batches instead of copies. On two cores a pipe write copies every page into new pipe pages and spins
    /// on the pipe's lock while CRIU reads (a C test moving 1 GiB: 0.66-1.47 s of writer CPU with write(2), 0.07-0.10 s
    /// with vmsplice). A batch is wiped and reused only once the reader consumed every byte spliced from it (bytes
    /// spliced minus the pipe's unread bytes: a pipe is first in, first out), and this returns only once the pipe is
    /// drained or its reader gone, so no batch changes while the pipe still refers to it. Throws
    /// <see cref="PeerClosedException"/> when the reader closes early. After any other failure (once the reader read
    /// what the pipe holds, or after 2 s) the caller stops the reader (CRIU) before disposing this, which wipes the
    /// batches the pipe may still refer to.
    /// </summary>
    public void SpliceInto(OwnedFd pipe, PollCancellation cancel, string what, Action<int> moved)
    {
        long spliced = 0;
        var inPipe = new Queue<(Slot Slot, long End)>(_slots.Length);
        // The pipe never holds more than its capacity, so whatever was spliced before its last `capacity` bytes has been
        // read: known without FIONREAD, which takes the pipe's lock and spins on it while CRIU's read holds it (11% of a
        // 1 GiB restore's CPU samples, on the core the workers decrypt on). The capacity is read once: ServeSession sets
        // it before serving, and CRIU never resizes an image pipe (criu/img-streamer.c makes it with pipe(2)); a pipe
        // that grew later could only make this bound release a batch CRIU has not read, so it is taken before serving.
        long capacity = pipe.PipeCapacity is > 0 and var c ? c : long.MaxValue / 2;
        void ReleaseProvablyConsumed()
        {
            long consumed = spliced - capacity;
            while (inPipe.TryPeek(out var s) && s.End <= consumed) Release(inPipe.Dequeue().Slot);
        }
        void ReleaseConsumed()
        {
            long consumed = spliced - pipe.PipeUnread;
            while (inPipe.TryPeek(out var s) && s.End <= consumed) Release(inPipe.Dequeue().Slot);
        }
        // Until the reader consumed every batch or went away (a killed CRIU), or the deadline: what it reads must be what
        // was verified, never a batch already wiped.
        void Drain(PollCancellation? stop, long deadline = long.MaxValue)
        {
            while (inPipe.Count > 0 && !pipe.ReaderGone && Environment.TickCount64 < deadline)
            {
                if (stop is { IsCancelled: true }) throw new StreamCancelledException();
                Thread.Sleep(1);
                ReleaseConsumed();
            }
        }
        try
        {
            for (; _nextToRead < _batchCount; _nextToRead++)
            {
                var slot = _slots[_nextToRead % _slots.Length];
                while (true)
                {
                    lock (_gate)
                    {
                        if (_error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_error).Throw();
                        if (slot.Index == _nextToRead && slot.Ready) break;
                        // The workers may be waiting for a batch the reader has consumed meanwhile: look again soon.
                        if (inPipe.Count == 0) Monitor.Wait(_gate);
                        else Monitor.Wait(_gate, 1);
                    }
                    if (cancel.IsCancelled) throw new StreamCancelledException();
                    ReleaseConsumed();
                }
                for (int off = 0; off < slot.PlainLength;)
                {
                    int n = pipe.SpliceSome(slot.Pointer + off, slot.PlainLength - off, cancel, what);
                    off += n;
                    moved(n);
                }
                _digest.AppendData(slot.Tags.AsSpan(0, slot.TagLength));
                spliced += slot.PlainLength;
                _position = spliced;
                inPipe.Enqueue((slot, spliced));
                ReleaseProvablyConsumed();
            }
            FinishChecks();
            Drain(cancel);
        }
        catch (Exception e) when (e is not PeerClosedException)
        {
            // What the pipe holds was verified and may still be read, for a short while: then the caller stops CRIU,
            // and only after that does Dispose wipe the batches the pipe may still refer to.
            Drain(null, Environment.TickCount64 + 2000);
            throw;
        }
        while (inPipe.TryDequeue(out var rest)) Release(rest.Slot);
    }

    /// <summary>
    /// Gives a batch whose plaintext was handed on back to the workers. It is not wiped here: the next batch overwrites
    /// it, and Dispose wipes every slot ever used (wiping each would write a 1 GiB restore's plaintext once more).
    /// </summary>
    private void Release(Slot slot)
    {
        lock (_gate)
        {
            slot.Index = -1;
            slot.Ready = false;
            Monitor.PulseAll(_gate);
        }
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
                    slot.Used = true;
                }
                long firstPage = index * BatchPages;
                long plainOffset = firstPage * SealedFile.PageSize;
                int plainLen = (int)Math.Min((long)BatchPages * SealedFile.PageSize, _plaintextSize - plainOffset);
                int count = (plainLen + SealedFile.PageSize - 1) / SealedFile.PageSize;
                var tags = slot.Tags.AsSpan(0, count * SealedFile.TagSize);
                PagesFile.ReadExactly(_handle, tags, _plaintextSize + firstPage * SealedFile.TagSize, _name);
                PagesFile.ReadExactly(_handle, slot.Plain[..plainLen], plainOffset, _name);
                // Decrypts in place; on a bad tag the block is wiped and the error names the page.
                PagesFile.OpenBlock(cipher, firstPage, slot.Plain[..plainLen], tags, _name);
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
            foreach (var s in _slots) s.Dispose();
            _digest.Dispose();
            _handle.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>One batch: page-aligned native memory, so a pipe can refer to its pages (vmsplice) and the GC never moves it.</summary>
    private sealed class Slot : IDisposable
    {
        public byte* Pointer { get; private set; } = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(BatchBytes, SealedFile.PageSize);
        public Span<byte> Plain => new(Pointer, BatchBytes);
        public byte[] Tags { get; } = new byte[BatchPages * SealedFile.TagSize];
        public long Index = -1;
        public bool Ready;
        public bool Used; // never given a batch: never touched, nothing to wipe
        public int PlainLength;
        public int TagLength;

        public void Dispose()
        {
            if (Pointer is null) return;
            if (Used) CryptographicOperations.ZeroMemory(Plain);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(Pointer);
            Pointer = null;
        }
    }
}
