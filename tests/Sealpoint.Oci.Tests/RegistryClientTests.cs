using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;

namespace Sealpoint.Oci.Tests;

/// <summary>The registry client against the in-process fake registry: protocol paths, and every reply treated as untrusted.</summary>
public sealed class RegistryClientTests
{
    /// <summary>Guards against hangs: a test whose client never returns fails instead of blocking the run.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    private sealed class RecordingObserver : ITransferObserver
    {
        public ConcurrentQueue<string> Retries { get; } = new();
        public void Started(Descriptor blob, string action) { }
        public void Progress(Descriptor blob, long bytesDone) { }
        public void Finished(Descriptor blob, TransferOutcome outcome) { }
        public void Retrying(string operation, int attempt, TimeSpan delay, string reason) => Retries.Enqueue($"{operation}: {reason}");
    }

    private static RegistryClient Client(FakeRegistry fake, RecordingObserver? observer = null, ICredentialProvider? creds = null, long monolithic = 32 << 20,
        int chunk = 16 << 20, int attempts = 4, int timeoutSeconds = 10) =>
        new(fake.Host, new RegistryClientOptions
        {
            Insecure = true, MonolithicLimit = monolithic, ChunkSize = chunk, MaxAttempts = attempts, Observer = observer,
            RetryBaseDelay = TimeSpan.FromMilliseconds(20), RetryMaxDelay = TimeSpan.FromMilliseconds(200),
            RequestTimeout = TimeSpan.FromSeconds(timeoutSeconds), StallTimeout = TimeSpan.FromSeconds(timeoutSeconds),
            Credentials = creds ?? NoCredentials.Instance,
        });

    private static BlobContent RandomBlob(int size, int seed = 1)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return BlobContent.FromBytes(MediaTypes.Layer, bytes);
    }

    private static async Task<byte[]> ReadBack(RegistryClient client, string repo, Descriptor d)
    {
        await using var s = await client.OpenBlobAsync(repo, d);
        return await VerifyingStream.ReadAllAsync(s, d.Size, CancellationToken.None);
    }

    [Fact]
    public async Task MonolithicAndChunkedUploadsRoundTrip()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake, monolithic: 1 << 20, chunk: 256 << 10);
        await client.PingAsync().WaitAsync(Guard);
        var small = RandomBlob(100_000);
        var large = RandomBlob(3_000_000, 2);
        Assert.Equal(TransferOutcome.Uploaded, await client.PushBlobAsync("a/b", small).WaitAsync(Guard));
        Assert.Equal(TransferOutcome.Uploaded, await client.PushBlobAsync("a/b", large).WaitAsync(Guard));
        Assert.True(fake.Log.Count(l => l.StartsWith("PATCH ")) >= 12, string.Join("\n", fake.Log));
        Assert.Equal(await ReadBack(client, "a/b", small.Descriptor), fake.Blobs[small.Descriptor.Digest.ToString()]);
        Assert.Equal(await ReadBack(client, "a/b", large.Descriptor), fake.Blobs[large.Descriptor.Digest.ToString()]);
        Assert.Equal(TransferOutcome.AlreadyPresent, await client.PushBlobAsync("a/b", large).WaitAsync(Guard));
        Assert.Equal(100_000 + 3_000_000, client.Stats.BlobBytesSent);
    }

    [Fact]
    public async Task InterruptedChunkedUploadResumesFromTheSessionState()
    {
        await using var fake = await FakeRegistry.StartAsync();
        int patches = 0;
        fake.Fault = async ctx =>
        {
            if (ctx.Request.Method != "PATCH" || Interlocked.Increment(ref patches) != 3) return false;
            // Take half the chunk, then drop the connection: the registry keeps nothing of this chunk.
            var buffer = new byte[64 * 1024];
            await ctx.Request.Body.ReadAtLeastAsync(buffer, 1, throwOnEndOfStream: false);
            ctx.Abort();
            return true;
        };
        var observer = new RecordingObserver();
        using var client = Client(fake, observer, monolithic: 1 << 20, chunk: 256 << 10);
        var blob = RandomBlob(2_000_000, 3);
        Assert.Equal(TransferOutcome.Uploaded, await client.PushBlobAsync("r", blob).WaitAsync(Guard));
        Assert.Equal(await ReadBack(client, "r", blob.Descriptor), fake.Blobs[blob.Descriptor.Digest.ToString()]);
        Assert.NotEmpty(observer.Retries);
        // The client asked the session where it stood, and did not restart from zero.
        Assert.Contains(fake.Log, l => l.StartsWith("GET /v2/r/blobs/uploads/"));
        Assert.Single(fake.Log, l => l == "POST /v2/r/blobs/uploads/");
    }

    [Fact]
    public async Task UploadTheRegistryNeverCompletesFailsAndIsNotReportedDone()
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Fault = async ctx =>
        {
            if (ctx.Request.Method != "PUT" || !ctx.Request.Path.Value!.Contains("/blobs/uploads/")) return false;
            await FakeRegistry.Error(ctx, 503, "UNAVAILABLE", "storage down");
            return true;
        };
        using var client = Client(fake, attempts: 3);
        var e = await Assert.ThrowsAsync<OciException>(() => client.PushBlobAsync("r", RandomBlob(5000)).WaitAsync(Guard));
        Assert.Contains("gave up after 3 attempts", e.Message);
        Assert.Contains("storage down", e.Message);
        Assert.Empty(fake.Blobs);
        Assert.Equal(0, client.Stats.BlobsUploaded);
    }

    [Fact]
    public async Task RegistryThatAcceptsButDoesNotStoreIsCaught()
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Fault = async ctx =>
        {
            if (ctx.Request.Method != "PUT" || !ctx.Request.Path.Value!.Contains("/blobs/uploads/")) return false;
            await FakeRegistry.ReadBody(ctx);
            ctx.Response.StatusCode = 201; // claims success, stores nothing
            return true;
        };
        using var client = Client(fake);
        var e = await Assert.ThrowsAsync<OciException>(() => client.PushBlobAsync("r", RandomBlob(5000)).WaitAsync(Guard));
        Assert.Contains("does not have it", e.Message);
    }

    [Fact]
    public async Task SubstitutedBlobContentIsAnIntegrityError()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake);
        var blob = RandomBlob(10_000);
        await client.PushBlobAsync("r", blob).WaitAsync(Guard);
        var evil = (byte[])fake.Blobs[blob.Descriptor.Digest.ToString()].Clone();
        evil[5000] ^= 1;
        fake.Blobs[blob.Descriptor.Digest.ToString()] = evil;
        var e = await Assert.ThrowsAsync<OciException>(() => ReadBack(client, "r", blob.Descriptor).WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Integrity, e.Kind);
        fake.Blobs[blob.Descriptor.Digest.ToString()] = [.. evil, 1, 2, 3];
        e = await Assert.ThrowsAsync<OciException>(() => ReadBack(client, "r", blob.Descriptor).WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Integrity, e.Kind);
    }

    [Fact]
    public async Task ManifestWithTheWrongDigestIsRefused()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake);
        var good = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}");
        var (d, _) = await client.PutManifestAsync("r", "v1", good, MediaTypes.ImageIndex).WaitAsync(Guard);
        fake.Manifests[$"r:{d.Digest}"] = (Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"manifests\":[]} "), MediaTypes.ImageIndex);
        var e = await Assert.ThrowsAsync<OciException>(() => client.GetManifestAsync("r", d.Digest.ToString()).WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Integrity, e.Kind);
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:nope\"}}")]
    public async Task BadManifestJsonIsAProtocolError(string body)
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Manifests["r:v1"] = (Encoding.UTF8.GetBytes(body), MediaTypes.ImageManifest);
        using var client = Client(fake);
        var fetched = await client.GetManifestAsync("r", "v1").WaitAsync(Guard);
        Assert.Equal(OciErrorKind.Protocol, Assert.Throws<OciException>(() => fetched.ParseManifest()).Kind);
    }

    [Fact]
    public async Task HugeBodiesAreRefusedWithoutReadingThem()
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Fault = async ctx =>
        {
            if (!ctx.Request.Path.Value!.Contains("/manifests/")) return false;
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = MediaTypes.ImageManifest;
            if (ctx.Request.Path.Value.EndsWith("/declared")) ctx.Response.ContentLength = 100L << 20;
            // An endless body: the client must stop at its limit.
            var chunk = new byte[64 * 1024];
            try { while (!ctx.RequestAborted.IsCancellationRequested) await ctx.Response.Body.WriteAsync(chunk, ctx.RequestAborted); }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException) { }
            return true;
        };
        using var client = Client(fake);
        foreach (var tag in new[] { "declared", "streamed" })
        {
            var e = await Assert.ThrowsAsync<OciException>(() => client.GetManifestAsync("r", tag).WaitAsync(Guard));
            Assert.Equal(OciErrorKind.Protocol, e.Kind);
            Assert.Contains("allowed", e.Message);
        }
    }

    [Fact]
    public async Task HangingRegistryTimesOutWithAClearError()
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Fault = async ctx =>
        {
            try { await Task.Delay(Timeout.Infinite, ctx.RequestAborted); } catch (OperationCanceledException) { }
            return true;
        };
        using var client = Client(fake, attempts: 2, timeoutSeconds: 1);
        var e = await Assert.ThrowsAsync<OciException>(() => client.GetManifestAsync("r", "v1").WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Network, e.Kind);
        Assert.Contains("no progress", e.Message);
        Assert.Contains("gave up after 2 attempts", e.Message);
    }

    [Fact]
    public async Task StalledBlobDownloadTimesOut()
    {
        await using var fake = await FakeRegistry.StartAsync();
        var blob = RandomBlob(100_000);
        fake.Fault = async ctx =>
        {
            if (ctx.Request.Method != "GET" || !ctx.Request.Path.Value!.Contains("/blobs/sha256:")) return false;
            ctx.Response.ContentLength = blob.Descriptor.Size;
            await ctx.Response.Body.WriteAsync(new byte[1000]);
            await ctx.Response.Body.FlushAsync();
            try { await Task.Delay(Timeout.Infinite, ctx.RequestAborted); } catch (OperationCanceledException) { }
            return true;
        };
        using var client = Client(fake, attempts: 1, timeoutSeconds: 1);
        var e = await Assert.ThrowsAsync<OciException>(() => ReadBack(client, "r", blob.Descriptor).WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Network, e.Kind);
    }

    [Fact]
    public async Task TransientErrorsAreRetriedThenSucceed()
    {
        await using var fake = await FakeRegistry.StartAsync();
        int failures = 0;
        fake.Fault = async ctx =>
        {
            if (!ctx.Request.Path.Value!.Contains("/manifests/") || ctx.Request.Method != "GET" || Interlocked.Increment(ref failures) > 2) return false;
            ctx.Response.Headers.RetryAfter = "0";
            await FakeRegistry.Error(ctx, 503, "TOOMANYREQUESTS", "busy");
            return true;
        };
        var observer = new RecordingObserver();
        using var client = Client(fake, observer);
        var bytes = OciJson.Serialize(new ImageIndex());
        await client.PutManifestAsync("r", "v1", bytes, MediaTypes.ImageIndex).WaitAsync(Guard);
        var fetched = await client.GetManifestAsync("r", "v1").WaitAsync(Guard);
        Assert.Equal(bytes, fetched.Bytes);
        Assert.Equal(2, observer.Retries.Count);
    }

    [Fact]
    public async Task BasicAuthNeedsTheRightCredentials()
    {
        await using var fake = await FakeRegistry.StartAsync(FakeAuth.Basic);
        using (var anonymous = Client(fake))
        {
            var e = await Assert.ThrowsAsync<OciException>(() => anonymous.PingAsync().WaitAsync(Guard));
            Assert.Equal(OciErrorKind.Unauthorized, e.Kind);
            Assert.Contains("none were found", e.Message);
        }
        using (var wrong = Client(fake, creds: new StaticCredentials(new RegistryCredentials("alice", "wrong"))))
        {
            var e = await Assert.ThrowsAsync<OciException>(() => wrong.PushBlobAsync("r", RandomBlob(10)).WaitAsync(Guard));
            Assert.Equal(OciErrorKind.Unauthorized, e.Kind);
            Assert.Contains("refused the credentials of user 'alice'", e.Message);
            Assert.DoesNotContain("wrong", e.Message);
        }
        using var right = Client(fake, creds: new StaticCredentials(new RegistryCredentials("alice", "s3cret")));
        Assert.Equal(TransferOutcome.Uploaded, await right.PushBlobAsync("r", RandomBlob(10)).WaitAsync(Guard));
    }

    [Fact]
    public async Task BearerTokensAreFetchedFromTheRealm()
    {
        await using var fake = await FakeRegistry.StartAsync(FakeAuth.Bearer);
        using var client = Client(fake, creds: new StaticCredentials(new RegistryCredentials("alice", "s3cret")));
        var blob = RandomBlob(50_000);
        Assert.Equal(TransferOutcome.Uploaded, await client.PushBlobAsync("team/app", blob).WaitAsync(Guard));
        Assert.Equal(blob.Descriptor.Size, (await ReadBack(client, "team/app", blob.Descriptor)).Length);
        var tokenRequests = fake.Log.Where(l => l.StartsWith("GET /token")).ToList();
        Assert.NotEmpty(tokenRequests);
        Assert.Contains(tokenRequests, l => l.Contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush") && l.Contains("service=fake"));

        using var wrong = Client(fake, creds: new StaticCredentials(new RegistryCredentials("alice", "nope")));
        var e = await Assert.ThrowsAsync<OciException>(() => wrong.PingAsync().WaitAsync(Guard));
        Assert.Equal(OciErrorKind.Unauthorized, e.Kind);
        Assert.Contains("token service", e.Message);
    }

    [Fact]
    public async Task ReferrersFallBackToTheTagSchema()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake);
        var (subject, _) = await client.PutManifestAsync("r", "base", OciJson.Serialize(new ImageIndex()), MediaTypes.ImageIndex).WaitAsync(Guard);
        var referrer = Descriptor.For(MediaTypes.ImageManifest, [1, 2, 3]) with { ArtifactType = "application/x-test" };
        await client.AddToReferrersTagAsync("r", subject.Digest, referrer).WaitAsync(Guard);
        await client.AddToReferrersTagAsync("r", subject.Digest, referrer).WaitAsync(Guard); // idempotent
        var (found, viaTag) = await client.GetReferrersAsync("r", subject.Digest, "application/x-test").WaitAsync(Guard);
        Assert.True(viaTag);
        Assert.Equal(referrer.Digest, Assert.Single(found).Digest);
        Assert.Contains(fake.Log, l => l == $"GET /v2/r/manifests/{RegistryClient.ReferrersTag(subject.Digest)}");
        Assert.Empty((await client.GetReferrersAsync("r", subject.Digest, "application/other").WaitAsync(Guard)).Referrers);
    }

    [Fact]
    public async Task CrossRepositoryMount()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake);
        var blob = RandomBlob(30_000);
        await client.PushBlobAsync("one", blob).WaitAsync(Guard);
        fake.Fault = async ctx =>
        {
            // HEAD in "two" says absent, so the mount is tried.
            if (ctx.Request.Method != "HEAD" || !ctx.Request.Path.Value!.StartsWith("/v2/two/")) return false;
            if (fake.Log.Any(l => l.Contains("mount="))) return false;
            ctx.Response.StatusCode = 404;
            await Task.CompletedTask;
            return true;
        };
        Assert.Equal(TransferOutcome.Mounted, await client.PushBlobAsync("two", blob, mountFrom: "one").WaitAsync(Guard));
        Assert.Equal(0, fake.Log.Count(l => l.StartsWith("PATCH") || (l.StartsWith("PUT") && l.Contains("/two/blobs/uploads/"))));
    }

    [Fact]
    public async Task RegistryErrorTextIsSanitized()
    {
        await using var fake = await FakeRegistry.StartAsync();
        fake.Fault = async ctx =>
        {
            await FakeRegistry.Json(ctx, 400, "{\"errors\":[{\"code\":\"NAME_INVALID\",\"message\":\"bad\\u001b[31m name\"}]}");
            return true;
        };
        using var client = Client(fake);
        var e = await Assert.ThrowsAsync<OciException>(() => client.GetManifestAsync("r", "v1").WaitAsync(Guard));
        Assert.Contains("NAME_INVALID", e.Message);
        Assert.DoesNotContain("\u001b", e.Message);
    }

    [Fact]
    public async Task TagsAreListed()
    {
        await using var fake = await FakeRegistry.StartAsync();
        using var client = Client(fake);
        foreach (var t in new[] { "a", "b" }) await client.PutManifestAsync("r", t, OciJson.Serialize(new ImageIndex()), MediaTypes.ImageIndex).WaitAsync(Guard);
        Assert.Equal(["a", "b"], (await client.ListTagsAsync("r").WaitAsync(Guard)).Order());
    }
}
