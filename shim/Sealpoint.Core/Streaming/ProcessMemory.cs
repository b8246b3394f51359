namespace Sealpoint.Core.Streaming;

/// <summary>This process's memory as the kernel counts it (/proc/self/status).</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size (VmHWM) in bytes: what the streamer's memory bound is measured against.</summary>
    public static long PeakRssBytes() => Read("VmHWM:");

    /// <summary>Current resident set size (VmRSS) in bytes.</summary>
    public static long RssBytes() => Read("VmRSS:");

    private static long Read(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line[field.Length..].Trim().Split(' ')[0]) * 1024;
        return -1;
    }
}
