using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Policy;

namespace Sealpoint.Runtime.Tests;

public class SealingPolicyTests
{
    private static readonly NodeConfig Node = new() { Source = "node.toml", Recipients = ["node1"], PkiRoot = "/nonexistent" };

    private static Dictionary<string, string> A(params (string, string)[] pairs) => pairs.ToDictionary(p => p.Item1, p => p.Item2);

    private static SealpointException Refused(Dictionary<string, string> annotations, NodeConfig? config = null)
    {
        var e = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.Decide(annotations, config ?? Node));
        Assert.Equal(ErrorKind.Policy, e.Kind);
        Assert.NotNull(e.Fix);
        return e;
    }

    [Fact]
    public void NoAnnotationsSealForTheNodesRecipients()
    {
        var d = SealingPolicy.Decide(null, Node);
        Assert.True(d.Seal);
        Assert.Equal(["node1"], d.Recipients.Select(r => r.Value));
        Assert.Equal(AeadAlgorithm.Aes256Gcm, d.PagesCipher);
        Assert.Contains("encrypt = true", d.Reason);
    }

    [Fact]
    public void ContainerMayOptOutUnlessMandatory()
    {
        Assert.False(SealingPolicy.Decide(A(("io.sealpoint.encrypt", "false")), Node).Seal);
        Assert.False(SealingPolicy.Decide(A(("io.sealpoint.encrypt", "FALSE ")), Node).Seal);
        var e = Refused(A(("io.sealpoint.encrypt", "false")), Node with { Mandatory = true });
        Assert.Contains("io.sealpoint.encrypt=false", e.Message);
        Assert.Contains("mandatory", e.Message);
    }

    [Fact]
    public void ContainerMayOptInWhenTheNodeDoesNotSealByDefault()
    {
        var off = Node with { Encrypt = false };
        Assert.False(SealingPolicy.Decide(null, off).Seal);
        Assert.True(SealingPolicy.Decide(A(("io.sealpoint.encrypt", "true")), off).Seal);
    }

    [Fact]
    public void RecipientsAnnotationReplacesDefaultsAndAlwaysRecipientsAreAdded()
    {
        var d = SealingPolicy.Decide(A(("io.sealpoint.recipients", " node2 , /certs/x.pem,node2")), Node with { AlwaysRecipients = ["escrow"] });
        Assert.Equal(["node2", "node3"], SealingPolicy.Decide(A(("io.sealpoint.recipients", "node2  node3")), Node).Recipients.Select(r => r.Value));
        Assert.Equal(["node2", "/certs/x.pem", "escrow"], d.Recipients.Select(r => r.Value));
        Assert.Equal(RecipientOrigin.ConfigAlways, d.Recipients[^1].Origin);
    }

    [Fact]
    public void CipherAnnotation()
    {
        Assert.Equal(AeadAlgorithm.ChaCha20Poly1305, SealingPolicy.Decide(A(("io.sealpoint.cipher", "chacha20-poly1305")), Node).PagesCipher);
        Assert.Contains("io.sealpoint.cipher=\"rot13\"", Refused(A(("io.sealpoint.cipher", "rot13"))).Message);
    }

    [Theory]
    [InlineData("io.sealpoint.encrypt", "yes", "is not true or false")]
    [InlineData("io.sealpoint.encrypt", "", "is not true or false")]
    [InlineData("io.sealpoint.recipients", "", "has an empty entry")]
    [InlineData("io.sealpoint.recipients", "a,,b", "has an empty entry")]
    [InlineData("io.sealpoint.recipients", "../../etc/passwd", "neither a name in the PKI")]
    [InlineData("io.sealpoint.recipients", "bad/name", "neither a name in the PKI")]
    [InlineData("io.sealpoint.recipients", " , ", "has an empty entry")]
    [InlineData("io.sealpoint.encrpyt", "true", "unknown annotation io.sealpoint.encrpyt")]
    public void BadAnnotationsNameTheAnnotation(string name, string value, string fragment)
    {
        var e = Refused(A((name, value)));
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void AnnotationsTheNodeDoesNotAllowAreErrors()
    {
        var strict = Node with { AllowedAnnotations = new HashSet<string> { "io.sealpoint.encrypt" } };
        Assert.True(SealingPolicy.Decide(A(("io.sealpoint.encrypt", "true")), strict).Seal);
        var e = Refused(A(("io.sealpoint.recipients", "node2")), strict);
        Assert.Contains("io.sealpoint.recipients is not allowed on this node", e.Message);
        Assert.Contains("allowed_annotations", e.Message);
    }

    [Fact]
    public void OtherAnnotationsAreIgnored() =>
        Assert.True(SealingPolicy.Decide(A(("org.criu.config", ""), ("io.sealpointx", "1"), ("io.podman.annotations.init", "FALSE")), Node).Seal);

    [Fact]
    public void NoRecipientIsAnError()
    {
        var e = Refused(new(), Node with { Recipients = [] });
        Assert.Contains("no recipient", e.Message);
        Assert.Contains("[keys] recipients", e.Fix);
    }

    [Fact]
    public void RecipientsAreLoadedAndValidatedAgainstTheCa()
    {
        using var pki = new TestPki("node1", "node2", "gone");
        pki.Revoke("gone");
        pki.IssueExpired("old");
        var node = Node with { PkiRoot = pki.Root };
        Assert.Equal(2, SealingPolicy.LoadRecipients(SealingPolicy.Decide(A(("io.sealpoint.recipients", "node1,node2")), node), node).Count);
        Assert.Single(SealingPolicy.LoadRecipients(SealingPolicy.Decide(A(("io.sealpoint.recipients", $"node1,{pki.Pki.CertPath("node1")}")), node), node));

        var unknown = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(SealingPolicy.Decide(A(("io.sealpoint.recipients", "nobody")), node), node));
        Assert.Equal(ErrorKind.NotFound, unknown.Kind);
        Assert.Contains("recipient 'nobody' (annotation io.sealpoint.recipients)", unknown.Message);
        var revoked = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(SealingPolicy.Decide(A(("io.sealpoint.recipients", "gone")), node), node));
        Assert.Contains("revoked", revoked.Message);
        var expired = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(SealingPolicy.Decide(null, node with { Recipients = ["old"] }), node with { Recipients = ["old"] }));
        Assert.Contains("recipient 'old' ([keys] recipients)", expired.Message);
        Assert.Contains("expired", expired.Message);

        using var other = new TestPki("stranger");
        var foreign = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(SealingPolicy.Decide(A(("io.sealpoint.recipients", other.Pki.CertPath("stranger"))), node), node));
        Assert.Contains("not issued by the CA", foreign.Message);
    }

    [Fact]
    public void VerifiedCertificatesAreRememberedUntilTheCrlOrCaChanges()
    {
        using var pki = new TestPki("node1", "node2");
        string cache = Path.Combine(pki.Root, "verified");
        var node = Node with { PkiRoot = pki.Root };
        var decision = SealingPolicy.Decide(A(("io.sealpoint.recipients", "node1")), node);
        Assert.Single(SealingPolicy.LoadRecipients(decision, node, cache));
        Assert.False(Directory.Exists(cache), "the cache folder is its owner's to create (with its mode), never the checker's");
        Directory.CreateDirectory(cache);
        Assert.Single(SealingPolicy.LoadRecipients(decision, node, cache));
        var entry = Assert.Single(Directory.GetFiles(cache));
        Assert.True(long.Parse(File.ReadAllText(entry)) <= DateTimeOffset.UtcNow.Add(Sealpoint.Core.Keys.Pki.VerifiedLifetime).ToUnixTimeSeconds());
        Assert.Single(SealingPolicy.LoadRecipients(decision, node, cache)); // from the cache: no new entry
        Assert.Single(Directory.GetFiles(cache));

        // Revoking rewrites the CRL: the remembered verdict no longer applies.
        pki.Revoke("node1");
        var revoked = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(decision, node, cache));
        Assert.Contains("revoked", revoked.Message);

        // A forged or stale entry (expired) is not trusted: the full check runs and records a fresh verdict.
        var node2 = SealingPolicy.Decide(A(("io.sealpoint.recipients", "node2")), node);
        Assert.Single(SealingPolicy.LoadRecipients(node2, node, cache));
        string entry2 = Directory.GetFiles(cache).Except([entry]).Single();
        File.WriteAllText(entry2, DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds().ToString());
        Assert.Single(SealingPolicy.LoadRecipients(node2, node, cache));
        Assert.True(long.Parse(File.ReadAllText(entry2)) > DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        // Another CA in the same place: every entry misses, and the certificates of the old CA are refused.
        pki.Pki.InitCa("another CA", Sealpoint.Core.Keys.KeyAlgorithm.P256, 30, force: true);
        var foreign = Assert.ThrowsAny<SealpointException>(() => SealingPolicy.LoadRecipients(node2, node, cache));
        Assert.Contains("not issued by the CA", foreign.Message);
    }

    [Fact]
    public void RandomAnnotationValuesNeverCrash()
    {
        var rng = new Random(7);
        string alphabet = "abc,/ .\u0000\n\t\"'é-_truefalse";
        foreach (string name in Annotations.Overridable)
            for (int i = 0; i < 3000; i++)
            {
                string value = new(Enumerable.Range(0, rng.Next(0, 40)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
                try { SealingPolicy.Decide(A((name, value)), Node); }
                catch (SealpointException e)
                {
                    Assert.Equal(ErrorKind.Policy, e.Kind);
                    Assert.Contains(name, e.Message);
                    Assert.DoesNotContain('\0', e.Message);
                    Assert.DoesNotContain('\n', e.Message);
                }
            }
        Assert.Contains("longer than", Refused(A(("io.sealpoint.recipients", new string('a', 9000)))).Message);
    }
}
