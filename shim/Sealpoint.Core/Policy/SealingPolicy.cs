using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Policy;

/// <summary>Where a recipient of a decision came from, so an error can say what to change.</summary>
public enum RecipientOrigin { Annotation, ConfigDefault, ConfigAlways }

public sealed record RecipientSpec(string Value, RecipientOrigin Origin)
{
    public string Describe() => Origin switch
    {
        RecipientOrigin.Annotation => $"recipient '{Value}' (annotation {Annotations.Recipients})",
        RecipientOrigin.ConfigDefault => $"recipient '{Value}' ([keys] recipients)",
        _ => $"recipient '{Value}' ([keys] always_recipients)",
    };
}

/// <summary>What happens to one container's checkpoints.</summary>
public sealed record SealingDecision(bool Seal, IReadOnlyList<RecipientSpec> Recipients, AeadAlgorithm PagesCipher, AeadAlgorithm MetadataCipher, string Reason)
{
    /// <summary>The annotations recorded in the envelope: what was decided, never key material.</summary>
    public IReadOnlyDictionary<string, string> EnvelopeAnnotations(string containerId) => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["io.sealpoint.container"] = containerId,
        ["io.sealpoint.sealed-by"] = "sealpoint-runc",
    };
}

/// <summary>
/// Turns a container's OCI annotations and the node config into a sealing decision, shared by the runtime
/// (at checkpoint) and the hook (at container creation). Every refusal names the annotation or config key and
/// the fix; untrusted annotation values never crash it.
/// </summary>
public static class SealingPolicy
{
    public static SealingDecision Decide(IReadOnlyDictionary<string, string>? annotations, NodeConfig config)
    {
        annotations ??= new Dictionary<string, string>();
        foreach (var (name, value) in annotations)
        {
            if (!name.StartsWith(Annotations.Prefix, StringComparison.Ordinal)) continue;
            if (!Annotations.Overridable.Contains(name))
                throw Refuse($"unknown annotation {NodeConfig.Printable(name)}",
                    $"remove it; Sealpoint's annotations are {string.Join(", ", Annotations.Overridable)}");
            if (!config.AllowedAnnotations.Contains(name))
                throw Refuse($"annotation {name} is not allowed on this node ([policy] allowed_annotations in {config.Source})",
                    $"remove {name} from the container, or have the node administrator add it to [policy] allowed_annotations");
            if (value is null || value.Length > Annotations.MaxValueLength)
                throw Refuse($"annotation {name} is longer than {Annotations.MaxValueLength} characters", "shorten it");
        }

        bool seal = config.Encrypt;
        string reason = $"[policy] encrypt = {(config.Encrypt ? "true" : "false")} in {config.Source}";
        if (annotations.TryGetValue(Annotations.Encrypt, out string? encrypt))
        {
            seal = encrypt.Trim().ToLowerInvariant() switch
            {
                "true" => true,
                "false" => false,
                _ => throw Refuse($"annotation {Annotations.Encrypt}=\"{NodeConfig.Printable(encrypt)}\" is not true or false",
                    $"set {Annotations.Encrypt} to \"true\" or \"false\""),
            };
            reason = $"annotation {Annotations.Encrypt}={(seal ? "true" : "false")}";
        }
        if (config.Mandatory)
        {
            if (!seal)
                throw Refuse($"annotation {Annotations.Encrypt}=false, but sealing is mandatory on this node ([policy] mandatory in {config.Source})",
                    $"remove {Annotations.Encrypt}=false from the container");
            reason = $"[policy] mandatory = true in {config.Source}";
        }

        var pagesCipher = config.PagesCipher;
        if (annotations.TryGetValue(Annotations.Cipher, out string? cipher) && !AeadAlgorithms.TryParse(cipher, out pagesCipher))
            throw Refuse($"annotation {Annotations.Cipher}=\"{NodeConfig.Printable(cipher)}\" is not a cipher Sealpoint knows",
                $"set {Annotations.Cipher} to \"aes-256-gcm\" or \"chacha20-poly1305\"");

        var recipients = new List<RecipientSpec>();
        if (annotations.TryGetValue(Annotations.Recipients, out string? list))
        {
            // Commas separate recipients; so do spaces, because podman's --annotation splits its value at commas
            // (podman run --annotation "io.sealpoint.recipients=node1 node2").
            var items = list.Split(',').SelectMany(s => s.Trim().Length == 0 ? [""] : s.Split(' ', '\t').Where(w => w.Length > 0)).ToList();
            if (items.Count > Annotations.MaxRecipients)
                throw Refuse($"annotation {Annotations.Recipients} names {items.Count} recipients, more than {Annotations.MaxRecipients}", "name fewer recipients");
            foreach (string item in items)
            {
                if (!NodeConfig.IsRecipientSpec(item))
                    throw Refuse(item.Length == 0
                            ? $"annotation {Annotations.Recipients}=\"{NodeConfig.Printable(list)}\" has an empty entry"
                            : $"annotation {Annotations.Recipients} names \"{NodeConfig.Printable(item)}\", which is neither a name in the PKI nor an absolute certificate path",
                        $"set {Annotations.Recipients} to PKI names (e.g. \"node1,node2\" or \"node1 node2\") or absolute paths of PEM certificates");
                Add(recipients, item, RecipientOrigin.Annotation);
            }
        }
        else
        {
            foreach (string r in config.Recipients) Add(recipients, r, RecipientOrigin.ConfigDefault);
        }
        foreach (string r in config.AlwaysRecipients) Add(recipients, r, RecipientOrigin.ConfigAlways);

        if (!seal) return new SealingDecision(false, [], pagesCipher, config.MetadataCipher, reason);
        if (recipients.Count == 0)
            throw Refuse($"this container's checkpoints must be sealed ({reason}) but no recipient is named",
                $"set [keys] recipients in {config.Source}, or the annotation {Annotations.Recipients} on the container");
        return new SealingDecision(true, recipients, pagesCipher, config.MetadataCipher, reason);
    }

    private static void Add(List<RecipientSpec> list, string value, RecipientOrigin origin)
    {
        if (!list.Any(r => r.Value == value)) list.Add(new RecipientSpec(value, origin));
    }

    /// <summary>
    /// Loads and validates every recipient certificate (expiry, CA chain, CRL) before anything is dumped.
    /// A failure names the recipient and where it was configured.
    /// </summary>
    /// <param name="verifiedCache">Where certificates that passed the CA/CRL checks are remembered (<see cref="Pki.VerifiedCache"/>); null: always checked in full.</param>
    public static IReadOnlyList<Recipient> LoadRecipients(SealingDecision decision, NodeConfig config, string? verifiedCache = null)
    {
        var pki = new Pki(config.PkiRoot) { VerifiedCache = verifiedCache };
        var result = new List<Recipient>();
        foreach (var spec in decision.Recipients)
        {
            try
            {
                var recipient = pki.ResolveRecipient(spec.Value);
                if (!result.Any(r => r.Id == recipient.Id)) result.Add(recipient);
            }
            catch (SealpointException e)
            {
                throw new SealpointException(e.Kind, $"{spec.Describe()} cannot be used: {e.Message}", e.Fix, e);
            }
        }
        return result;
    }

    private static SealpointException Refuse(string problem, string fix) => new(ErrorKind.Policy, problem, fix);
}
