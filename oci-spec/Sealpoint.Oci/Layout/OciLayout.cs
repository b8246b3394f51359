using System.Text;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Layout;

/// <summary>
/// An OCI image layout folder (image-spec image-layout.md): <c>oci-layout</c>, <c>index.json</c> and
/// <c>blobs/</c>. Tags are <c>org.opencontainers.image.ref.name</c> annotations on index.json's descriptors.
/// index.json is replaced atomically under a lock, so concurrent writers do not lose each other's tags.
/// </summary>
public sealed class OciLayout : IImageStore
{
    private OciLayout(string root)
    {
        Root = root;
        Blobs = new FileContentStore(root);
    }

    public string Root { get; }
    public FileContentStore Blobs { get; }
    public string IndexPath => Path.Combine(Root, "index.json");
    public string Describe => $"oci:{Root}";

    /// <summary>Opens an existing layout; fails clearly when the folder is not one.</summary>
    public static OciLayout Open(string directory)
    {
        string root = Path.GetFullPath(directory);
        string header = Path.Combine(root, "oci-layout");
        if (!File.Exists(header))
            throw new OciException(OciErrorKind.NotFound, $"{root} is not an OCI image layout (no oci-layout file)",
                "give a folder written by 'sealpoint pack --out oci:DIR', skopeo or buildah");
        var h = OciJson.ParseLayoutHeader(ReadLimited(header, 4096), header);
        if (h.ImageLayoutVersion != "1.0.0")
            throw new OciException(OciErrorKind.Protocol, $"{header} has imageLayoutVersion '{h.ImageLayoutVersion}', this build reads 1.0.0");
        return new OciLayout(root);
    }

    /// <summary>Opens a layout, creating an empty one when the folder is missing or empty.</summary>
    public static OciLayout OpenOrCreate(string directory)
    {
        string root = Path.GetFullPath(directory);
        if (File.Exists(Path.Combine(root, "oci-layout"))) return Open(root);
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
            throw new OciException(OciErrorKind.Usage, $"{root} is neither an OCI image layout nor empty",
                "give a new folder, an empty one, or an existing layout");
        Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256"));
        WriteAtomic(Path.Combine(root, "index.json"), OciJson.Serialize(new ImageIndex()));
        WriteAtomic(Path.Combine(root, "oci-layout"), OciJson.Serialize(new LayoutHeader()));
        return new OciLayout(root);
    }

    public ImageIndex ReadIndex()
    {
        if (!File.Exists(IndexPath)) throw new OciException(OciErrorKind.NotFound, $"{IndexPath} is missing", "the layout is damaged; write it again");
        return OciJson.ParseIndex(ReadLimited(IndexPath, OciJson.MaxManifestSize), IndexPath);
    }

    /// <summary>
    /// The descriptor a tag names, or for a null tag the only manifest in the layout. A digest
    /// (<c>sha256:…</c>) selects that manifest.
    /// </summary>
    public Descriptor Resolve(string? tagOrDigest)
    {
        var index = ReadIndex();
        if (tagOrDigest is not null && Digest.TryParse(tagOrDigest, out var d))
            return index.Manifests.FirstOrDefault(m => m.Digest == d)
                ?? (Blobs.Exists(d) ? new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = d, Size = new FileInfo(Blobs.PathOf(d)).Length } : null)
                ?? throw new OciException(OciErrorKind.NotFound, $"no manifest {d} in {Describe}");
        if (tagOrDigest is null)
        {
            if (index.Manifests.Count == 1) return index.Manifests[0];
            throw new OciException(OciErrorKind.Usage, $"{Describe} holds {index.Manifests.Count} manifests; say which",
                $"write oci:{Root}:TAG (tags: {string.Join(", ", Tags(index).DefaultIfEmpty("(none)"))})");
        }
        return index.Manifests.LastOrDefault(m => m.Annotation(OciAnnotations.RefName) == tagOrDigest)
            ?? throw new OciException(OciErrorKind.NotFound, $"tag '{tagOrDigest}' is not in {Describe}",
                $"tags there: {string.Join(", ", Tags(index).DefaultIfEmpty("(none)"))}");
    }

    private static IEnumerable<string> Tags(ImageIndex index) =>
        index.Manifests.Select(m => m.Annotation(OciAnnotations.RefName)).OfType<string>();

    /// <summary>Adds the manifest to index.json, under <paramref name="tag"/> (replacing that tag) or untagged.</summary>
    public void AddToIndex(Descriptor manifest, string? tag)
    {
        if (tag is not null && !Reference.IsValidTag(tag))
            throw new OciException(OciErrorKind.Usage, $"'{tag}' is not a valid tag", "use letters, digits, '_', '.', '-' (at most 128)");
        using var _ = AcquireLock();
        var index = ReadIndex();
        var annotations = new Dictionary<string, string>(manifest.Annotations ?? new Dictionary<string, string>());
        if (tag is not null) annotations[OciAnnotations.RefName] = tag;
        var entry = manifest with { Annotations = annotations.Count == 0 ? null : annotations, Data = null };
        var kept = index.Manifests.Where(m => tag is null
            ? !(m.Digest == manifest.Digest && m.Annotation(OciAnnotations.RefName) is null)
            : m.Annotation(OciAnnotations.RefName) != tag).ToList();
        kept.Add(entry);
        WriteAtomic(IndexPath, OciJson.Serialize(index with { Manifests = kept }));
    }

    public Task<bool> HasBlobAsync(Descriptor blob, CancellationToken ct) => Blobs.HasBlobAsync(blob, ct);
    public Task PutBlobAsync(BlobContent content, IProgress<long>? progress, CancellationToken ct) => Blobs.PutBlobAsync(content, progress, ct);
    public Task<Stream> OpenBlobAsync(Descriptor blob, CancellationToken ct) => Blobs.OpenBlobAsync(blob, ct);

    public async Task<FetchedManifest> GetManifestAsync(string? reference, CancellationToken ct)
    {
        var descriptor = Resolve(reference);
        var bytes = await Blobs.ReadAllAsync(descriptor, ct).ConfigureAwait(false);
        string mediaType = OciJson.PeekMediaType(bytes) ?? descriptor.MediaType;
        return new FetchedManifest(descriptor with { MediaType = mediaType, Annotations = null }, bytes, $"{Describe}@{descriptor.Digest}");
    }

    public async Task<Descriptor> PutManifestAsync(byte[] bytes, string mediaType, string? tag, CancellationToken ct)
    {
        var descriptor = Descriptor.For(mediaType, bytes);
        await Blobs.WriteBytesAsync(descriptor, bytes, ct).ConfigureAwait(false);
        AddToIndex(descriptor, tag);
        return descriptor;
    }

    private IDisposable AcquireLock()
    {
        string path = Path.Combine(Root, ".sealpoint-index.lock");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                // .NET takes an advisory flock for FileShare.None on Linux.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
            catch (IOException e)
            {
                throw new OciException(OciErrorKind.Io, $"{Root} is locked by another writer for more than 30 s: {e.Message}", "wait for the other command to finish", e);
            }
        }
    }

    internal static byte[] ReadLimited(string path, int max)
    {
        var info = new FileInfo(path);
        if (info.Length > max)
            throw new OciException(OciErrorKind.Protocol, $"{path} is {info.Length} bytes, more than the {max} allowed");
        return File.ReadAllBytes(path);
    }

    private static void WriteAtomic(string path, byte[] bytes)
    {
        string tmp = $"{path}.{Environment.ProcessId}.tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Parses <c>oci:DIR[:TAG]</c> (the skopeo/podman transport syntax). Null when the text has no <c>oci:</c> prefix.</summary>
    public static (string Directory, string? Tag)? ParseLocation(string text)
    {
        if (!text.StartsWith("oci:", StringComparison.Ordinal)) return null;
        string rest = text[4..];
        int colon = rest.LastIndexOf(':');
        if (colon > 0 && !rest[(colon + 1)..].Contains('/') && Reference.IsValidTag(rest[(colon + 1)..]))
            return (rest[..colon], rest[(colon + 1)..]);
        if (rest.Length == 0) throw new OciException(OciErrorKind.Usage, "'oci:' names no folder", "write oci:DIR or oci:DIR:TAG");
        return (rest, null);
    }
}
