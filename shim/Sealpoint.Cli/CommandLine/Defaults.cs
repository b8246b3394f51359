using Sealpoint.Core;
using Sealpoint.Core.Keys;

namespace Sealpoint.Cli.CommandLine;

/// <summary>Resolution of the options several commands share (PKI folder, keys, recipients).</summary>
public static class Defaults
{
    public static Pki Pki(ParsedArguments args) =>
        new(args.Get("pki") ?? Environment.GetEnvironmentVariable("SEALPOINT_PKI") ?? Core.Keys.Pki.DefaultRoot);

    /// <summary>A private key given as a path, or as an identity name in the PKI.</summary>
    public static Identity LoadIdentity(ParsedArguments args, string option = "key")
    {
        string key = args.Require(option, $"give the private key of a recipient: --{option} /etc/pki/sealpoint/NAME/private/key.pem (or --{option} NAME)");
        if (!File.Exists(key) && !key.Contains('/'))
        {
            string inPki = Pki(args).KeyPath(key);
            if (File.Exists(inPki)) key = inPki;
        }
        return Identity.Load(key);
    }

    public static IReadOnlyList<Recipient> Recipients(ParsedArguments args) => GivenRecipients(args).Select(Pki(args).ResolveRecipient).ToList();

    /// <summary>The recipients loaded and within their validity period; their CA and CRL checks come back in <paramref name="caChecks"/>.</summary>
    public static IReadOnlyList<Recipient> RecipientsDeferringCaChecks(ParsedArguments args, out Action caChecks)
    {
        var pki = Pki(args);
        var checks = new List<Action>();
        var recipients = GivenRecipients(args).Select(r =>
        {
            var recipient = pki.ResolveRecipientDeferringCaCheck(r, out var check);
            checks.Add(check);
            return recipient;
        }).ToList();
        caChecks = () => checks.ForEach(c => c());
        return recipients;
    }

    private static IReadOnlyList<string> GivenRecipients(ParsedArguments args)
    {
        var given = args.GetAll("recipient");
        if (given.Count == 0)
            throw new SealpointException(ErrorKind.Usage, "no recipient given", "add --recipient CERT (a PEM certificate, or an identity name in the PKI) once per recipient");
        return given;
    }
}
