using System.Diagnostics;

namespace Sealpoint.Core;

/// <summary>
/// Where a checkpoint or restore spends its time, for people tuning a node: with SEALPOINT_TRACE=1 each phase's wall
/// time goes to stderr as "PROGRAM: timing: PHASE N ms". Off by default (engines read runc's stderr).
/// </summary>
public sealed class PhaseTimer(string program)
{
    public const string Variable = "SEALPOINT_TRACE";

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _enabled = Environment.GetEnvironmentVariable(Variable) == "1";
    private TimeSpan _last;

    /// <summary>Ends the phase that began at the previous mark (or at start-up) under <paramref name="phase"/>.</summary>
    public void Mark(string phase)
    {
        if (!_enabled) return;
        var now = _clock.Elapsed;
        double sinceStart = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        try { Console.Error.WriteLine($"{program}: timing: {phase} {(now - _last).TotalMilliseconds:F1} ms (at {sinceStart:F0} ms since process start)"); }
        catch (IOException) { }
        _last = now;
    }
}
