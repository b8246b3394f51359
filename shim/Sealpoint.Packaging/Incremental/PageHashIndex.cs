using Sealpoint.Core.Crypto;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Packaging.Incremental;

/// <summary>
/// The keyed page hashes of one sealed checkpoint, kept on the node that sealed it: per memory image, one 16-byte
/// HMAC-SHA256(node key, page plaintext) per page, in page order. They let the packer find pages unchanged since an
/// earlier checkpoint without any plaintext (the node need not be a recipient). Stored in
/// <c>STATE/page-hashes/CHECKPOINT.idx</c>; never leaves the node.
/// </summary>
public sealed class PageHashIndex
{
    public const int HashSize = 16;
    private static readonly byte[] Magic = "SPPGHX01"u8.ToArray();

    public PageHashIndex(string checkpointId, IReadOnlyDictionary<string, byte[]> files)
    {
        CheckpointId = checkpointId;
        Files = files;
    }

    public string CheckpointId { get; }
    /// <summary>Memory image name → concatenated 16-byte page hashes.</summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; }

    public static string PathFor(NodeState state, string checkpointId) => state.PathOf("page-hashes", checkpointId + ".idx");

    public static PageHashIndex? TryLoad(NodeState state, string checkpointId)
    {
        string path = PathFor(state, checkpointId);
        if (!File.Exists(path)) return null;
        try
        {
            var bytes = File.ReadAllBytes(path);
            var span = bytes.AsSpan();
            if (!span.StartsWith(Magic)) return null;
            int pos = Magic.Length;
            int count = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
            pos += 4;
            var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            for (int i = 0; i < count; i++)
            {
                int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(span[pos..]);
                pos += 2;
                string name = Encoding.UTF8.GetString(span.Slice(pos, nameLen));
                pos += nameLen;
                long hashBytes = BinaryPrimitives.ReadInt64LittleEndian(span[pos..]);
                pos += 8;
                if (hashBytes < 0 || hashBytes % HashSize != 0 || pos + hashBytes > span.Length) return null;
                files[name] = span.Slice(pos, (int)hashBytes).ToArray();
                pos += (int)hashBytes;
            }
            return pos == span.Length ? new PageHashIndex(checkpointId, files) : null;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IOException)
        {
            return null; // a damaged index only costs deduplication
        }
    }

    public void Save(NodeState state)
    {
        state.EnsureDirectory("page-hashes");
        using var ms = new MemoryStream();
        ms.Write(Magic);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(b, Files.Count);
        ms.Write(b[..4]);
        foreach (var (name, hashes) in Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            byte[] n = Encoding.UTF8.GetBytes(name);
            BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)n.Length);
            ms.Write(b[..2]);
            ms.Write(n);
            BinaryPrimitives.WriteInt64LittleEndian(b, hashes.Length);
            ms.Write(b);
            ms.Write(hashes);
        }
        NodeState.WriteAtomic(PathFor(state, CheckpointId), ms.ToArray());
    }

    /// <summary>Keeps the indexes of the newest <paramref name="keep"/> checkpoints (by file time); older ones only cost disk.</summary>
    public static void Prune(NodeState state, int keep = 16)
    {
        string dir = state.PathOf("page-hashes");
        if (!Directory.Exists(dir)) return;
        foreach (var old in new DirectoryInfo(dir).GetFiles("*.idx").OrderByDescending(f => f.LastWriteTimeUtc).Skip(keep))
            old.Delete();
    }
}

/// <summary>
/// An <see cref="IPageObserver"/> for the sealer: computes the keyed page hashes while the plaintext is in memory,
/// then (after sealing, when the checkpoint id is known) saves them as a <see cref="PageHashIndex"/>. Thread-safe.
/// </summary>
public sealed class PageHashRecorder : IPageObserver, IDisposable
{
    private readonly byte[] _key;
    private readonly ConcurrentDictionary<string, FileHashes> _files = new(StringComparer.Ordinal);
    // The sealer calls OnPage from several threads at once; a fingerprint instance is per thread.
    private readonly ThreadLocal<PageFingerprint> _fingerprint;

    public PageHashRecorder(byte[] key)
    {
        _key = key.ToArray();
        _fingerprint = new ThreadLocal<PageFingerprint>(() => new PageFingerprint(_key), trackAllValues: true);
    }

    public static PageHashRecorder ForNode(NodeState state) => new(state.PageHashKey());

    public void OnPage(string file, long index, ReadOnlySpan<byte> plaintext)
    {
        Span<byte> fingerprint = stackalloc byte[PageFingerprint.Size];
        _fingerprint.Value!.Hash(plaintext, fingerprint); // the PRP step is applied per file in Build
        _files.GetOrAdd(file, _ => new FileHashes()).Set(index, fingerprint);
    }

    /// <summary>The index for a sealed checkpoint: only memory images whose every page was seen are included.</summary>
    public PageHashIndex Build(Envelope envelope)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var f in envelope.Files.Where(f => f.Kind == FileEntryKinds.Pages))
        {
            long pages = SealedPageCodec.PageCount(f.Size ?? 0);
            if (pages == 0) { files[f.Name] = []; continue; }
            if (_files.TryGetValue(f.Name, out var h) && h.Complete(pages, out var bytes))
            {
                _fingerprint.Value!.Finish(bytes);
                files[f.Name] = bytes;
            }
        }
        return new PageHashIndex(envelope.CheckpointId, files);
    }

    /// <summary>Builds and stores the index for <paramref name="envelope"/>'s checkpoint on this node.</summary>
    public PageHashIndex Save(NodeState state, Envelope envelope)
    {
        var index = Build(envelope);
        index.Save(state);
        PageHashIndex.Prune(state);
        return index;
    }

    public void Dispose()
    {
        foreach (var f in _fingerprint.Values) f.Dispose();
        _fingerprint.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }

    private sealed class FileHashes
    {
        private readonly object _lock = new();
        private byte[] _hashes = new byte[4096 * PageHashIndex.HashSize];
        private byte[] _seen = new byte[4096];
        private long _count;

        public void Set(long index, ReadOnlySpan<byte> hash)
        {
            lock (_lock)
            {
                long need = (index + 1) * PageHashIndex.HashSize;
                if (need > _hashes.Length)
                {
                    long size = _hashes.Length;
                    while (size < need) size *= 2;
                    Array.Resize(ref _hashes, checked((int)size));
                    Array.Resize(ref _seen, checked((int)(size / PageHashIndex.HashSize)));
                }
                hash.CopyTo(_hashes.AsSpan((int)(index * PageHashIndex.HashSize)));
                if (_seen[index] == 0) { _seen[index] = 1; _count++; }
            }
        }

        public bool Complete(long pages, out byte[] hashes)
        {
            lock (_lock)
            {
                hashes = [];
                if (_count != pages || pages * PageHashIndex.HashSize > _hashes.Length) return false;
                hashes = _hashes.AsSpan(0, (int)(pages * PageHashIndex.HashSize)).ToArray();
                return true;
            }
        }
    }
}
