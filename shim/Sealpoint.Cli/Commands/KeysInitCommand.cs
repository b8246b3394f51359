using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core.Keys;

namespace Sealpoint.Cli.Commands;

public sealed class KeysInitCommand : Command
{
    public override string Name => "keys init";
    public override string Summary => "create the CA of a PKI folder (CA/cacert.pem, CA/cacrl.pem)";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        PkiOption,
        new("cn", "NAME", "the CA's common name (default: Sealpoint CA)"),
        new("algorithm", "ALG", "p256 (default), p384, rsa2048, rsa3072, rsa4096"),
        new("days", "N", "validity in days (default: 3650)"),
        new("force", null, "replace an existing CA"),
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        args.ExpectPositionals(0, "no arguments");
        var pki = Defaults.Pki(args);
        pki.InitCa(args.Get("cn") ?? "Sealpoint CA", KeyAlgorithms.Parse(args.Get("algorithm") ?? "p256"), args.GetInt("days", 3650), args.Has("force"));
        if (output.IsJson) output.WriteJson(new JsonObject { ["caCertificate"] = pki.CaCertPath, ["crl"] = pki.CrlPath, ["caKey"] = pki.CaKeyPath });
        output.Line($"created CA {pki.CaCertPath}");
        output.Line($"        CRL {pki.CrlPath}");
        output.Line($"        key {pki.CaKeyPath} (mode 0600)");
        return 0;
    }
}
