using System.Text;
using System.Text.Json;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

/// <summary>
/// The envelope's JSON is written by System.Text.Json's serializer and read by <see cref="EnvelopeReader"/>: every
/// field the writer produces must come back unchanged, and what the reader refuses it refuses by name.
/// </summary>
public sealed class EnvelopeReaderTests
{
    private static readonly string Id = new('a', 32);
    private static readonly string Digest = "sha256:" + new string('e', 64);

    private static Envelope Full() => new()
    {
        CheckpointId = Id, LineageId = new string('b', 32), Generation = 7, ParentId = new string('c', 32),
        Created = new DateTimeOffset(2026, 11, 22, 8, 30, 15, 123, TimeSpan.FromHours(2)).AddTicks(4567),
        MetadataCipher = "chacha20-poly1305", PagesCipher = "aes-256-gcm",
        Recipients =
        [
            new RecipientStanza { Id = new string('d', 64), Type = "ecdh-p256", Subject = "CN=node-a, O=\"Ops & <Co>\"", EphemeralKey = "MFkw+/==", WrappedKey = "AAAA" },
            new RecipientStanza { Id = new string('f', 64), Type = "rsa-oaep-sha256", WrappedKey = "BBBB" },
        ],
        Files =
        [
            new FileEntry { Name = "core-1.img", Kind = "stream", Size = 3, Digest = Digest },
            new FileEntry { Name = "pages-1.img", Kind = "pages", Size = long.MaxValue, Digest = Digest },
            new FileEntry { Name = "stats-restore", Kind = "plain", Size = 0, Digest = Digest },
            new FileEntry { Name = "parent", Kind = "symlink", Target = "../pré-checkpoint" },
        ],
        Annotations = new Dictionary<string, string> { ["io.podman.name"] = "web\u00e9\u2028", ["empty"] = "" },
    };

    private static byte[] Json(Envelope e) => JsonSerializer.SerializeToUtf8Bytes(e, EnvelopeJsonContext.Default.Envelope);

    [Fact]
    public void EveryFieldTheSerializerWritesIsReadBack()
    {
        foreach (var envelope in new[] { Full(), Full() with { ParentId = null, Generation = 1, Annotations = null } })
        {
            byte[] written = Json(envelope);
            var read = EnvelopeReader.Read(written);
            Assert.Equal(written, Json(read));
            Assert.Equal(envelope.Created, read.Created);
            Assert.Equal(envelope.Created.Offset, read.Created.Offset);
        }
    }

    [Fact]
    public void UnknownMembersAreSkippedAsTheSerializerSkipsThem()
    {
        string json = Encoding.UTF8.GetString(Json(Full()))
            .Replace("{\"version\":1,", "{\"future\":{\"nested\":[1,{\"x\":null}]},\"version\":1,", StringComparison.Ordinal)
            .Replace("\"name\":\"core-1.img\"", "\"name\":\"core-1.img\",\"mode\":420", StringComparison.Ordinal);
        var read = EnvelopeReader.Read(Encoding.UTF8.GetBytes(json));
        Assert.Equal(Json(Full()), Json(read));
    }

    [Theory]
    [InlineData("\"version\":1,", "\"version\":1,\"version\":1,", "'version' is given twice")]
    [InlineData("\"name\":\"core-1.img\",", "\"name\":\"core-1.img\",\"name\":\"x\",", "'name' is given twice")]
    [InlineData("\"empty\":\"\"", "\"empty\":\"\",\"empty\":\"x\"", "the key 'empty' twice")]
    [InlineData("\"lineageId\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",", "", "'lineageId' is missing")]
    [InlineData("\"wrappedKey\":\"BBBB\"", "\"wrappedKeys\":\"BBBB\"", "'recipients[].wrappedKey' is missing")]
    [InlineData("\"generation\":7", "\"generation\":\"7\"", "'generation' must be a 64-bit integer")]
    [InlineData("\"generation\":7", "\"generation\":7.5", "'generation' must be a 64-bit integer")]
    [InlineData("\"checkpointId\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "\"checkpointId\":null", "'checkpointId' must be a string")]
    [InlineData("\"created\":\"2026-11-22T08:30:15.1234567+02:00\"", "\"created\":\"yesterday\"", "'created' must be an RFC 3339 time")]
    [InlineData("\"files\":[", "\"files\":{\"a\":", "'files' must be an array")]
    [InlineData("\"empty\":\"\"", "\"empty\":1", "'annotations values' must be a string")]
    public void MalformedEnvelopesAreRefusedByName(string from, string to, string expected)
    {
        string json = Encoding.UTF8.GetString(Json(Full()));
        Assert.Contains(from, json);
        var e = Assert.ThrowsAny<JsonException>(() => EnvelopeReader.Read(Encoding.UTF8.GetBytes(json.Replace(from, to, StringComparison.Ordinal))));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{\"version\":1")]
    [InlineData("{} {}")]
    [InlineData("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]}")]
    [InlineData("{/*comment*/}")]
    public void NotAnEnvelopeObjectIsAJsonError(string json)
    {
        Assert.ThrowsAny<JsonException>(() => EnvelopeReader.Read(Encoding.UTF8.GetBytes(json)));
    }

    [Fact]
    public void InvalidUtf8InAStringIsAJsonErrorNotACrash()
    {
        byte[] json = Json(Full());
        int at = Encoding.UTF8.GetString(json).IndexOf("web", StringComparison.Ordinal);
        json[at] = 0xC3; // a lead byte followed by 'e': not UTF-8
        json[at + 1] = 0x28;
        Assert.ThrowsAny<JsonException>(() => EnvelopeReader.Read(json));
    }
}
