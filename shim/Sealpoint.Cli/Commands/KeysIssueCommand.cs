using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core.Keys;

namespace Sealpoint.Cli.Commands;

public sealed class KeysIssueCommand : Command
{
    public override string Name => "keys issue";
    public override string Summary => "issue a node identity: NAME/cert.pem and NAME/private/key.pem, signed by the CA";
    public override string Arguments => "NAME";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        PkiOption,
        new("algorithm", "ALG", "p256 (default), p384, rsa2048, rsa3072, rsa4096"),
        new("days", "N", "validity in days (default: 365)"),
        new("force", null, "replace an existing identity of that name"),
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        string name = args.ExpectPositionals(1, "NAME")[0];
        var pki = Defaults.Pki(args);
        using var cert = pki.Issue(name, KeyAlgorithms.Parse(args.Get("algorithm") ?? "p256"), args.GetInt("days", 365), args.Has("force"));
        var recipient = Recipient.FromCertificate(cert, pki.CertPath(name));
        if (output.IsJson)
            output.WriteJson(new JsonObject
            {
                ["name"] = name, ["certificate"] = pki.CertPath(name), ["privateKey"] = pki.KeyPath(name),
                ["recipientId"] = recipient.Id, ["type"] = recipient.Type, ["notAfter"] = cert.NotAfter.ToUniversalTime().ToString("O"),
            });
        output.Line($"issued {name}: {pki.CertPath(name)}");
        output.Line($"  private key  {pki.KeyPath(name)} (mode 0600)");
        output.Line($"  recipient id {recipient.Id} ({recipient.Type})");
        return 0;
    }
}
