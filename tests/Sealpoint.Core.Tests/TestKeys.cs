using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Tests;

/// <summary>A throw-away PKI with a CA and a few identities, shared by the tests of one class.</summary>
public sealed class TestPki : IDisposable
{
    public TestPki()
    {
        Root = Directory.CreateTempSubdirectory("sealpoint-pki-").FullName;
        Pki = new Pki(Root);
        Pki.InitCa("test CA", KeyAlgorithm.P256, 30, force: false);
        foreach (var (name, alg) in new[] { ("node-a", KeyAlgorithm.P256), ("node-b", KeyAlgorithm.Rsa2048), ("node-c", KeyAlgorithm.P384) })
            Pki.Issue(name, alg, 30, force: false);
    }

    public string Root { get; }
    public Pki Pki { get; }

    public Recipient Recipient(string name) => Pki.ResolveRecipient(name);
    public Identity Identity(string name) => Core.Keys.Identity.Load(Pki.KeyPath(name));

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
