namespace Sealpoint.Core.Streaming;

/// <summary>This process's memory as the kernel counts it (/proc/self/status, /proc/self/smaps_rollup).</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size (VmHWM) in bytes: what the streamer's memory bound is measured against.</summary>
    public static long PeakRssBytes() => Read("/proc/self/status", "VmHWM:")[0];

    /// <summary>Current resident set size (VmRSS) in bytes.</summary>
    public static long RssBytes() => Read("/proc/self/status", "VmRSS:")[0];

    /// <summary>
    /// Proportional resident bytes (Pss), and how many of them are locked in RAM ("Locked", which the kernel also
    /// counts proportionally: a shared library page counts in part). One pass: the kernel walks every mapping for it.
    /// </summary>
    public static (long Proportional, long Locked) ProportionalAndLockedBytes()
    {
        var values = Read("/proc/self/smaps_rollup", "Pss:", "Locked:");
        return (values[0], values[1]);
    }

    /// <summary>The "Name:   N kB" fields of a /proc file, in bytes (-1 for a field it lacks).</summary>
    private static long[] Read(string file, params string[] fields)
    {
        long[] values = new long[fields.Length];
        Array.Fill(values, -1);
        foreach (var line in File.ReadLines(file))
            for (int i = 0; i < fields.Length; i++)
                if (line.StartsWith(fields[i], StringComparison.Ordinal))
                    values[i] = long.Parse(line[fields[i].Length..].Trim().Split(' ')[0]) * 1024;
        return values;
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
