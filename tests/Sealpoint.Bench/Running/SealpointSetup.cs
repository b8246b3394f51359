using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Keys;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>A throw-away PKI with one recipient (EC P-256, the CLI's default) and the paths of the freshly built programs.</summary>
public sealed class SealpointSetup
{
    public const string RecipientName = "bench-node";

    public string PkiRoot { get; }
    public string CertPath { get; }
    public string KeyPath { get; }
    public Recipient Recipient { get; }

    private SealpointSetup(string pkiRoot, Pki pki)
    {
        PkiRoot = pkiRoot;
        CertPath = pki.CertPath(RecipientName);
        KeyPath = pki.KeyPath(RecipientName);
        Recipient = pki.ResolveRecipient(RecipientName);
    }

    public static SealpointSetup Create(string dir)
    {
        var pki = new Pki(dir);
        pki.InitCa("sealpoint-bench CA", KeyAlgorithm.P256, days: 2, force: false);
        pki.Issue(RecipientName, KeyAlgorithm.P256, days: 2, force: false).Dispose();
        return new SealpointSetup(dir, pki);
    }

    /// <summary>
    /// Sealing options for the in-process figures. No sync: the baselines do not fsync either, and on tmpfs syncfs
    /// costs nothing, so this only matters when --work-dir is on a disk.
    /// </summary>
    public SealOptions SealOptions => new() { Recipients = [Recipient], Sync = false };

    public Identity LoadIdentity() => Identity.Load(KeyPath);

    /// <summary>The `sealpoint` program whose wall time is measured (see <see cref="Programs"/>); set once at start.</summary>
    public static string Cli { get; set; } = "";

    /// <summary>Environment for the CLI: our PKI, never the machine's /etc/pki/sealpoint.</summary>
    public IReadOnlyDictionary<string, string?> CliEnvironment => new Dictionary<string, string?> { ["SEALPOINT_PKI"] = PkiRoot };
}
