using System.Runtime.InteropServices;

namespace Sealpoint.TestSupport;

/// <summary>The few libc calls .NET has no API for (signals other than SIGKILL, file types, euid).</summary>
internal static partial class Native
{
    internal const int SIGKILL = 9, SIGUSR1 = 10, SIGUSR2 = 12, SIGTERM = 15;
    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int SysLstat(string path, byte* buf);

    /// <summary>Sends a signal; false if the process (group) does not exist (ESRCH).</summary>
    internal static bool Kill(int pid, int signal)
    {
        if (SysKill(pid, signal) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == 3) return false; // ESRCH
        throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {errno}");
    }

    internal enum FileKind { Missing, Directory, Regular, Other }

    /// <summary>Type of a path without following a final symlink (a symlink is Other).</summary>
    internal static unsafe FileKind Lstat(string path)
    {
        // struct stat is 144 bytes on x86-64 (st_mode at offset 24) and 128 on arm64 (offset 16).
        int modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            var a => throw new PlatformNotSupportedException($"lstat layout unknown for {a}"),
        };
        byte* buf = stackalloc byte[256];
        if (SysLstat(path, buf) != 0) return FileKind.Missing;
        uint mode = *(uint*)(buf + modeOffset) & S_IFMT;
        return mode switch { S_IFDIR => FileKind.Directory, S_IFREG => FileKind.Regular, _ => FileKind.Other };
    }
}
