namespace Sealpoint.Oci;

/// <summary>Failure classes of image and registry operations; the CLI maps them to its exit codes.</summary>
public enum OciErrorKind
{
    /// <summary>Bad input from the caller: a malformed reference, an option that makes no sense.</summary>
    Usage,
    /// <summary>The manifest, blob, tag or repository does not exist.</summary>
    NotFound,
    /// <summary>The registry refused our credentials, or we have none it accepts.</summary>
    Unauthorized,
    /// <summary>Content does not match its digest or size: corrupted, truncated or substituted.</summary>
    Integrity,
    /// <summary>The registry broke the protocol: bad JSON, missing headers, a body larger than allowed.</summary>
    Protocol,
    /// <summary>Could not reach or keep talking to the registry: refused connection, TLS failure, timeout.</summary>
    Network,
    /// <summary>Local files: the layout or the store could not be read or written.</summary>
    Io,
    /// <summary>A configuration file (auth file, CA file) is unreadable or malformed.</summary>
    Config,
}

/// <summary>An expected failure with what went wrong and how to fix it. Never carries credentials.</summary>
public class OciException(OciErrorKind kind, string problem, string? fix = null, Exception? inner = null) : Exception(problem, inner)
{
    public OciErrorKind Kind { get; } = kind;
    public string? Fix { get; } = fix;

    /// <summary>Retrying the same request may succeed (connection lost, 5xx, 429, timeout).</summary>
    public bool Transient { get; init; }

    public string Describe() => Fix is null ? Message : $"{Message.TrimEnd('.')}. Fix: {Fix}";
}
