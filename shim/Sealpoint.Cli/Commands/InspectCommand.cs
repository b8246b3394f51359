using System.Text.Json;
using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Cli.Commands;

public sealed class InspectCommand : Command
{
    public override string Name => "inspect";
    public override string Summary => "show a sealed checkpoint's (or checkpoint image's) recipients, algorithms, lineage and files";
    public override string Arguments => "DIR|REF";
    public override string Details =>
        "Without --verify nothing is authenticated: the listing is what the envelope claims.\n" +
        "REF (HOST/REPO:TAG, docker://…, oci:DIR[:TAG]) shows a checkpoint image without a key; 'sealpoint pull' authenticates it.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("verify", null, "authenticate the envelope and every file with --key (no plaintext is written)"),
        new("key", "KEY", "a recipient's private key, for --verify", Short: "k"),
        PkiOption,
        .. Transport.ImageCommand.RegistryOptionsForInspect,
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        string dir = args.ExpectPositionals(1, "DIR|REF")[0];
        if (!Directory.Exists(dir) && Transport.ImageCommand.LooksLikeImage(dir)) return Transport.InspectImage.Run(dir, args, output);
        Envelope envelope;
        bool verified = false;
        if (args.Has("verify"))
        {
            using var identity = Defaults.LoadIdentity(args);
            using var checkpoint = SealedCheckpoint.Open(dir, identity);
            checkpoint.Verify();
            envelope = checkpoint.Envelope;
            verified = true;
        }
        else
        {
            envelope = SealedCheckpoint.ReadEnvelopeUnverified(dir);
        }

        if (output.IsJson)
        {
            var node = JsonSerializer.SerializeToNode(envelope, EnvelopeJson.Default.Envelope)!.AsObject();
            node["verified"] = verified;
            output.WriteJson(node);
            return 0;
        }
        output.Line($"checkpoint  {envelope.CheckpointId}");
        output.Line($"lineage     {envelope.LineageId}  generation {envelope.Generation}  parent {envelope.ParentId ?? "-"}");
        output.Line($"created     {envelope.Created:u}");
        output.Line($"ciphers     metadata {envelope.MetadataCipher}, pages {envelope.PagesCipher}");
        output.Line($"recipients  {envelope.Recipients.Count}");
        foreach (var r in envelope.Recipients) output.Line($"  {r.Id[..16]}…  {r.Type,-16} {r.Subject}");
        output.Line($"files       {envelope.Files.Count}, {envelope.Files.Sum(f => f.Size ?? 0):N0} plaintext bytes");
        foreach (var f in envelope.Files)
            output.Line($"  {f.Kind,-8} {(f.Kind == FileEntryKinds.Symlink ? "-> " + f.Target : (f.Size ?? 0).ToString("N0")),14}  {f.Name}");
        output.Line(verified ? "verified    envelope MAC and every file authenticated" : "verified    no (pass --verify --key KEY to authenticate)");
        return 0;
    }
}
