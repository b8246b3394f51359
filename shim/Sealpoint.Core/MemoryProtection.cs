using System.Runtime.InteropServices;

namespace Sealpoint.Core;

/// <summary>
/// Keeps this process's memory out of swap and core dumps. The streamed dump and restore, the runtime's following
/// sealer and its FUSE server hold plaintext pages in ordinary process memory, and every command holds keys there:
/// on a node with swap the kernel could write them to the swap device, and a crash could write them into a core file,
/// both persistent disk. Staging tmpfs is mounted <c>noswap</c> for the same reason.
///
/// <see cref="Apply"/>, in both programs before anything holds a key or plaintext:
/// <list type="bullet">
/// <item>core dumps off (<c>prctl(PR_SET_DUMPABLE, 0)</c>: no core file, no ptrace or /proc/PID/mem by other users);</item>
/// <item>when a swap device is active (or <c>SEALPOINT_LOCK_MEMORY=always</c>), every page locked in RAM as it is
/// faulted in, now and later (<c>mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)</c>): nothing is pre-faulted, so
/// resident memory stays what it was. Without swap there is nothing to lock against, and locking costs a tree
/// restore 5-10% (every fresh page and every page the garbage collector gives back goes through the kernel's mlock
/// accounting), so it is skipped. Only when the process may lock without a limit (CAP_IPC_LOCK, which root has, or
/// an unlimited <c>RLIMIT_MEMLOCK</c>): under a finite limit <c>MCL_FUTURE</c> would make the runtime's own later
/// allocations fail once the limit is reached.</item>
/// </list>
/// When memory needs locking but cannot be locked, <see cref="Outcome.Warning"/> names the risk and the fix.
/// </summary>
public static unsafe partial class MemoryProtection
{
    /// <summary>Forces locking even without swap (a swap device added later is then covered too): "always"; default "auto".</summary>
    public const string LockVariable = "SEALPOINT_LOCK_MEMORY";

    /// <summary>What <see cref="Apply"/> did. <paramref name="Warning"/> is set when plaintext could reach swap.</summary>
    public sealed record Outcome(bool Locked, bool CoreDumpsOff, string? Warning);

    internal enum LockDecision { NotNeeded, Lock, CannotLock }

    private const int PrSetDumpable = 4;
    private const int McCurrent = 1, McFuture = 2, McOnFault = 4;
    private const int RlimitMemlock = 8;
    private const int CapIpcLock = 14;
    private const uint LinuxCapabilityVersion3 = 0x20080522;

    private static Outcome? _applied;

    /// <summary>The outcome of <see cref="Apply"/>, or null if this process has not applied it.</summary>
    public static Outcome? Applied => _applied;

    /// <summary>Applies the protection once per process (a later call returns the first outcome).</summary>
    /// <param name="always">Lock even without swap (the runtime's node config, <c>lock_memory_always</c>).</param>
    public static Outcome Apply(bool always = false)
    {
        if (_applied is { } done) return done;
        bool coreDumpsOff = prctl(PrSetDumpable, 0, 0, 0, 0) == 0;
        string? setting = Environment.GetEnvironmentVariable(LockVariable);
        always |= setting == "always";
        string? settingWarning = setting is null or "" or "auto" or "always"
            ? null
            : $"{LockVariable}={setting} is neither 'auto' nor 'always'; using auto. Fix: unset it or set it to 'always'";
        var swaps = ActiveSwapDevices();
        string? warning = null;
        bool locked = false;
        switch (Decide(always, swaps, () => HasCapability(CapIpcLock) || MemlockLimitIsUnlimited()))
        {
            case LockDecision.Lock:
                locked = mlockall(McCurrent | McFuture | McOnFault) == 0;
                if (!locked) warning = WarningFor($"mlockall failed ({Marshal.GetLastPInvokeErrorMessage()})", swaps);
                break;
            case LockDecision.CannotLock:
                warning = WarningFor("this process has neither CAP_IPC_LOCK nor an unlimited memlock limit", swaps);
                break;
        }
        if (settingWarning is not null) warning = warning is null ? settingWarning : $"{settingWarning}; {warning}";
        return _applied = new Outcome(locked, coreDumpsOff, warning);
    }

    /// <summary>Lock when swap is on (or always is asked for) and the process may lock without a limit.</summary>
    internal static LockDecision Decide(bool always, IReadOnlyList<string> swapDevices, Func<bool> mayLockUnlimited) =>
        !always && swapDevices.Count == 0 ? LockDecision.NotNeeded
        : mayLockUnlimited() ? LockDecision.Lock
        : LockDecision.CannotLock;

    /// <summary>The warning for memory that needed locking but could not be locked.</summary>
    internal static string WarningFor(string whyNotLocked, IReadOnlyList<string> swapDevices) =>
        (swapDevices.Count == 0
            ? $"memory could not be locked as {LockVariable}=always or lock_memory_always asks: {whyNotLocked}"
            : $"plaintext checkpoint data and keys in this process's memory could be written to swap ({string.Join(", ", swapDevices)}): {whyNotLocked}") +
        ". Fix: run it with CAP_IPC_LOCK (root normally has it) or 'ulimit -l unlimited', or turn swap off (swapoff -a)";

    /// <summary>Active swap devices and files, from /proc/swaps (a header line, then one line per device).</summary>
    internal static IReadOnlyList<string> ActiveSwapDevices(string swapsFile = "/proc/swaps")
    {
        try { return ParseSwaps(File.ReadAllText(swapsFile)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ["(unknown: " + swapsFile + " unreadable)"]; }
    }

    /// <summary>Plain loops, no LINQ: this runs at every start, where generic code would be JIT-compiled first.</summary>
    internal static IReadOnlyList<string> ParseSwaps(string text)
    {
        var devices = new List<string>();
        string[] lines = text.Split('\n');
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            int end = line.IndexOfAny([' ', '\t']);
            if (line.Length > 0) devices.Add(end < 0 ? line : line[..end]);
        }
        return devices;
    }

    private static bool MemlockLimitIsUnlimited()
    {
        RLimit limit;
        return getrlimit(RlimitMemlock, &limit) == 0 && limit.Current == ulong.MaxValue;
    }

    private static bool HasCapability(int capability)
    {
        var header = new CapHeader { Version = LinuxCapabilityVersion3, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        if (capget(&header, data) != 0) return false;
        return (data[capability / 32].Effective & (1u << (capability % 32))) != 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "mlockall", SetLastError = true)]
    private static partial int mlockall(int flags);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int capget(CapHeader* header, CapData* data);
}
