using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Registry;

/// <summary>
/// A client of one registry host speaking the OCI distribution spec (v2 API): blobs (existence, monolithic and
/// resumable chunked upload, cross-repository mount, verified download), manifests, tags and referrers, with
/// anonymous, basic and bearer-token authentication. Every reply is untrusted: sizes are bounded, digests
/// checked, JSON validated, and every wait has a deadline. Transient failures are retried a bounded number of
/// times; an upload is reported done only after the registry confirms it has the blob.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private const int MaxErrorBody = 64 * 1024;
    private const int MaxTokenBody = 1 << 20;
    private const int MaxRedirects = 5;

    private readonly HttpClient _http;
    private readonly RegistryClientOptions _options;
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expires)> _tokens = new();
    private readonly SemaphoreSlim _authLock = new(1, 1);
    private volatile AuthChallenge? _challenge;

    public RegistryClient(string registry, RegistryClientOptions? options = null)
    {
        _options = options ?? new RegistryClientOptions();
        Registry = registry;
        string endpoint = registry == Reference.DockerHub ? "registry-1.docker.io" : registry;
        BaseUri = new Uri($"{(_options.Insecure ? "http" : "https")}://{endpoint}/");
        _http = new HttpClient(_options.Handler ?? CreateHandler(_options), disposeHandler: _options.Handler is null)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(_options.UserAgent);
    }

    public string Registry { get; }
    public Uri BaseUri { get; }
    public TransferStats Stats { get; } = new();
    public RegistryClientOptions Options => _options;

    private static SocketsHttpHandler CreateHandler(RegistryClientOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            UseCookies = false,
        };
        if (options.CaFile is not null)
        {
            var cas = LoadCaFile(options.CaFile);
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => ValidateWithCas(certificate, errors, cas),
            };
        }
        return handler;
    }

    private static X509Certificate2Collection LoadCaFile(string path)
    {
        var cas = new X509Certificate2Collection();
        try { cas.ImportFromPemFile(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new OciException(OciErrorKind.Config, $"CA file {path} cannot be read: {e.Message}", "give a PEM file of CA certificates (--ca-file)", e);
        }
        if (cas.Count == 0) throw new OciException(OciErrorKind.Config, $"CA file {path} holds no PEM certificate", "give a PEM file of CA certificates (--ca-file)");
        return cas;
    }

    /// <summary>System trust first; otherwise the chain must end at one of the given CAs, and the name must match.</summary>
    private static bool ValidateWithCas(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection cas)
    {
        if (errors == SslPolicyErrors.None) return true;
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0) return false;
        using var cert = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(cas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert);
    }

    // ---------------------------------------------------------------- API

    /// <summary>GET /v2/: the host speaks the v2 API (200, or 401 before authentication).</summary>
    public Task PingAsync(CancellationToken ct = default) => RetryAsync("ping", async _ =>
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(BaseUri, "v2/")), [], ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"GET {BaseUri}v2/", ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>HEAD the blob: true when the repository has it (with the same size when the registry says).</summary>
    public Task<bool> BlobExistsAsync(string repository, Descriptor blob, CancellationToken ct = default) => RetryAsync("blob check", async _ =>
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Head, BlobUri(repository, blob.Digest)), Pull(repository), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"HEAD blob {blob.Digest}", ct).ConfigureAwait(false);
        long? length = response.Content.Headers.ContentLength;
        if (length is { } n && n != blob.Size)
            throw new OciException(OciErrorKind.Integrity, $"{Registry}/{repository} has blob {blob.Digest} with {n} bytes, the descriptor says {blob.Size}",
                "the manifest or the registry is inconsistent; do not use this image");
        return true;
    }, ct);

    /// <summary>
    /// Uploads a blob unless the repository already has it or it can be mounted from <paramref name="mountFrom"/>.
    /// Returns only when the registry confirms the blob is stored.
    /// </summary>
    public async Task<TransferOutcome> PushBlobAsync(string repository, BlobContent content, string? mountFrom = null, CancellationToken ct = default)
    {
        var blob = content.Descriptor;
        CheckRepository(repository);
        if (await BlobExistsAsync(repository, blob, ct).ConfigureAwait(false))
            return Done(blob, TransferOutcome.AlreadyPresent);
        if (mountFrom is not null && mountFrom != repository && await TryMountAsync(repository, blob, mountFrom, ct).ConfigureAwait(false))
            return Done(blob, TransferOutcome.Mounted);
        _options.Observer?.Started(blob, "upload");
        if (blob.Size <= _options.MonolithicLimit)
            await RetryAsync($"upload of blob {blob.Digest.Short}", _ => UploadMonolithicAsync(repository, content, ct), ct).ConfigureAwait(false);
        else
            await UploadChunkedAsync(repository, content, ct).ConfigureAwait(false);
        // Not done until the registry says it has the blob under that digest and size.
        if (!await BlobExistsAsync(repository, blob, ct).ConfigureAwait(false))
            throw new OciException(OciErrorKind.Protocol, $"{Registry} accepted the upload of blob {blob.Digest} but does not have it",
                "the registry lost the upload; push again");
        return Done(blob, TransferOutcome.Uploaded);
    }

    private TransferOutcome Done(Descriptor blob, TransferOutcome outcome)
    {
        Stats.Count(outcome);
        _options.Observer?.Finished(blob, outcome);
        return outcome;
    }

    /// <summary>POST ?mount=&amp;from=: true when the registry mounted the blob (201); false when it offers an upload instead.</summary>
    public Task<bool> TryMountAsync(string repository, Descriptor blob, string from, CancellationToken ct = default) => RetryAsync("blob mount", async _ =>
    {
        CheckRepository(from);
        var uri = new Uri(BaseUri, $"v2/{repository}/blobs/uploads/?mount={Uri.EscapeDataString(blob.Digest.ToString())}&from={Uri.EscapeDataString(from)}");
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, uri) { Content = EmptyContent() },
            [$"repository:{repository}:pull,push", $"repository:{from}:pull"], ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created) return true;
        if (response.StatusCode == HttpStatusCode.Accepted)
        {
            // The registry opened an ordinary upload session instead; close it, the caller uploads normally.
            if (response.Headers.Location is { } location) await CancelUploadAsync(repository, Resolve(uri, location), ct).ConfigureAwait(false);
            return false;
        }
        if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden) return false;
        throw await ErrorAsync(response, $"mount of blob {blob.Digest} from {from}", ct).ConfigureAwait(false);
    }, ct);

    private async Task CancelUploadAsync(string repository, Uri location, CancellationToken ct)
    {
        try
        {
            using var r = await SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, location), Push(repository), ct).ConfigureAwait(false);
        }
        catch (OciException) { } // best effort: an abandoned session expires on its own
    }

    private async Task<bool> UploadMonolithicAsync(string repository, BlobContent content, CancellationToken ct)
    {
        var blob = content.Descriptor;
        var location = await StartUploadAsync(repository, ct).ConfigureAwait(false);
        var put = WithQuery(location, "digest", blob.Digest.ToString());
        using var watchdog = new Watchdog(_options.StallTimeout, ct);
        long sent = 0;
        using var response = await SendAsync(() =>
        {
            sent = 0;
            var body = new CountingReadStream(content.Open(), blob.Size, watchdog, n =>
            {
                sent += n;
                Stats.AddBlobBytes(n);
                _options.Observer?.Progress(blob, sent);
            });
            return new HttpRequestMessage(HttpMethod.Put, put) { Content = StreamBody(body, blob.Size) };
        }, Push(repository), ct, watchdog).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            throw await ErrorAsync(response, $"upload of blob {blob.Digest}", ct).ConfigureAwait(false);
        CheckDigestHeader(response, blob.Digest, $"upload of blob {blob.Digest}");
        return true;
    }

    /// <summary>
    /// PATCH chunks with Content-Range; after a failure, GET the session to learn how much arrived and resume from
    /// there (or start a new session if it is gone). Bounded by MaxAttempts consecutive failures.
    /// </summary>
    private async Task UploadChunkedAsync(string repository, BlobContent content, CancellationToken ct)
    {
        var blob = content.Descriptor;
        (Uri location, int minChunk) = await RetryAsync("start of upload", _ => StartUploadWithMinAsync(repository, ct), ct).ConfigureAwait(false);
        int chunk = Math.Max(_options.ChunkSize, minChunk);
        long offset = 0;
        int failures = 0;
        while (true)
        {
            try
            {
                if (offset < blob.Size)
                {
                    long length = Math.Min(chunk, blob.Size - offset);
                    (location, offset) = await PatchAsync(repository, content, location, offset, length, ct).ConfigureAwait(false);
                }
                else
                {
                    await FinishUploadAsync(repository, blob, location, ct).ConfigureAwait(false);
                    return;
                }
                failures = 0;
            }
            catch (OciException e) when (e.Transient && !ct.IsCancellationRequested)
            {
                if (++failures >= _options.MaxAttempts)
                    throw new OciException(e.Kind, $"{e.Message} (gave up after {failures} attempts; {offset:N0} of {blob.Size:N0} bytes of blob {blob.Digest.Short} were stored)",
                        e.Fix ?? "check the registry and push again", e);
                var delay = Backoff(failures, e);
                _options.Observer?.Retrying($"upload of blob {blob.Digest.Short}", failures, delay, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                // Where does the session stand? A lost session means starting over.
                try
                {
                    var status = await UploadStatusAsync(repository, location, ct).ConfigureAwait(false);
                    if (status is { } s) (location, offset) = s;
                    else
                    {
                        (location, _) = await StartUploadWithMinAsync(repository, ct).ConfigureAwait(false);
                        offset = 0;
                    }
                }
                catch (OciException e2) when (e2.Transient) { /* the next round retries */ }
            }
        }
    }

    private async Task<(Uri, long)> PatchAsync(string repository, BlobContent content, Uri location, long offset, long length, CancellationToken ct)
    {
        var blob = content.Descriptor;
        using var watchdog = new Watchdog(_options.StallTimeout, ct);
        long sent = 0;
        using var response = await SendAsync(() =>
        {
            sent = 0;
            var body = new CountingReadStream(content.Open(offset), length, watchdog, n =>
            {
                sent += n;
                Stats.AddBlobBytes(n);
                _options.Observer?.Progress(blob, offset + sent);
            });
            var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = StreamBody(body, length) };
            request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + length - 1}");
            return request;
        }, Push(repository), ct, watchdog).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // Out of step with the registry: ask it where we are.
            var status = await UploadStatusAsync(repository, location, ct).ConfigureAwait(false)
                ?? throw new OciException(OciErrorKind.Protocol, $"upload session for blob {blob.Digest.Short} vanished", "push again") { Transient = true };
            return status;
        }
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            var error = await ErrorAsync(response, $"chunk upload of blob {blob.Digest.Short}", ct).ConfigureAwait(false);
            // A session the registry no longer knows (restarted, expired): the caller starts a new one.
            if (response.StatusCode == HttpStatusCode.NotFound || error.Message.Contains("BLOB_UPLOAD_", StringComparison.Ordinal))
                throw new OciException(OciErrorKind.Network, $"{error.Message} (upload session lost)", error.Fix) { Transient = true };
            throw error;
        }
        var next = response.Headers.Location is { } l ? Resolve(location, l) : location;
        long end = ParseRangeEnd(response) ?? offset + length;
        if (end > offset + length || end < 0)
            throw new OciException(OciErrorKind.Protocol, $"{Registry} reports {end} bytes stored after sending {offset + length}");
        return (next, end);
    }

    /// <summary>GET the upload session: (location, bytes stored) or null when the session no longer exists.</summary>
    private async Task<(Uri, long)?> UploadStatusAsync(string repository, Uri location, CancellationToken ct)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, location), Push(repository), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (response.StatusCode != HttpStatusCode.NoContent && response.StatusCode != HttpStatusCode.OK)
        {
            var error = await ErrorAsync(response, "upload status", ct).ConfigureAwait(false);
            if (error.Message.Contains("BLOB_UPLOAD_", StringComparison.Ordinal)) return null;
            throw error;
        }
        var next = response.Headers.Location is { } l ? Resolve(location, l) : location;
        return (next, ParseRangeEnd(response) ?? 0);
    }

    private async Task FinishUploadAsync(string repository, Descriptor blob, Uri location, CancellationToken ct)
    {
        var put = WithQuery(location, "digest", blob.Digest.ToString());
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Put, put) { Content = EmptyContent() }, Push(repository), ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            // A retried PUT after a lost reply may find the session already closed: fine if the blob is there.
            if (response.StatusCode == HttpStatusCode.NotFound && await BlobExistsAsync(repository, blob, ct).ConfigureAwait(false)) return;
            throw await ErrorAsync(response, $"completion of the upload of blob {blob.Digest}", ct).ConfigureAwait(false);
        }
        CheckDigestHeader(response, blob.Digest, $"upload of blob {blob.Digest}");
    }

    /// <summary>"Range: 0-N" → N+1 bytes stored (distribution writes "0-0" for an empty session, read as 0).</summary>
    private static long? ParseRangeEnd(HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.TryGetValues("Range", out var values)) return null;
        string? v = values.FirstOrDefault();
        if (v is null) return null;
        if (v.StartsWith("bytes=", StringComparison.Ordinal)) v = v[6..];
        int dash = v.IndexOf('-');
        if (dash < 0 || !long.TryParse(v.AsSpan(0, dash), out long start) || !long.TryParse(v.AsSpan(dash + 1), out long end) || start != 0 || end < 0)
            throw new OciException(OciErrorKind.Protocol, $"registry sent a malformed Range header '{Digest.Truncate(v, 40)}'");
        return end == 0 ? 0 : end + 1;
    }

    private async Task<Uri> StartUploadAsync(string repository, CancellationToken ct) => (await StartUploadWithMinAsync(repository, ct).ConfigureAwait(false)).Item1;

    private async Task<(Uri, int)> StartUploadWithMinAsync(string repository, CancellationToken ct)
    {
        var uri = new Uri(BaseUri, $"v2/{repository}/blobs/uploads/");
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, uri) { Content = EmptyContent() }, Push(repository), ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Accepted)
            throw await ErrorAsync(response, $"start of a blob upload to {repository}", ct).ConfigureAwait(false);
        var location = response.Headers.Location
            ?? throw new OciException(OciErrorKind.Protocol, $"{Registry} started an upload without a Location header");
        int min = 0;
        if (response.Headers.NonValidated.TryGetValues("OCI-Chunk-Min-Length", out var mins) && int.TryParse(mins.FirstOrDefault(), out int m) && m is > 0 and <= 256 << 20) min = m;
        return (Resolve(uri, location), min);
    }

    /// <summary>A verifying stream over the blob's content (follows redirects, never forwarding credentials to another host).</summary>
    public Task<Stream> OpenBlobAsync(string repository, Descriptor blob, CancellationToken ct = default) => RetryAsync("blob download", async _ =>
    {
        var uri = BlobUri(repository, blob.Digest);
        var watchdog = new Watchdog(_options.RequestTimeout, ct);
        HttpResponseMessage? response = null;
        try
        {
            for (int redirects = 0; ; redirects++)
            {
                var target = uri;
                response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, target), Pull(repository), ct, watchdog).ConfigureAwait(false);
                if (IsRedirect(response.StatusCode) && response.Headers.Location is { } next && redirects < MaxRedirects)
                {
                    uri = Resolve(uri, next);
                    response.Dispose();
                    response = null;
                    continue;
                }
                break;
            }
            if (response.StatusCode == HttpStatusCode.NotFound)
                throw new OciException(OciErrorKind.NotFound, $"blob {blob.Digest} is not in {Registry}/{repository}", "the image is incomplete in the registry; push it again");
            if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"download of blob {blob.Digest}", ct).ConfigureAwait(false);
            if (response.Content.Headers.ContentLength is { } n && n != blob.Size)
                throw new OciException(OciErrorKind.Integrity, $"{Registry} sends blob {blob.Digest} with {n} bytes, the descriptor says {blob.Size}");
            var raw = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var guarded = new GuardedResponseStream(raw, response, watchdog, $"download of blob {blob.Digest.Short}", n => Stats.AddReceived(n));
            response = null; // owned by the stream now
            return (Stream)new VerifyingStream(guarded, blob.Digest, blob.Size, $"blob {blob.Digest} from {Registry}/{repository}");
        }
        catch
        {
            response?.Dispose();
            watchdog.Dispose();
            throw;
        }
    }, ct);

    /// <summary>Downloads a whole blob (bounded size) into memory, verified; retried from the start on transient failures.</summary>
    public Task<byte[]> ReadBlobAsync(string repository, Descriptor blob, long maxSize, CancellationToken ct = default)
    {
        if (blob.Size > maxSize)
            throw new OciException(OciErrorKind.Protocol, $"blob {blob.Digest} is {blob.Size} bytes, more than the {maxSize} expected for it");
        return RetryAsync("blob download", async _ =>
        {
            await using var s = await OpenBlobAsync(repository, blob, ct).ConfigureAwait(false);
            return await VerifyingStream.ReadAllAsync(s, blob.Size, ct).ConfigureAwait(false);
        }, ct);
    }

    /// <summary>PUT a manifest or index; returns its descriptor and whether the registry processed a subject (OCI-Subject).</summary>
    public Task<(Descriptor Descriptor, bool SubjectProcessed)> PutManifestAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken ct = default) =>
        RetryAsync("manifest upload", async _ =>
        {
            CheckRepository(repository);
            var descriptor = Descriptor.For(mediaType, bytes);
            var uri = ManifestUri(repository, reference);
            using var response = await SendAsync(() =>
            {
                var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return new HttpRequestMessage(HttpMethod.Put, uri) { Content = content };
            }, Push(repository), ct).ConfigureAwait(false);
            Stats.AddManifestBytes(bytes.Length);
            if (response.StatusCode != HttpStatusCode.Created)
                throw await ErrorAsync(response, $"upload of manifest {descriptor.Digest.Short} as {repository}:{reference}", ct).ConfigureAwait(false);
            CheckDigestHeader(response, descriptor.Digest, $"manifest upload to {repository}:{reference}");
            bool subject = response.Headers.NonValidated.Contains("OCI-Subject");
            return (descriptor, subject);
        }, ct);

    /// <summary>GET a manifest or index by tag or digest; its digest is computed and checked against a digest reference and the registry's header.</summary>
    public Task<FetchedManifest> GetManifestAsync(string repository, string reference, CancellationToken ct = default) => RetryAsync("manifest download", async _ =>
    {
        CheckRepository(repository);
        var uri = ManifestUri(repository, reference);
        using var response = await SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (var t in MediaTypes.Manifests) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(t));
            return request;
        }, Pull(repository), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
            throw new OciException(OciErrorKind.NotFound, $"{Registry}/{repository}:{reference} does not exist", "check the repository name and tag (sealpoint inspect, skopeo list-tags)");
        if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"GET manifest {repository}:{reference}", ct).ConfigureAwait(false);
        byte[] bytes = await ReadLimitedAsync(response, OciJson.MaxManifestSize, $"manifest {repository}:{reference}", ct).ConfigureAwait(false);
        Digest.TryParse(reference, out var pinned);
        var digest = pinned.Algorithm == "sha512" ? ComputeSha512(bytes) : Digest.Sha256(bytes);
        if (pinned.Algorithm is not null && digest != pinned)
            throw new OciException(OciErrorKind.Integrity, $"manifest {repository}@{pinned} from {Registry} has digest {digest}", "the registry returned other content than asked for; do not use it");
        CheckDigestHeader(response, digest, $"manifest {repository}:{reference}");
        string? type = response.Content.Headers.ContentType?.MediaType;
        if (type is null || !MediaTypes.Manifests.Contains(type)) type = OciJson.PeekMediaType(bytes);
        if (type is null || !MediaTypes.Manifests.Contains(type))
            throw new OciException(OciErrorKind.Protocol, $"{Registry}/{repository}:{reference} is not an OCI or Docker v2 manifest (type '{Digest.Truncate(type)}')",
                "Sealpoint reads OCI image manifests and indexes");
        var descriptor = new Descriptor { MediaType = type, Digest = digest, Size = bytes.Length };
        return new FetchedManifest(descriptor, bytes, $"{Registry}/{repository}@{digest}");
    }, ct);

    /// <summary>HEAD a manifest: its descriptor, or null when absent.</summary>
    public Task<Descriptor?> HeadManifestAsync(string repository, string reference, CancellationToken ct = default) => RetryAsync("manifest check", async _ =>
    {
        var uri = ManifestUri(repository, reference);
        using var response = await SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Head, uri);
            foreach (var t in MediaTypes.Manifests) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(t));
            return request;
        }, Pull(repository), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"HEAD manifest {repository}:{reference}", ct).ConfigureAwait(false);
        if (!response.Headers.NonValidated.TryGetValues("Docker-Content-Digest", out var values) || !Digest.TryParse(values.FirstOrDefault(), out var d))
            return (Descriptor?)(await GetManifestAsync(repository, reference, ct).ConfigureAwait(false)).Descriptor;
        return new Descriptor
        {
            MediaType = response.Content.Headers.ContentType?.MediaType ?? MediaTypes.ImageManifest, Digest = d,
            Size = response.Content.Headers.ContentLength ?? 0,
        };
    }, ct);

    /// <summary>All tags of a repository (follows Link pagination, bounded).</summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(string repository, CancellationToken ct = default)
    {
        CheckRepository(repository);
        var tags = new List<string>();
        Uri? uri = new(BaseUri, $"v2/{repository}/tags/list?n=1000");
        for (int page = 0; uri is not null && page < 100; page++)
        {
            var current = uri;
            (var list, uri) = await RetryAsync("tag list", async _ =>
            {
                using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, current), Pull(repository), ct).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.NotFound)
                    throw new OciException(OciErrorKind.NotFound, $"repository {Registry}/{repository} does not exist");
                if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"tag list of {repository}", ct).ConfigureAwait(false);
                var body = await ReadLimitedAsync(response, OciJson.MaxManifestSize, "tag list", ct).ConfigureAwait(false);
                return (OciJson.ParseTags(body, $"{Registry}/{repository}"), NextLink(current, response));
            }, ct).ConfigureAwait(false);
            tags.AddRange((list.Tags ?? []).Where(Reference.IsValidTag));
        }
        return tags;
    }

    /// <summary>
    /// Manifests whose subject is <paramref name="subject"/>: the referrers API where the registry has it, else the
    /// tag-schema fallback (an index at tag <c>ALG-HEX</c>). Filtered by artifact type when given.
    /// </summary>
    public async Task<(IReadOnlyList<Descriptor> Referrers, bool ViaFallbackTag)> GetReferrersAsync(string repository, Digest subject, string? artifactType = null, CancellationToken ct = default)
    {
        CheckRepository(repository);
        var found = new List<Descriptor>();
        Uri? uri = new(BaseUri, $"v2/{repository}/referrers/{subject}{(artifactType is null ? "" : "?artifactType=" + Uri.EscapeDataString(artifactType))}");
        for (int page = 0; uri is not null && page < 100; page++)
        {
            var current = uri;
            var result = await RetryAsync("referrers", async _ =>
            {
                using var response = await SendAsync(() =>
                {
                    var r = new HttpRequestMessage(HttpMethod.Get, current);
                    r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.ImageIndex));
                    return r;
                }, Pull(repository), ct).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.NotFound) return ((ImageIndex?)null, (Uri?)null, false);
                if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, $"referrers of {subject.Short}", ct).ConfigureAwait(false);
                var body = await ReadLimitedAsync(response, OciJson.MaxManifestSize, "referrers", ct).ConfigureAwait(false);
                bool filtered = response.Headers.NonValidated.Contains("OCI-Filters-Applied");
                return (OciJson.ParseIndex(body, $"referrers of {subject} in {Registry}/{repository}"), NextLink(current, response), filtered);
            }, ct).ConfigureAwait(false);
            if (result.Item1 is null)
            {
                if (page > 0) break;
                return (await FallbackReferrersAsync(repository, subject, artifactType, ct).ConfigureAwait(false), true);
            }
            found.AddRange(result.Item1.Manifests.Where(m => artifactType is null || result.Item3 || m.ArtifactType == artifactType));
            uri = result.Item2;
        }
        return (found, false);
    }

    /// <summary>The referrers tag of the fallback schema: <c>sha256-HEX</c>.</summary>
    public static string ReferrersTag(Digest subject)
    {
        string alg = subject.Algorithm.Length > 32 ? subject.Algorithm[..32] : subject.Algorithm;
        string hex = subject.Encoded.Length > 64 ? subject.Encoded[..64] : subject.Encoded;
        return $"{alg}-{hex}";
    }

    private async Task<IReadOnlyList<Descriptor>> FallbackReferrersAsync(string repository, Digest subject, string? artifactType, CancellationToken ct)
    {
        FetchedManifest fetched;
        try { fetched = await GetManifestAsync(repository, ReferrersTag(subject), ct).ConfigureAwait(false); }
        catch (OciException e) when (e.Kind == OciErrorKind.NotFound) { return []; }
        if (!fetched.IsIndex) return [];
        return fetched.ParseIndex().Manifests.Where(m => artifactType is null || m.ArtifactType == artifactType).ToList();
    }

    /// <summary>Adds <paramref name="referrer"/> to the fallback referrers index of <paramref name="subject"/> (for registries without the API).</summary>
    public async Task AddToReferrersTagAsync(string repository, Digest subject, Descriptor referrer, CancellationToken ct = default)
    {
        string tag = ReferrersTag(subject);
        var existing = new List<Descriptor>();
        try
        {
            var fetched = await GetManifestAsync(repository, tag, ct).ConfigureAwait(false);
            if (fetched.IsIndex) existing.AddRange(fetched.ParseIndex().Manifests);
        }
        catch (OciException e) when (e.Kind == OciErrorKind.NotFound) { }
        if (existing.Any(d => d.Digest == referrer.Digest)) return;
        existing.Add(referrer);
        var index = new ImageIndex { Manifests = existing };
        await PutManifestAsync(repository, tag, OciJson.Serialize(index), MediaTypes.ImageIndex, ct).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- HTTP plumbing

    private static string[] Pull(string repository) => [$"repository:{repository}:pull"];
    private static string[] Push(string repository) => [$"repository:{repository}:pull,push"];

    private Uri BlobUri(string repository, Digest digest)
    {
        CheckRepository(repository);
        return new Uri(BaseUri, $"v2/{repository}/blobs/{digest}");
    }

    private Uri ManifestUri(string repository, string reference)
    {
        if (!Reference.IsValidTag(reference) && !Digest.TryParse(reference, out _))
            throw new OciException(OciErrorKind.Usage, $"'{Digest.Truncate(reference)}' is neither a tag nor a digest");
        return new Uri(BaseUri, $"v2/{repository}/manifests/{reference}");
    }

    private static void CheckRepository(string repository)
    {
        if (!Reference.IsValidRepository(repository))
            throw new OciException(OciErrorKind.Usage, $"'{Digest.Truncate(repository)}' is not a valid repository name", "use lowercase letters, digits, '.', '_', '-' and '/'");
    }

    private static bool IsRedirect(HttpStatusCode s) => s is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
        or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static HttpContent EmptyContent()
    {
        var c = new ByteArrayContent([]);
        c.Headers.ContentLength = 0;
        return c;
    }

    private static HttpContent StreamBody(Stream body, long length)
    {
        var c = new StreamContent(body, 1 << 16);
        c.Headers.ContentLength = length;
        c.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return c;
    }

    private static Uri Resolve(Uri requestUri, Uri location) => location.IsAbsoluteUri ? location : new Uri(requestUri, location);

    private static Uri WithQuery(Uri uri, string key, string value)
    {
        var b = new UriBuilder(uri);
        string q = b.Query.TrimStart('?');
        b.Query = (q.Length > 0 ? q + "&" : "") + key + "=" + Uri.EscapeDataString(value);
        return b.Uri;
    }

    private static Uri? NextLink(Uri current, HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.TryGetValues("Link", out var links)) return null;
        foreach (var link in links)
        {
            int lt = link.IndexOf('<'), gt = link.IndexOf('>');
            if (lt < 0 || gt < lt || !link.Contains("rel=\"next\"", StringComparison.Ordinal)) continue;
            if (Uri.TryCreate(current, link[(lt + 1)..gt], out var next) && next.Host == current.Host && next.Port == current.Port) return next;
        }
        return null;
    }

    private static Digest ComputeSha512(byte[] bytes) =>
        Digest.Parse("sha512:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(bytes)));

    private void CheckDigestHeader(HttpResponseMessage response, Digest expected, string what)
    {
        if (!response.Headers.NonValidated.TryGetValues("Docker-Content-Digest", out var values)) return;
        string? header = values.FirstOrDefault();
        if (header is null || !Digest.TryParse(header, out var d) || d.Algorithm != expected.Algorithm) return;
        if (d != expected)
            throw new OciException(OciErrorKind.Integrity, $"{what}: {Registry} reports digest {d}, expected {expected}", "the registry stored or returned other content; do not trust this registry's copy");
    }

    /// <summary>
    /// Sends a request (rebuilt from the factory for each attempt), authenticating on a 401 challenge and retrying once.
    /// The watchdog (or a fresh one over RequestTimeout) bounds the wait for the response headers.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> create, string[] scopes, CancellationToken ct, Watchdog? watchdog = null)
    {
        for (int attempt = 0; ; attempt++)
        {
            using var request = create();
            bool authorized = await AuthorizeAsync(request, scopes, ct).ConfigureAwait(false);
            var response = await SendRawAsync(request, ct, watchdog).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized) return response;
            var challenges = AuthChallenge.ParseAll(response.Headers.NonValidated.TryGetValues("WWW-Authenticate", out var values) ? values : []);
            string registryMessage = await RegistryMessageAsync(response, ct).ConfigureAwait(false);
            response.Dispose();
            if (attempt > 0 || (authorized && _challenge is { IsBasic: true }))
            {
                var creds = _options.Credentials.Find(Registry, RepositoryOf(scopes));
                throw new OciException(OciErrorKind.Unauthorized,
                    creds is null
                        ? $"{Registry} requires authentication and no credentials were found for it ({_options.Credentials.Describe}){registryMessage}"
                        : $"{Registry} refused the credentials of user '{creds.Username}' for {string.Join(" ", scopes)}{registryMessage}",
                    creds is null ? $"log in (podman login {Registry}) or give --authfile" : "check the user name and password in the auth file, and the user's rights on the repository");
            }
            await LearnChallengeAsync(challenges, scopes, ct).ConfigureAwait(false);
        }
    }

    private static string RepositoryOf(string[] scopes)
    {
        if (scopes.Length == 0) return "";
        var parts = scopes[0].Split(':');
        return parts.Length >= 3 ? string.Join(':', parts[1..^1]) : "";
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken ct, Watchdog? watchdog)
    {
        using var own = watchdog is null ? new Watchdog(_options.RequestTimeout, ct) : null;
        var dog = watchdog ?? own!;
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, dog.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new OciException(OciErrorKind.Network, $"{request.Method} {Redact(request.RequestUri)}: no progress for {dog.Idle.TotalSeconds:0} s",
                $"check that {Registry} is up and reachable") { Transient = true };
        }
        catch (HttpRequestException e) when (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            throw new OciException(OciErrorKind.Network, $"TLS connection to {Registry} failed: {Innermost(e)}",
                _options.Insecure ? "check the registry's TLS setup" : $"trust the registry's CA with --ca-file FILE, or use --insecure for a plain-HTTP registry on loopback", e);
        }
        catch (HttpRequestException e)
        {
            throw new OciException(OciErrorKind.Network, $"{request.Method} {Redact(request.RequestUri)} failed: {Innermost(e)}",
                $"check that {Registry} is up and reachable") { Transient = true };
        }
        catch (IOException e)
        {
            throw new OciException(OciErrorKind.Network, $"{request.Method} {Redact(request.RequestUri)}: connection lost ({e.Message})", "try again") { Transient = true };
        }
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message;
    }

    /// <summary>Request URIs in messages without query strings (upload session state, tokens in some registries).</summary>
    private static string Redact(Uri? uri) => uri is null ? "" : uri.GetLeftPart(UriPartial.Path);

    private async Task<bool> AuthorizeAsync(HttpRequestMessage request, string[] scopes, CancellationToken ct)
    {
        var challenge = _challenge;
        if (challenge is null || !SameHost(request.RequestUri)) return false;
        if (challenge.IsBasic)
        {
            var creds = _options.Credentials.Find(Registry, RepositoryOf(scopes));
            if (creds is null) return false;
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{creds.Username}:{creds.Password}")));
            return true;
        }
        string token = await TokenAsync(challenge, scopes, force: false, ct).ConfigureAwait(false);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return true;
    }

    private bool SameHost(Uri? uri) => uri is not null && uri.Host == BaseUri.Host && uri.Port == BaseUri.Port;

    private async Task LearnChallengeAsync(IReadOnlyList<AuthChallenge> challenges, string[] scopes, CancellationToken ct)
    {
        var bearer = challenges.FirstOrDefault(c => c.IsBearer && c["realm"] is not null);
        var basic = challenges.FirstOrDefault(c => c.IsBasic);
        if (bearer is not null)
        {
            _challenge = bearer;
            await TokenAsync(bearer, scopes, force: true, ct).ConfigureAwait(false);
            return;
        }
        if (basic is not null)
        {
            if (_options.Credentials.Find(Registry, RepositoryOf(scopes)) is null)
                throw new OciException(OciErrorKind.Unauthorized, $"{Registry} requires a user name and password and none were found ({_options.Credentials.Describe})",
                    $"log in (podman login {Registry}) or give --authfile FILE");
            _challenge = basic;
            return;
        }
        throw new OciException(OciErrorKind.Unauthorized, $"{Registry} answered 401 without a Basic or Bearer challenge Sealpoint can answer",
            "check the registry's authentication setup");
    }

    /// <summary>A bearer token for the scopes: cached until shortly before it expires; fetched from the challenge's realm.</summary>
    private async Task<string> TokenAsync(AuthChallenge challenge, string[] scopes, bool force, CancellationToken ct)
    {
        string key = string.Join(' ', scopes);
        if (!force && _tokens.TryGetValue(key, out var cached) && cached.Expires > DateTimeOffset.UtcNow) return cached.Token;
        await _authLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!force && _tokens.TryGetValue(key, out cached) && cached.Expires > DateTimeOffset.UtcNow) return cached.Token;
            var (token, lifetime) = await RetryAsync("token request", _ => FetchTokenAsync(challenge, scopes, ct), ct).ConfigureAwait(false);
            var margin = TimeSpan.FromSeconds(Math.Min(30, lifetime.TotalSeconds / 5));
            _tokens[key] = (token, DateTimeOffset.UtcNow + lifetime - margin);
            return token;
        }
        finally { _authLock.Release(); }
    }

    private async Task<(string, TimeSpan)> FetchTokenAsync(AuthChallenge challenge, string[] scopes, CancellationToken ct)
    {
        string realm = challenge["realm"]!;
        if (!Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) || realmUri.Scheme is not ("https" or "http"))
            throw new OciException(OciErrorKind.Protocol, $"{Registry} names an invalid token realm '{Digest.Truncate(realm)}'");
        var creds = _options.Credentials.Find(Registry, RepositoryOf(scopes));
        if (creds is not null && realmUri.Scheme == "http" && !_options.Insecure)
            throw new OciException(OciErrorKind.Config, $"{Registry}'s token service {realmUri.GetLeftPart(UriPartial.Path)} is plain HTTP; credentials would travel in clear",
                "use an HTTPS token service, or --insecure for loopback tests");
        var query = new StringBuilder();
        if (challenge["service"] is { } service) query.Append("service=").Append(Uri.EscapeDataString(service));
        var allScopes = scopes.ToList();
        if (challenge["scope"] is { } extra) allScopes.AddRange(extra.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(s => !allScopes.Contains(s)));
        foreach (var s in allScopes) query.Append(query.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(s));
        var builder = new UriBuilder(realmUri);
        string q = builder.Query.TrimStart('?');
        builder.Query = q.Length > 0 ? q + (query.Length > 0 ? "&" + query : "") : query.ToString();
        using var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
        if (creds is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{creds.Username}:{creds.Password}")));
        using var response = await SendRawAsync(request, ct, null).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw new OciException(OciErrorKind.Unauthorized,
                creds is null ? $"the token service of {Registry} refused anonymous access to {string.Join(" ", scopes)}" : $"the token service of {Registry} refused user '{creds.Username}' for {string.Join(" ", scopes)}",
                creds is null ? $"log in (podman login {Registry}) or give --authfile FILE" : "check the credentials and the user's rights");
        if (response.StatusCode != HttpStatusCode.OK) throw await ErrorAsync(response, "token request", ct).ConfigureAwait(false);
        var body = await ReadLimitedAsync(response, MaxTokenBody, "token response", ct).ConfigureAwait(false);
        var parsed = OciJson.ParseToken(body, $"token service of {Registry}");
        string? token = !string.IsNullOrEmpty(parsed.Token) ? parsed.Token : parsed.AccessToken;
        if (string.IsNullOrEmpty(token) || token.Length > 64 * 1024 || token.Any(c => c <= ' ' || c >= 0x7f))
            throw new OciException(OciErrorKind.Protocol, $"the token service of {Registry} returned no usable token");
        int seconds = parsed.ExpiresIn is > 0 and < 86400 * 7 ? parsed.ExpiresIn.Value : 60;
        return (token, TimeSpan.FromSeconds(seconds));
    }

    private async Task<byte[]> ReadLimitedAsync(HttpResponseMessage response, int max, string what, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength is { } n && n > max)
            throw new OciException(OciErrorKind.Protocol, $"{what} from {Registry} is {n} bytes, more than the {max} allowed");
        using var dog = new Watchdog(_options.RequestTimeout, ct);
        try
        {
            await using var s = await response.Content.ReadAsStreamAsync(dog.Token).ConfigureAwait(false);
            var buffer = new MemoryStream();
            byte[] chunk = new byte[64 * 1024];
            int read;
            while ((read = await s.ReadAsync(chunk, dog.Token).ConfigureAwait(false)) > 0)
            {
                dog.Kick();
                if (buffer.Length + read > max)
                    throw new OciException(OciErrorKind.Protocol, $"{what} from {Registry} is larger than the {max} bytes allowed");
                buffer.Write(chunk, 0, read);
            }
            Stats.AddReceived(buffer.Length);
            return buffer.ToArray();
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new OciException(OciErrorKind.Network, $"{what} from {Registry}: no data for {dog.Idle.TotalSeconds:0} s", "try again") { Transient = true };
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new OciException(OciErrorKind.Network, $"{what} from {Registry}: connection lost ({e.Message})", "try again") { Transient = true };
        }
    }

    /// <summary>" (registry: CODE: message)" from an error body, sanitized and short; empty when there is none.</summary>
    private async Task<string> RegistryMessageAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var body = await ReadLimitedAsync(response, MaxErrorBody, "error body", ct).ConfigureAwait(false);
            var errors = OciJson.TryParseErrors(body)?.Errors;
            if (errors is null || errors.Count == 0) return "";
            string text = string.Join("; ", errors.Take(3).Select(e => $"{e?.Code}: {e?.Message}"));
            text = new string(text.Where(c => c >= ' ' && c != 0x7f).Take(300).ToArray());
            return $" (registry says {text})";
        }
        catch (OciException) { return ""; }
    }

    private async Task<OciException> ErrorAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        string message = await RegistryMessageAsync(response, ct).ConfigureAwait(false);
        int status = (int)response.StatusCode;
        string text = $"{what}: {Registry} answered {status} {response.ReasonPhrase}{message}";
        TimeSpan? retryAfter = response.Headers.RetryAfter?.Delta ??
            (response.Headers.RetryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        return status switch
        {
            401 or 403 => new OciException(OciErrorKind.Unauthorized, text, "check the credentials and the user's rights on the repository"),
            404 => new OciException(OciErrorKind.NotFound, text, "check the repository name and reference"),
            408 or 429 or >= 500 => new RetryableOciException(text, retryAfter),
            _ => new OciException(OciErrorKind.Protocol, text, "the registry rejected the request; see its message"),
        };
    }

    private TimeSpan Backoff(int attempt, OciException e)
    {
        if (e is RetryableOciException { RetryAfter: { } after } && after > TimeSpan.Zero)
            return after < _options.RetryMaxDelay ? after : _options.RetryMaxDelay;
        double ms = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 1);
        ms = Math.Min(ms, _options.RetryMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (0.75 + Random.Shared.NextDouble() * 0.5));
    }

    private async Task<T> RetryAsync<T>(string operation, Func<int, Task<T>> attempt, CancellationToken ct)
    {
        for (int n = 1; ; n++)
        {
            try
            {
                return await attempt(n).ConfigureAwait(false);
            }
            catch (OciException e) when (e.Transient && !ct.IsCancellationRequested)
            {
                if (n >= _options.MaxAttempts)
                    throw new OciException(e.Kind, $"{e.Message} (gave up after {n} attempts)", e.Fix, e);
                var delay = Backoff(n, e);
                _options.Observer?.Retrying(operation, n, delay, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _authLock.Dispose();
    }
}

/// <summary>A transient registry answer (408, 429, 5xx), with the delay it asked for.</summary>
internal sealed class RetryableOciException : OciException
{
    public RetryableOciException(string message, TimeSpan? retryAfter)
        : base(OciErrorKind.Network, message, "the registry is busy or failing; try again later")
    {
        RetryAfter = retryAfter;
        Transient = true;
    }

    public TimeSpan? RetryAfter { get; }
}
