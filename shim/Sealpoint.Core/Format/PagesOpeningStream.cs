using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// Reads a sealed page file in order, releasing each page only after its tag verified; tags are read block by block
/// from the tag table, so memory stays bounded. At the end the tag table's digest must match the envelope.
/// </summary>
internal sealed class PagesOpeningStream : VerifiedBlockReader
{
    private const int PagesPerBlock = 256;
    private readonly SafeFileHandle _file;
    private readonly FileCipher _cipher;
    private readonly string _name;
    private readonly long _plaintextSize;
    private readonly long _pages;
    private readonly string _expectedDigest;
    private readonly byte[] _tags = new byte[PagesPerBlock * SealedFile.TagSize];
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _nextPage;
    private bool _done;

    public PagesOpeningStream(SafeFileHandle file, FileCipher cipher, byte[] headerBytes, string name, long plaintextSize, string expectedDigest)
        : base(PagesPerBlock * SealedFile.PageSize)
    {
        _file = file;
        _cipher = cipher;
        _name = name;
        _plaintextSize = plaintextSize;
        _pages = SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize);
        _expectedDigest = expectedDigest;
        _digest.AppendData(headerBytes);
    }



    protected override int NextBlock()
    {
        if (_done) return -1;
        if (_nextPage == _pages)
        {
            _done = true;
            string digest = "sha256:" + Hex.Lower(_digest.GetHashAndReset());
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(digest), Encoding.ASCII.GetBytes(_expectedDigest)))
                throw new IntegrityException($"'{_name}' does not match the digest in the envelope");
            return -1;
        }
        int count = (int)Math.Min(PagesPerBlock, _pages - _nextPage);
        long plainOffset = _nextPage * SealedFile.PageSize;
        int plainLen = (int)Math.Min((long)count * SealedFile.PageSize, _plaintextSize - plainOffset);
        var tags = _tags.AsSpan(0, count * SealedFile.TagSize);
        PagesFile.ReadExactly(_file, tags, _plaintextSize + _nextPage * SealedFile.TagSize, _name);
        PagesFile.ReadExactly(_file, Plain.AsSpan(0, plainLen), plainOffset, _name);
        PagesFile.OpenBlock(_cipher, _nextPage, Plain.AsSpan(0, plainLen), tags, _name);
        _digest.AppendData(tags);
        _nextPage += count;
        return plainLen;
    }

    public override long Length => _plaintextSize;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _digest.Dispose();
            _cipher.Dispose();
            _file.Dispose();
        }
        base.Dispose(disposing);
    }
}
