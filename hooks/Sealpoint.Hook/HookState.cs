using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Config;

namespace Sealpoint.Hook;

/// <summary>The OCI container state a hook receives on stdin (runtime-spec runtime.md "State").</summary>
public sealed record HookState(string Id, string? Bundle, string? Status, IReadOnlyDictionary<string, string>? Annotations)
{
    private const int MaxBytes = 1 << 20;

    public static HookState Read(Stream input)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[65536];
        int n;
        while ((n = input.Read(chunk)) > 0)
        {
            buffer.Write(chunk, 0, n);
            if (buffer.Length > MaxBytes) throw Bad($"more than {MaxBytes} bytes");
        }
        try
        {
            using var doc = JsonDocument.Parse(buffer.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad("not a JSON object");
            string id = root.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : throw Bad("no \"id\"");
            if (!Staging.IsValidContainerId(id)) throw Bad($"invalid container id '{NodeConfig.Printable(id)}'");
            string? bundle = root.TryGetProperty("bundle", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString() : null;
            string? status = root.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            Dictionary<string, string>? annotations = null;
            if (root.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
            {
                annotations = new(StringComparer.Ordinal);
                foreach (var p in a.EnumerateObject())
                    if (p.Value.ValueKind == JsonValueKind.String) annotations[p.Name] = p.Value.GetString()!;
            }
            return new HookState(id, bundle, status, annotations);
        }
        catch (JsonException e) { throw Bad($"invalid JSON: {e.Message}"); }
    }

    private static SealpointException Bad(string what) => new(ErrorKind.Usage, $"the container state on stdin is unusable: {what}",
        "run sealpoint-hook as an OCI hook (the runtime passes the state on stdin)");
}
