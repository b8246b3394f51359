using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Core.Policy;

namespace Sealpoint.Hook;

/// <summary>
/// createRuntime (or prestart): checks the container's sealing policy and loads every recipient (expiry, CA chain,
/// CRL) the way the runtime does at checkpoint, so an unusable policy fails the container's creation.
/// runc also runs this stage during restore; a restore by sealpoint-runc (marked in staging) is not re-checked:
/// opening needs this node's key, not the recipients'.
/// </summary>
public static class CreateHook
{
    public static int Run(HookState state, NodeConfig config)
    {
        var staging = new Staging(config.Staging);
        if (File.Exists(Path.Combine(staging.ContainerDir(state.Id), Staging.RestoringMarker))) return 0;
        if (state.Bundle is null)
            throw new SealpointException(ErrorKind.Usage, "the container state has no bundle", "run sealpoint-hook at createRuntime or prestart");
        var annotations = ReadAnnotations(Path.Combine(state.Bundle, "config.json"));
        try
        {
            var decision = SealingPolicy.Decide(annotations, config);
            if (!decision.Seal) return 0;
            SealingPolicy.LoadRecipients(decision, config);
            staging.EnsureRoot(); // a staging folder on disk would fail every checkpoint: say so now
            return 0;
        }
        catch (SealpointException e)
        {
            throw new SealpointException(e.Kind, $"container {state.Id} cannot be created: its checkpoints could not be sealed: {e.Message}", e.Fix, e);
        }
    }

    private static IReadOnlyDictionary<string, string> ReadAnnotations(string configPath)
    {
        try
        {
            using var stream = File.OpenRead(configPath);
            using var doc = JsonDocument.Parse(stream);
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
                foreach (var p in a.EnumerateObject())
                    if (p.Value.ValueKind == JsonValueKind.String) result[p.Name] = p.Value.GetString()!;
            return result;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SealpointException(ErrorKind.NotFound, $"the container's OCI config {configPath} does not exist", "check the bundle in the container state");
        }
        catch (JsonException e)
        {
            throw new SealpointException(ErrorKind.Usage, $"the container's OCI config {configPath} is not valid JSON: {e.Message}", "fix config.json");
        }
    }
}
