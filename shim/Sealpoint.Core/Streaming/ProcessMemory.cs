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

/// <summary>
/// Keeps garbage from growing the heap: every image allocates its own sealing or opening buffers, and with hundreds
/// of images (a process tree) the large-object heap would otherwise hold tens of MiB of dead buffers between the
/// runtime's own collections. A full collection of this small heap costs about a millisecond.
/// </summary>
public static class GarbageBudget
{
    private const long Budget = 2L * 1024 * 1024;
    private static long _lastCollectAt;

    public static void AfterWork()
    {
        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        long last = Interlocked.Read(ref _lastCollectAt);
        if (allocated - last < Budget || Interlocked.CompareExchange(ref _lastCollectAt, allocated, last) != last) return;
        GC.Collect();
    }
}
