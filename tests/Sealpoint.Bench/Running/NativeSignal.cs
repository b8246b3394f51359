namespace Sealpoint.Bench.Running;

/// <summary>kill(2): TestSupport's signal helper is internal to it.</summary>
public static partial class NativeSignal
{
    public const int SIGKILL = 9, SIGUSR2 = 12;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);

    public static bool Send(int pid, int signal) => Kill(pid, signal) == 0;
}
