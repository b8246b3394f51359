namespace Sealpoint.Bench.Running;

/// <summary>The load average when each part of the run started: the report says how busy the machine was, part by part.</summary>
public static class LoadLog
{
    private static readonly List<(DateTimeOffset At, string Where, string Load)> Entries = [];

    public static IReadOnlyList<(DateTimeOffset At, string Where, string Load)> Samples
    {
        get { lock (Entries) return [.. Entries]; }
    }

    public static void Sample(string where)
    {
        lock (Entries) Entries.Add((DateTimeOffset.Now, where, MachineInfo.LoadAverage()));
    }
}
