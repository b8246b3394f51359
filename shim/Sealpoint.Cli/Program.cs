using Sealpoint.Cli.CommandLine;
using Sealpoint.Cli.Commands;
using Sealpoint.Core;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Cli;

public static class Program
{
    /// <summary>Every sub-command, in the order the overview lists them.</summary>
    public static readonly IReadOnlyList<Command> Commands =
    [
        new KeysInitCommand(),
        new KeysIssueCommand(),
        new KeysRevokeCommand(),
        new SealCommand(),
        new OpenCommand(),
        new InspectCommand(),
        new DumpCommand(),
        new RestoreCommand(),
        new PackCommand(),
        new PushCommand(),
        new PullCommand(),
    ];

    public static int Main(string[] args)
    {
        // Before the first use of cryptography: the private OpenSSL, if installed (OpenSslLibrary says why).
        if (OpenSslLibrary.Select().Warning is { } opensslWarning) Console.Error.WriteLine($"sealpoint: warning: {opensslWarning}");
        // Before anything holds a key or plaintext: out of swap and core dumps (MemoryProtection says why).
        if (MemoryProtection.Apply().Warning is { } warning) Console.Error.WriteLine($"sealpoint: warning: {warning}");
        return Run(args, Console.Out, Console.Error);
    }

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.Write(Overview());
            return args.Count == 0 ? (int)ErrorKind.Usage : 0;
        }
        if (args[0] is "--version" or "version")
        {
            stdout.WriteLine($"sealpoint {typeof(Program).Assembly.GetName().Version?.ToString(3)} (sealed format v{Core.Format.Envelope.CurrentVersion}, {OpenSslLibrary.Describe()})");
            return 0;
        }
        var command = Find(args, out int words);
        if (command is null)
        {
            stderr.WriteLine($"sealpoint: unknown command '{string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2))}'. Fix: see 'sealpoint --help' for the commands");
            return (int)ErrorKind.Usage;
        }
        var rest = args.Skip(words).ToList();
        bool json = rest.Contains("--json");
        var output = new Output(stdout, stderr, json);
        try
        {
            var parsed = ParsedArguments.Parse(command, rest);
            if (parsed.Has("help"))
            {
                stdout.Write(command.Usage());
                return 0;
            }
            return command.Run(parsed, output);
        }
        catch (SealpointException e)
        {
            stderr.WriteLine($"sealpoint: {e.Describe()}");
            return e.ExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"sealpoint: {SealpointException.WithFix(e.Message, "check the path, free space and permissions")}");
            return (int)ErrorKind.Io;
        }
    }

    /// <summary>
    /// The command the arguments name, longest name first ("keys issue" before "keys"), and how many words its name has.
    /// Plain loops: every command starts here, and LINQ's generic code would be JIT-compiled on each start (~2 ms).
    /// </summary>
    private static Command? Find(IReadOnlyList<string> args, out int words)
    {
        Command? found = null;
        words = 0;
        foreach (var c in Commands)
        {
            string[] name = c.Name.Split(' ');
            if (name.Length <= words || args.Count < name.Length) continue;
            bool matches = true;
            for (int i = 0; i < name.Length && matches; i++) matches = args[i] == name[i];
            if (!matches) continue;
            found = c;
            words = name.Length;
        }
        return found;
    }

    private static string Overview()
    {
        var lines = new List<string>
        {
            "sealpoint: end-to-end encryption for container checkpoints (CRIU images)",
            "",
            "Usage: sealpoint COMMAND [options]     (sealpoint COMMAND --help for details)",
            "",
            "Commands:",
        };
        lines.AddRange(Commands.Select(c => $"  {c.Name,-16} {c.Summary}"));
        lines.AddRange([
            "",
            "Exit codes: 0 ok, 1 internal error, 2 usage, 3 config, 4 key (not a recipient, missing key),",
            "            5 integrity (tampered or incomplete), 6 not found, 7 I/O, 8 policy, 9 CRIU/runc failed",
        ]);
        return string.Join('\n', lines) + "\n";
    }
}
