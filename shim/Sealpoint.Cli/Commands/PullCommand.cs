using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Cli.Transport;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Packaging.Packing;

namespace Sealpoint.Cli.Commands;

public sealed class PullCommand : ImageCommand
{
    public override string Name => "pull";
    public override string Summary => "pull a checkpoint image for restore on this node (CRIU images stay sealed, engine files opened)";
    public override string Arguments => "REF";
    public override string Details =>
        "REF: HOST/REPO[:TAG][@DIGEST], docker://…, or oci:DIR[:TAG]. The envelope is authenticated with --key, the\n" +
        "generation checked against this node's rollback record (older or forked checkpoints are refused unless --force),\n" +
        "memory rebuilt and every sealed file verified. Output, one of:\n" +
        "  --out DIR        DIR/checkpoint (sealed CRIU images) and the engine's files at DIR's top level (bundle layout)\n" +
        "  --archive FILE   a podman export archive: podman container restore --import FILE --runtime sealpoint-runc\n" +
        "Engine files (spec.dump with the container's environment, rootfs-diff.tar …) are plaintext in the output, as the\n" +
        "engine needs them: put the output on tmpfs (/dev/shm, /run); a warning is printed otherwise.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("key", "KEY", "this node's private key (PEM path, or identity name in the PKI)", Short: "k"),
        new("out", "DIR", "write DIR/checkpoint and the engine files (DIR new or empty)", Short: "o"),
        new("archive", "FILE", "write a podman export archive instead"),
        new("force", null, "accept an older generation (rollback) or a forked checkpoint"),
        new("work-dir", "DIR", "where ciphertext is staged for --archive (default: beside FILE)"),
        StateDir, PkiOption, .. RegistryOptions, Json,
    ];

    protected override int RunImage(ParsedArguments args, Output output)
    {
        string refText = args.ExpectPositionals(1, "REF")[0];
        string? outDir = args.Get("out"), archive = args.Get("archive");
        if ((outDir is null) == (archive is null))
            throw UsageError("give exactly one of --out DIR and --archive FILE", "e.g. --out /run/sealpoint/restore or --archive /run/sealpoint/ckpt.tar");
        string destination = outDir ?? archive!;
        string parent = Path.GetDirectoryName(Path.GetFullPath(destination).TrimEnd('/')) ?? "/";
        if (Directory.Exists(parent) && !FileSystem.IsMemoryBacked(parent))
            output.Warn($"{destination} is on persistent storage: the engine's files (environment variables, files the container wrote) will be written there in plaintext");
        using var identity = Defaults.LoadIdentity(args);
        using var location = Open(refText, args, output, create: false);
        var options = new PullOptions
        {
            Identity = identity, State = State(args), Force = args.Has("force"), Warn = output.Warn, WorkDir = args.Get("work-dir"),
        };
        var result = (outDir is not null
            ? Unpacker.PullToDirectoryAsync(location.Store, location.Reference, outDir, options, CancellationToken.None)
            : Unpacker.PullToArchiveAsync(location.Store, location.Reference, archive!, options, CancellationToken.None)).GetAwaiter().GetResult();
        (location.Client?.Options.Observer as ProgressObserver)?.Clear();
        var e = result.Envelope;
        if (output.IsJson)
        {
            output.WriteJson(new JsonObject
            {
                ["output"] = result.Output, ["manifest"] = result.Manifest.Digest.ToString(), ["checkpointId"] = e.CheckpointId, ["lineageId"] = e.LineageId,
                ["generation"] = e.Generation, ["lineageCheck"] = result.Verdict.ToString(), ["chunks"] = result.Chunks, ["reusedChunks"] = result.ReusedChunks,
                ["engineFiles"] = result.EngineEnvelope?.Files.Count ?? 0, ["bytesReceived"] = location.Client?.Stats.BytesReceived, ["verified"] = true,
            });
            return 0;
        }
        output.Line($"pulled checkpoint {e.CheckpointId} (lineage {e.LineageId}, generation {e.Generation}) into {result.Output}");
        output.Line($"verified: envelope, {e.Files.Count} sealed files, memory rebuilt from {result.Chunks} chunks ({result.ReusedChunks} from earlier generations); lineage check: {result.Verdict}");
        if (result.EngineEnvelope is { } engine) output.Line($"engine files opened: {string.Join(", ", engine.Files.Select(f => f.Name))}");
        return 0;
    }
}
