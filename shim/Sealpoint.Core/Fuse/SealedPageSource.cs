using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Fuse;

/// <summary>
/// One sealed page file (docs/format.md 2.4) whose header and tag table have been checked against the authenticated
/// envelope, ready to release any range of its plaintext: each page is read into private memory, verified against its
/// tag and decrypted there. The tags are re-read from the file with their pages; a tag that verifies a page proves the
/// page is the sealed one (it is a MAC under this file's key, bound to the page's index), so the file changing after
/// the check can only make reads fail, never release anything else. Holds one cipher per serving thread.
/// </summary>
internal sealed class SealedPageSource : IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly FileCipher[] _ciphers;

    internal SealedPageSource(SafeFileHandle file, string name, long size, FileCipher[] ciphers)
    {
        _file = file;
        Name = name;
        Size = size;
        _ciphers = ciphers;
    }

    public string Name { get; }
    /// <summary>Plaintext size in bytes.</summary>
    public long Size { get; }
    /// <summary>How many threads may read at once (one cipher each).</summary>
    public int Readers => _ciphers.Length;

    /// <summary>
    /// Verifies and decrypts the pages from <paramref name="firstPage"/> into <paramref name="block"/> (whole pages, the
    /// last one may end with the file). <paramref name="reader"/> (0 ≤ reader &lt; <see cref="Readers"/>) picks the
    /// cipher; one thread per reader. Throws <see cref="IntegrityException"/> naming the page that failed, with the
    /// block wiped.
    /// </summary>
    public void OpenPages(int reader, long firstPage, Span<byte> block, Span<byte> tagScratch)
    {
        int count = (block.Length + SealedFile.PageSize - 1) / SealedFile.PageSize;
        var tags = tagScratch[..(count * SealedFile.TagSize)];
        PagesFile.ReadExactly(_file, tags, Size + firstPage * SealedFile.TagSize, Name);
        PagesFile.ReadExactly(_file, block, firstPage * SealedFile.PageSize, Name);
        PagesFile.OpenBlock(_ciphers[reader], firstPage, block, tags, Name);
    }

    public void Dispose()
    {
        foreach (var c in _ciphers) c.Dispose();
        _file.Dispose();
    }
}
