using System.Diagnostics;

namespace Sealpoint.TestSupport;

/// <summary>Waits for a condition by polling, failing with a description of what was awaited.</summary>
public static class Poll
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(25);

    /// <summary>Polls until <paramref name="condition"/> is true; throws TimeoutException with
    /// <paramref name="describe"/>() (called only on failure, so it can show the latest state).</summary>
    public static void Until(Func<bool> condition, TimeSpan timeout, Func<string> describe, TimeSpan? interval = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {describe()}");
            Thread.Sleep(interval ?? DefaultInterval);
        }
    }
}
