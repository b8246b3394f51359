namespace Sealpoint.Core.Policy;

/// <summary>The OCI annotations through which a container asks for its checkpoints' sealing (documented in config.example.toml).</summary>
public static class Annotations
{
    public const string Prefix = "io.sealpoint.";

    /// <summary>"true" or "false": whether this container's checkpoints are sealed.</summary>
    public const string Encrypt = "io.sealpoint.encrypt";
    /// <summary>PKI names or absolute certificate paths, separated by commas or spaces; replaces the node's default recipients.</summary>
    public const string Recipients = "io.sealpoint.recipients";
    /// <summary>Cipher of the memory pages: "aes-256-gcm" or "chacha20-poly1305".</summary>
    public const string Cipher = "io.sealpoint.cipher";

    /// <summary>Every annotation a container may set; which of them it may set on a node is [policy] allowed_annotations.</summary>
    public static readonly IReadOnlyList<string> Overridable = [Encrypt, Recipients, Cipher];

    public const int MaxValueLength = 8192;
    public const int MaxRecipients = 64;
}
