using System.Text.Json;
using Sealpoint.Core;

namespace Sealpoint.Runtime;

/// <summary>The parts of an OCI bundle Sealpoint reads: the annotations of config.json.</summary>
public static class ContainerBundle
{
    private const long MaxConfigBytes = 16 << 20;

    public static IReadOnlyDictionary<string, string> ReadAnnotations(string bundle)
    {
        string path = Path.Combine(bundle, "config.json");
        try
        {
            if (new FileInfo(path).Length > MaxConfigBytes)
                throw new SealpointException(ErrorKind.Usage, $"{path} is larger than {MaxConfigBytes} bytes", "check the bundle");
            using var stream = File.OpenRead(path);
            using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
            return Annotations(doc.RootElement, path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SealpointException(ErrorKind.NotFound, $"the container's OCI config {path} does not exist", "check the bundle path (runc --bundle, or runc state's bundle)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SealpointException(ErrorKind.Io, $"cannot read the container's OCI config {path}: {e.Message}", "check its permissions");
        }
        catch (JsonException e)
        {
            throw new SealpointException(ErrorKind.Usage, $"the container's OCI config {path} is not valid JSON: {e.Message}", "fix or regenerate config.json");
        }
    }

    /// <summary>The "annotations" object of an OCI config or state document; non-string values are refused.</summary>
    public static IReadOnlyDictionary<string, string> Annotations(JsonElement root, string source)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("annotations", out var annotations) || annotations.ValueKind == JsonValueKind.Null)
            return result;
        if (annotations.ValueKind != JsonValueKind.Object)
            throw new SealpointException(ErrorKind.Usage, $"\"annotations\" in {source} is not an object", "annotations must map strings to strings");
        foreach (var p in annotations.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new SealpointException(ErrorKind.Usage, $"annotation {p.Name} in {source} is not a string", "annotation values must be strings");
            result[p.Name] = p.Value.GetString()!;
        }
        return result;
    }
}
