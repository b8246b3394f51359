using System.Text;
using System.Text.Json;
using Sealpoint.Packaging.Lineage;

namespace Sealpoint.Oci.Tests;

/// <summary>
/// The node's lineage records: written and read without System.Text.Json's serializer, in the format the serializer
/// wrote before (nodes keep their records across upgrades), and refused by name when damaged.
/// </summary>
public sealed class LineageStateJsonTests
{
    // As System.Text.Json's serializer wrote them (camelCase, indented), before this reader and writer.
    private const string SerializerLineages = """
        {
          "version": 1,
          "lineages": {
            "0123456789abcdef0123456789abcdef": {
              "generation": 3,
              "checkpointId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
              "parentId": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
              "updated": "2026-11-21T10:15:30.1234567+00:00"
            },
            "fedcba9876543210fedcba9876543210": {
              "generation": 1,
              "checkpointId": "cccccccccccccccccccccccccccccccc",
              "parentId": null,
              "updated": "2026-11-22T07:00:00+00:00"
            }
          }
        }
        """;

    private const string SerializerContainers = """
        {
          "web-1": {
            "checkpointId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "lineageId": "0123456789abcdef0123456789abcdef",
            "generation": 3,
            "updated": "2026-11-21T10:15:30.1234567+00:00"
          }
        }
        """;

    [Fact]
    public void RecordsTheSerializerWroteAreReadAndWrittenBackTheSame()
    {
        var lineages = LineageStateJson.ReadLineages(Encoding.UTF8.GetBytes(SerializerLineages));
        Assert.Equal(1, lineages.Version);
        var first = lineages.Lineages["0123456789abcdef0123456789abcdef"];
        Assert.Equal(3, first.Generation);
        Assert.Equal("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", first.ParentId);
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 10, 15, 30, 123, TimeSpan.Zero).AddTicks(4567), first.Updated);
        Assert.Null(lineages.Lineages["fedcba9876543210fedcba9876543210"].ParentId);
        Assert.Equal(SerializerLineages, Encoding.UTF8.GetString(LineageStateJson.Write(lineages)));

        var containers = LineageStateJson.ReadContainers(Encoding.UTF8.GetBytes(SerializerContainers));
        Assert.Equal(3, containers["web-1"].Generation);
        Assert.Equal(SerializerContainers, Encoding.UTF8.GetString(LineageStateJson.Write(containers)));
    }

    [Fact]
    public void EmptyRecordsRoundTrip()
    {
        Assert.Empty(LineageStateJson.ReadLineages(LineageStateJson.Write(new LineageFile())).Lineages);
        Assert.Empty(LineageStateJson.ReadContainers(LineageStateJson.Write(new Dictionary<string, ContainerCheckpoint>())));
        Assert.Empty(LineageStateJson.ReadContainers("null"u8));
    }

    [Theory]
    [InlineData("\"generation\": 3,", "\"generation\": 3, \"generation\": 4,", "'generation' is given twice")]
    [InlineData("\"generation\": 3,", "", "'generation' is missing")]
    [InlineData("\"generation\": 3,", "\"generation\": \"3\",", "'generation' must be a 64-bit integer")]
    [InlineData("\"updated\": \"2026-11-22T07:00:00+00:00\"", "\"updated\": \"now\"", "'updated' must be an RFC 3339 time")]
    [InlineData("\"fedcba9876543210fedcba9876543210\"", "\"0123456789abcdef0123456789abcdef\"", "key '0123456789abcdef0123456789abcdef' twice")]
    [InlineData("\"lineages\": {", "\"lineages\": null, \"x\": {", "'lineages' must be an object")]
    public void DamagedLineageRecordsAreRefusedByName(string from, string to, string expected)
    {
        Assert.Contains(from, SerializerLineages);
        string damaged = SerializerLineages.Replace(from, to, StringComparison.Ordinal);
        var e = Assert.ThrowsAny<JsonException>(() => LineageStateJson.ReadLineages(Encoding.UTF8.GetBytes(damaged)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void MutatedRecordsNeverCrashTheReader()
    {
        var rng = new Random(4242);
        foreach (string valid in new[] { SerializerLineages, SerializerContainers })
        {
            byte[] bytes = Encoding.UTF8.GetBytes(valid);
            for (int i = 0; i < 5_000; i++)
            {
                byte[] input = (byte[])bytes.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--) input[rng.Next(input.Length)] = (byte)rng.Next(256);
                try
                {
                    if (valid == SerializerLineages) LineageStateJson.ReadLineages(input);
                    else LineageStateJson.ReadContainers(input);
                }
                catch (JsonException e) { Assert.False(string.IsNullOrWhiteSpace(e.Message)); }
            }
        }
    }
}
