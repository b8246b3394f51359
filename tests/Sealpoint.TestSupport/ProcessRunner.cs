using System.Diagnostics;

namespace Sealpoint.TestSupport;

/// <summary>Runs a program with an argument list (no shell parsing), a timeout and captured output.</summary>
public static class ProcessRunner
{
    /// <summary>Runs and throws <see cref="ProcessFailedException"/> unless the exit code is accepted
    /// (default: 0).</summary>
    public static ProcessResult Run(string fileName, IEnumerable<string> args, RunOptions? options = null)
    {
        options ??= new RunOptions();
        var result = RunUnchecked(fileName, args, options);
        if (!options.AcceptExitCodes.Contains(result.ExitCode))
            throw new ProcessFailedException(result, options.FailureHint);
        return result;
    }

    /// <summary>Runs and returns whatever the exit code; throws only if it cannot start or times out
    /// (then the process tree is killed).</summary>
    public static ProcessResult RunUnchecked(string fileName, IEnumerable<string> args, RunOptions? options = null)
    {
        options ??= new RunOptions();
        var argList = args.ToList();
        var commandLine = FormatCommandLine(fileName, argList);
        var psi = new ProcessStartInfo { UseShellExecute = false, WorkingDirectory = options.WorkingDirectory ?? "" };
        if (options.OutputFile != null)
        {
            // sh only sets up the redirections and execs the program: no quoting, args stay separate.
            psi.FileName = "/bin/sh";
            foreach (var a in (string[])["-c", "f=$1; shift; exec \"$@\" </dev/null >>\"$f\" 2>&1", "sh", options.OutputFile, fileName])
                psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = fileName;
            psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        }
        foreach (var a in argList) psi.ArgumentList.Add(a);
        if (options.Environment != null)
            foreach (var (key, value) in options.Environment)
                if (value == null) psi.Environment.Remove(key); else psi.Environment[key] = value;

        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Exception e)
        {
            throw new TestEnvironmentException($"cannot start `{commandLine}`: {e.Message}");
        }

        Task<string> stdout = Task.FromResult(""), stderr = Task.FromResult("");
        if (options.OutputFile == null)
        {
            stdout = process.StandardOutput.ReadToEndAsync();
            stderr = process.StandardError.ReadToEndAsync();
            try
            {
                if (options.StandardInput != null) process.StandardInput.Write(options.StandardInput);
                process.StandardInput.Close();
            }
            catch (IOException) { } // the program exited without reading its input
        }

        if (!process.WaitForExit(options.Timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(5000);
            throw new TimeoutException(
                $"`{commandLine}` did not finish within {options.Timeout.TotalSeconds:0.#} s and was killed." +
                Partial("stdout", stdout) + Partial("stderr", stderr) + OutputFileTail(options.OutputFile));
        }
        // A child that inherited the pipes can keep them open after the program exits.
        if (!Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(10)))
            throw new TimeoutException(
                $"`{commandLine}` exited but a process it started still holds its stdout/stderr; run it with RunOptions.OutputFile.");
        return new ProcessResult(commandLine, process.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    public static string FormatCommandLine(string fileName, IEnumerable<string> args) =>
        string.Join(' ', new[] { fileName }.Concat(args).Select(Quote));

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? arg
            : "'" + arg.Replace("'", "'\\''") + "'";

    private static string Partial(string name, Task<string> output) =>
        output.IsCompletedSuccessfully && output.Result.Length > 0 ? $"\n--- {name} ---\n{output.Result.TrimEnd()}" : "";

    private static string OutputFileTail(string? file) =>
        file != null && File.Exists(file) ? $"\n--- {file} (last lines) ---\n{FileTail.Read(file, 40)}" : "";
}

/// <summary>Last lines of a log file, for failure messages.</summary>
public static class FileTail
{
    public static string Read(string path, int lines)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            const int maxBytes = 64 * 1024;
            if (stream.Length > maxBytes) stream.Seek(-maxBytes, SeekOrigin.End);
            var text = new StreamReader(stream).ReadToEnd();
            var all = text.Split('\n');
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines - 1))).TrimEnd();
        }
        catch (IOException e)
        {
            return $"(cannot read {path}: {e.Message})";
        }
    }
}
