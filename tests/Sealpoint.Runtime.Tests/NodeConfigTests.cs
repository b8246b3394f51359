using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Runtime.Tests;

public class NodeConfigTests
{
    [Fact]
    public void DefaultsWhenEmpty()
    {
        var c = NodeConfig.Parse("");
        Assert.Equal("/dev/shm/sealpoint", c.Staging);
        Assert.Equal("/etc/pki/sealpoint", c.PkiRoot);
        Assert.True(c.Encrypt);
        Assert.False(c.Mandatory);
        Assert.False(c.AllowPlaintextRestore);
        Assert.Equal(AeadAlgorithm.Aes256Gcm, c.PagesCipher);
        Assert.Contains("io.sealpoint.recipients", c.AllowedAnnotations);
        Assert.Null(c.Identity);
        Assert.False(c.LockMemoryAlways);
    }

    [Fact]
    public void ReadsEveryKey()
    {
        var c = NodeConfig.Parse("""
            [runtime]
            runc = "/opt/runc"
            criu = "/usr/local/sbin/criu"
            staging = "/dev/shm/x/"
            lock_memory_always = true
            [keys]
            pki = "/p"
            identity = "/p/node/private/key.pem"
            recipients = ["a", "/certs/b.pem", "a"]
            always_recipients = ["escrow"]
            [policy]
            encrypt = false
            allow_plaintext_restore = true
            cipher = "chacha20-poly1305"
            metadata_cipher = "aes-256-gcm"
            allowed_annotations = []
            [testing]
            fail_sealing = true
            """, "c.toml");
        Assert.Equal("/opt/runc", c.Runc);
        Assert.Equal("/usr/local/sbin/criu", c.Criu);
        Assert.Equal("/dev/shm/x", c.Staging);
        Assert.True(c.LockMemoryAlways);
        Assert.Equal("/p/node/private/key.pem", c.Identity);
        Assert.Equal(["a", "/certs/b.pem"], c.Recipients);
        Assert.Equal(["escrow"], c.AlwaysRecipients);
        Assert.False(c.Encrypt);
        Assert.True(c.AllowPlaintextRestore);
        Assert.Equal(AeadAlgorithm.ChaCha20Poly1305, c.PagesCipher);
        Assert.Equal(AeadAlgorithm.Aes256Gcm, c.MetadataCipher);
        Assert.Empty(c.AllowedAnnotations);
        Assert.True(c.FailSealing);
        Assert.Equal("c.toml", c.Source);
    }

    [Theory]
    [InlineData("[runtime]\nrunc = \"runc\"", "line 2", "not an absolute path")]
    [InlineData("[runtime]\nrunc = \"/a\\\\b\"", "line 2", "backslashes")]
    [InlineData("[runtime]\nrunc = true", "line 2", "must be a string, not a boolean")]
    [InlineData("[runtime]\nrun = \"/x\"", "line 2", "unknown key 'run' in [runtime]")]
    [InlineData("[runtimes]", "line 1", "unknown table [runtimes]")]
    [InlineData("runc = \"/x\"", "line 1", "outside any table")]
    [InlineData("[keys]\nidentity = \"../key\"", "line 2", "neither a name in the PKI")]
    [InlineData("[keys]\nrecipients = [\"ok\", \"bad name\"]", "line 2", "\"bad name\"")]
    [InlineData("[policy]\ncipher = \"des\"", "line 2", "not a cipher")]
    [InlineData("[policy]\nallowed_annotations = [\"io.sealpoint.identity\"]", "line 2", "not a Sealpoint annotation")]
    [InlineData("[policy]\nencrypt = false\nmandatory = true", "line 2", "contradicts")]
    [InlineData("[policy]\nmandatory = \"yes\"", "line 2", "must be a boolean")]
    [InlineData("[runtime]\nlock_memory_always = \"always\"", "line 2", "must be a boolean")]
    public void InvalidValuesNameTheKeyAndLine(string text, string line, string fragment)
    {
        var e = Assert.ThrowsAny<SealpointException>(() => NodeConfig.Parse(text, "c.toml"));
        Assert.Equal(ErrorKind.Config, e.Kind);
        Assert.Contains($"c.toml {line}:", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ExplicitConfigPathMustExist()
    {
        string? old = Environment.GetEnvironmentVariable(NodeConfig.PathVariable);
        try
        {
            Environment.SetEnvironmentVariable(NodeConfig.PathVariable, "/nonexistent/sealpoint.toml");
            var e = Assert.ThrowsAny<SealpointException>(NodeConfig.Load);
            Assert.Contains("does not exist", e.Message);
        }
        finally { Environment.SetEnvironmentVariable(NodeConfig.PathVariable, old); }
    }

    [Fact]
    public void TheExampleConfigIsValidAndDocumentsEveryKey()
    {
        string example = Path.Combine(RepoRoot(), "config.example.toml");
        var c = NodeConfig.LoadFile(example);
        Assert.NotNull(c);
        string text = File.ReadAllText(example);
        foreach (string key in new[] { "runc", "criu", "staging", "pki", "identity", "recipients", "always_recipients", "encrypt", "mandatory",
                     "allow_plaintext_restore", "cipher", "metadata_cipher", "allowed_annotations", "fail_sealing" })
            Assert.Matches($"(?m)^#? ?{key} = ", text);
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Shim.sln"))) return d.FullName;
        throw new InvalidOperationException("Shim.sln not found above " + AppContext.BaseDirectory);
    }
}
