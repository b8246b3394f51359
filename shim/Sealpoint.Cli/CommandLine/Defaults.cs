using Sealpoint.Core;
using Sealpoint.Core.Keys;

namespace Sealpoint.Cli.CommandLine;

/// <summary>Resolution of the options several commands share (PKI folder, keys, recipients).</summary>
public static class Defaults
{
    /// <param name="verifiedCache">Where recipients that passed the CA and CRL checks are remembered (<see cref="Core.Keys.Pki.VerifiedCache"/>).</param>
    public static Pki Pki(ParsedArguments args, string? verifiedCache = null) =>
        new(args.Get("pki") ?? Environment.GetEnvironmentVariable("SEALPOINT_PKI") ?? Core.Keys.Pki.DefaultRoot) { VerifiedCache = verifiedCache };

    /// <summary>
    /// A private key given as a path, or as an identity name in the PKI. A key is loaded to open an envelope next, so
    /// the envelope code's one-time set-up starts on a spare core meanwhile.
    /// </summary>
    public static Identity LoadIdentity(ParsedArguments args, string option = "key") => Identity.Load(KeyPath(args, option));

    /// <summary>
    /// <see cref="LoadIdentity"/> in two steps, for a caller with other work to start meanwhile (a streamed restore
    /// starts CRIU): the key file is found and its mode checked now, so a missing one fails at once; the returned
    /// function reads it (OpenSSL's first use).
    /// </summary>
    public static Func<Identity> LoadIdentityLater(ParsedArguments args, string option = "key")
    {
        string key = KeyPath(args, option);
        Identity.RequireOwnerOnly(key);
        return () => Identity.Load(key);
    }

    private static string KeyPath(ParsedArguments args, string option)
    {
        Core.Format.EnvelopeFile.StartWarmUp(writing: false);
        string key = args.Require(option, $"give the private key of a recipient: --{option} /etc/pki/sealpoint/NAME/private/key.pem (or --{option} NAME)");
        if (!File.Exists(key) && !key.Contains('/'))
        {
            string inPki = Pki(args).KeyPath(key);
            if (File.Exists(inPki)) key = inPki;
        }
        return key;
    }

    public static IReadOnlyList<Recipient> Recipients(ParsedArguments args) => GivenRecipients(args).Select(Pki(args).ResolveRecipient).ToList();

    /// <summary>
    /// The recipients' certificate files found now (a missing one is refused at once); reading, parsing and checking
    /// them (validity, CA, CRL) is left to the returned function, which a streamed dump runs beside CRIU.
    /// </summary>
    public static Func<IReadOnlyList<Recipient>> RecipientsFoundNowLoadedLater(ParsedArguments args, Pki pki)
    {
        var pending = GivenRecipients(args).Select(pki.ReadRecipient).ToList();
        return () => pending.Select(load => load()).ToList();
    }

    private static IReadOnlyList<string> GivenRecipients(ParsedArguments args)
    {
        var given = args.GetAll("recipient");
        if (given.Count == 0)
            throw new SealpointException(ErrorKind.Usage, "no recipient given", "add --recipient CERT (a PEM certificate, or an identity name in the PKI) once per recipient");
        return given;
    }
}
