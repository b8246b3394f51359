using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Content;

/// <summary>
/// The bytes of one blob to be stored or pushed, re-openable so that an interrupted upload can start again or
/// resume at an offset. The descriptor's digest and size are known before any upload starts.
/// </summary>
public abstract class BlobContent
{
    public abstract Descriptor Descriptor { get; }

    /// <summary>A fresh stream over the content, positioned at <paramref name="offset"/>.</summary>
    public abstract Stream Open(long offset = 0);

    public static BlobContent FromBytes(Descriptor descriptor, byte[] bytes) => new BytesContent(descriptor, bytes);

    public static BlobContent FromBytes(string mediaType, byte[] bytes, IReadOnlyDictionary<string, string>? annotations = null) =>
        new BytesContent(Descriptor.For(mediaType, bytes, annotations), bytes);

    public static BlobContent FromFile(Descriptor descriptor, string path) => new FileContent(descriptor, path);

    private sealed class BytesContent(Descriptor descriptor, byte[] bytes) : BlobContent
    {
        public override Descriptor Descriptor { get; } = descriptor;
        public override Stream Open(long offset = 0) => new MemoryStream(bytes, (int)offset, bytes.Length - (int)offset, writable: false);
    }

    private sealed class FileContent(Descriptor descriptor, string path) : BlobContent
    {
        public override Descriptor Descriptor { get; } = descriptor;
        public override Stream Open(long offset = 0)
        {
            var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            s.Position = offset;
            return s;
        }
    }
}

/// <summary>Where blobs can be checked for and written (a layout's blob store, a registry repository).</summary>
public interface IBlobTarget
{
    Task<bool> HasBlobAsync(Descriptor blob, CancellationToken ct);
    /// <summary>Stores the blob; returns only when it is completely and verifiably stored.</summary>
    Task PutBlobAsync(BlobContent content, IProgress<long>? progress, CancellationToken ct);
}

/// <summary>Where blobs can be read from, verified against their descriptor while reading.</summary>
public interface IBlobSource
{
    Task<Stream> OpenBlobAsync(Descriptor blob, CancellationToken ct);
}
