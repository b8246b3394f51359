using System.Text;
using Sealpoint.Core;
using Sealpoint.Core.Config;

namespace Sealpoint.Runtime.Tests;

public class TomlTests
{
    private const string Valid = """
        # node config
        [runtime]
        runc = "/usr/sbin/runc"   # the real one
        criu = '/usr/local/sbin/criu'
        staging = "/dev/shm/sealpoint"

        [keys]
        pki = "/etc/pki/sealpoint"
        identity = "node1"
        recipients = [
          "node1",  # this node
          "backup",
        ]
        always_recipients = []

        [policy]
        encrypt = true
        mandatory = false
        allow_plaintext_restore = false
        cipher = "chacha20-poly1305"
        allowed_annotations = ["io.sealpoint.encrypt", "io.sealpoint.recipients"]
        """;

    [Fact]
    public void ParsesTheSubset()
    {
        var doc = Toml.Parse(Valid, "t.toml");
        Assert.Equal("/usr/sbin/runc", doc.Tables["runtime"]["runc"].String);
        Assert.Equal(3, doc.Tables["runtime"]["runc"].Line);
        Assert.Equal(["node1", "backup"], doc.Tables["keys"]["recipients"].Strings);
        Assert.Empty(doc.Tables["keys"]["always_recipients"].Strings!);
        Assert.True(doc.Tables["policy"]["encrypt"].Boolean);
    }

    [Theory]
    [InlineData("x = \"a\\tb\\u00e9\\U0001F600\\\\\"", "a\tbé😀\\")]
    [InlineData("x = 'C:\\no\\escapes'", "C:\\no\\escapes")]
    [InlineData("x = \"\"", "")]
    public void Strings(string line, string expected) => Assert.Equal(expected, Toml.Parse(line, "t").Tables[""]["x"].String);

    [Theory]
    [InlineData("x = 42", 42L)]
    [InlineData("x = -7", -7L)]
    [InlineData("x = +1_000", 1000L)]
    [InlineData("x = 0", 0L)]
    public void Integers(string line, long expected) => Assert.Equal(expected, Toml.Parse(line, "t").Tables[""]["x"].Integer);

    [Theory]
    [InlineData("x = 1.5", 1, "not a string, boolean")]
    [InlineData("x = 1979-05-27", 1, "not a string, boolean")]
    [InlineData("x = {a = 1}", 1, "inline tables")]
    [InlineData("x = \"\"\"multi\"\"\"", 1, "multi-line strings")]
    [InlineData("\n\n[a.b]", 3, "dotted table")]
    [InlineData("[[a]]", 1, "arrays of tables")]
    [InlineData("a.b = 1", 1, "dotted keys")]
    [InlineData("\"a\" = 1", 1, "quoted keys")]
    [InlineData("x = 1\nx = 2", 2, "set twice (first on line 1)")]
    [InlineData("[t]\n[t]", 2, "defined twice")]
    [InlineData("x = \"open", 1, "not closed")]
    [InlineData("x = [\"a\"", 1, "not closed")]
    [InlineData("x = [\"a\" \"b\"]", 1, "expected ','")]
    [InlineData("x = [1, 2]", 1, "may only hold strings")]
    [InlineData("x = [,]", 1, "unexpected ','")]
    [InlineData("x = \"\\q\"", 1, "unknown escape")]
    [InlineData("x = \"\\uD800\"", 1, "not a Unicode scalar")]
    [InlineData("x = \"\\u12\"", 1, "hex digits")]
    [InlineData("x =", 1, "has no value")]
    [InlineData("x", 1, "expected '='")]
    [InlineData("x = true false", 1, "unexpected 'f'")]
    [InlineData("x = yes", 1, "'yes'")]
    [InlineData("x = 0123", 1, "'0123'")]
    [InlineData("x = 99999999999999999999", 1, "'99999999999999999999'")]
    [InlineData("[t", 1, "not closed")]
    [InlineData("= 1", 1, "cannot start a key")]
    [InlineData("x = \"a\u0001\"", 1, "control character")]
    [InlineData("x = 1\r", 1, "carriage return")]
    public void RefusesWithLineNumber(string text, int line, string fragment)
    {
        var e = Assert.ThrowsAny<SealpointException>(() => Toml.Parse(text, "t.toml"));
        Assert.Equal(ErrorKind.Config, e.Kind);
        Assert.Contains($"t.toml line {line}:", e.Message);
        Assert.Contains(fragment, e.Message);
        Assert.NotNull(e.Fix);
    }

    [Fact]
    public void RefusesInvalidUtf8AndOversizedInput()
    {
        Assert.Contains("UTF-8", Assert.ThrowsAny<SealpointException>(() => Toml.Parse([0x78, 0x3d, 0x22, 0xff, 0x22], "t")).Message);
        Assert.Contains("larger", Assert.ThrowsAny<SealpointException>(() => Toml.Parse(new string('#', Toml.MaxBytes + 1), "t")).Message);
    }

    [Fact]
    public void CrLfLineEndsAndBomAreAccepted()
    {
        var doc = Toml.Parse("\uFEFF[runtime]\r\nrunc = \"/r\"\r\n", "t");
        Assert.Equal("/r", doc.Tables["runtime"]["runc"].String);
    }

    /// <summary>Random and mutated inputs: the parser always ends, with a document or a Config error naming where.</summary>
    [Fact]
    public async Task FuzzedInputsNeverCrashOrHang()
    {
        var work = Task.Run(() =>
        {
            var rng = new Random(20260101);
            byte[] seed = Encoding.UTF8.GetBytes(Valid);
            string alphabet = "[]=\"'#,.\\ \t\r\n{}abcxyz0129_-+:uU\u00e9\u0000";
            int parsed = 0, refused = 0;
            for (int round = 0; round < 20000; round++)
            {
                byte[] input;
                switch (round % 4)
                {
                    case 0: // random bytes
                        input = new byte[rng.Next(0, 200)];
                        rng.NextBytes(input);
                        break;
                    case 1: // random TOML-ish characters
                        input = Encoding.UTF8.GetBytes(new string(Enumerable.Range(0, rng.Next(0, 300)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray()));
                        break;
                    case 2: // byte flips, insertions and deletions in a valid config
                        var list = seed.ToList();
                        for (int m = rng.Next(1, 8); m > 0 && list.Count > 0; m--)
                        {
                            int at = rng.Next(list.Count);
                            switch (rng.Next(3))
                            {
                                case 0: list[at] = (byte)rng.Next(256); break;
                                case 1: list.Insert(at, (byte)alphabet[rng.Next(alphabet.Length)]); break;
                                default: list.RemoveAt(at); break;
                            }
                        }
                        input = list.ToArray();
                        break;
                    default: // truncations
                        input = seed[..rng.Next(seed.Length)];
                        break;
                }
                try
                {
                    var doc = Toml.Parse(input, "fuzz.toml");
                    parsed++;
                    try { NodeConfig.FromDocument(doc); }
                    catch (SealpointException e) { Assert.Equal(ErrorKind.Config, e.Kind); Assert.StartsWith("fuzz.toml", e.Message); }
                }
                catch (SealpointException e)
                {
                    refused++;
                    Assert.Equal(ErrorKind.Config, e.Kind);
                    Assert.StartsWith("fuzz.toml", e.Message);
                    Assert.False(string.IsNullOrEmpty(e.Fix));
                    Assert.DoesNotContain('\0', e.Message);
                }
            }
            return (parsed, refused);
        });
        // A guard against an endless loop in the parser, not a speed requirement.
        Assert.True(await Task.WhenAny(work, Task.Delay(TimeSpan.FromMinutes(5))) == work, "the TOML parser did not finish 20000 small inputs: it hangs on some input");
        var result = await work;
        Assert.True(result.parsed > 100 && result.refused > 100, $"fuzzing exercised too little: {result}");
    }

    [Fact]
    public void DeepOrLongInputDoesNotOverflow()
    {
        string manyBrackets = "x = " + new string('[', 100000);
        Assert.ThrowsAny<SealpointException>(() => Toml.Parse(manyBrackets, "t"));
        string longArray = "x = [" + string.Join(",", Enumerable.Repeat("\"a\"", 5000)) + "]";
        Assert.Contains("more than", Assert.ThrowsAny<SealpointException>(() => Toml.Parse(longArray, "t")).Message);
    }
}
