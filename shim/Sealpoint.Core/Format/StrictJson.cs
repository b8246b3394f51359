using System.Text.Json;

namespace Sealpoint.Core.Format;

/// <summary>
/// Helpers for reading JSON documents member by member with a <see cref="Utf8JsonReader"/> (the envelope, the node's
/// lineage records): without System.Text.Json's serializer, whose one-time set-up costs 20–40 ms of CPU per process
/// on a restore's critical path. Strict: a member given twice, a required member missing or null, or a value of the
/// wrong JSON type is a <see cref="JsonException"/> naming the member; unknown members are skipped.
/// </summary>
public static class StrictJson
{
    public delegate T ElementReader<T>(ref Utf8JsonReader reader);

    /// <summary>One JSON value, read by <paramref name="root"/> from its first token; nothing may follow it.</summary>
    public static T ReadDocument<T>(ReadOnlySpan<byte> json, string what, ElementReader<T> root)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16 });
        try
        {
            Next(ref reader, what);
            var value = root(ref reader);
            if (reader.Read()) throw new JsonException($"data after {what}");
            return value;
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader's own complaint about a value (e.g. a string that is not valid UTF-8).
            throw new JsonException(e.Message, e);
        }
    }

    public static List<T> ReadArray<T>(ref Utf8JsonReader reader, string member, ElementReader<T> element)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw WrongType(member, "an array");
        var items = new List<T>();
        while (true)
        {
            Next(ref reader, member);
            if (reader.TokenType == JsonTokenType.EndArray) return items;
            items.Add(element(ref reader));
        }
    }

    /// <summary>A JSON object used as a map: each key once, each value read by <paramref name="value"/>.</summary>
    public static Dictionary<string, T> ReadMap<T>(ref Utf8JsonReader reader, string member, ElementReader<T> value)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw WrongType(member, "an object");
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        while (NextMember(ref reader, member))
        {
            string key = reader.GetString()!;
            Next(ref reader, member);
            if (!map.TryAdd(key, value(ref reader))) throw new JsonException($"'{member}' has the key '{key}' twice");
        }
        return map;
    }

    /// <summary>An optional map of strings (null when the value is null).</summary>
    public static Dictionary<string, string>? ReadStringMap(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.Null ? null : ReadMap(ref reader, member, (ref Utf8JsonReader r) => RequiredString(ref r, $"{member} values"));

    /// <summary>
    /// At a member's name: true when it is <paramref name="name"/> (then positioned at its value). <paramref name="seen"/>
    /// holds a bit per member of the object read so far: a second occurrence is an error, since a reader taking the
    /// first and another taking the last would see different envelopes.
    /// </summary>
    public static bool Is(ref Utf8JsonReader reader, ReadOnlySpan<byte> name, ref int seen, int bit)
    {
        if (!reader.ValueTextEquals(name)) return false;
        if ((seen & (1 << bit)) != 0) throw new JsonException($"the member '{System.Text.Encoding.UTF8.GetString(name)}' is given twice");
        seen |= 1 << bit;
        Next(ref reader, "a member's value");
        return true;
    }

    /// <summary>Moves to the next member's name of the current object; false at its end.</summary>
    public static bool NextMember(ref Utf8JsonReader reader, string what)
    {
        Next(ref reader, what);
        return reader.TokenType == JsonTokenType.PropertyName;
    }

    public static void Next(ref Utf8JsonReader reader, string what)
    {
        if (!reader.Read()) throw new JsonException($"the JSON ends inside {what}");
    }

    public static void RequireObject(ref Utf8JsonReader reader, string what)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException($"{what} must be a JSON object, not {Describe(reader.TokenType)}");
    }

    public static string RequiredString(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw WrongType(member, "a string");

    public static string? OptionalString(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.Null ? null : RequiredString(ref reader, member);

    public static int Int32(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int value) ? value : throw WrongType(member, "a 32-bit integer");

    public static long Int64(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long value) ? value : throw WrongType(member, "a 64-bit integer");

    public static DateTimeOffset Time(ref Utf8JsonReader reader, string member) =>
        reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out var value) ? value : throw WrongType(member, "an RFC 3339 time");

    public static JsonException WrongType(string member, string expected) => new($"'{member}' must be {expected}");

    public static JsonException Missing(string member) => new($"the required member '{member}' is missing");

    public static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
