using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Config;

/// <summary>
/// Node-wide settings of sealpoint-runc and its hook, from /etc/sealpoint/config.toml (every key is
/// documented in config.example.toml at the repository root). A missing default file means built-in
/// defaults; an unknown table or key, a wrong type or an invalid value is an error naming it.
/// </summary>
public sealed record NodeConfig
{
    public const string DefaultPath = "/etc/sealpoint/config.toml";
    /// <summary>Environment variable naming another config file (tests, several nodes on one host).</summary>
    public const string PathVariable = "SEALPOINT_CONFIG";
    public const string DefaultStaging = "/dev/shm/sealpoint";

    /// <summary>Where the settings came from: a file path, or "built-in defaults".</summary>
    public string Source { get; init; } = "built-in defaults";

    // [runtime]
    /// <summary>The real runc every command is handed to.</summary>
    public string Runc { get; init; } = DefaultRunc();
    /// <summary>The CRIU runc should use; null = runc's own lookup (criu on PATH).</summary>
    public string? Criu { get; init; }
    /// <summary>Memory-backed folder for plaintext images between CRIU and sealing.</summary>
    public string Staging { get; init; } = DefaultStaging;
    /// <summary>Each operation's staging is a private tmpfs with huge pages (when the process may mount).</summary>
    public bool StagingHugePages { get; init; } = true;
    /// <summary>
    /// A restore serves large memory images to CRIU decrypted read by read (FUSE) instead of decrypting them into
    /// staging first (when the process may mount and /dev/fuse exists).
    /// </summary>
    public bool ServePages { get; init; } = true;
    /// <summary>Lock the runtime's memory even on a node without swap (see MemoryProtection); by default only with swap.</summary>
    public bool LockMemoryAlways { get; init; }

    // [keys]
    public string PkiRoot { get; init; } = Keys.Pki.DefaultRoot;
    /// <summary>This node's decryption identity: a name in the PKI, or an absolute private key path. Null = none (sealed restore impossible).</summary>
    public string? Identity { get; init; }
    /// <summary>Default recipients (PKI names or certificate paths) when a container names none.</summary>
    public IReadOnlyList<string> Recipients { get; init; } = [];
    /// <summary>Recipients added to every sealed checkpoint (escrow, backup), whatever the container asks.</summary>
    public IReadOnlyList<string> AlwaysRecipients { get; init; } = [];

    // [policy]
    /// <summary>Whether a container that says nothing (no io.sealpoint.encrypt) is sealed.</summary>
    public bool Encrypt { get; init; } = true;
    /// <summary>Every container is sealed; io.sealpoint.encrypt=false is an error.</summary>
    public bool Mandatory { get; init; }
    /// <summary>Whether a checkpoint that is not sealed may be restored (containers that opted out of sealing always may).</summary>
    public bool AllowPlaintextRestore { get; init; }
    public AeadAlgorithm PagesCipher { get; init; } = AeadAlgorithm.Aes256Gcm;
    public AeadAlgorithm MetadataCipher { get; init; } = AeadAlgorithm.ChaCha20Poly1305;
    /// <summary>The io.sealpoint.* annotations a container may set; any other one it sets is an error.</summary>
    public IReadOnlySet<string> AllowedAnnotations { get; init; } = new HashSet<string>(Policy.Annotations.Overridable, StringComparer.Ordinal);

    // [testing]
    /// <summary>Test switch: make sealing fail after the dump, to exercise the recovery path. Never set in production.</summary>
    public bool FailSealing { get; init; }

    public static string DefaultRunc() => File.Exists("/usr/sbin/runc") || !File.Exists("/usr/bin/runc") ? "/usr/sbin/runc" : "/usr/bin/runc";

    /// <summary>Loads $SEALPOINT_CONFIG (which must exist), else /etc/sealpoint/config.toml (defaults when absent).</summary>
    public static NodeConfig Load()
    {
        string? explicitPath = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            if (!File.Exists(explicitPath))
                throw new SealpointException(ErrorKind.Config, $"{PathVariable}={explicitPath} names a file that does not exist",
                    $"create it (see config.example.toml), or unset {PathVariable} to use {DefaultPath}");
            return LoadFile(explicitPath);
        }
        return File.Exists(DefaultPath) ? LoadFile(DefaultPath) : new NodeConfig();
    }

    public static NodeConfig LoadFile(string path) => FromDocument(Toml.ParseFile(path));

    public static NodeConfig Parse(string text, string source = "config.toml") => FromDocument(Toml.Parse(text, source));

    private static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, TomlKind>> Schema = new Dictionary<string, IReadOnlyDictionary<string, TomlKind>>
    {
        ["runtime"] = new Dictionary<string, TomlKind> { ["runc"] = TomlKind.String, ["criu"] = TomlKind.String, ["staging"] = TomlKind.String, ["staging_huge_pages"] = TomlKind.Boolean, ["serve_pages"] = TomlKind.Boolean, ["lock_memory_always"] = TomlKind.Boolean },
        ["keys"] = new Dictionary<string, TomlKind>
        {
            ["pki"] = TomlKind.String, ["identity"] = TomlKind.String, ["recipients"] = TomlKind.StringArray, ["always_recipients"] = TomlKind.StringArray,
        },
        ["policy"] = new Dictionary<string, TomlKind>
        {
            ["encrypt"] = TomlKind.Boolean, ["mandatory"] = TomlKind.Boolean, ["allow_plaintext_restore"] = TomlKind.Boolean,
            ["cipher"] = TomlKind.String, ["metadata_cipher"] = TomlKind.String, ["allowed_annotations"] = TomlKind.StringArray,
        },
        ["testing"] = new Dictionary<string, TomlKind> { ["fail_sealing"] = TomlKind.Boolean },
    };

    public static NodeConfig FromDocument(TomlDocument doc)
    {
        string src = doc.Source;
        foreach (var (table, keys) in doc.Tables)
        {
            if (table.Length == 0)
            {
                if (keys.Count > 0)
                {
                    var first = keys.First();
                    throw Toml.Error(src, first.Value.Line, $"the key '{first.Key}' is outside any table",
                        $"put it under one of the tables {string.Join(", ", Schema.Keys.Select(k => $"[{k}]"))}");
                }
                continue;
            }
            if (!Schema.TryGetValue(table, out var schema))
                throw Toml.Error(src, doc.TableLines[table], $"unknown table [{table}]", $"the tables are {string.Join(", ", Schema.Keys.Select(k => $"[{k}]"))}");
            foreach (var (key, value) in keys)
            {
                if (!schema.TryGetValue(key, out var kind))
                    throw Toml.Error(src, value.Line, $"unknown key '{key}' in [{table}]", $"the keys of [{table}] are {string.Join(", ", schema.Keys)}");
                if (value.Kind != kind)
                    throw Toml.Error(src, value.Line, $"[{table}] {key} must be {new TomlValue(kind, 0).KindName}, not {value.KindName}", "see config.example.toml");
            }
        }

        TomlValue? Get(string table, string key) =>
            doc.Tables.TryGetValue(table, out var t) && t.TryGetValue(key, out var v) ? v : null;

        var config = new NodeConfig { Source = src };
        if (Get("runtime", "runc") is { } runc) config = config with { Runc = AbsolutePath(src, runc, "runtime", "runc", plainForLauncher: true) };
        if (Get("runtime", "criu") is { } criu) config = config with { Criu = AbsolutePath(src, criu, "runtime", "criu") };
        if (Get("runtime", "staging") is { } staging) config = config with { Staging = AbsolutePath(src, staging, "runtime", "staging").TrimEnd('/') };
        if (Get("runtime", "staging_huge_pages") is { } huge) config = config with { StagingHugePages = huge.Boolean };
        if (Get("runtime", "serve_pages") is { } serve) config = config with { ServePages = serve.Boolean };
        if (Get("runtime", "lock_memory_always") is { } lockAlways) config = config with { LockMemoryAlways = lockAlways.Boolean };
        if (Get("keys", "pki") is { } pki) config = config with { PkiRoot = AbsolutePath(src, pki, "keys", "pki") };
        if (Get("keys", "identity") is { } identity)
        {
            string v = identity.String!;
            if (v.Length == 0 || (!v.StartsWith('/') && !IsPkiName(v)))
                throw Toml.Error(src, identity.Line, $"[keys] identity = \"{Printable(v)}\" is neither a name in the PKI nor an absolute key path",
                    "give the node's name in the PKI folder (e.g. \"node1\") or an absolute path to its private key");
            config = config with { Identity = v };
        }
        if (Get("keys", "recipients") is { } recipients) config = config with { Recipients = RecipientList(src, recipients, "recipients") };
        if (Get("keys", "always_recipients") is { } always) config = config with { AlwaysRecipients = RecipientList(src, always, "always_recipients") };
        if (Get("policy", "encrypt") is { } encrypt) config = config with { Encrypt = encrypt.Boolean };
        if (Get("policy", "mandatory") is { } mandatory) config = config with { Mandatory = mandatory.Boolean };
        if (Get("policy", "allow_plaintext_restore") is { } plain) config = config with { AllowPlaintextRestore = plain.Boolean };
        if (Get("policy", "cipher") is { } cipher) config = config with { PagesCipher = Cipher(src, cipher, "cipher") };
        if (Get("policy", "metadata_cipher") is { } mcipher) config = config with { MetadataCipher = Cipher(src, mcipher, "metadata_cipher") };
        if (Get("policy", "allowed_annotations") is { } allowed)
        {
            var set = new HashSet<string>(StringComparer.Ordinal);
            foreach (string name in allowed.Strings!)
            {
                if (!Policy.Annotations.Overridable.Contains(name))
                    throw Toml.Error(src, allowed.Line, $"[policy] allowed_annotations lists '{Printable(name)}', which is not a Sealpoint annotation a container can set",
                        $"list only {string.Join(", ", Policy.Annotations.Overridable)}");
                set.Add(name);
            }
            config = config with { AllowedAnnotations = set };
        }
        if (Get("testing", "fail_sealing") is { } fail) config = config with { FailSealing = fail.Boolean };

        if (config.Mandatory && !config.Encrypt)
            throw Toml.Error(src, Get("policy", "encrypt")!.Line, "[policy] mandatory = true contradicts encrypt = false",
                "remove encrypt = false (mandatory sealing implies it), or set mandatory = false");
        return config;
    }

    private static string AbsolutePath(string src, TomlValue value, string table, string key, bool plainForLauncher = false)
    {
        string v = value.String!;
        if (!v.StartsWith('/') || v.Contains('\0'))
            throw Toml.Error(src, value.Line, $"[{table}] {key} = \"{Printable(v)}\" is not an absolute path", "give an absolute path");
        // The C launcher reads runc with a tiny parser: keep the value free of escapes so both read the same path.
        if (plainForLauncher && (v.Any(char.IsControl) || v.Contains('\\') || v.Contains('"') || v.Contains('\'')))
            throw Toml.Error(src, value.Line, $"[{table}] {key} contains quotes, backslashes or control characters", "give a plain absolute path");
        return v;
    }

    private static IReadOnlyList<string> RecipientList(string src, TomlValue value, string key)
    {
        foreach (string r in value.Strings!)
            if (!IsRecipientSpec(r))
                throw Toml.Error(src, value.Line, $"[keys] {key} holds \"{Printable(r)}\", which is neither a name in the PKI nor a certificate path",
                    "give PKI names (letters, digits, '-', '_', '.') or absolute paths of PEM certificates");
        return value.Strings!.Distinct(StringComparer.Ordinal).ToList();
    }

    private static AeadAlgorithm Cipher(string src, TomlValue value, string key) =>
        AeadAlgorithms.TryParse(value.String, out var a)
            ? a
            : throw Toml.Error(src, value.Line, $"[policy] {key} = \"{Printable(value.String!)}\" is not a cipher Sealpoint knows", "use \"aes-256-gcm\" or \"chacha20-poly1305\"");

    /// <summary>A PKI identity name, as Pki accepts it.</summary>
    public static bool IsPkiName(string name) =>
        name.Length is > 0 and <= 64 && name != "CA" && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>A recipient as config or annotation may give it: a PKI name or an absolute certificate path.</summary>
    public static bool IsRecipientSpec(string spec) =>
        IsPkiName(spec) || (spec.StartsWith('/') && spec.Length <= 4096 && !spec.Any(char.IsControl));

    /// <summary>An untrusted value made safe to print in one line: control characters replaced, long values cut.</summary>
    public static string Printable(string s)
    {
        string cut = s.Length <= 80 ? s : s[..80] + "…";
        return string.Concat(cut.Select(c => char.IsControl(c) || char.IsSurrogate(c) ? "?" : c.ToString()));
    }
}
