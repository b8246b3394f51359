using System.Formats.Tar;
using System.Text;
using Sealpoint.Core;
using Sealpoint.Oci;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;

namespace Sealpoint.Packaging.Packing;

/// <summary>A byte range of a file, or literal bytes: the parts a blob is assembled from without copying.</summary>
public abstract record Segment(long Length)
{
    public sealed record Bytes(byte[] Data) : Segment(Data.LongLength);
    public sealed record FileRange(string Path, long Offset, long Count) : Segment(Count);
    public sealed record Zeros(long Count) : Segment(Count);
}

/// <summary>Blob content assembled from segments; seekable, so interrupted uploads resume at an offset.</summary>
public sealed class SegmentContent(Descriptor descriptor, IReadOnlyList<Segment> segments) : BlobContent
{
    public override Descriptor Descriptor { get; } = descriptor;
    public IReadOnlyList<Segment> Segments { get; } = segments;

    public override Stream Open(long offset = 0)
    {
        var s = new SegmentStream(Segments);
        s.Position = offset;
        return s;
    }

    /// <summary>Digest and size of segments (one read pass).</summary>
    public static (Digest, long) Measure(IReadOnlyList<Segment> segments)
    {
        using var s = new SegmentStream(segments);
        using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 20];
        int n;
        long total = 0;
        while ((n = s.Read(buffer, 0, buffer.Length)) > 0) { h.AppendData(buffer, 0, n); total += n; }
        return (Digest.FromSha256Hash(h.GetHashAndReset()), total);
    }
}

internal sealed class SegmentStream(IReadOnlyList<Segment> segments) : Stream
{
    private readonly long _length = segments.Sum(s => s.Length);
    private long _position;
    private int _index;
    private long _within;
    private FileStream? _file;
    private string? _filePath;

    public override int Read(Span<byte> buffer)
    {
        while (_index < segments.Count)
        {
            var seg = segments[_index];
            long left = seg.Length - _within;
            if (left <= 0) { _index++; _within = 0; continue; }
            int n = (int)Math.Min(buffer.Length, left);
            switch (seg)
            {
                case Segment.Bytes b:
                    b.Data.AsSpan((int)_within, n).CopyTo(buffer);
                    break;
                case Segment.Zeros:
                    buffer[..n].Clear();
                    break;
                case Segment.FileRange f:
                    if (_filePath != f.Path)
                    {
                        _file?.Dispose();
                        _file = new FileStream(f.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                        _filePath = f.Path;
                    }
                    n = RandomAccess.Read(_file!.SafeFileHandle, buffer[..n], f.Offset + _within);
                    if (n == 0) throw new SealpointException(ErrorKind.Io, $"{f.Path} is shorter than expected (changed while packing?)", "pack again from an intact checkpoint");
                    break;
            }
            _within += n;
            _position += n;
            return n;
        }
        return 0;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set
        {
            if (value < 0 || value > _length) throw new ArgumentOutOfRangeException(nameof(value));
            _position = value;
            long rest = value;
            _index = 0;
            while (_index < segments.Count && rest >= segments[_index].Length)
            {
                rest -= segments[_index].Length;
                _index++;
            }
            _within = rest;
        }
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => _length + offset,
    };

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _file?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Tar pieces for image layers: deterministic one-file layers for memory chunks, and safe reading of untrusted layers.</summary>
public static class LayerTar
{
    public const int BlockSize = 512;

    /// <summary>
    /// A ustar header for one regular file with fixed metadata (mode 0644, owner 0, mtime 0): the same content under the
    /// same name always gives the same layer bytes, hence the same digest, so registries deduplicate reused chunks.
    /// </summary>
    public static byte[] FileHeader(string name, long size)
    {
        byte[] nameBytes = Encoding.ASCII.GetBytes(name);
        if (nameBytes.Length > 100 || size < 0 || size > 0x1_FFFF_FFFFL) throw new ArgumentException("name or size does not fit a plain ustar header");
        var h = new byte[BlockSize];
        nameBytes.CopyTo(h, 0);
        Octal(h, 100, 8, 0x1A4); // 0644
        Octal(h, 108, 8, 0);
        Octal(h, 116, 8, 0);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, 0);
        h[156] = (byte)'0';
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        for (int i = 148; i < 156; i++) h[i] = (byte)' ';
        int sum = 0;
        foreach (byte b in h) sum += b;
        Octal(h, 148, 7, sum);
        h[155] = (byte)' ';
        return h;
    }

    private static void Octal(byte[] h, int offset, int width, long value)
    {
        string s = Convert.ToString(value, 8).PadLeft(width - 1, '0');
        Encoding.ASCII.GetBytes(s).CopyTo(h, offset);
        h[offset + width - 1] = 0;
    }

    /// <summary>Segments of a one-file tar: header, content, padding to a block, two zero blocks.</summary>
    public static IReadOnlyList<Segment> OneFile(string name, IReadOnlyList<Segment> content)
    {
        long size = content.Sum(s => s.Length);
        long pad = (BlockSize - size % BlockSize) % BlockSize;
        return [new Segment.Bytes(FileHeader(name, size)), .. content, new Segment.Zeros(pad + 2 * BlockSize)];
    }

    /// <summary>
    /// Reads the single file of a memory-chunk layer; anything else (more entries, links, wrong name or size) is an
    /// integrity error. The returned buffer is exactly the file's content.
    /// </summary>
    public static byte[] ReadChunk(Stream layer, long expectedSize, string what)
    {
        try
        {
            using var reader = new TarReader(layer, leaveOpen: true);
            var entry = reader.GetNextEntry(copyData: false) ?? throw new IntegrityException($"{what} is an empty tar");
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !entry.Name.StartsWith(CheckpointImage.ChunksDir + "/", StringComparison.Ordinal))
                throw new IntegrityException($"{what} does not hold a memory chunk (entry '{Sanitize(entry.Name)}')");
            if (entry.Length != expectedSize)
                throw new IntegrityException($"{what} holds {entry.Length} bytes, the memory map says {expectedSize}");
            var data = new byte[expectedSize];
            entry.DataStream!.ReadExactly(data);
            if (reader.GetNextEntry(copyData: false) is not null) throw new IntegrityException($"{what} holds more than one entry");
            return data;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new IntegrityException($"{what} is not a valid tar: {e.Message}");
        }
    }

    internal static string Sanitize(string s) => new(s.Where(c => c >= ' ' && c != 0x7f).Take(120).ToArray());
}
