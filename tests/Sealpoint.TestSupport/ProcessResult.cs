using System.Text;

namespace Sealpoint.TestSupport;

/// <summary>What a finished command did. With <see cref="RunOptions.OutputFile"/> the output is in
/// that file and both streams here are empty.</summary>
public sealed record ProcessResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Command, exit code and full output, for failure messages.</summary>
    public string Describe()
    {
        var text = new StringBuilder($"`{CommandLine}` exited with {ExitCode} after {Elapsed.TotalSeconds:0.##} s");
        if (StandardOutput.Length > 0) text.Append("\n--- stdout ---\n").Append(StandardOutput.TrimEnd());
        if (StandardError.Length > 0) text.Append("\n--- stderr ---\n").Append(StandardError.TrimEnd());
        return text.ToString();
    }
}

/// <summary>A command exited with a code the caller did not accept; the message has its full output.</summary>
public sealed class ProcessFailedException(ProcessResult result, string? hint = null)
    : Exception(result.Describe() + (hint == null ? "" : "\nfix: " + hint))
{
    public ProcessResult Result { get; } = result;
}

public sealed record RunOptions
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);
    public string? WorkingDirectory { get; init; }

    /// <summary>Variables to set (a null value removes the variable).</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>Text written to stdin; without it stdin is empty (closed), never the test's own.</summary>
    public string? StandardInput { get; init; }

    /// <summary>
    /// Send stdout and stderr to this file (appended) and stdin from /dev/null, instead of pipes.
    /// Use it for commands that leave long-lived processes holding their stdio (runc run -d,
    /// criu restore -d): with pipes, reading the output would wait for those processes to end.
    /// </summary>
    public string? OutputFile { get; init; }

    /// <summary>Exit codes <see cref="ProcessRunner.Run"/> accepts without throwing.</summary>
    public IReadOnlyCollection<int> AcceptExitCodes { get; init; } = [0];

    /// <summary>Added to the failure message as the way to fix it.</summary>
    public string? FailureHint { get; init; }
}
