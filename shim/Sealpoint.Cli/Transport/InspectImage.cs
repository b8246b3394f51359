using System.Text.Json;
using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core;
using Sealpoint.Oci;
using Sealpoint.Packaging;
using Sealpoint.Packaging.Packing;

namespace Sealpoint.Cli.Transport;

/// <summary><c>sealpoint inspect REF</c>: an image's lineage, generation, recipients and contents, read without a key.</summary>
public static class InspectImage
{
    public static int Run(string refText, ParsedArguments args, Output output)
    {
        try
        {
            using var location = ImageCommand.Open(refText, args, output, create: false);
            var i = Packaging.Packing.Inspector.InspectAsync(location.Store, location.Reference, CancellationToken.None).GetAwaiter().GetResult();
            (location.Client?.Options.Observer as ProgressObserver)?.Clear();
            Print(i, output);
            return 0;
        }
        catch (OciException e)
        {
            throw new SealpointException(e.Kind switch
            {
                OciErrorKind.Usage => ErrorKind.Usage, OciErrorKind.NotFound => ErrorKind.NotFound, OciErrorKind.Unauthorized => ErrorKind.Key,
                OciErrorKind.Integrity => ErrorKind.Integrity, OciErrorKind.Config => ErrorKind.Config, _ => ErrorKind.External,
            }, e.Message, e.Fix);
        }
    }

    private static void Print(ImageInspection i, Output output)
    {
        var e = i.Envelope;
        var map = i.Map;
        int reused = map?.Chunks.Count(c => c.Source != 0) ?? 0;
        long reusedBytes = map?.Chunks.Where(c => c.Source != 0).Sum(c => c.LayerSize) ?? 0;
        if (output.IsJson)
        {
            output.WriteJson(new JsonObject
            {
                ["image"] = i.Source,
                ["checkpointId"] = e.CheckpointId, ["lineageId"] = e.LineageId, ["generation"] = e.Generation, ["parentId"] = e.ParentId,
                ["created"] = e.Created.ToString("O"),
                ["recipients"] = new JsonArray(e.Recipients.Select(r => (JsonNode)new JsonObject { ["id"] = r.Id, ["type"] = r.Type, ["subject"] = r.Subject }).ToArray()),
                ["files"] = new JsonArray(e.Files.Select(f => (JsonNode)new JsonObject { ["name"] = f.Name, ["kind"] = f.Kind, ["size"] = f.Size }).ToArray()),
                ["engineFiles"] = i.EngineEnvelope is null ? null : new JsonArray(i.EngineEnvelope.Files.Select(f => (JsonNode)f.Name).ToArray()),
                ["memoryChunks"] = map?.Chunks.Count, ["reusedChunks"] = reused, ["reusedBytes"] = reusedBytes,
                ["annotations"] = JsonSerializer.SerializeToNode(i.Manifest.Annotations?.ToDictionary() ?? new Dictionary<string, string>(), InspectJson.Default.DictionaryStringString),
                ["verified"] = false,
            });
            return;
        }
        output.Line($"image       {i.Source}");
        output.Line($"checkpoint  {e.CheckpointId}");
        output.Line($"lineage     {e.LineageId}  generation {e.Generation}  parent {e.ParentId ?? "-"}");
        output.Line($"created     {e.Created:u}");
        output.Line($"recipients  {e.Recipients.Count}");
        foreach (var r in e.Recipients) output.Line($"  {r.Id[..16]}…  {r.Type,-16} {r.Subject}");
        output.Line($"CRIU images {e.Files.Count} sealed files, {e.Files.Sum(f => f.Size ?? 0):N0} plaintext bytes");
        foreach (var f in e.Files) output.Line($"  {f.Kind,-8} {(f.Target is not null ? "-> " + f.Target : (f.Size ?? 0).ToString("N0")),14}  {f.Name}");
        if (i.EngineEnvelope is { } engine)
            output.Line($"engine      {engine.Files.Count} sealed files: {string.Join(", ", engine.Files.Select(f => f.Name))}");
        if (map is not null)
            output.Line($"memory      {map.Chunks.Count} chunk layers ({i.MemoryLayerBytes:N0} bytes), {reused} reused from {map.Sources.Count - 1} earlier checkpoint(s) ({reusedBytes:N0} bytes)");
        foreach (var (k, v) in (i.Manifest.Annotations ?? new Dictionary<string, string>()).Where(a => !a.Key.StartsWith("io.sealpoint.", StringComparison.Ordinal)).OrderBy(a => a.Key))
            output.Line($"annotation  {k}={v}");
        output.Line("verified    no: read without a key (sealpoint pull --key KEY authenticates it)");
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class InspectJson : System.Text.Json.Serialization.JsonSerializerContext;
