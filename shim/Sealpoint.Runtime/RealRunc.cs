using System.Runtime.InteropServices;
using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Config;

namespace Sealpoint.Runtime;

/// <summary>The real runc: replaced into (nothing to do), run as a child (checkpoint/restore), or asked for a container's state.</summary>
public sealed partial class RealRunc(NodeConfig config)
{
    public string Path => config.Runc;

    private void RequireExecutable()
    {
        if (!File.Exists(Path))
            throw new SealpointException(ErrorKind.NotFound, $"the real runc {Path} does not exist",
                $"install runc, or set [runtime] runc in {config.Source} (or SEALPOINT_RUNC)");
    }

    /// <summary>
    /// Replaces this process with runc and the given arguments: stdio, inherited fds, signals and exit status are
    /// then runc's own. Returns only on failure.
    /// </summary>
    public int Exec(IReadOnlyList<string> arguments)
    {
        RequireExecutable();
        Console.Out.Flush();
        Console.Error.Flush();
        // .NET ignores SIGPIPE and may block signals on this thread; runc (and what it starts) must get the defaults.
        signal(13 /* SIGPIPE */, IntPtr.Zero /* SIG_DFL */);
        var empty = new byte[128];
        pthread_sigmask(2 /* SIG_SETMASK */, empty, IntPtr.Zero);
        if (CriuPath() is { } path) setenv("PATH", path, 1);
        var argv = new string?[arguments.Count + 2];
        argv[0] = Path;
        for (int i = 0; i < arguments.Count; i++) argv[i + 1] = arguments[i];
        argv[^1] = null;
        execv(Path, argv);
        throw new SealpointException(ErrorKind.External, $"cannot run the real runc {Path} (errno {Marshal.GetLastPInvokeError()})",
            $"check that {Path} is runc and executable");
    }

    /// <summary>
    /// Runs runc as a child sharing our stdio and inherited descriptors (console socket, --preserve-fds, --status-fd);
    /// SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to us are forwarded to it. Returns runc's exit status (128+N when killed by signal N).
    /// </summary>
    public int Run(IReadOnlyList<string> arguments, Action<ChildProcess>? whileRunning = null)
    {
        using var child = Start(arguments);
        whileRunning?.Invoke(child.Process);
        return child.Wait();
    }

    /// <summary>Starts runc as <see cref="Run"/> does and returns at once; <see cref="Child.Wait"/> gives its exit status.</summary>
    public Child Start(IReadOnlyList<string> arguments)
    {
        RequireExecutable();
        var process = ChildProcess.Start(Path, arguments, new ChildOptions { Environment = CriuEnvironment() });
        var registrations = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT }
            .Select(s => PosixSignalRegistration.Create(s, ctx =>
            {
                ctx.Cancel = true; // we stay until runc has finished: staging must be wiped after it
                kill(process.Id, SignalNumber(ctx.Signal));
            }))
            .ToList();
        return new Child(process, registrations);
    }

    /// <summary>A running runc with our signals forwarded to it until it is disposed.</summary>
    public sealed class Child(ChildProcess process, List<PosixSignalRegistration> registrations) : IDisposable
    {
        public ChildProcess Process => process;

        public int Wait()
        {
            process.WaitForExit();
            return process.ExitCode;
        }

        public void Dispose()
        {
            foreach (var r in registrations) r.Dispose();
            process.Dispose();
        }
    }

    /// <summary>runc's container state (runc state ID) with the engine's global flags, or null when runc has none.</summary>
    public JsonDocument? State(RuncArguments args, string containerId, out string error)
    {
        RequireExecutable();
        // --log would make runc write into the engine's log for this internal query; its own errors go to stderr instead.
        var (exit, stdout, stderr) = ChildProcess.Capture(Path, [.. GlobalTokensWithoutLog(args), "state", containerId]);
        error = stderr.Trim();
        if (exit != 0) return null;
        try { return JsonDocument.Parse(stdout); }
        catch (JsonException e)
        {
            error = $"runc state printed no JSON: {e.Message}";
            return null;
        }
    }

    public string? Status(RuncArguments args, string containerId)
    {
        using var state = State(args, containerId, out _);
        return state is not null && state.RootElement.TryGetProperty("status", out var s) ? s.GetString() : null;
    }

    private static IEnumerable<string> GlobalTokensWithoutLog(RuncArguments args)
    {
        foreach (var f in args.GlobalFlags)
        {
            if (f.Name is "log" or "log-format") continue;
            for (int i = 0; i < f.TokenCount; i++) yield return args.Tokens[f.Index + i];
        }
    }

    /// <summary>
    /// The node's CRIU for runc: prepended to PATH (runc 1.1 looks "criu" up on PATH unless given --criu, newer runc
    /// only uses PATH), unless the engine chose one with --criu.
    /// </summary>
    private Dictionary<string, string?>? CriuEnvironment() => CriuPath() is { } path ? new() { ["PATH"] = path } : null;

    private string? CriuPath()
    {
        if (config.Criu is null) return null;
        string dir = System.IO.Path.GetDirectoryName(config.Criu)!;
        if (System.IO.Path.GetFileName(config.Criu) != "criu")
            throw new SealpointException(ErrorKind.Config, $"[runtime] criu = \"{config.Criu}\" in {config.Source} is not named 'criu'; runc finds CRIU on PATH by that name",
                "point it at a program (or launcher script) named criu");
        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        return $"{dir}:{path}";
    }

    private static int SignalNumber(PosixSignal s) => s switch
    {
        PosixSignal.SIGTERM => 15,
        PosixSignal.SIGINT => 2,
        PosixSignal.SIGHUP => 1,
        PosixSignal.SIGQUIT => 3,
        _ => 15,
    };

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execv(string path, string?[] argv);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc")]
    private static partial IntPtr signal(int signum, IntPtr handler);

    [LibraryImport("libc")]
    private static partial int pthread_sigmask(int how, byte[] set, IntPtr oldset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
