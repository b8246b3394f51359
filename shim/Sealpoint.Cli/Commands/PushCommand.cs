using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Cli.Transport;
using Sealpoint.Oci;
using Sealpoint.Oci.Registry;
using Sealpoint.Oci.Transfer;

namespace Sealpoint.Cli.Commands;

public sealed class PushCommand : ImageCommand
{
    public override string Name => "push";
    public override string Summary => "copy a checkpoint image from an OCI layout (oci:DIR[:TAG]) to a registry";
    public override string Arguments => "oci:DIR[:TAG] REF";
    public override string Details =>
        "Blobs go first (skipped when the registry has them, mounted from --mount-from when possible), the manifest last.\n" +
        "Memory layers an incremental image reuses may be absent from the layout: they must already be in the registry.\n" +
        "Interrupted uploads resume; the command succeeds only when the registry stored the manifest.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("mount-from", "REPO", "another repository of the same registry to mount missing blobs from"),
        .. RegistryOptions, Json,
    ];

    protected override int RunImage(ParsedArguments args, Output output)
    {
        var positionals = args.ExpectPositionals(2, "oci:DIR[:TAG] REF");
        if (!positionals[0].StartsWith("oci:", StringComparison.Ordinal))
            throw UsageError($"'{positionals[0]}' is not an OCI layout location", "write oci:DIR or oci:DIR:TAG as the source");
        using var source = Open(positionals[0], args, output, create: false);
        var reference = Reference.Parse(positionals[1]);
        using var client = new RegistryClient(reference.Registry, ClientOptions(args, output));
        var target = new RegistryRepository(client, reference.Repository) { MountFrom = args.Get("mount-from") };
        client.PingAsync().GetAwaiter().GetResult();
        var descriptor = new ImageCopier(source.Store, target).CopyAsync(source.Reference, reference.Tag ?? "latest", CancellationToken.None).GetAwaiter().GetResult();
        (client.Options.Observer as ProgressObserver)?.Clear();
        if (output.IsJson)
            output.WriteJson(new JsonObject { ["reference"] = reference.WithTag(reference.Tag ?? "latest").ToString(), ["manifest"] = descriptor.Digest.ToString(), ["bytesSent"] = client.Stats.BytesSent });
        output.Line($"pushed {positionals[0]} to {reference.WithTag(reference.Tag ?? "latest")}@{descriptor.Digest}");
        output.Line($"registry: {client.Stats}");
        return 0;
    }
}
