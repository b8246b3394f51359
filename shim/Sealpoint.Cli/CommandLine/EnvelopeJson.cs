using System.Text.Json.Serialization;
using Sealpoint.Core.Format;

namespace Sealpoint.Cli.CommandLine;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(Envelope))]
internal sealed partial class EnvelopeJson : JsonSerializerContext;
