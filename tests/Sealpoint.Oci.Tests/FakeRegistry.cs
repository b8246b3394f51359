using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sealpoint.Oci.Tests;

public enum FakeAuth { None, Basic, Bearer }

/// <summary>
/// A small in-process distribution-spec registry on loopback (Kestrel), just enough of the v2 API for the client's
/// error paths: blobs (monolithic and chunked uploads with Content-Range, session status, mounts), manifests, tags, no
/// referrers API (404, as distribution 2.8), basic or bearer auth. <see cref="Fault"/> intercepts requests to inject
/// failures; <see cref="Log"/> records every request line.
/// </summary>
public sealed class FakeRegistry : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, MemoryStream> _sessions = new();
    private readonly ConcurrentDictionary<string, bool> _tokens = new();

    public ConcurrentDictionary<string, byte[]> Blobs { get; } = new();
    public ConcurrentDictionary<string, (byte[] Bytes, string MediaType)> Manifests { get; } = new();
    public ConcurrentQueue<string> Log { get; } = new();
    /// <summary>Return true when the request was answered here (the fake does nothing else with it).</summary>
    public Func<HttpContext, Task<bool>>? Fault { get; set; }
    public FakeAuth Auth { get; init; }
    public string User { get; init; } = "alice";
    public string Password { get; init; } = "s3cret";
    public Uri BaseUri { get; private set; } = null!;
    public string Host => $"{BaseUri.Host}:{BaseUri.Port}";

    private FakeRegistry(WebApplication app) => _app = app;

    public static async Task<FakeRegistry> StartAsync(FakeAuth auth = FakeAuth.None)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            o.Limits.MaxRequestBodySize = null;
        });
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var fake = new FakeRegistry(app) { Auth = auth };
        app.Run(fake.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        fake.BaseUri = new Uri(address.Replace("[::]", "127.0.0.1"));
        return fake;
    }

    public static string DigestOf(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        string path = req.Path.Value ?? "";
        Log.Enqueue($"{req.Method} {path}{req.QueryString}");
        if (Fault is { } fault && await fault(ctx)) return;
        if (path == "/token") { await TokenAsync(ctx); return; }
        if (!Authorized(ctx)) return;
        if (path is "/v2/" or "/v2") { await Json(ctx, 200, "{}"); return; }
        if (!path.StartsWith("/v2/", StringComparison.Ordinal)) { ctx.Response.StatusCode = 404; return; }
        string rest = path[4..];
        foreach (var kind in new[] { "/blobs/uploads/", "/blobs/", "/manifests/", "/tags/list", "/referrers/" })
        {
            int at = rest.LastIndexOf(kind, StringComparison.Ordinal);
            if (at <= 0) continue;
            string name = rest[..at], arg = rest[(at + kind.Length)..];
            switch (kind)
            {
                case "/blobs/uploads/": await UploadAsync(ctx, name, arg); return;
                case "/blobs/": await BlobAsync(ctx, arg); return;
                case "/manifests/": await ManifestAsync(ctx, name, arg); return;
                case "/tags/list":
                    var tags = Manifests.Keys.Where(k => k.StartsWith(name + ":", StringComparison.Ordinal)).Select(k => k[(name.Length + 1)..]).Where(t => !t.StartsWith("sha256:"));
                    await Json(ctx, 200, $"{{\"name\":\"{name}\",\"tags\":[{string.Join(",", tags.Select(t => $"\"{t}\""))}]}}");
                    return;
                case "/referrers/": await Error(ctx, 404, "UNSUPPORTED", "no referrers API"); return;
            }
        }
        ctx.Response.StatusCode = 404;
    }

    private bool Authorized(HttpContext ctx)
    {
        string? header = ctx.Request.Headers.Authorization;
        switch (Auth)
        {
            case FakeAuth.None:
                return true;
            case FakeAuth.Basic when header == BasicHeader(User, Password):
                return true;
            case FakeAuth.Basic:
                ctx.Response.StatusCode = 401;
                ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"fake registry\"";
                return false;
            default:
                if (header is not null && header.StartsWith("Bearer ") && _tokens.ContainsKey(header[7..])) return true;
                ctx.Response.StatusCode = 401;
                ctx.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{BaseUri}token\",service=\"fake\",scope=\"repository:x:pull\"";
                return false;
        }
    }

    public static string BasicHeader(string user, string password) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    private async Task TokenAsync(HttpContext ctx)
    {
        if (ctx.Request.Headers.Authorization != BasicHeader(User, Password)) { ctx.Response.StatusCode = 401; return; }
        string token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        _tokens[token] = true;
        await Json(ctx, 200, $"{{\"token\":\"{token}\",\"expires_in\":300}}");
    }

    private async Task UploadAsync(HttpContext ctx, string name, string session)
    {
        var req = ctx.Request;
        if (session.Length == 0 && req.Method == "POST")
        {
            if (req.Query["mount"] is { Count: 1 } mount && Blobs.ContainsKey(mount[0]!))
            {
                ctx.Response.StatusCode = 201;
                ctx.Response.Headers.Location = $"/v2/{name}/blobs/{mount[0]}";
                return;
            }
            string id = Guid.NewGuid().ToString("N");
            _sessions[id] = new MemoryStream();
            ctx.Response.StatusCode = 202;
            ctx.Response.Headers.Location = $"/v2/{name}/blobs/uploads/{id}?_state=abc";
            ctx.Response.Headers["Range"] = "0-0";
            return;
        }
        if (!_sessions.TryGetValue(session, out var data)) { await Error(ctx, 404, "BLOB_UPLOAD_UNKNOWN", "unknown upload"); return; }
        switch (req.Method)
        {
            case "PATCH":
            {
                var body = await ReadBody(ctx);
                if (req.Headers["Content-Range"] is { Count: 1 } range)
                {
                    long start = long.Parse(range[0]!.Split('-')[0]);
                    if (start != data.Length) { await Error(ctx, 416, "BLOB_UPLOAD_INVALID", "range"); return; }
                }
                lock (data) data.Write(body);
                ctx.Response.StatusCode = 202;
                ctx.Response.Headers.Location = $"/v2/{name}/blobs/uploads/{session}?_state=def";
                ctx.Response.Headers["Range"] = $"0-{Math.Max(0, data.Length - 1)}";
                return;
            }
            case "GET":
                ctx.Response.StatusCode = 204;
                ctx.Response.Headers["Range"] = $"0-{Math.Max(0, data.Length - 1)}";
                ctx.Response.Headers.Location = $"/v2/{name}/blobs/uploads/{session}?_state=ghi";
                return;
            case "PUT":
            {
                var body = await ReadBody(ctx);
                lock (data) data.Write(body);
                string digest = req.Query["digest"]!;
                byte[] blob = data.ToArray();
                if (DigestOf(blob) != digest) { await Error(ctx, 400, "DIGEST_INVALID", "digest mismatch"); return; }
                Blobs[digest] = blob;
                _sessions.TryRemove(session, out _);
                ctx.Response.StatusCode = 201;
                ctx.Response.Headers.Location = $"/v2/{name}/blobs/{digest}";
                ctx.Response.Headers["Docker-Content-Digest"] = digest;
                return;
            }
            case "DELETE":
                _sessions.TryRemove(session, out _);
                ctx.Response.StatusCode = 204;
                return;
        }
        ctx.Response.StatusCode = 405;
    }

    private async Task BlobAsync(HttpContext ctx, string digest)
    {
        if (!Blobs.TryGetValue(digest, out var blob)) { await Error(ctx, 404, "BLOB_UNKNOWN", "blob unknown"); return; }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentLength = blob.Length;
        ctx.Response.Headers["Docker-Content-Digest"] = digest;
        if (ctx.Request.Method == "GET") await ctx.Response.Body.WriteAsync(blob);
    }

    private async Task ManifestAsync(HttpContext ctx, string name, string reference)
    {
        if (ctx.Request.Method == "PUT")
        {
            var body = await ReadBody(ctx);
            string type = ctx.Request.ContentType ?? "";
            string digest = DigestOf(body);
            Manifests[$"{name}:{reference}"] = (body, type);
            Manifests[$"{name}:{digest}"] = (body, type);
            ctx.Response.StatusCode = 201;
            ctx.Response.Headers["Docker-Content-Digest"] = digest;
            ctx.Response.Headers.Location = $"/v2/{name}/manifests/{digest}";
            return;
        }
        if (!Manifests.TryGetValue($"{name}:{reference}", out var m)) { await Error(ctx, 404, "MANIFEST_UNKNOWN", "manifest unknown"); return; }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = m.MediaType;
        ctx.Response.ContentLength = m.Bytes.Length;
        ctx.Response.Headers["Docker-Content-Digest"] = DigestOf(m.Bytes);
        if (ctx.Request.Method == "GET") await ctx.Response.Body.WriteAsync(m.Bytes);
    }

    public static async Task<byte[]> ReadBody(HttpContext ctx)
    {
        var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted);
        return ms.ToArray();
    }

    public static async Task Json(HttpContext ctx, int status, string json)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(json);
    }

    public static Task Error(HttpContext ctx, int status, string code, string message) =>
        Json(ctx, status, $"{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message}\"}}]}}");

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
