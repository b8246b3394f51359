using System.Runtime.InteropServices;
using System.Text;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Core;

/// <summary>
/// A child program started with posix_spawn(3) and waited for through a pidfd: how CRIU and runc are run.
/// Why not System.Diagnostics.Process: its first start in a process costs 10-15 ms here (loading and setting up
/// its signal and terminal handling), and that start is on the critical path of every checkpoint and restore
/// (CRIU's or runc's start waits for it). This is 0.3-1 ms. The child gets default signal dispositions and an empty
/// signal mask (.NET ignores SIGPIPE and blocks signals on some threads), this process's environment (with
/// <see cref="ChildOptions.Environment"/> applied), its stdin and stderr, and every descriptor not marked close-on-exec
/// (console sockets, --preserve-fds, as before).
/// </summary>
public sealed unsafe partial class ChildProcess : IDisposable
{
    private int _pidfd;
    private readonly object _gate = new();
    private int _exitCode;
    private bool _exited;

    static ChildProcess()
    {
        // Started with SIGCHLD ignored, the kernel would reap children itself and their exit status would be lost.
        byte* action = stackalloc byte[SigActionSize];
        if (sigaction(SigChld, null, action) == 0 && *(nint*)action == SigIgn) signal_(SigChld, SigDfl);
    }

    private ChildProcess(int pid, int pidfd)
    {
        Id = pid;
        _pidfd = pidfd;
    }

    public int Id { get; }

    /// <summary>Starts <paramref name="path"/> (no PATH search) with <paramref name="arguments"/> (argv[0] is the path).</summary>
    /// <exception cref="SealpointException">The program cannot be started (missing, not executable); the message names it.</exception>
    public static ChildProcess Start(string path, IReadOnlyList<string> arguments, ChildOptions? options = null)
    {
        options ??= ChildOptions.Default;
        var argv = new List<string>(arguments.Count + 1) { path };
        argv.AddRange(arguments);
        var env = Environment.GetEnvironmentVariables();
        var envp = new List<string>(env.Count);
        foreach (System.Collections.DictionaryEntry e in env)
        {
            string key = (string)e.Key;
            if (options.Environment?.ContainsKey(key) == true) continue;
            envp.Add($"{key}={e.Value}");
        }
        if (options.Environment is { } overrides)
            foreach (var (key, value) in overrides)
                if (value is not null) envp.Add($"{key}={value}");

        using var strings = new NativeStrings([.. argv, .. envp]); // argv[0] is the path
        byte** argvp = stackalloc byte*[argv.Count + 1];
        for (int i = 0; i < argv.Count; i++) argvp[i] = strings[i];
        argvp[argv.Count] = null;
        byte** envpp = (byte**)NativeMemory.Alloc((nuint)(envp.Count + 1), (nuint)sizeof(byte*));
        byte* actions = (byte*)NativeMemory.AllocZeroed(FileActionsSize);
        byte* attr = (byte*)NativeMemory.AllocZeroed(SpawnAttrSize);
        byte* signals = stackalloc byte[SigSetSize];
        try
        {
            for (int i = 0; i < envp.Count; i++) envpp[i] = strings[argv.Count + i];
            envpp[envp.Count] = null;
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawnattr_init(attr), "posix_spawnattr_init");
            try
            {
                if (options.StdoutFd is { } stdout) Check(posix_spawn_file_actions_adddup2(actions, stdout, 1), "posix_spawn_file_actions_adddup2");
                if (options.StderrFd is { } stderr) Check(posix_spawn_file_actions_adddup2(actions, stderr, 2), "posix_spawn_file_actions_adddup2");
                Check(sigfillset(signals), "sigfillset");
                Check(posix_spawnattr_setsigdefault(attr, signals), "posix_spawnattr_setsigdefault");
                Check(sigemptyset(signals), "sigemptyset");
                Check(posix_spawnattr_setsigmask(attr, signals), "posix_spawnattr_setsigmask");
                Check(posix_spawnattr_setflags(attr, PosixSpawnSetSigDef | PosixSpawnSetSigMask), "posix_spawnattr_setflags");
                int error = posix_spawn(out int pid, strings[0], actions, attr, argvp, envpp);
                if (error != 0)
                    throw new SealpointException(ErrorKind.External, $"cannot run {path}: {Marshal.GetPInvokeErrorMessage(error)}",
                        $"check that {path} exists and is executable");
                int pidfd = (int)syscall(SysPidfdOpen, pid, 0);
                // Only this process reaps the child, so its pid cannot have been reused: pidfd_open fails only without
                // pidfd support (Linux < 5.3), which this program does not run on.
                if (pidfd < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    Posix.Kill(pid, 9);
                    waitpid(pid, null, 0);
                    throw new SealpointException(ErrorKind.Internal, $"pidfd_open({pid}) failed (errno {errno}); {path} was stopped",
                        "run on Linux 5.4 or newer");
                }
                return new ChildProcess(pid, pidfd);
            }
            finally
            {
                posix_spawn_file_actions_destroy(actions);
                posix_spawnattr_destroy(attr);
            }
        }
        finally
        {
            NativeMemory.Free(envpp);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
        }
    }

    /// <summary>Runs a program to its end with its stdout and stderr captured (stdin shared), e.g. <c>runc state</c>.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Capture(string path, IReadOnlyList<string> arguments)
    {
        var (output, outputEnd) = OwnedFd.CreatePipe();
        var (errors, errorsEnd) = OwnedFd.CreatePipe();
        using (output)
        using (errors)
        {
            ChildProcess child;
            using (outputEnd)
            using (errorsEnd)
                child = Start(path, arguments, new ChildOptions { StdoutFd = outputEnd.Fd, StderrFd = errorsEnd.Fd });
            using (child)
            {
                // Both at once: a child blocked writing one pipe while we read the other would never finish.
                var errorText = Task.Run(() => ReadToEnd(errors, $"the stderr of {path}"));
                string outputText = ReadToEnd(output, $"the stdout of {path}");
                child.WaitForExit();
                return (child.ExitCode, outputText, errorText.Result);
            }
        }
    }

    private static string ReadToEnd(OwnedFd pipe, string what)
    {
        var text = new MemoryStream();
        Span<byte> buffer = stackalloc byte[4096];
        int n;
        // Not CRIU's stream: the generic fix would point at CRIU's log.
        while ((n = pipe.ReadSome(buffer, null, -1, what, "run the command by hand to see its output, and check the system's process and file limits")) > 0)
            text.Write(buffer[..n]);
        return Encoding.UTF8.GetString(text.GetBuffer(), 0, (int)text.Length);
    }

    /// <summary>Whether the child has exited (it is reaped then).</summary>
    public bool HasExited => WaitForExit(0);

    /// <summary>The exit status, or 128+N when signal N killed it (as a shell reports it). Only after it exited.</summary>
    public int ExitCode
    {
        get
        {
            lock (_gate)
            {
                if (!_exited) throw new InvalidOperationException($"process {Id} has not exited");
                return _exitCode;
            }
        }
    }

    public void WaitForExit() => WaitForExit(-1);

    /// <summary>Waits up to <paramref name="milliseconds"/> (-1: for ever); true once the child has exited.</summary>
    public bool WaitForExit(int milliseconds)
    {
        lock (_gate) if (_exited) return true;
        var poll = new Posix.PollFd { Fd = _pidfd, Events = Posix.POLLIN };
        long deadline = milliseconds < 0 ? long.MaxValue : Environment.TickCount64 + milliseconds;
        while (true)
        {
            int wait = milliseconds < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            int n = Posix.Poll(&poll, 1, wait);
            if (n > 0) break;
            if (n == 0) return false;
            if (Marshal.GetLastPInvokeError() != Posix.EINTR)
                throw new SealpointException(ErrorKind.Internal, $"waiting for process {Id} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        lock (_gate)
        {
            if (_exited) return true;
            SigInfo info;
            while (waitid(PPidFd, (uint)_pidfd, &info, WExited) != 0)
                if (Marshal.GetLastPInvokeError() != Posix.EINTR)
                    throw new SealpointException(ErrorKind.Internal, $"reaping process {Id} failed (errno {Marshal.GetLastPInvokeError()})");
            _exitCode = info.Code == CldExited ? info.Status : 128 + info.Status;
            _exited = true;
            return true;
        }
    }

    public void Dispose()
    {
        int pidfd = Interlocked.Exchange(ref _pidfd, -1);
        if (pidfd >= 0) Posix.Close(pidfd);
    }

    /// <summary>NUL-terminated UTF-8 copies of strings, freed together.</summary>
    private sealed class NativeStrings : IDisposable
    {
        private readonly byte*[] _items;

        public NativeStrings(IReadOnlyList<string> values)
        {
            for (int i = 0; i < values.Count; i++)
                if (values[i].Contains('\0')) throw new ArgumentException($"argument {i} holds a NUL character");
            _items = new byte*[values.Count];
            for (int i = 0; i < values.Count; i++)
            {
                int n = Encoding.UTF8.GetByteCount(values[i]);
                byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
                Encoding.UTF8.GetBytes(values[i], new Span<byte>(p, n));
                p[n] = 0;
                _items[i] = p;
            }
        }

        public byte* this[int index] => _items[index];

        public void Dispose()
        {
            foreach (byte* p in _items) NativeMemory.Free(p);
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new SealpointException(ErrorKind.Internal, $"{call} failed ({result})");
    }

    // glibc x86-64/arm64 sizes, rounded up: posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128.
    private const int FileActionsSize = 256;
    private const int SpawnAttrSize = 1024;
    private const int SigSetSize = 128;
    private const short PosixSpawnSetSigDef = 0x04;
    private const short PosixSpawnSetSigMask = 0x08;
    private const long SysPidfdOpen = 434;
    private const int SigChld = 17;
    private const nint SigDfl = 0, SigIgn = 1;
    private const int SigActionSize = 256; // struct sigaction is 152 bytes on x86-64 glibc; the handler comes first
    private const int PPidFd = 3;
    private const int WExited = 4;
    private const int CldExited = 1;

    /// <summary>siginfo_t as waitid fills it for a child (LP64 Linux): signo, errno, code, then pid, uid, status.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct SigInfo
    {
        [FieldOffset(8)] public int Code;
        [FieldOffset(16)] public int Pid;
        [FieldOffset(24)] public int Status;
    }

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    private static partial int posix_spawn(out int pid, byte* path, byte* fileActions, byte* attr, byte** argv, byte** envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(byte* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(byte* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newFd);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(byte* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(byte* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(byte* attr, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(byte* attr, byte* signals);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(byte* attr, byte* signals);

    [LibraryImport("libc")]
    private static partial int sigfillset(byte* set);

    [LibraryImport("libc")]
    private static partial int sigemptyset(byte* set);

    /// <summary>pidfd_open has a glibc wrapper only since 2.36; the system call is the same number on x86-64 and arm64.</summary>
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, long pid, long flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitid(int idType, uint id, SigInfo* info, int options);

    [LibraryImport("libc")]
    private static partial int waitpid(int pid, int* status, int options);

    [LibraryImport("libc")]
    private static partial int sigaction(int signal, byte* action, byte* old);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint signal_(int signal, nint handler);

}

/// <summary>How <see cref="ChildProcess.Start"/> sets up the child.</summary>
public sealed record ChildOptions
{
    public static readonly ChildOptions Default = new();

    /// <summary>Variables set (or, with a null value, removed) in the child's environment.</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>A descriptor that becomes the child's stdout (e.g. 2: its stdout onto our stderr); null: ours.</summary>
    public int? StdoutFd { get; init; }

    /// <summary>A descriptor that becomes the child's stderr; null: ours.</summary>
    public int? StderrFd { get; init; }
}
