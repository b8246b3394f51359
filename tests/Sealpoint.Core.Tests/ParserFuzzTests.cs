using System.Security.Cryptography;
using System.Text;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Untrusted inputs (envelopes, sealed-file headers) mutated at random: every outcome is either a successful parse
/// or an IntegrityException with a message, never another exception or a hang.
/// </summary>
public sealed class ParserFuzzTests
{
    private static byte[] ValidEnvelope()
    {
        var envelope = new Envelope
        {
            CheckpointId = new string('a', 32), LineageId = new string('b', 32), Generation = 2, ParentId = new string('c', 32),
            Created = DateTimeOffset.UnixEpoch, MetadataCipher = "chacha20-poly1305", PagesCipher = "aes-256-gcm",
            Recipients = [new RecipientStanza { Id = new string('d', 64), Type = "rsa-oaep-sha256", WrappedKey = "AAAA" }],
            Files =
            [
                new FileEntry { Name = "core-1.img", Kind = "stream", Size = 3, Digest = "sha256:" + new string('e', 64) },
                new FileEntry { Name = "parent", Kind = "symlink", Target = "../x" },
            ],
        };
        return EnvelopeFile.Serialize(envelope, new byte[32]);
    }

    [Fact]
    public void MutatedEnvelopesNeverCrashTheParser()
    {
        var rng = new Random(12345);
        byte[] valid = ValidEnvelope();
        Assert.NotNull(EnvelopeFile.Parse(valid, "valid"));
        for (int i = 0; i < 20_000; i++)
        {
            byte[] input = Mutate(valid, rng);
            try { EnvelopeFile.Parse(input, "fuzz"); }
            catch (IntegrityException e) { Assert.False(string.IsNullOrWhiteSpace(e.Message)); }
        }
    }

    [Fact]
    public void StructuralLiesAreRejectedWithANamedReason()
    {
        string text = Encoding.UTF8.GetString(ValidEnvelope());
        (string from, string to, string expect)[] cases =
        [
            ("\"generation\":2", "\"generation\":0", "generation"),
            ("\"name\":\"core-1.img\"", "\"name\":\"../etc/passwd\"", "invalid file name"),
            ("\"name\":\"core-1.img\"", "\"name\":\"parent\"", "listed twice"),
            ("\"kind\":\"stream\"", "\"kind\":\"weird\"", "unknown kind"),
            ("\"size\":3", "\"size\":-1", "size or digest"),
            ("\"metadataCipher\":\"chacha20-poly1305\"", "\"metadataCipher\":\"rot13\"", "cipher"),
            ("\"version\":1", "\"version\":7", "version"),
            ("sealpoint/v1\n", "sealpoint/v9\n", "version"),
        ];
        foreach (var (from, to, expect) in cases)
        {
            Assert.Contains(from, text);
            var e = Assert.Throws<IntegrityException>(() => EnvelopeFile.Parse(Encoding.UTF8.GetBytes(text.Replace(from, to)), "case"));
            Assert.Contains(expect, e.Message, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void TheWarmUpEnvelopeIsValidSoTheWarmUpRunsThroughParsingAndTheMacCheck()
    {
        // WarmUp runs unobserved on the thread pool: an envelope failing validation would end it early, and silently.
        Assert.Null(Record.Exception(() => EnvelopeFile.WarmUp(writing: false)));
        Assert.Null(Record.Exception(() => EnvelopeFile.WarmUp(writing: true)));
    }

    [Fact]
    public void RandomAndMutatedHeadersNeverCrashTheParser()
    {
        var rng = new Random(777);
        var valid = new SealedFileHeader(SealedFileKind.Pages, Crypto.AeadAlgorithm.Aes256Gcm, 4096, new byte[16], new byte[16]).ToBytes();
        Assert.Equal(SealedFileKind.Pages, SealedFile.ParseHeader(valid, "h").Kind);
        for (int i = 0; i < 50_000; i++)
        {
            byte[] input = i % 2 == 0 ? Mutate(valid, rng) : RandomNumberGenerator.GetBytes(rng.Next(0, 80));
            try { SealedFile.ParseHeader(input, "fuzz"); }
            catch (IntegrityException) { }
        }
    }

    [Fact]
    public void SizeArithmeticRoundTripsForEverySize()
    {
        foreach (var kind in new[] { SealedFileKind.Stream, SealedFileKind.Pages })
            for (long size = 0; size < 3 * 65536 + 10; size += size < 9000 ? 1 : 997)
                Assert.Equal(size, SealedFile.PlaintextSizeOf(kind, SealedFile.SealedSize(kind, size)));
    }

    private static byte[] Mutate(byte[] valid, Random rng)
    {
        var list = new List<byte>(valid);
        int edits = rng.Next(1, 6);
        for (int e = 0; e < edits && list.Count > 0; e++)
        {
            int at = rng.Next(list.Count);
            switch (rng.Next(5))
            {
                case 0: list[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: list.RemoveAt(at); break;
                case 2: list.Insert(at, (byte)rng.Next(256)); break;
                case 3: list.RemoveRange(at, list.Count - at); break;
                default: list[at] = (byte)"{}[]\",:0\n\\"[rng.Next(10)]; break;
            }
        }
        return list.ToArray();
    }
}
