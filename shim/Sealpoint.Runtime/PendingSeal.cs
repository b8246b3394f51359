using System.Text.Json;
using System.Text.Json.Serialization;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;

namespace Sealpoint.Runtime;

/// <summary>
/// Written into a staging folder whose dump could not be sealed (<see cref="Staging.PendingMarker"/>): what is
/// needed to seal it later with `sealpoint-runc-core seal-pending DIR`. Holds no key material.
/// </summary>
public sealed record PendingSeal
{
    public required string ContainerId { get; init; }
    /// <summary>The plaintext images (in memory).</summary>
    public required string Images { get; init; }
    /// <summary>Where the engine asked for the checkpoint.</summary>
    public required string ImagePath { get; init; }
    public required IReadOnlyList<string> Recipients { get; init; }
    public required string PagesCipher { get; init; }
    public required string MetadataCipher { get; init; }
    public ParentCheckpoint? Parent { get; init; }
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    public required string Error { get; init; }
    public required DateTimeOffset Failed { get; init; }

    public static string PathIn(string stagingDir) => Path.Combine(stagingDir, Staging.PendingMarker);

    public void Write(string stagingDir)
    {
        string path = PathIn(stagingDir);
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        JsonSerializer.Serialize(stream, this, PendingJson.Default.PendingSeal);
    }

    public static PendingSeal Read(string stagingDir)
    {
        string path = PathIn(stagingDir);
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize(stream, PendingJson.Default.PendingSeal)
                ?? throw new SealpointException(ErrorKind.Usage, $"{path} is empty", "give a staging folder that sealpoint-runc kept after a failed seal");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SealpointException(ErrorKind.NotFound, $"{stagingDir} holds no {Staging.PendingMarker}",
                "give the staging folder named in the error of the failed checkpoint");
        }
        catch (JsonException e)
        {
            throw new SealpointException(ErrorKind.Usage, $"{path} is not valid: {e.Message}", "it was written by sealpoint-runc; do not edit it");
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(PendingSeal))]
internal sealed partial class PendingJson : JsonSerializerContext;
