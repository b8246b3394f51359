using System.Text;

namespace Sealpoint.TestSupport;

public sealed record SecretHit(string File, long Offset, string Form);

/// <summary>What a scan looked at and found.</summary>
public sealed record SecretScanReport(IReadOnlyList<SecretHit> Hits, int FilesScanned, long BytesScanned)
{
    /// <summary>The files holding the secret, each once.</summary>
    public IReadOnlyList<string> Files => Hits.Select(h => h.File).Distinct().ToList();
}

/// <summary>Thrown by <see cref="SecretScan.AssertAbsent"/>: lists every file holding the secret.</summary>
public sealed class SecretFoundException(string message, SecretScanReport report) : Exception(message)
{
    public SecretScanReport Report { get; } = report;
}

/// <summary>
/// Searches files for a secret as raw bytes and, when it is text, as UTF-16 (LE and BE): the forms a
/// process image or a .NET program could hold it in. Walks folders recursively, follows no
/// symlinks and reads regular files only (no fifos or devices).
/// </summary>
public static class SecretScan
{
    private const int ChunkSize = 1 << 20;

    /// <summary>Throws <see cref="SecretFoundException"/> if any form of the secret is in any file under
    /// the roots. Also throws if no file was scanned at all: an empty folder proves nothing.</summary>
    public static SecretScanReport AssertAbsent(string secret, params string[] roots) => AssertAbsent(Encoding.UTF8.GetBytes(secret), roots);

    public static SecretScanReport AssertAbsent(byte[] secret, params string[] roots)
    {
        var report = Scan(secret, roots);
        if (report.FilesScanned == 0)
            throw new InvalidOperationException($"secret scan found no files under {string.Join(", ", roots)}: nothing was checked");
        if (report.Hits.Count > 0)
            throw new SecretFoundException(
                $"the secret appears in {report.Files.Count} file(s):\n" +
                string.Join('\n', report.Hits.GroupBy(h => h.File).Select(g =>
                    $"  {g.Key}: {g.Count()} time(s), first at offset {g.First().Offset} ({g.First().Form})")),
                report);
        return report;
    }

    /// <summary>Throws unless the secret is found somewhere under the roots (a sanity check that
    /// a scan for it can see it at all); returns the report.</summary>
    public static SecretScanReport AssertPresent(string secret, params string[] roots)
    {
        var report = Scan(Encoding.UTF8.GetBytes(secret), roots);
        if (report.Hits.Count == 0)
            throw new InvalidOperationException(
                $"the secret was expected but not found in {report.FilesScanned} file(s), {report.BytesScanned} bytes under {string.Join(", ", roots)}");
        return report;
    }

    /// <summary>Scans and reports every occurrence of every form of the secret.</summary>
    public static SecretScanReport Scan(byte[] secret, params string[] roots)
    {
        if (secret.Length == 0) throw new ArgumentException("empty secret", nameof(secret));
        var forms = Forms(secret);
        var hits = new List<SecretHit>();
        int files = 0;
        long bytes = 0;
        foreach (var file in RegularFiles(roots))
        {
            files++;
            bytes += ScanFile(file, forms, hits);
        }
        return new SecretScanReport(hits, files, bytes);
    }

    private static List<(string Name, byte[] Bytes)> Forms(byte[] secret)
    {
        var forms = new List<(string, byte[])> { ("bytes", secret) };
        try
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(secret);
            forms.Add(("UTF-16LE", Encoding.Unicode.GetBytes(text)));
            forms.Add(("UTF-16BE", Encoding.BigEndianUnicode.GetBytes(text)));
        }
        catch (DecoderFallbackException) { } // not text: only the raw bytes make sense
        return forms;
    }

    private static IEnumerable<string> RegularFiles(string[] roots)
    {
        var pending = new Stack<string>();
        foreach (var root in roots)
        {
            var kind = Native.Lstat(root);
            if (kind == Native.FileKind.Missing)
                throw new DirectoryNotFoundException($"secret scan: {root} does not exist");
            if (kind == Native.FileKind.Regular) yield return root;
            else if (kind == Native.FileKind.Directory) pending.Push(root);
        }
        while (pending.Count > 0)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(pending.Pop()))
            {
                switch (Native.Lstat(entry))
                {
                    case Native.FileKind.Regular: yield return entry; break;
                    case Native.FileKind.Directory: pending.Push(entry); break;
                }
            }
        }
    }

    private static long ScanFile(string path, List<(string Name, byte[] Bytes)> forms, List<SecretHit> hits)
    {
        // The buffer keeps the last `overlap` bytes of the previous chunk, so a match across a chunk
        // edge is seen; a match is reported in the round where it starts before that kept tail.
        int overlap = forms.Max(f => f.Bytes.Length) - 1;
        var buffer = new byte[ChunkSize + overlap];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        long bufferStart = 0; // file offset of buffer[0]
        int filled = 0;
        while (true)
        {
            int read = stream.Read(buffer, filled, buffer.Length - filled);
            filled += read;
            if (read > 0 && filled < buffer.Length) continue;
            bool end = read == 0;
            int limit = end ? filled : filled - overlap;
            var window = buffer.AsSpan(0, filled);
            foreach (var (name, bytes) in forms)
            {
                for (int from = 0; from < limit;)
                {
                    int at = window[from..].IndexOf(bytes);
                    if (at < 0 || at + from >= limit) break;
                    hits.Add(new SecretHit(path, bufferStart + from + at, name));
                    from += at + 1;
                }
            }
            if (end) return bufferStart + filled;
            Array.Copy(buffer, filled - overlap, buffer, 0, overlap);
            bufferStart += filled - overlap;
            filled = overlap;
        }
    }
}
