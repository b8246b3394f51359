using System.Diagnostics;
using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Crypto;
using Sealpoint.Packaging.Incremental;

namespace Sealpoint.Cli.Commands;

public sealed class SealCommand : Command
{
    public override string Name => "seal";
    public override string Summary => "seal a CRIU image directory for one or more recipients";
    public override string Arguments => "DIR";
    public override string Details =>
        "Without --out the directory is replaced by its sealed form (sealed beside it, swapped in, plaintext removed).\n" +
        "--in-place encrypts the files where they are instead: fastest, overwrites the plaintext blocks themselves, but an\n" +
        "interruption leaves the dump unusable.\n" +
        "Memory pages are sealed per 4 KiB page, every other image as an authenticated stream; see docs/format.md.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("recipient", "CERT", "recipient certificate (PEM path, or identity name in the PKI)", Repeatable: true, Short: "r"),
        new("out", "DIR", "write the sealed checkpoint here instead of in place", Short: "o"),
        new("cipher", "AEAD", "metadata cipher: chacha20-poly1305 (default) or aes-256-gcm"),
        new("pages-cipher", "AEAD", "memory page cipher: aes-256-gcm (default) or chacha20-poly1305"),
        new("parent", "SEALED_DIR", "the sealed checkpoint this one continues (lineage, generation)"),
        new("in-place", null, "encrypt the files where they are (fastest; see above)"),
        new("no-sync", null, "do not flush to disk before writing the envelope (faster, less safe)"),
        PkiOption,
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        string dir = args.ExpectPositionals(1, "DIR")[0];
        var options = new SealOptions
        {
            Recipients = Defaults.Recipients(args),
            MetadataCipher = AeadAlgorithms.Parse(args.Get("cipher") ?? "chacha20-poly1305", "--cipher"),
            PagesCipher = AeadAlgorithms.Parse(args.Get("pages-cipher") ?? "aes-256-gcm", "--pages-cipher"),
            Parent = args.Get("parent") is { } parentDir ? ParentOf(parentDir) : null,
            Sync = !args.Has("no-sync"),
        };
        // Keyed page hashes on this node let a later `sealpoint pack` of the same lineage upload only changed memory.
        using var pageIndex = NodePageIndex.TryStart(output.Warn);
        options = options with { PageObserver = pageIndex?.Recorder };
        var clock = Stopwatch.StartNew();
        string? outDir = args.Get("out");
        if (outDir is not null && args.Has("in-place")) throw UsageError("--in-place and --out exclude each other", "give one of them");
        var envelope = outDir is not null ? CheckpointSealer.SealDirectory(dir, outDir, options)
            : args.Has("in-place") ? CheckpointSealer.SealFilesInPlace(dir, options)
            : CheckpointSealer.SealInPlace(dir, options);
        clock.Stop();
        pageIndex?.Save(envelope);
        long bytes = envelope.Files.Sum(f => f.Size ?? 0);
        if (output.IsJson)
            output.WriteJson(new JsonObject
            {
                ["directory"] = Path.GetFullPath(outDir ?? dir), ["checkpointId"] = envelope.CheckpointId, ["lineageId"] = envelope.LineageId,
                ["generation"] = envelope.Generation, ["files"] = envelope.Files.Count, ["plaintextBytes"] = bytes,
                ["recipients"] = new JsonArray(envelope.Recipients.Select(r => (JsonNode)r.Id).ToArray()), ["seconds"] = clock.Elapsed.TotalSeconds,
            });
        output.Line($"sealed {envelope.Files.Count} files ({bytes:N0} bytes) into {Path.GetFullPath(outDir ?? dir)} in {clock.Elapsed.TotalMilliseconds:F0} ms");
        output.Line($"checkpoint {envelope.CheckpointId}, lineage {envelope.LineageId}, generation {envelope.Generation}, {envelope.Recipients.Count} recipient(s)");
        return 0;
    }

    /// <summary>Lineage comes from the parent's envelope; the new envelope then authenticates it under its own key.</summary>
    private static ParentCheckpoint ParentOf(string parentDir)
    {
        var parent = SealedCheckpoint.ReadEnvelopeUnverified(parentDir);
        return new ParentCheckpoint(parent.CheckpointId, parent.LineageId, parent.Generation);
    }
}
