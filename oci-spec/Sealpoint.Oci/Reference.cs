using System.Text.RegularExpressions;

namespace Sealpoint.Oci;

/// <summary>
/// An image reference <c>[host[:port]/]repository[:tag][@digest]</c>, parsed as docker/podman do: the first
/// path component is a registry host when it contains '.' or ':' or is <c>localhost</c>; otherwise the image
/// is on docker.io (and a one-component name gains <c>library/</c>).
/// </summary>
public sealed partial record Reference
{
    public const string DockerHub = "docker.io";
    private const int MaxNameLength = 255;

    public required string Registry { get; init; }
    public required string Repository { get; init; }
    public string? Tag { get; init; }
    public Digest? Digest { get; init; }

    /// <summary>What to ask the registry for: the digest when pinned, else the tag (default <c>latest</c>).</summary>
    public string ManifestReference => Digest?.ToString() ?? Tag ?? "latest";

    /// <summary>Host and port to connect to (Docker Hub's API lives on registry-1.docker.io).</summary>
    public string Endpoint => Registry == DockerHub ? "registry-1.docker.io" : Registry;

    public Reference WithTag(string? tag) => this with { Tag = tag, Digest = null };
    public Reference WithDigest(Digest digest) => this with { Digest = digest };

    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is { } d ? "@" + d : "")}";

    // distribution/reference grammar (reference.go).
    [GeneratedRegex(@"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    // A DNS name or IPv4 (labels of letters, digits, '-'), or a bracketed IPv6 literal; optional :port.
    [GeneratedRegex(@"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$", RegexOptions.CultureInvariant)]
    private static partial Regex HostPattern();

    public static bool IsValidTag(string? tag) => tag is not null && TagPattern().IsMatch(tag);
    public static bool IsValidRepository(string? name) => name is not null && name.Length <= MaxNameLength && RepositoryPattern().IsMatch(name);

    public static Reference Parse(string text) => TryParse(text, out var r, out string? why)
        ? r!
        : throw new OciException(OciErrorKind.Usage, $"'{Oci.Digest.Truncate(text)}' is not a valid image reference: {why}",
            "write HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/checkpoints/web:v1");

    public static bool TryParse(string? text, out Reference? reference, out string? why)
    {
        reference = null;
        why = null;
        if (string.IsNullOrEmpty(text)) { why = "it is empty"; return false; }
        if (text.Length > 512) { why = "it is too long"; return false; }
        if (text.StartsWith("docker://", StringComparison.Ordinal)) text = text["docker://".Length..];
        if (text.Any(c => c <= ' ' || c >= 0x7f)) { why = "it contains spaces or non-ASCII characters"; return false; }

        Digest? digest = null;
        int at = text.IndexOf('@');
        if (at >= 0)
        {
            if (!Oci.Digest.TryParse(text[(at + 1)..], out var d)) { why = "the part after '@' is not a sha256/sha512 digest"; return false; }
            digest = d;
            text = text[..at];
        }

        string registry = DockerHub, rest = text;
        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            string first = text[..slash];
            if (first.Contains('.') || first.Contains(':') || first == "localhost" || first.Any(char.IsAsciiLetterUpper))
            {
                if (!HostPattern().IsMatch(first) || !PortValid(first)) { why = $"'{first}' is not a valid registry host[:port]"; return false; }
                registry = first;
                rest = text[(slash + 1)..];
            }
        }

        string? tag = null;
        int lastSlash = rest.LastIndexOf('/');
        int colon = rest.IndexOf(':', lastSlash + 1);
        if (colon >= 0)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!IsValidTag(tag)) { why = $"tag '{tag}' is not valid (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"; return false; }
        }
        if (rest.Length == 0) { why = "it names no repository"; return false; }
        if (registry == DockerHub && !rest.Contains('/')) rest = "library/" + rest;
        if (!IsValidRepository(rest)) { why = $"repository '{rest}' is not valid (lowercase letters, digits, separators '.', '_', '__', '-', '/')"; return false; }
        if (registry.Length + 1 + rest.Length > MaxNameLength) { why = "the name is longer than 255 characters"; return false; }

        reference = new Reference { Registry = registry, Repository = rest, Tag = tag, Digest = digest };
        return true;
    }

    private static bool PortValid(string host)
    {
        int colon = host.LastIndexOf(':');
        if (colon < 0 || host.EndsWith(']')) return true;
        return int.TryParse(host[(colon + 1)..], out int port) && port is > 0 and <= 65535;
    }
}
