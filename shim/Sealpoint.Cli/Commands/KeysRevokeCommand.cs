using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core;
using Sealpoint.Core.Keys;

namespace Sealpoint.Cli.Commands;

public sealed class KeysRevokeCommand : Command
{
    public override string Name => "keys revoke";
    public override string Summary => "add an identity's certificate to the CA's CRL: nothing is sealed for it any more";
    public override string Arguments => "NAME|CERT";
    public override IReadOnlyList<OptionSpec> Options => [PkiOption, Json];

    public override int Run(ParsedArguments args, Output output)
    {
        string target = args.ExpectPositionals(1, "NAME|CERT")[0];
        var pki = Defaults.Pki(args);
        string path = File.Exists(target) ? target : pki.CertPath(target);
        if (!File.Exists(path))
            throw UsageError($"no certificate '{target}' (looked for {path})", "give an identity name in the PKI or a certificate path");
        using var cert = ReadCertificate(path);
        pki.Revoke(cert);
        if (output.IsJson) output.WriteJson(new JsonObject { ["revoked"] = path, ["serial"] = cert.SerialNumber, ["crl"] = pki.CrlPath });
        output.Line($"revoked {cert.Subject} (serial {cert.SerialNumber}); CRL updated: {pki.CrlPath}");
        return 0;
    }

    private static X509Certificate2 ReadCertificate(string path)
    {
        try { return Recipient.LoadCertificate(File.ReadAllText(path)); }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            throw new SealpointException(ErrorKind.Key, $"{path} holds no certificate Sealpoint can read: {e.Message}",
                "give a PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
    }
}
