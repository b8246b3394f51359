using System.Diagnostics;
using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core.Checkpoint;

namespace Sealpoint.Cli.Commands;

public sealed class OpenCommand : Command
{
    public override string Name => "open";
    public override string Summary => "verify a sealed checkpoint completely, then decrypt it into a new directory";
    public override string Arguments => "DIR";
    public override string Details =>
        "Nothing appears in --out unless every file verified. Plaintext checkpoint data belongs on a memory-backed\n" +
        "file system (e.g. under /dev/shm); a warning is printed when --out is on persistent storage.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("key", "KEY", "a recipient's private key (PEM path, or identity name in the PKI)", Short: "k"),
        new("out", "DIR", "where to write the plaintext images (must be new or empty)", Short: "o"),
        PkiOption,
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        string dir = args.ExpectPositionals(1, "DIR")[0];
        string outDir = args.Require("out", "give the output directory: --out /dev/shm/restore-images");
        using var identity = Defaults.LoadIdentity(args);
        var clock = Stopwatch.StartNew();
        using var checkpoint = SealedCheckpoint.Open(dir, identity);
        string parentOfOut = Path.GetDirectoryName(Path.GetFullPath(outDir).TrimEnd('/')) ?? "/";
        if (!FileSystem.IsMemoryBacked(parentOfOut))
            output.Warn($"{outDir} is on persistent storage: plaintext checkpoint data will be written to disk there");
        checkpoint.DecryptTo(outDir);
        clock.Stop();
        var e = checkpoint.Envelope;
        if (output.IsJson)
            output.WriteJson(new JsonObject
            {
                ["directory"] = Path.GetFullPath(outDir), ["checkpointId"] = e.CheckpointId, ["lineageId"] = e.LineageId,
                ["generation"] = e.Generation, ["files"] = e.Files.Count, ["verified"] = true, ["seconds"] = clock.Elapsed.TotalSeconds,
            });
        output.Line($"verified and opened {e.Files.Count} files of checkpoint {e.CheckpointId} into {Path.GetFullPath(outDir)} in {clock.Elapsed.TotalMilliseconds:F0} ms");
        return 0;
    }
}
