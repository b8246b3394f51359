using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Sealpoint.TestSupport;

public sealed record RegistryOptions
{
    /// <summary>With a user name (and password) the registry requires htpasswd basic auth.</summary>
    public string? Username { get; init; }
    public string? Password { get; init; }

    /// <summary>Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 and localhost.</summary>
    public bool Tls { get; init; }
}

/// <summary>
/// A private OCI distribution registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 and
/// a free port, storing into a temporary folder; optional bcrypt htpasswd auth and TLS. Started
/// and ready (GET /v2/ answers) when Start returns; Dispose stops it and deletes its storage.
/// Clients: skopeo/podman with --tls-verify=false, or --cert-dir <see cref="CertDir"/> with TLS.
/// </summary>
public sealed class Registry : IDisposable
{
    private readonly TempDir _temp;
    private readonly Process _process;
    private readonly X509Certificate2? _certificate;

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public Uri BaseUri => new($"{(_certificate != null ? "https" : "http")}://{Host}/");
    public string StorageDir { get; }
    public string LogFile { get; }
    public string? Username { get; }
    public string? Password { get; }

    /// <summary>With TLS: a folder holding ca.crt (the self-signed cert), for skopeo/podman --cert-dir.</summary>
    public string? CertDir { get; }
    public string? CertificateFile => CertDir == null ? null : Path.Combine(CertDir, "ca.crt");

    private Registry(TempDir temp, Process process, int port, string storage, string log, RegistryOptions options, X509Certificate2? cert, string? certDir)
    {
        (_temp, _process, Port, StorageDir, LogFile, _certificate, CertDir) = (temp, process, port, storage, log, cert, certDir);
        (Username, Password) = (options.Username, options.Password);
    }

    public static Registry Start(RegistryOptions? options = null)
    {
        options ??= new RegistryOptions();
        if ((options.Username == null) != (options.Password == null))
            throw new ArgumentException("give both Username and Password, or neither");
        var registry = Tools.Require("docker-registry");
        var temp = TempDir.Create("registry");
        try
        {
            var storage = temp.Dir("storage");
            string? htpasswd = null, certDir = null;
            X509Certificate2? cert = null;
            if (options.Username != null)
            {
                htpasswd = temp.File("htpasswd");
                // The registry accepts bcrypt entries only; htpasswd -B makes them.
                var line = ProcessRunner.Run(Tools.Require("htpasswd"), ["-Bbn", options.Username, options.Password!]).StandardOutput.Trim();
                File.WriteAllText(htpasswd, line + "\n");
            }
            if (options.Tls)
            {
                certDir = temp.Dir("certs");
                cert = SelfSignedCertificate.Create(Path.Combine(certDir, "ca.crt"), temp.File("server.key"));
            }

            // A port found free can be taken before the registry binds it: try a few.
            for (int attempt = 1; ; attempt++)
            {
                var port = FreePort();
                var config = temp.File("config.yml");
                File.WriteAllText(config, Config(storage, port, htpasswd, certDir == null ? null : (Path.Combine(certDir, "ca.crt"), temp.File("server.key"))));
                var log = temp.File("registry.log");
                var process = Process.Start(new ProcessStartInfo("/bin/sh")
                {
                    ArgumentList = { "-c", "exec \"$0\" serve \"$1\" </dev/null >>\"$2\" 2>&1", registry, config, log },
                    UseShellExecute = false,
                })!;
                var instance = new Registry(temp, process, port, storage, log, options, cert, certDir);
                try
                {
                    instance.WaitReady(TimeSpan.FromSeconds(20));
                    return instance;
                }
                catch when (attempt < 3 && process.HasExited && File.ReadAllText(log).Contains("address already in use"))
                {
                    process.Dispose();
                }
                catch
                {
                    instance.StopProcess();
                    throw;
                }
            }
        }
        catch
        {
            temp.Dispose();
            throw;
        }
    }

    /// <summary>An HttpClient for this registry: base address set, trusting its certificate,
    /// with basic auth when <paramref name="authenticate"/> and the registry has a user.</summary>
    public HttpClient CreateClient(bool authenticate = true)
    {
        var handler = new HttpClientHandler();
        if (_certificate != null)
        {
            var expected = _certificate.Thumbprint;
            handler.ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == expected;
        }
        var client = new HttpClient(handler) { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        if (authenticate && Username != null)
            client.DefaultRequestHeaders.Authorization =
                new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}")));
        return client;
    }

    /// <summary>Status of GET /v2/ (200 when reachable and authorized, 401 without credentials).</summary>
    public HttpStatusCode GetV2(bool authenticate = true)
    {
        using var client = CreateClient(authenticate);
        using var response = client.GetAsync("v2/").GetAwaiter().GetResult();
        return response.StatusCode;
    }

    private void WaitReady(TimeSpan timeout)
    {
        Exception? last = null;
        Poll.Until(() =>
        {
            if (_process.HasExited) return true;
            try { return GetV2(authenticate: true) is HttpStatusCode.OK or HttpStatusCode.Unauthorized; }
            catch (HttpRequestException e) { last = e; return false; }
        }, timeout, () => $"the registry on {Host} to answer GET /v2/ (last error: {last?.Message}){LogTail()}", TimeSpan.FromMilliseconds(50));
        if (_process.HasExited)
            throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode} at start-up{LogTail()}");
    }

    private string LogTail() => File.Exists(LogFile) ? $"\n--- {LogFile} ---\n{FileTail.Read(LogFile, 20)}" : "";

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static string Config(string storage, int port, string? htpasswd, (string Cert, string Key)? tls)
    {
        var yaml = new StringBuilder($"""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {storage}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            """);
        yaml.Append('\n');
        if (tls is var (cert, key))
            yaml.Append($"  tls:\n    certificate: {cert}\n    key: {key}\n");
        if (htpasswd != null)
            yaml.Append($"auth:\n  htpasswd:\n    realm: sealpoint-test\n    path: {htpasswd}\n");
        return yaml.ToString();
    }

    private void StopProcess()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }

    public void Dispose()
    {
        StopProcess();
        _certificate?.Dispose();
        _temp.Dispose();
    }
}
