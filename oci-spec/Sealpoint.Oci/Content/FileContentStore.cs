using System.Security.Cryptography;
using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Content;

/// <summary>
/// Content-addressed blobs in a folder, as in an OCI image layout: <c>blobs/ALG/HEX</c>. Writes go to a
/// private ingest file that is verified against the expected digest and size before it is renamed into
/// place, so a blob path never holds partial or wrong content. Reads verify again, since files on disk can
/// be changed behind our back.
/// </summary>
public sealed class FileContentStore(string root) : IBlobSource, IBlobTarget
{
    private const string IngestDir = ".sealpoint-ingest";

    public string Root { get; } = Path.GetFullPath(root);

    public string PathOf(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded);

    public bool Exists(Digest digest) => File.Exists(PathOf(digest));

    /// <summary>Present with the descriptor's size (the digest is checked when read).</summary>
    public bool Has(Descriptor blob)
    {
        var info = new FileInfo(PathOf(blob.Digest));
        return info.Exists && info.Length == blob.Size;
    }

    public Task<bool> HasBlobAsync(Descriptor blob, CancellationToken ct) => Task.FromResult(Has(blob));

    public Stream OpenRead(Descriptor blob)
    {
        string path = PathOf(blob.Digest);
        try
        {
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return new VerifyingStream(file, blob.Digest, blob.Size, $"blob {blob.Digest} in {Root}");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new OciException(OciErrorKind.NotFound, $"blob {blob.Digest} is not in {Root}",
                "the layout is incomplete; copy the image into it again");
        }
    }

    public Task<Stream> OpenBlobAsync(Descriptor blob, CancellationToken ct) => Task.FromResult(OpenRead(blob));

    public async Task<byte[]> ReadAllAsync(Descriptor blob, CancellationToken ct)
    {
        await using var s = OpenRead(blob);
        return await VerifyingStream.ReadAllAsync(s, blob.Size, ct).ConfigureAwait(false);
    }

    public Task PutBlobAsync(BlobContent content, IProgress<long>? progress, CancellationToken ct) =>
        WriteAsync(content.Descriptor, content.Open(), progress, ct);

    /// <summary>Stores <paramref name="content"/> (disposed) under <paramref name="blob"/>'s digest after verifying it.</summary>
    public async Task WriteAsync(Descriptor blob, Stream content, IProgress<long>? progress, CancellationToken ct)
    {
        await using var input = new VerifyingStream(content, blob.Digest, blob.Size, $"content for blob {blob.Digest}");
        if (Has(blob))
        {
            return;
        }
        string target = PathOf(blob.Digest);
        string ingest = Path.Combine(Root, IngestDir);
        Directory.CreateDirectory(ingest);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string tmp = Path.Combine(ingest, $"{blob.Digest.Encoded}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        try
        {
            await using (var output = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous, BufferSize = 1 << 16,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            }))
            {
                byte[] buffer = new byte[1 << 20];
                long done = 0;
                int n;
                while ((n = await input.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    done += n;
                    progress?.Report(done);
                }
                if (!input.Verified)
                    throw new OciException(OciErrorKind.Integrity, $"content for blob {blob.Digest} was not verified");
                await output.FlushAsync(ct).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            File.Move(tmp, target, overwrite: true);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new OciException(OciErrorKind.Io, $"cannot store blob {blob.Digest} in {Root}: {e.Message}", "check free space and permissions", e);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public Task WriteBytesAsync(Descriptor blob, byte[] bytes, CancellationToken ct) => WriteAsync(blob, new MemoryStream(bytes, writable: false), null, ct);
}
