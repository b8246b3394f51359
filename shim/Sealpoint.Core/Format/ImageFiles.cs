namespace Sealpoint.Core.Format;

/// <summary>How each file of a CRIU image directory is treated. The reasons are in docs/format.md, "Plaintext files".</summary>
public static class ImageFiles
{
    /// <summary>The one file Sealpoint adds to an image directory.</summary>
    public const string EnvelopeName = "sealpoint.envelope";

    /// <summary>
    /// Files left in plaintext: CRIU's statistics, which engines read themselves (podman --print-stats,
    /// checkpointctl) and which hold only counters and timings, never memory or file contents.
    /// </summary>
    public static readonly IReadOnlySet<string> PlaintextNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "stats-dump",
        "stats-restore",
    };

    /// <summary>CRIU's raw memory images: sealed page by page for random access.</summary>
    public static bool IsPages(string name) => name.StartsWith("pages-", StringComparison.Ordinal) && name.EndsWith(".img", StringComparison.Ordinal);

    public static SealedFileKind KindOf(string name) => IsPages(name) ? SealedFileKind.Pages : SealedFileKind.Stream;

    /// <summary>A file name an image directory may hold: one path segment, not hidden tricks, not our envelope.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 255 && name != "." && name != ".." && !name.Contains('/') && !name.Contains('\0');
}
