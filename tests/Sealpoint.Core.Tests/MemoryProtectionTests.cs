using Sealpoint.Core;

namespace Sealpoint.Core.Tests;

/// <summary>
/// The decisions of <see cref="MemoryProtection"/> that do not need a fresh process. Applying it (mlockall, no core
/// dumps) is checked end to end on the real programs, which report what the kernel counts (Stream.Tests,
/// "Streamer_memory_stays_under_the_bound...").
/// </summary>
public class MemoryProtectionTests
{
    private const string NoSwap = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    [Fact]
    public void Swap_devices_are_read_from_the_lines_after_the_header()
    {
        Assert.Empty(MemoryProtection.ParseSwaps(NoSwap));
        Assert.Empty(MemoryProtection.ParseSwaps(""));
        var devices = MemoryProtection.ParseSwaps(NoSwap +
            "/dev/vda2                               partition\t2097148\t\t0\t\t-2\n" +
            "/swapfile                               file\t\t1048572\t\t0\t\t-3\n");
        Assert.Equal(["/dev/vda2", "/swapfile"], devices);
        Assert.Equal(["/dev/zram0"], MemoryProtection.ParseSwaps(NoSwap + "/dev/zram0\tpartition\t1024\t0\t100\n\n"));
    }

    [Fact]
    public void Memory_is_locked_only_when_swap_is_on_or_always_is_asked_for_and_only_without_a_limit()
    {
        string[] none = [], swap = ["/dev/vda2"];
        bool asked = false;
        Assert.Equal(MemoryProtection.LockDecision.NotNeeded, MemoryProtection.Decide(false, none, () => asked = true));
        Assert.False(asked, "the process's rights need not be read when nothing is locked");
        Assert.Equal(MemoryProtection.LockDecision.Lock, MemoryProtection.Decide(false, swap, () => true));
        Assert.Equal(MemoryProtection.LockDecision.CannotLock, MemoryProtection.Decide(false, swap, () => false));
        Assert.Equal(MemoryProtection.LockDecision.Lock, MemoryProtection.Decide(true, none, () => true));
        Assert.Equal(MemoryProtection.LockDecision.CannotLock, MemoryProtection.Decide(true, none, () => false));
    }

    [Fact]
    public void The_warning_names_the_swap_devices_the_reason_and_the_fix()
    {
        string warning = MemoryProtection.WarningFor("no CAP_IPC_LOCK", ["/dev/vda2", "/swapfile"]);
        Assert.Contains("/dev/vda2, /swapfile", warning);
        Assert.Contains("no CAP_IPC_LOCK", warning);
        Assert.Contains("Fix:", warning);
        Assert.Contains("swapoff", warning);
        Assert.Contains(MemoryProtection.LockVariable + "=always", MemoryProtection.WarningFor("mlockall failed", []));
    }

    [Fact]
    public void An_unreadable_swap_list_counts_as_swap()
    {
        var devices = MemoryProtection.ActiveSwapDevices("/nonexistent/swaps");
        Assert.Single(devices);
        Assert.Equal(MemoryProtection.LockDecision.Lock, MemoryProtection.Decide(false, devices, () => true));
    }

    [Fact]
    public void Resident_and_locked_memory_come_from_the_kernel()
    {
        var (resident, locked) = Sealpoint.Core.Streaming.ProcessMemory.ProportionalAndLockedBytes(); // this test host applied nothing
        Assert.True(resident > 1 << 20, $"resident {resident}");
        Assert.InRange(locked, 0, resident);
    }
}
