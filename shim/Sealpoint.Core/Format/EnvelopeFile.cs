using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// The envelope file's bytes: <c>sealpoint/v1\n</c>, one line of JSON, then <c>mac: BASE64\n</c> where the MAC is
/// HMAC-SHA256 over everything before it, keyed by HKDF-SHA256(data key, salt = checkpoint id, "sealpoint/v1 envelope-mac").
/// </summary>
public sealed class EnvelopeFile
{
    public const string FirstLine = "sealpoint/v1";
    public const int MaxSize = 16 << 20;
    private const string MacPrefix = "mac: ";

    private EnvelopeFile(Envelope envelope, byte[] authenticatedBytes, byte[] mac)
    {
        Envelope = envelope;
        AuthenticatedBytes = authenticatedBytes;
        Mac = mac;
    }

    /// <summary>Parsed but, until <see cref="VerifyMac"/> succeeds, not trusted.</summary>
    public Envelope Envelope { get; }
    private byte[] AuthenticatedBytes { get; }
    private byte[] Mac { get; }

    public static byte[] Serialize(Envelope envelope, ReadOnlySpan<byte> dataKey) =>
        Assemble(JsonSerializer.SerializeToUtf8Bytes(envelope, EnvelopeJsonContext.Default.Envelope), dataKey, envelope.CheckpointId);

    /// <summary>The file's bytes around <paramref name="json"/>: the version line, the JSON line, the MAC line.</summary>
    private static byte[] Assemble(byte[] json, ReadOnlySpan<byte> dataKey, string checkpointId)
    {
        byte[] body = [.. Encoding.ASCII.GetBytes(FirstLine + "\n"), .. json, (byte)'\n'];
        byte[] mac = ComputeMac(body, dataKey, Convert.FromHexString(checkpointId));
        return [.. body, .. Encoding.ASCII.GetBytes(MacPrefix + Convert.ToBase64String(mac) + "\n")];
    }

    private static int _warmUpStarted;

    /// <summary>
    /// Runs <see cref="WarmUp"/> once, on a thread-pool thread: for a command that will read (or also write, when
    /// <paramref name="writing"/>) an envelope and meanwhile has other start-up work (loading a key, starting CRIU)
    /// for this thread.
    /// </summary>
    public static void StartWarmUp(bool writing)
    {
        if (Interlocked.Exchange(ref _warmUpStarted, 1) == 0) _ = Task.Run(() => WarmUp(writing));
    }

    /// <summary>
    /// Authenticates, parses and verifies a throwaway envelope (all-zero key, nothing secret), serialized first when
    /// <paramref name="writing"/>, so that the first real one does not pay the crypto library's and HMAC's one-time
    /// set-up, nor, for a writer, System.Text.Json's (15-25 ms measured; a reader does without the serializer, see
    /// <see cref="EnvelopeReader"/>, and must not spend a core on its set-up). The MAC comes first: loading the crypto
    /// library is what a key or certificate being loaded beside this needs too.
    /// </summary>
    public static void WarmUp(bool writing)
    {
        byte[] zeroKey = new byte[32];
        string id = new('0', 2 * SealedFile.IdSize), digest = "sha256:" + new string('0', 64);
        _ = ComputeMac([], zeroKey, Convert.FromHexString(id));
        byte[] bytes = writing
            ? Serialize(new Envelope
            {
                CheckpointId = id, LineageId = id, Generation = 1,
                Created = DateTimeOffset.UtcNow, MetadataCipher = "chacha20-poly1305", PagesCipher = "aes-256-gcm",
                Recipients = [new RecipientStanza { Id = new string('0', 64), Type = "warm-up", WrappedKey = "AA==" }],
                Files = [new FileEntry { Name = "warm-up.img", Kind = FileEntryKinds.Pages, Size = 0, Digest = digest }],
                Annotations = new Dictionary<string, string> { ["warm-up"] = "" },
            }, zeroKey)
            : Assemble(Encoding.ASCII.GetBytes(
                $$$"""{"version":1,"checkpointId":"{{{id}}}","lineageId":"{{{id}}}","generation":1,"created":"2026-01-01T00:00:00+00:00","metadataCipher":"chacha20-poly1305","pagesCipher":"aes-256-gcm","recipients":[{"id":"{{{new string('0', 64)}}}","type":"warm-up","wrappedKey":"AA=="}],"files":[{"name":"warm-up.img","kind":"pages","size":0,"digest":"{{{digest}}}"}],"annotations":{"warm-up":""}}"""),
                zeroKey, id);
        Parse(bytes, "warm-up envelope").VerifyMac(zeroKey, "warm-up envelope");
    }

    public static EnvelopeFile Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw Missing(path);
        if (info.Length > MaxSize)
            throw new IntegrityException($"envelope {path} is {info.Length} bytes, more than the {MaxSize} allowed");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Fails at once, without reading it, when there is no envelope at <paramref name="path"/>.</summary>
    public static void RequireExists(string path)
    {
        if (!File.Exists(path)) throw Missing(path);
    }

    private static SealpointException Missing(string path) =>
        new(ErrorKind.NotFound, $"no envelope at {path}: this is not a sealed checkpoint, or it is incomplete",
            "seal the directory first (sealpoint seal), or use a checkpoint whose sealing completed");

    public static EnvelopeFile Parse(byte[] bytes, string source)
    {
        if (bytes.Length > MaxSize) throw new IntegrityException($"envelope {source} is larger than {MaxSize} bytes");
        byte[] first = Encoding.ASCII.GetBytes(FirstLine + "\n");
        if (!bytes.AsSpan().StartsWith(first))
        {
            if (bytes.AsSpan().StartsWith("sealpoint/"u8))
                throw new IntegrityException($"envelope {source} has an unsupported version line", "open it with a Sealpoint release that reads that version");
            throw new IntegrityException($"{source} is not a Sealpoint envelope (first line is not '{FirstLine}')");
        }
        int jsonEnd = bytes.AsSpan(first.Length).IndexOf((byte)'\n');
        if (jsonEnd < 0) throw new IntegrityException($"envelope {source} is truncated");
        jsonEnd += first.Length;
        int bodyEnd = jsonEnd + 1;
        var macLine = bytes.AsSpan(bodyEnd);
        if (!macLine.StartsWith(Encoding.ASCII.GetBytes(MacPrefix)) || macLine.IndexOf((byte)'\n') != macLine.Length - 1)
            throw new IntegrityException($"envelope {source} has no valid MAC line (truncated or edited)");
        byte[] mac;
        try { mac = Convert.FromBase64String(Encoding.ASCII.GetString(macLine[MacPrefix.Length..^1])); }
        catch (FormatException) { throw new IntegrityException($"envelope {source} has a malformed MAC"); }
        if (mac.Length != 32) throw new IntegrityException($"envelope {source} has a MAC of the wrong length");

        Envelope envelope;
        try { envelope = EnvelopeReader.Read(bytes.AsSpan(first.Length, jsonEnd - first.Length)); }
        catch (JsonException e) { throw new IntegrityException($"envelope {source} is not valid JSON: {e.Message}"); }
        Validate(envelope, source);
        return new EnvelopeFile(envelope, bytes[..bodyEnd], mac);
    }

    /// <summary>Checks the MAC in constant time; only after this are the envelope's contents trusted.</summary>
    public void VerifyMac(ReadOnlySpan<byte> dataKey, string source)
    {
        byte[] expected = ComputeMac(AuthenticatedBytes, dataKey, Convert.FromHexString(Envelope.CheckpointId));
        if (!CryptographicOperations.FixedTimeEquals(expected, Mac))
            throw new IntegrityException($"envelope {source} failed authentication (it was modified after sealing)");
    }

    private static byte[] ComputeMac(byte[] body, ReadOnlySpan<byte> dataKey, byte[] checkpointId)
    {
        Span<byte> key = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey, key, checkpointId, "sealpoint/v1 envelope-mac"u8);
        try { return HMACSHA256.HashData(key, body); }
        finally { CryptographicOperations.ZeroMemory(key); }
    }

    /// <summary>Structure checks on untrusted input, so that later code can rely on well-formed fields.</summary>
    private static void Validate(Envelope e, string source)
    {
        void Fail(string what) => throw new IntegrityException($"envelope {source}: {what}");
        if (e.Version != Envelope.CurrentVersion) Fail($"unsupported envelope version {e.Version}");
        if (!Hex.TryDecode(e.CheckpointId, SealedFile.IdSize, out _)) Fail("checkpointId is not 32 hex digits");
        if (!Hex.TryDecode(e.LineageId, SealedFile.IdSize, out _)) Fail("lineageId is not 32 hex digits");
        if (e.ParentId is not null && !Hex.TryDecode(e.ParentId, SealedFile.IdSize, out _)) Fail("parentId is not 32 hex digits");
        if (e.Generation < 1) Fail("generation must be at least 1");
        if ((e.Generation == 1) != (e.ParentId is null)) Fail("generation and parentId disagree");
        if (!AeadAlgorithms.TryParse(e.MetadataCipher, out _) || !AeadAlgorithms.TryParse(e.PagesCipher, out _)) Fail("unknown cipher");
        if (e.Recipients is null || e.Recipients.Count == 0) Fail("no recipients");
        foreach (var r in e.Recipients!)
            if (r is null || !Hex.TryDecode(r.Id, 32, out _) || string.IsNullOrEmpty(r.Type) || string.IsNullOrEmpty(r.WrappedKey)) Fail("malformed recipient entry");
        if (e.Files is null) Fail("no file list");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in e.Files!)
        {
            if (f is null || !ImageFiles.IsValidName(f.Name) || f.Name == ImageFiles.EnvelopeName) Fail($"invalid file name '{f?.Name}'");
            if (!names.Add(f!.Name)) Fail($"file '{f.Name}' listed twice");
            switch (f.Kind)
            {
                case FileEntryKinds.Stream or FileEntryKinds.Pages or FileEntryKinds.Plain:
                    if (f.Size is null or < 0 || f.Digest is null || !f.Digest.StartsWith("sha256:", StringComparison.Ordinal) || f.Digest.Length != 71)
                        Fail($"file '{f.Name}' has no valid size or digest");
                    break;
                case FileEntryKinds.Symlink:
                    if (string.IsNullOrEmpty(f.Target) || f.Target.Contains('\0')) Fail($"symlink '{f.Name}' has no target");
                    break;
                default:
                    Fail($"file '{f.Name}' has unknown kind '{f.Kind}'");
                    break;
            }
        }
    }
}
