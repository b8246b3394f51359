using System.Text;
using System.Text.Json;

namespace Sealpoint.Oci.Registry;

/// <summary>
/// Credentials from the auth files podman, skopeo, buildah and docker write (containers-auth.json(5)):
/// <c>{"auths": {"HOST[/NAMESPACE…]": {"auth": base64("user:password")}}}</c>. Looked up in
/// <c>$REGISTRY_AUTH_FILE</c>, else <c>$XDG_RUNTIME_DIR/containers/auth.json</c>,
/// <c>$XDG_CONFIG_HOME/containers/auth.json</c> (default <c>$HOME/.config</c>), <c>$HOME/.docker/config.json</c>
/// and the legacy <c>$HOME/.dockercfg</c>; the first file with an entry for the registry wins, and in a file the
/// most specific key (host/namespace/repo before host) wins. Credential helpers are not run.
/// </summary>
public sealed class AuthFileCredentials : ICredentialProvider
{
    public const int MaxFileSize = 1 << 20;
    private readonly IReadOnlyList<string> _files;

    public AuthFileCredentials(IReadOnlyList<string> files) => _files = files;

    /// <summary>An explicit file (--authfile) or the standard search list.</summary>
    public static AuthFileCredentials FromEnvironment(string? explicitFile = null, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        if (explicitFile is not null)
        {
            if (!File.Exists(explicitFile))
                throw new OciException(OciErrorKind.Config, $"auth file {explicitFile} does not exist", "give an existing file (podman login --authfile FILE writes one)");
            return new AuthFileCredentials([explicitFile]);
        }
        return new AuthFileCredentials(DefaultFiles(env));
    }

    public static IReadOnlyList<string> DefaultFiles(Func<string, string?> env)
    {
        var files = new List<string>();
        if (env("REGISTRY_AUTH_FILE") is { Length: > 0 } explicitPath) return [explicitPath];
        if (env("XDG_RUNTIME_DIR") is { Length: > 0 } runtime) files.Add(Path.Combine(runtime, "containers", "auth.json"));
        string? home = env("HOME");
        string? config = env("XDG_CONFIG_HOME") is { Length: > 0 } x ? x : home is null ? null : Path.Combine(home, ".config");
        if (config is not null) files.Add(Path.Combine(config, "containers", "auth.json"));
        if (home is not null)
        {
            files.Add(Path.Combine(home, ".docker", "config.json"));
            files.Add(Path.Combine(home, ".dockercfg"));
        }
        return files;
    }

    public string Describe => _files.Count == 0 ? "no auth files" : "auth files " + string.Join(", ", _files);

    public RegistryCredentials? Find(string registry, string repository)
    {
        foreach (string file in _files)
        {
            if (!File.Exists(file)) continue;
            var entries = ReadFile(file);
            var found = Lookup(entries, registry, repository, file);
            if (found is not null) return found;
        }
        return null;
    }

    /// <summary>Parses one auth file into key → auth entry; a malformed file is an error naming the file, never echoing it.</summary>
    public static IReadOnlyDictionary<string, JsonElement> ReadFile(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Length > MaxFileSize) throw new OciException(OciErrorKind.Config, $"auth file {path} is larger than {MaxFileSize} bytes", "check that it is an auth file");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OciException(OciErrorKind.Config, $"auth file {path} cannot be read: {e.Message}", "check its permissions", e);
        }
        return Parse(bytes, path);
    }

    public static IReadOnlyDictionary<string, JsonElement> Parse(ReadOnlySpan<byte> bytes, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e)
        {
            throw new OciException(OciErrorKind.Config, $"auth file {source} is not valid JSON (line {e.LineNumber + 1})", "fix or remove it (podman login rewrites it)");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new OciException(OciErrorKind.Config, $"auth file {source} is not a JSON object", "fix or remove it");
            // containers-auth.json and docker's config.json keep entries under "auths"; the legacy .dockercfg at top level.
            var map = root.TryGetProperty("auths", out var auths) ? auths : root;
            var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            if (map.ValueKind != JsonValueKind.Object) return result;
            try
            {
                foreach (var p in map.EnumerateObject())
                    if (p.Value.ValueKind == JsonValueKind.Object) result[NormalizeKey(p.Name)] = p.Value.Clone();
            }
            catch (InvalidOperationException)
            {
                throw new OciException(OciErrorKind.Config, $"auth file {source} holds text that is not valid UTF-8", "fix or remove it (podman login rewrites it)");
            }
            return result;
        }
    }

    /// <summary>"https://index.docker.io/v1/" → "docker.io"; "http://reg:5000/" → "reg:5000"; "reg/ns" stays.</summary>
    public static string NormalizeKey(string key)
    {
        string k = key.Trim();
        foreach (var prefix in new[] { "https://", "http://" })
            if (k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) k = k[prefix.Length..];
        if (k.EndsWith("/v1/", StringComparison.Ordinal) || k.EndsWith("/v2/", StringComparison.Ordinal)) k = k[..^4];
        k = k.TrimEnd('/');
        int slash = k.IndexOf('/');
        string host = slash < 0 ? k : k[..slash];
        if (host is "index.docker.io" or "registry-1.docker.io") k = Reference.DockerHub + (slash < 0 ? "" : k[slash..]);
        return k;
    }

    private static RegistryCredentials? Lookup(IReadOnlyDictionary<string, JsonElement> entries, string registry, string repository, string file)
    {
        // Most specific first: host/a/b/c, host/a/b, host/a, host.
        var parts = repository.Split('/');
        for (int n = parts.Length; n >= 0; n--)
        {
            string key = n == 0 ? registry : $"{registry}/{string.Join('/', parts.Take(n))}";
            if (!entries.TryGetValue(key, out var entry)) continue;
            try { return Decode(entry, key, file); }
            catch (InvalidOperationException)
            {
                throw new OciException(OciErrorKind.Config, $"the entry for {key} in {file} holds text that is not valid UTF-8", "log in again (podman login) to rewrite it");
            }
        }
        return null;
    }

    private static RegistryCredentials? Decode(JsonElement entry, string key, string file)
    {
        if (entry.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } b64)
        {
            string text;
            try { text = Encoding.UTF8.GetString(Convert.FromBase64String(b64)); }
            catch (FormatException)
            {
                throw new OciException(OciErrorKind.Config, $"the 'auth' entry for {key} in {file} is not base64", "log in again (podman login) to rewrite it");
            }
            int colon = text.IndexOf(':');
            if (colon <= 0)
                throw new OciException(OciErrorKind.Config, $"the 'auth' entry for {key} in {file} is not base64 of 'user:password'", "log in again (podman login) to rewrite it");
            return new RegistryCredentials(text[..colon], text[(colon + 1)..]);
        }
        if (entry.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String &&
            entry.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 } user)
            return new RegistryCredentials(user, p.GetString() ?? "");
        if (entry.TryGetProperty("identitytoken", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() is { Length: > 0 })
            throw new OciException(OciErrorKind.Config, $"the entry for {key} in {file} holds only an identity token (OAuth2), which Sealpoint does not use",
                "log in with a user name and password (podman login), or give --authfile with such an entry");
        return null;
    }

    /// <summary>An auth.json entry's JSON for <paramref name="host"/>, as podman login writes it (for tests and tooling).</summary>
    public static string Format(string host, RegistryCredentials c) =>
        JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, Dictionary<string, string>>>
        {
            ["auths"] = new() { [host] = new() { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")) } },
        }, AuthFileJson.Default.DictionaryStringDictionaryStringDictionaryStringString);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, Dictionary<string, Dictionary<string, string>>>))]
internal sealed partial class AuthFileJson : System.Text.Json.Serialization.JsonSerializerContext;
