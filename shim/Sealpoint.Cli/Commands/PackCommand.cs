using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Cli.Transport;
using Sealpoint.Core;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Packaging.Packing;

namespace Sealpoint.Cli.Commands;

public sealed class PackCommand : ImageCommand
{
    public override string Name => "pack";
    public override string Summary => "package a sealed checkpoint as an OCI image, into a layout (oci:DIR[:TAG]) or a registry";
    public override string Arguments => "SOURCE";
    public override string Details =>
        "SOURCE: a sealed CRIU image folder, a folder holding a sealed checkpoint/ (runtime bundle layout), or a podman\n" +
        "export archive (.tar, .tar.gz, .tar.zst) whose checkpoint/ is sealed. The engine's files (spec.dump, config.dump,\n" +
        "rootfs-diff.tar, …) are sealed for the checkpoint's recipients at pack time. Memory travels in chunks; chunks\n" +
        "unchanged since the previous generation packed on this node are reused (registries deduplicate them).\n" +
        "Nothing is reported as pushed unless the registry stored the manifest. See docs/registry.md.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("out", "LOCATION", "oci:DIR[:TAG], docker://HOST/REPO:TAG or HOST/REPO:TAG", Short: "o"),
        new("recipient", "CERT", "recipients for the engine files (default: the checkpoint's own, found in the PKI by name)", Repeatable: true, Short: "r"),
        new("full", null, "upload all memory even if an earlier generation could be reused"),
        new("chunks", "N", $"cut memory into about N chunks (image layers) in a lineage's first generation (default {Packaging.Incremental.ChunkingParameters.DefaultTargetChunks})"),
        new("annotation", "KEY=VALUE", "extra manifest annotation", Repeatable: true),
        new("work-dir", "DIR", "where ciphertext is staged while packing (default: the temp folder)"),
        StateDir, PkiOption, .. RegistryOptions, Json,
    ];

    protected override int RunImage(ParsedArguments args, Output output)
    {
        string sourcePath = args.ExpectPositionals(1, "SOURCE")[0];
        string outText = args.Require("out", "say where the image goes: --out oci:/var/tmp/ckpt:v1 or --out 127.0.0.1:5000/ckpt/web:v1");
        var state = State(args);
        using var source = CheckpointSource.Open(sourcePath, args.Get("work-dir"));
        var envelope = source.Envelope;
        var recipients = source.EngineEntries.Count == 0 ? null : ResolveRecipients(args, envelope);
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var a in args.GetAll("annotation"))
        {
            int eq = a.IndexOf('=');
            if (eq <= 0) throw UsageError($"annotation '{a}' is not KEY=VALUE", "write --annotation org.example.key=value");
            annotations[a[..eq]] = a[(eq + 1)..];
        }
        using var image = Packer.Pack(source, new PackOptions
        {
            State = state, Recipients = recipients, Incremental = !args.Has("full"), WorkDir = args.Get("work-dir"), Annotations = annotations,
            TargetChunks = args.GetInt("chunks", Packaging.Incremental.ChunkingParameters.DefaultTargetChunks),
        });
        if (image.Stats.IncrementalNote is { } note) output.Warn(note);
        using var target = Open(outText, args, output, create: true);
        var result = Publisher.PublishAsync(image, target.Store, target.Reference, state, CancellationToken.None).GetAwaiter().GetResult();
        var stats = target.Client?.Stats;
        PrintResult(output, image, result, stats);
        return 0;
    }

    internal static void PrintResult(Output output, PackedImage image, PublishResult result, Oci.Registry.TransferStats? stats)
    {
        var e = image.Envelope;
        if (output.IsJson)
        {
            output.WriteJson(new JsonObject
            {
                ["location"] = result.Location, ["manifest"] = result.Manifest.Digest.ToString(), ["checkpointId"] = e.CheckpointId,
                ["lineageId"] = e.LineageId, ["generation"] = e.Generation, ["chunks"] = image.Stats.Chunks, ["newChunks"] = image.Stats.NewChunks,
                ["reusedChunks"] = image.Stats.ReusedChunks, ["newBytes"] = image.NewBytes, ["reusedBytes"] = image.Stats.ReusedChunkBytes,
                ["bytesSent"] = stats?.BytesSent, ["blobsWritten"] = result.BlobsWritten, ["blobsPresent"] = result.BlobsPresent,
                ["subject"] = result.Subject, ["missingReusedBlobs"] = result.ReusedMissing,
            });
            return;
        }
        output.Line($"packed checkpoint {e.CheckpointId} (lineage {e.LineageId}, generation {e.Generation}) as {result.Location}@{result.Manifest.Digest}");
        output.Line($"memory: {image.Stats.Chunks} chunks, {image.Stats.NewChunks} new ({image.Stats.NewChunkBytes:N0} bytes), {image.Stats.ReusedChunks} reused ({image.Stats.ReusedChunkBytes:N0} bytes); checkpoint layer {image.Stats.CheckpointLayerBytes:N0} bytes");
        if (stats is not null) output.Line($"registry: {stats}");
        if (result.ReusedMissing > 0)
            output.Warn($"{result.ReusedMissing} reused memory layer(s) are not in {result.Location}; push the layout to the registry that holds the earlier generation");
    }

    /// <summary>The recipients given, or else the checkpoint's own recipients found in the PKI by their subject names.</summary>
    internal static IReadOnlyList<Recipient> ResolveRecipients(ParsedArguments args, Envelope envelope)
    {
        if (args.GetAll("recipient").Count > 0) return Defaults.Recipients(args);
        var pki = Defaults.Pki(args);
        var result = new List<Recipient>();
        foreach (var stanza in envelope.Recipients)
        {
            string? cn = stanza.Subject?.Split(',').Select(p => p.Trim()).FirstOrDefault(p => p.StartsWith("CN=", StringComparison.Ordinal))?[3..];
            Recipient? found = null;
            if (cn is not null)
            {
                try { found = pki.ResolveRecipient(cn); }
                catch (SealpointException) { found = null; }
            }
            if (found is null || found.Id != stanza.Id)
                throw new SealpointException(ErrorKind.Usage,
                    $"the engine files must be sealed for the checkpoint's recipients, and recipient {stanza.Subject ?? stanza.Id[..16]} was not found in the PKI {pki.Root}",
                    "give every recipient's certificate with --recipient CERT");
            result.Add(found);
        }
        return result;
    }
}
