using System.Security.Cryptography;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// Seals a memory image as it is written: ciphertext pages go out at their plaintext offsets, the 16-byte tags are
/// kept (16 bytes per page, 4 MiB per GiB) and written after the last page, followed by the header.
/// </summary>
internal sealed class PagesSealingStream : WriteOnlyStream
{
    private const int PagesPerBatch = 64;
    private const int PageSize = SealedFile.PageSize;

    private readonly Stream _output;
    private readonly FileCipher _cipher;
    private readonly byte[] _headerBytes;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(PagesPerBatch * PageSize);
    private readonly List<byte[]> _tagBlocks = [];
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private const int TagsPerBlock = 4096;
    private int _filled;
    private long _pages;
    private long _plaintextSize;
    private SealedFileInfo? _result;

    private readonly PageVisitor? _onPage;

    public PagesSealingStream(Stream output, FileCipher cipher, SealedFileHeader header, PageVisitor? onPage = null)
    {
        _onPage = onPage;
        _output = output;
        _cipher = cipher;
        _headerBytes = header.ToBytes();
        _digest.AppendData(_headerBytes);
    }

    public override void Write(ReadOnlySpan<byte> data)
    {
        if (_result is not null) throw new InvalidOperationException("sealed file already finished");
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, _buffer.Length - _filled);
            data[..n].CopyTo(_buffer.AsSpan(_filled));
            _filled += n;
            _plaintextSize += n;
            data = data[n..];
            if (_filled == _buffer.Length) SealBuffer();
        }
    }


    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public SealedFileInfo Finish()
    {
        if (_result is not null) return _result;
        SealBuffer();
        long remaining = _pages * SealedFile.TagSize;
        foreach (var block in _tagBlocks)
        {
            int n = (int)Math.Min(block.Length, remaining);
            _output.Write(block, 0, n);
            remaining -= n;
        }
        _output.Write(_headerBytes);
        _output.Flush();
        _result = new SealedFileInfo(_plaintextSize, SealedFile.SealedSize(SealedFileKind.Pages, _plaintextSize),
            "sha256:" + Hex.Lower(_digest.GetHashAndReset()));
        return _result;
    }

    private void SealBuffer()
    {
        Span<byte> tag = stackalloc byte[SealedFile.TagSize];
        for (int off = 0; off < _filled; off += PageSize)
        {
            var page = _buffer.AsSpan(off, Math.Min(PageSize, _filled - off));
            _onPage?.Invoke(_pages, page);
            _cipher.Seal(_pages, false, page, page, tag);
            int slot = (int)(_pages % TagsPerBlock);
            if (slot == 0) _tagBlocks.Add(new byte[TagsPerBlock * SealedFile.TagSize]);
            tag.CopyTo(_tagBlocks[^1].AsSpan(slot * SealedFile.TagSize));
            _digest.AppendData(tag);
            _pages++;
        }
        _output.Write(_buffer, 0, _filled);
        _filled = 0;
    }

    public override long Length => _plaintextSize;
    public override long Position { get => _plaintextSize; set => throw new NotSupportedException(); }
    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            CryptographicOperations.ZeroMemory(_buffer);
            _digest.Dispose();
            _cipher.Dispose();
            _output.Dispose();
        }
        base.Dispose(disposing);
    }
}
