using Sealpoint.Cli.CommandLine;
using Sealpoint.Cli.Commands;
using Sealpoint.Core;

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

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.Write(Overview());
            return args.Count == 0 ? (int)ErrorKind.Usage : 0;
        }
        if (args[0] is "--version" or "version")
        {
            stdout.WriteLine($"sealpoint {typeof(Program).Assembly.GetName().Version?.ToString(3)} (sealed format v{Core.Format.Envelope.CurrentVersion})");
            return 0;
        }
        // Longest match first: "keys issue" before "keys".
        var command = Commands.Where(c => Matches(c, args)).MaxBy(c => c.Name.Split(' ').Length);
        if (command is null)
        {
            stderr.WriteLine($"sealpoint: unknown command '{string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2))}'. Fix: see 'sealpoint --help' for the commands");
            return (int)ErrorKind.Usage;
        }
        var rest = args.Skip(command.Name.Split(' ').Length).ToList();
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
            stderr.WriteLine($"sealpoint: {e.Message}. Fix: check the path, free space and permissions");
            return (int)ErrorKind.Io;
        }
    }

    private static bool Matches(Command c, IReadOnlyList<string> args)
    {
        string[] words = c.Name.Split(' ');
        return args.Count >= words.Length && words.Select((w, i) => args[i] == w).All(x => x);
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
