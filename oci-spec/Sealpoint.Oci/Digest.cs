using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sealpoint.Oci;

/// <summary>
/// A content digest <c>algorithm:encoded</c> (image-spec descriptor.md). Only sha256 and sha512 are accepted,
/// in their canonical lowercase-hex form: a digest we cannot verify is as bad as none, so untrusted input
/// with any other algorithm is rejected at parse time.
/// </summary>
[JsonConverter(typeof(DigestJsonConverter))]
public readonly record struct Digest
{
    private Digest(string algorithm, string encoded)
    {
        Algorithm = algorithm;
        Encoded = encoded;
    }

    public string Algorithm { get; }
    public string Encoded { get; }

    /// <summary>The image layout's blob path below <c>blobs/</c>: <c>sha256/HEX</c>.</summary>
    public string BlobPath => $"{Algorithm}/{Encoded}";

    public override string ToString() => Algorithm is null ? "" : $"{Algorithm}:{Encoded}";

    /// <summary>The first 12 hex digits, for messages.</summary>
    public string Short => Encoded is null ? "" : Encoded[..Math.Min(12, Encoded.Length)];

    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null || text.Length > 7 + 128) return false;
        int colon = text.IndexOf(':');
        if (colon <= 0) return false;
        string algorithm = text[..colon], encoded = text[(colon + 1)..];
        int expected = algorithm switch { "sha256" => 64, "sha512" => 128, _ => -1 };
        if (expected < 0 || encoded.Length != expected) return false;
        foreach (char c in encoded)
            if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        digest = new Digest(algorithm, encoded);
        return true;
    }

    public static Digest Parse(string? text, string what = "digest") => TryParse(text, out var d)
        ? d
        : throw new OciException(OciErrorKind.Protocol, $"{what} '{Truncate(text)}' is not a valid sha256 or sha512 digest",
            "digests look like sha256:<64 lowercase hex digits>");

    public static Digest Sha256(ReadOnlySpan<byte> data) => new("sha256", Convert.ToHexStringLower(SHA256.HashData(data)));

    public static Digest FromSha256Hash(ReadOnlySpan<byte> hash) =>
        hash.Length == 32 ? new("sha256", Convert.ToHexStringLower(hash)) : throw new ArgumentException("a SHA-256 hash has 32 bytes");

    public HashAlgorithmName HashName => Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;

    /// <summary>A hasher for this digest's algorithm (to verify streamed content).</summary>
    public IncrementalHash NewHasher() => IncrementalHash.CreateHash(HashName);

    /// <summary>True when <paramref name="hash"/> (from <see cref="NewHasher"/>) is this digest, compared in constant time.</summary>
    public bool Matches(ReadOnlySpan<byte> hash) =>
        CryptographicOperations.FixedTimeEquals(hash, Convert.FromHexString(Encoded));

    public bool Verify(ReadOnlySpan<byte> content)
    {
        using var h = NewHasher();
        h.AppendData(content);
        return Matches(h.GetHashAndReset());
    }

    internal static string Truncate(string? s, int max = 80) => s is null ? "(none)" : s.Length <= max ? s : s[..max] + "…";
}

public sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("a digest must be a string");
        string? s = reader.GetString();
        return Digest.TryParse(s, out var d) ? d : throw new JsonException($"'{Digest.Truncate(s)}' is not a valid sha256/sha512 digest");
    }

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
