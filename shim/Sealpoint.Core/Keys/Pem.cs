namespace Sealpoint.Core.Keys;

/// <summary>
/// The PEM text (RFC 7468) of the keys, certificates and CRLs Sealpoint reads: "-----BEGIN LABEL-----", base64,
/// "-----END LABEL-----", with any text between blocks. The DER inside goes to .NET's own parsers.
/// Why not PemEncoding: its first use in a process JIT-compiles generic vectorised code, ~15 ms here (a node identity
/// imported from PEM took 14 ms, the same key from DER 2 ms), paid by every restore and checkpoint on its critical
/// path. This reader only searches with ordinal string searches and decodes with <see cref="Convert.FromBase64String(string)"/>.
/// </summary>
public static class Pem
{
    private const string BeginPrefix = "-----BEGIN ";
    private const string EndPrefix = "-----END ";
    private const string Dashes = "-----";

    /// <summary>One encapsulated block: its label and its decoded bytes.</summary>
    public readonly record struct Block(string Label, byte[] Data);

    /// <summary>Every block of <paramref name="text"/>, in order.</summary>
    /// <exception cref="FormatException">A block without its END line, or whose body is not base64.</exception>
    public static List<Block> Read(string text)
    {
        var blocks = new List<Block>();
        int at = 0;
        while (true)
        {
            int begin = text.IndexOf(BeginPrefix, at, StringComparison.Ordinal);
            if (begin < 0) return blocks;
            int labelStart = begin + BeginPrefix.Length;
            int labelEnd = text.IndexOf(Dashes, labelStart, StringComparison.Ordinal);
            int lineEnd = text.IndexOf('\n', labelStart);
            if (labelEnd < 0 || (lineEnd >= 0 && lineEnd < labelEnd))
                throw new FormatException($"a BEGIN line at offset {begin} does not end with '{Dashes}'");
            string label = text[labelStart..labelEnd];
            int bodyStart = labelEnd + Dashes.Length;
            string end = EndPrefix + label + Dashes;
            int endAt = text.IndexOf(end, bodyStart, StringComparison.Ordinal);
            if (endAt < 0) throw new FormatException($"the '{label}' block has no '{end}' line");
            string body = text[bodyStart..endAt];
            // A BEGIN inside the body is a block cut short by the next one.
            if (body.Contains(Dashes, StringComparison.Ordinal))
                throw new FormatException($"the '{label}' block is cut short by another block");
            byte[] data;
            try { data = Convert.FromBase64String(body); }
            catch (FormatException) { throw new FormatException($"the body of the '{label}' block is not base64"); }
            if (data.Length == 0) throw new FormatException($"the '{label}' block is empty");
            blocks.Add(new Block(label, data));
            at = endAt + end.Length;
        }
    }

    /// <summary>The data of the first block labelled <paramref name="label"/>, or null when there is none.</summary>
    /// <exception cref="FormatException">The text is not well-formed PEM.</exception>
    public static byte[]? Find(string text, string label)
    {
        foreach (var block in Read(text))
            if (block.Label == label) return block.Data;
        return null;
    }
}
