using System.Security.Cryptography;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Fuse;

/// <summary>
/// Decrypts, on spare threads, the ranges a sequential reader will ask for next, so that its next read finds the
/// plaintext ready. CRIU reads a page image front to back, and a direct read reaches the server one chunk at a time
/// (the kernel waits for each reply before sending the next request), so without read-ahead every chunk would wait for
/// its own decryption; with it, decryption runs while the kernel copies the previous chunk and CRIU faults in the next.
/// A fixed number of chunk buffers: memory does not grow with the file. A failed or missed range is simply decrypted
/// by the reader itself, which then reports the failure.
/// </summary>
internal sealed class PageReadAhead : IDisposable
{
    internal sealed class Slot(int capacity)
    {
        public readonly byte[] Buffer = GC.AllocateUninitializedArray<byte>(capacity, pinned: true);
        public long Offset = -1;
        public int Length;
        public bool Busy;
        public bool Failed;
        public int Users;
        public long Stamp;
    }

    private readonly SealedPageSource _source;
    private readonly Slot[] _slots;
    private readonly Queue<Slot> _jobs = new();
    private readonly Thread[] _threads;
    private readonly int _depth;
    private readonly object _lock = new();
    private long _clock;
    private bool _stopping;

    /// <param name="source">The file; threads use its ciphers from <paramref name="firstCipher"/> on.</param>
    /// <param name="threads">Decrypting threads.</param>
    /// <param name="depth">How many chunks ahead of the last read to decrypt.</param>
    /// <param name="chunkBytes">The largest read (whole pages).</param>
    public PageReadAhead(SealedPageSource source, int firstCipher, int threads, int depth, int chunkBytes)
    {
        _source = source;
        _depth = depth;
        _slots = new Slot[depth + threads + 1];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = new Slot(chunkBytes);
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            int cipher = firstCipher + i;
            _threads[i] = new Thread(() => Work(cipher)) { IsBackground = true, Name = $"pages-read-ahead-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>The ready plaintext of exactly [offset, offset + length), waiting while it is being decrypted; null when none.</summary>
    public Slot? Take(long offset, int length)
    {
        lock (_lock)
        {
            foreach (var s in _slots)
            {
                if (s.Offset != offset || s.Length != length) continue;
                s.Users++;
                while (s.Busy) Monitor.Wait(_lock);
                if (!s.Failed) return s;
                s.Users--;
                return null;
            }
        }
        return null;
    }

    public void Release(Slot slot)
    {
        lock (_lock) slot.Users--;
    }

    /// <summary>A read of [offset, offset + length) arrived: decrypt the next chunks of the same length, unless already there.</summary>
    public void After(long offset, int length)
    {
        lock (_lock)
        {
            if (_stopping) return;
            for (int k = 1; k <= _depth; k++)
            {
                long next = offset + (long)k * length;
                if (next >= _source.Size) break;
                int nextLength = (int)Math.Min(length, _source.Size - next);
                if (_slots.Any(s => s.Offset == next && s.Length == nextLength)) continue;
                // Reuse a free slot that holds nothing ahead of this read, the oldest first.
                Slot? victim = null;
                foreach (var s in _slots)
                    if (s.Users == 0 && !s.Busy && (s.Offset < offset || s.Offset >= next + (long)_depth * length) && (victim is null || s.Stamp < victim.Stamp))
                        victim = s;
                if (victim is null) break;
                victim.Offset = next;
                victim.Length = nextLength;
                victim.Busy = true;
                victim.Failed = false;
                victim.Stamp = ++_clock;
                _jobs.Enqueue(victim);
            }
            Monitor.PulseAll(_lock);
        }
    }

    private void Work(int cipher)
    {
        byte[] tags = new byte[(_slots[0].Buffer.Length / SealedFile.PageSize + 1) * SealedFile.TagSize];
        while (true)
        {
            Slot slot;
            long offset;
            int length;
            lock (_lock)
            {
                while (!_stopping && _jobs.Count == 0) Monitor.Wait(_lock);
                if (_stopping) return;
                slot = _jobs.Dequeue();
                offset = slot.Offset;
                length = slot.Length;
            }
            bool failed = false;
            try
            {
                long firstPage = offset / SealedFile.PageSize;
                int block = (int)Math.Min((long)(length + SealedFile.PageSize - 1) / SealedFile.PageSize * SealedFile.PageSize, _source.Size - firstPage * SealedFile.PageSize);
                _source.OpenPages(cipher, firstPage, slot.Buffer.AsSpan(0, block), tags);
            }
            catch (Exception e) when (e is SealpointException or IOException)
            {
                failed = true; // the reader decrypts this range itself and reports what is wrong
            }
            lock (_lock)
            {
                slot.Busy = false;
                slot.Failed = failed;
                Monitor.PulseAll(_lock);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        foreach (var t in _threads) t.Join();
        foreach (var s in _slots) CryptographicOperations.ZeroMemory(s.Buffer);
    }
}
