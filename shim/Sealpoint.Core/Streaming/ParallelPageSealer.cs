using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// Seals a memory-page image that arrives as one sequential stream (a CRIU pipe) on several threads, in the page-file
/// layout of docs/format.md: ciphertext page i at offset 4096*i, then the tag table (tag i at P + 16*i), then the
/// header. Pages are independent, so batches are sealed in place in parallel and written positionally. The tag
/// table's place depends on the final size P, unknown while streaming; rather than keep every tag in memory
/// (16 bytes per page), tags go to a side file (tags only, no plaintext) that is copied behind the pages at the
/// end. The digest (header, then every tag in page order) is fed in batch order. Same bytes as
/// <see cref="PagesSealingStream"/>. Memory: <see cref="Batches"/> batches of <see cref="BatchPages"/> pages, whatever
/// the image's size; a writer that gets ahead waits for a free batch, which is how CRIU's pipe is throttled.
/// Sealed batches are written by one thread at a time, in page order: Linux serialises writes to one file on its inode
/// lock, and a second writer spins on it (on tmpfs that spinning was a fifth of all CPU time of a 1 GiB dump). A worker
/// that finds the writing slot taken leaves its batch to the thread holding it and goes back to sealing.
/// </summary>
internal sealed class ParallelPageSealer : WriteOnlyStream
{
    public const int BatchPages = 64;
    private const int TagBufferBytes = 64 * 1024;

    private readonly PageVisitor? _onPage;
    private readonly FileStream _output;
    private readonly string _tagsPath;
    private readonly FileStream _tagsFile;
    private readonly byte[] _headerBytes;
    private readonly WaitQueue _work = new();
    private readonly WaitQueue _free = new();
    private readonly Thread[] _workers;
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly Dictionary<long, Batch> _done = [];
    private readonly object _gate = new();
    private readonly Func<FileCipher> _newCipher;
    // Tags of written batches, in page order, until a whole buffer goes to the side file in one write.
    private readonly byte[] _tagBuffer = new byte[TagBufferBytes];
    private int _tagBuffered;
    private long _tagsWritten;
    private readonly List<ReadOnlyMemory<byte>> _run = new(4);
    private readonly List<Batch> _runBatches = new(4);
    // 1 while a thread writes sealed batches (see WriteReady); the others leave their batches to it.
    private int _writing;
    private long _digested;
    private Batch? _current;
    private long _submitted;
    private long _plaintextSize;
    private int _allocated;
    private bool _started;
    private Exception? _error;
    private SealedFileInfo? _result;

    public int Batches { get; }

    public ParallelPageSealer(FileStream output, string tagsPath, SealedFileHeader header, Func<FileCipher> newCipher, int threads,
        PageVisitor? onPage = null)
    {
        _onPage = onPage;
        if (header.Kind != SealedFileKind.Pages) throw new ArgumentException("page images only", nameof(header));
        _output = output;
        _tagsPath = tagsPath;
        _tagsFile = new FileStream(tagsPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        _headerBytes = header.ToBytes();
        _digest.AppendData(_headerBytes);
        _newCipher = newCipher;
        // At least 8 (2 MiB): on few cores the one writer stalls less with a few batches sealed ahead of it.
        Batches = Math.Max(threads + 2, 8);
        _workers = new Thread[threads];
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_result is not null) throw new InvalidOperationException("sealed file already finished");
        while (!buffer.IsEmpty)
        {
            var space = GetWriteBuffer();
            int n = Math.Min(buffer.Length, space.Length);
            buffer[..n].CopyTo(space);
            Advance(n);
            buffer = buffer[n..];
        }
    }


    /// <summary>Free space of the current batch, to read into directly (saves a copy); then call <see cref="Advance"/>.</summary>
    public Span<byte> GetWriteBuffer()
    {
        ThrowIfFailed();
        _current ??= TakeFree();
        return _current.Pages.AsSpan(_current.Filled);
    }

    public void Advance(int count)
    {
        _current!.Filled += count;
        _plaintextSize += count;
        if (_current.Filled == _current.Pages.Length) Submit();
    }

    /// <summary>Seals the last batch, waits for every batch, moves the tag table behind the pages, writes the header.</summary>
    public SealedFileInfo Finish()
    {
        if (_result is not null) return _result;
        if (_current is { Filled: > 0 }) Submit();
        _work.Complete();
        foreach (var w in _workers) w?.Join();
        ThrowIfFailed();
        if (_digested != _submitted)
            throw new SealpointException(ErrorKind.Internal, $"page sealer digested {_digested} of {_submitted} batches");
        FlushTags();
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, _plaintextSize);
        long tagBytes = pages * SealedFile.TagSize;
        byte[] copy = GC.AllocateUninitializedArray<byte>(64 * 1024);
        for (long off = 0; off < tagBytes;)
        {
            int n = (int)Math.Min(copy.Length, tagBytes - off);
            PagesFile.ReadExactly(_tagsFile.SafeFileHandle, copy.AsSpan(0, n), off, _tagsPath);
            RandomAccess.Write(_output.SafeFileHandle, copy.AsSpan(0, n), _plaintextSize + off);
            off += n;
        }
        RandomAccess.Write(_output.SafeFileHandle, _headerBytes, _plaintextSize + tagBytes);
        DeleteTags();
        _result = new SealedFileInfo(_plaintextSize, SealedFile.SealedSize(SealedFileKind.Pages, _plaintextSize),
            "sha256:" + Hex.Lower(_digest.GetHashAndReset()));
        return _result;
    }

    private Batch TakeFree()
    {
        if (_free.TryTake(out var free)) return free;
        if (_allocated < Batches)
        {
            _allocated++;
            return new Batch();
        }
        if (_free.Take() is { } taken) return taken;
        ThrowIfFailed();
        throw new OperationCanceledException("the page sealer was closed");
    }

    private void Submit()
    {
        var batch = _current!;
        _current = null;
        batch.Index = _submitted++;
        // Workers start with the first full batch: a small image never starts them.
        if (!_started)
        {
            _started = true;
            for (int i = 0; i < _workers.Length; i++)
            {
                var cipher = _newCipher();
                _workers[i] = new Thread(() => Work(cipher), 256 * 1024) { IsBackground = true, Name = "page-sealer" };
                _workers[i].Start();
            }
        }
        _work.Add(batch);
    }

    private void Work(FileCipher cipher)
    {
        try
        {
            while (_work.Take() is { } batch)
            {
                long firstPage = batch.Index * BatchPages;
                int count = 0;
                try
                {
                    for (int off = 0; off < batch.Filled; off += SealedFile.PageSize, count++)
                    {
                        var page = batch.Pages.AsSpan(off, Math.Min(SealedFile.PageSize, batch.Filled - off));
                        _onPage?.Invoke(firstPage + count, page);
                        cipher.Seal(firstPage + count, false, page, page, batch.Tags.AsSpan(count * SealedFile.TagSize, SealedFile.TagSize));
                    }
                }
                catch
                {
                    CryptographicOperations.ZeroMemory(batch.Pages);
                    throw;
                }
                batch.TagLength = count * SealedFile.TagSize;
                // The buffer now holds ciphertext only.
                lock (_gate) _done[batch.Index] = batch;
                WriteReady();
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e)
        {
            lock (_gate) _error ??= e;
            Abort();
        }
        finally { cipher.Dispose(); }
    }

    /// <summary>
    /// Writes every sealed batch that is next in page order (consecutive ones in one pwritev), feeds their tags to the
    /// digest and the tag buffer, and frees them. Only one thread writes at a time; a thread that finds the slot taken
    /// returns at once, and the holder, after giving it up, looks again for batches that arrived meanwhile, so none is
    /// left behind.
    /// </summary>
    private void WriteReady()
    {
        while (true)
        {
            if (Interlocked.CompareExchange(ref _writing, 1, 0) != 0) return;
            try
            {
                while (TakeRun())
                {
                    long offset = _runBatches[0].Index * BatchPages * SealedFile.PageSize;
                    RandomAccess.Write(_output.SafeFileHandle, _run, offset);
                    foreach (var batch in _runBatches)
                    {
                        _digest.AppendData(batch.Tags.AsSpan(0, batch.TagLength));
                        BufferTags(batch.Tags.AsSpan(0, batch.TagLength));
                    }
                    lock (_gate)
                    {
                        _digested += _runBatches.Count;
                        foreach (var batch in _runBatches)
                        {
                            batch.Filled = 0;
                            _free.Add(batch);
                        }
                    }
                }
            }
            finally { Volatile.Write(ref _writing, 0); }
            lock (_gate)
                if (!_done.ContainsKey(_digested) || _error is not null) return;
        }
    }

    /// <summary>Moves the ready batches that continue the file (from the next unwritten one on) into the current run.</summary>
    private bool TakeRun()
    {
        _run.Clear();
        _runBatches.Clear();
        lock (_gate)
        {
            if (_error is not null) return false;
            for (long next = _digested; _done.Remove(next, out var batch); next++)
            {
                _runBatches.Add(batch);
                _run.Add(batch.Pages.AsMemory(0, batch.Filled));
                // Only the file's last batch can be short, so a run never has a gap.
                if (batch.Filled < batch.Pages.Length) break;
            }
        }
        return _runBatches.Count > 0;
    }

    private void BufferTags(ReadOnlySpan<byte> tags)
    {
        if (_tagBuffered + tags.Length > _tagBuffer.Length) FlushTags();
        tags.CopyTo(_tagBuffer.AsSpan(_tagBuffered));
        _tagBuffered += tags.Length;
    }

    private void FlushTags()
    {
        if (_tagBuffered == 0) return;
        RandomAccess.Write(_tagsFile.SafeFileHandle, _tagBuffer.AsSpan(0, _tagBuffered), _tagsWritten);
        _tagsWritten += _tagBuffered;
        _tagBuffered = 0;
    }

    /// <summary>Wakes every thread waiting for a batch; they stop.</summary>
    private void Abort()
    {
        _work.Cancel();
        _free.Cancel();
    }

    private void ThrowIfFailed()
    {
        Exception? e;
        lock (_gate) e = _error;
        if (e is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
    }

    private void DeleteTags()
    {
        _tagsFile.Dispose();
        try { File.Delete(_tagsPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public override long Length => _plaintextSize;
    public override long Position { get => _plaintextSize; set => throw new NotSupportedException(); }
    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_result is null) Abort();
            _work.Complete();
            foreach (var w in _workers) w?.Join();
            // Batches not yet sealed still hold plaintext.
            while (_work.TryTake(out var queued)) CryptographicOperations.ZeroMemory(queued.Pages);
            foreach (var b in _free.Snapshot().Concat(_done.Values).Append(_current))
                if (b is not null) CryptographicOperations.ZeroMemory(b.Pages);
            DeleteTags();
            _digest.Dispose();
            _output.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// A queue whose waiters block at once (Monitor.Wait), where BlockingCollection's semaphore spins and yields first:
    /// on two cores shared with CRIU that spinning takes CPU from the very thread being waited for.
    /// </summary>
    private sealed class WaitQueue
    {
        private readonly Queue<Batch> _items = new();
        private bool _completed;
        private bool _cancelled;

        public void Add(Batch batch)
        {
            lock (_items)
            {
                _items.Enqueue(batch);
                Monitor.Pulse(_items);
            }
        }

        public bool TryTake(out Batch batch)
        {
            lock (_items) return _items.TryDequeue(out batch!);
        }

        /// <summary>The next batch; null once cancelled, or completed and empty.</summary>
        public Batch? Take()
        {
            lock (_items)
            {
                while (true)
                {
                    if (_cancelled) return null;
                    if (_items.TryDequeue(out var batch)) return batch;
                    if (_completed) return null;
                    Monitor.Wait(_items);
                }
            }
        }

        public void Complete()
        {
            lock (_items) { _completed = true; Monitor.PulseAll(_items); }
        }

        public void Cancel()
        {
            lock (_items) { _cancelled = true; Monitor.PulseAll(_items); }
        }

        public Batch[] Snapshot()
        {
            lock (_items) return [.. _items];
        }
    }

    private sealed class Batch
    {
        public byte[] Pages { get; } = GC.AllocateUninitializedArray<byte>(BatchPages * SealedFile.PageSize);
        public byte[] Tags { get; } = new byte[BatchPages * SealedFile.TagSize];
        public long Index;
        public int Filled;
        public int TagLength;
    }
}
