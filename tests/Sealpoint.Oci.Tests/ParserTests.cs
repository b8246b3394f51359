using System.Text;
using Sealpoint.Oci.Models;
using Sealpoint.Oci.Registry;

namespace Sealpoint.Oci.Tests;

/// <summary>Parsers of untrusted input: known cases, then random and mutated inputs that must never crash them.</summary>
public sealed class ParserTests
{
    private const string D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData(D, true)]
    [InlineData("sha512:" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd", true)]
    [InlineData("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    [InlineData("sha256:0123", false)]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", false)]
    [InlineData("sha256", false)]
    [InlineData(":abc", false)]
    [InlineData("", false)]
    public void Digests(string text, bool valid)
    {
        Assert.Equal(valid, Digest.TryParse(text, out var d));
        if (valid) Assert.Equal(text, d.ToString());
        else Assert.Equal(OciErrorKind.Protocol, Assert.Throws<OciException>(() => Digest.Parse(text)).Kind);
    }

    [Theory]
    [InlineData("127.0.0.1:5000/ckpt/web:v1", "127.0.0.1:5000", "ckpt/web", "v1", null)]
    [InlineData("docker://127.0.0.1:5000/ckpt/web", "127.0.0.1:5000", "ckpt/web", null, null)]
    [InlineData("localhost/a", "localhost", "a", null, null)]
    [InlineData("[::1]:5000/a/b:t@" + D, "[::1]:5000", "a/b", "t", D)]
    [InlineData("registry.example.com/ns/img@" + D, "registry.example.com", "ns/img", null, D)]
    [InlineData("busybox", "docker.io", "library/busybox", null, null)]
    [InlineData("user/img:1.0", "docker.io", "user/img", "1.0", null)]
    [InlineData("a.b/c__d/e-f.g:_x", "a.b", "c__d/e-f.g", "_x", null)]
    public void ValidReferences(string text, string registry, string repository, string? tag, string? digest)
    {
        var r = Reference.Parse(text);
        Assert.Equal(registry, r.Registry);
        Assert.Equal(repository, r.Repository);
        Assert.Equal(tag, r.Tag);
        Assert.Equal(digest, r.Digest?.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1:5000/")]
    [InlineData("127.0.0.1:5000/UPPER")]
    [InlineData("127.0.0.1:99999/a")]
    [InlineData("host:5000/a:-bad")]
    [InlineData("host:5000/a@sha256:zz")]
    [InlineData("host:5000/a b")]
    [InlineData("host:5000/a//b")]
    [InlineData("host:5000/a/../b")]
    [InlineData("-host:5000/a")]
    public void InvalidReferences(string text)
    {
        Assert.False(Reference.TryParse(text, out _, out var why));
        Assert.False(string.IsNullOrEmpty(why));
        Assert.Equal(OciErrorKind.Usage, Assert.Throws<OciException>(() => Reference.Parse(text)).Kind);
    }

    [Fact]
    public void ReferenceFuzz()
    {
        var rng = new Random(7);
        const string alphabet = "abcAZ09:/@._-[]sha256 \t\u00e9\0";
        var seeds = new[] { "127.0.0.1:5000/ckpt/web:v1@" + D, "localhost/a", "[::1]:5000/x" };
        for (int i = 0; i < 20000; i++)
        {
            string s = i % 2 == 0
                ? new string(Enumerable.Range(0, rng.Next(0, 90)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray())
                : Mutate(seeds[rng.Next(seeds.Length)], rng, alphabet);
            if (Reference.TryParse(s, out var r, out _))
            {
                // Whatever parses must be consistent with its own grammar.
                Assert.True(Reference.IsValidRepository(r!.Repository), s);
                Assert.True(r.Tag is null || Reference.IsValidTag(r.Tag), s);
                Assert.Equal(r, Reference.Parse(r.ToString()));
            }
        }
    }

    [Fact]
    public void BearerChallenge()
    {
        var c = Assert.Single(AuthChallenge.Parse("Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:team/app:pull,push\""));
        Assert.True(c.IsBearer);
        Assert.Equal("https://auth.example/token", c["realm"]);
        Assert.Equal("registry.example", c["service"]);
        Assert.Equal("repository:team/app:pull,push", c["scope"]);
    }

    [Fact]
    public void SeveralChallengesInOneHeader()
    {
        var all = AuthChallenge.Parse("Negotiate abc==, Basic realm=\"a \\\"quoted\\\" realm\", Bearer realm=x,service=\"s\"");
        Assert.Equal(["Negotiate", "Basic", "Bearer"], all.Select(c => c.Scheme));
        Assert.Equal("a \"quoted\" realm", all[1]["realm"]);
        Assert.Equal("x", all[2]["realm"]);
        Assert.Equal("s", all[2]["service"]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("=")]
    [InlineData("realm=\"x\"")]
    [InlineData("Bearer realm=\"unterminated")]
    [InlineData(",,,,")]
    [InlineData("Basic")]
    public void OddChallengesDoNotThrow(string header)
    {
        var all = AuthChallenge.Parse(header);
        Assert.All(all, c => Assert.False(string.IsNullOrEmpty(c.Scheme)));
    }

    [Fact]
    public void ChallengeFuzz()
    {
        var rng = new Random(11);
        const string alphabet = "BearerBasic realm=\"\\,; \t:/abc\u00ff\0";
        for (int i = 0; i < 20000; i++)
        {
            string s = i % 2 == 0
                ? new string(Enumerable.Range(0, rng.Next(0, 120)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray())
                : Mutate("Bearer realm=\"https://a/token\",service=\"reg\",scope=\"repository:x:pull\"", rng, alphabet);
            foreach (var c in AuthChallenge.Parse(s)) Assert.False(string.IsNullOrEmpty(c.Scheme));
        }
        Assert.Empty(AuthChallenge.Parse(new string('a', AuthChallenge.MaxHeaderLength + 1)));
    }

    private static byte[] ValidManifest() => OciJson.Serialize(new Manifest
    {
        ArtifactType = "application/vnd.sealpoint.checkpoint.v1",
        Config = Descriptor.For(MediaTypes.ImageConfig, "{}"u8.ToArray()),
        Layers = [Descriptor.For(MediaTypes.Layer, [1, 2, 3], new Dictionary<string, string> { ["k"] = "v" })],
        Subject = Descriptor.For(MediaTypes.ImageManifest, [9]),
        Annotations = new Dictionary<string, string> { ["io.sealpoint.generation"] = "2" },
    });

    [Fact]
    public void ManifestRoundTrip()
    {
        var bytes = ValidManifest();
        var m = OciJson.ParseManifest(bytes, "test");
        Assert.Equal("application/vnd.sealpoint.checkpoint.v1", m.ArtifactType);
        Assert.Equal("v", m.Layers[0].Annotation("k"));
        Assert.NotNull(m.Subject);
        Assert.Equal(bytes, OciJson.Serialize(m));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("{\"schemaVersion\":2}")]
    [InlineData("{\"schemaVersion\":1,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:xyz\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":-1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"\",\"digest\":\"" + D + "\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":1},\"layers\":null}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":\"1\"},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + D + "\",\"size\":2,\"data\":\"AAA=\"},\"layers\":[]}")]
    public void BadManifestsAreClearErrors(string json)
    {
        var e = Assert.Throws<OciException>(() => OciJson.ParseManifest(Encoding.UTF8.GetBytes(json), "reg/x:y"));
        Assert.Contains("reg/x:y", e.Message);
    }

    [Fact]
    public void HugeManifestIsRefused()
    {
        var huge = new byte[OciJson.MaxManifestSize + 1];
        Assert.Equal(OciErrorKind.Protocol, Assert.Throws<OciException>(() => OciJson.ParseManifest(huge, "x")).Kind);
    }

    [Fact]
    public void ManifestFuzz()
    {
        var rng = new Random(3);
        var seed = ValidManifest();
        int parsed = 0;
        for (int i = 0; i < 20000; i++)
        {
            var b = (byte[])seed.Clone();
            int edits = rng.Next(1, 6);
            for (int e = 0; e < edits; e++)
            {
                switch (rng.Next(3))
                {
                    case 0: b[rng.Next(b.Length)] = (byte)rng.Next(256); break;
                    case 1: b = b[..rng.Next(b.Length)]; if (b.Length == 0) b = [0x7b]; break;
                    default: b[rng.Next(b.Length)] = (byte)"{}[]\":,0-e"[rng.Next(10)]; break;
                }
            }
            try
            {
                var m = OciJson.ParseManifest(b, "fuzz");
                parsed++;
                Assert.True(m.Config.Size >= 0 && m.Layers.All(l => l.Size >= 0 && l.Digest.Algorithm is "sha256" or "sha512"));
            }
            catch (OciException) { }
            try { OciJson.ParseIndex(b, "fuzz"); } catch (OciException) { }
            _ = OciJson.PeekMediaType(b);
        }
        Assert.True(parsed > 0, "no mutation parsed at all: the fuzz seed is not a valid manifest");
    }

    [Fact]
    public void AuthFileLookup()
    {
        var json = """
            {"auths": {
              "127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"},
              "127.0.0.1:5000/team/special": {"auth": "c3BlY2lhbDpzM2NyZXQ6d2l0aDpjb2xvbnM="},
              "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}
            }}
            """;
        using var temp = TestSupport.TempDir.Create("authfile");
        string file = temp.File("auth.json");
        File.WriteAllText(file, json);
        var creds = new AuthFileCredentials([temp.File("missing.json"), file]);
        Assert.Equal(new RegistryCredentials("user", "pass"), creds.Find("127.0.0.1:5000", "other/repo"));
        Assert.Equal(new RegistryCredentials("special", "s3cret:with:colons"), creds.Find("127.0.0.1:5000", "team/special/sub"));
        Assert.Equal(new RegistryCredentials("hub", "pw"), creds.Find("docker.io", "library/busybox"));
        Assert.Null(creds.Find("elsewhere:1", "x"));
        Assert.DoesNotContain("pass", creds.Find("127.0.0.1:5000", "x")!.ToString());
    }

    [Fact]
    public void AuthFileSearchOrder()
    {
        var env = new Dictionary<string, string?> { ["XDG_RUNTIME_DIR"] = "/run/user/0", ["HOME"] = "/root" };
        Assert.Equal(["/run/user/0/containers/auth.json", "/root/.config/containers/auth.json", "/root/.docker/config.json", "/root/.dockercfg"],
            AuthFileCredentials.DefaultFiles(k => env.GetValueOrDefault(k)));
        env["REGISTRY_AUTH_FILE"] = "/etc/auth.json";
        Assert.Equal(["/etc/auth.json"], AuthFileCredentials.DefaultFiles(k => env.GetValueOrDefault(k)));
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("{\"auths\":{\"h\":{\"auth\":\"***not base64***\"}}}")]
    [InlineData("{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}")]
    [InlineData("{\"auths\":{\"h\":{\"identitytoken\":\"SECRET-TOKEN-42\"}}}")]
    public void BadAuthFilesAreConfigErrorsWithoutContent(string json)
    {
        using var temp = TestSupport.TempDir.Create("authfile");
        string file = temp.File("auth.json");
        File.WriteAllText(file, json);
        var e = Assert.Throws<OciException>(() => new AuthFileCredentials([file]).Find("h", "r"));
        Assert.Equal(OciErrorKind.Config, e.Kind);
        Assert.Contains(file, e.Message);
        Assert.DoesNotContain("SECRET-TOKEN-42", e.Message);
    }

    [Fact]
    public void AuthFileFuzz()
    {
        var rng = new Random(5);
        var seed = Encoding.UTF8.GetBytes("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwYXNz\"},\"x/y\":{\"username\":\"u\",\"password\":\"p\"}}}");
        for (int i = 0; i < 10000; i++)
        {
            var b = (byte[])seed.Clone();
            for (int e = rng.Next(1, 5); e > 0; e--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
            try
            {
                var entries = AuthFileCredentials.Parse(b, "fuzz");
                Assert.NotNull(entries);
            }
            catch (OciException ex) { Assert.Equal(OciErrorKind.Config, ex.Kind); }
        }
    }

    private static string Mutate(string s, Random rng, string alphabet)
    {
        var chars = s.ToList();
        for (int e = rng.Next(1, 4); e > 0; e--)
        {
            int at = rng.Next(chars.Count + 1);
            switch (rng.Next(3))
            {
                case 0 when at < chars.Count: chars.RemoveAt(at); break;
                case 1: chars.Insert(at, alphabet[rng.Next(alphabet.Length)]); break;
                default: if (at < chars.Count) chars[at] = alphabet[rng.Next(alphabet.Length)]; break;
            }
        }
        return new string(chars.ToArray());
    }
}

/// <summary>The envelope parser sees untrusted bytes when images are inspected or pulled.</summary>
public sealed class EnvelopeFuzzTests
{
    [Fact]
    public void MutatedEnvelopesFailCleanly()
    {
        var seed = File.ReadAllBytes(Path.Combine(TestSupport.RepoPaths.Root, "docs", "test-vectors", "checkpoint-v1", "sealpoint.envelope"));
        var rng = new Random(13);
        for (int i = 0; i < 5000; i++)
        {
            var b = (byte[])seed.Clone();
            for (int e = rng.Next(1, 4); e > 0; e--) b[rng.Next(b.Length)] = (byte)(rng.Next(2) == 0 ? rng.Next(256) : "{}\":,0\\"[rng.Next(7)]);
            try { Core.Format.EnvelopeFile.Parse(b, "fuzz"); }
            catch (Core.SealpointException) { }
        }
    }
}
