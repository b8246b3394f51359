using System.Security.Cryptography;
using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Format;

/// <summary>
/// A read-only stream over one sealed stream file that yields plaintext only after each chunk's tag verified.
/// The expected plaintext size and digest come from the (already authenticated) envelope, so truncation,
/// extension and a wrong last-chunk flag are all caught; the header has been checked by the caller.
/// </summary>
internal sealed class OpeningStream : VerifiedBlockReader
{
    private readonly Stream _input;
    private readonly bool _ownsInput;
    private readonly FileCipher _cipher;
    private readonly SealedFileKind _kind;
    private readonly int _chunk;
    private readonly string _name;
    private readonly long _plaintextSize;
    private readonly long _records;
    private readonly string _expectedDigest;
    private readonly byte[] _record;
    private readonly IncrementalHash _digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _index;

    public OpeningStream(Stream input, FileCipher cipher, SealedFileHeader header, ReadOnlySpan<byte> headerBytes,
        string name, long plaintextSize, string expectedDigest, bool ownsInput = true)
        : base(BlockSize(header.ChunkSize, plaintextSize))
    {
        _input = input;
        _ownsInput = ownsInput;
        _cipher = cipher;
        _kind = header.Kind;
        _chunk = header.ChunkSize;
        _name = name;
        _plaintextSize = plaintextSize;
        _records = SealedFile.RecordCount(_kind, plaintextSize);
        _expectedDigest = expectedDigest;
        _record = GC.AllocateUninitializedArray<byte>(Plain.Length + SealedFile.TagSize);
        _digest.AppendData(headerBytes);
    }



    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    protected override int NextBlock()
    {
        if (_index == _records)
        {
            if (_input.ReadByte() >= 0)
                throw Appended(_name);
            string digest = "sha256:" + Hex.Lower(_digest.GetHashAndReset());
            if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(digest), System.Text.Encoding.ASCII.GetBytes(_expectedDigest)))
                throw DigestMismatch(_name);
            _index++;
            return -1;
        }
        if (_index > _records) return -1;
        bool last = _index == _records - 1;
        int len = (int)Math.Min(_chunk, _plaintextSize - _index * _chunk);
        var record = _record.AsSpan(0, len + SealedFile.TagSize);
        int got = ReadFully(record);
        if (got < record.Length)
            throw Truncated(_name, _index, _records);
        var tag = record[len..];
        if (!_cipher.TryOpen(_index, last, record[..len], tag, Plain.AsSpan(0, len)))
            throw Unauthentic(_name, _index);
        _digest.AppendData(tag);
        _index++;
        return len;
    }

    // The failures of a stream file, here and in the single-record path (SealedFileIO).
    internal static IntegrityException Appended(string name) => new($"'{name}' is longer than its envelope entry says (data appended)");
    internal static IntegrityException DigestMismatch(string name) => new($"'{name}' does not match the digest in the envelope");
    internal static IntegrityException Truncated(string name, long index, long records) => new($"'{name}' is truncated: record {index} of {records} is incomplete");
    internal static IntegrityException Unauthentic(string name, long index) =>
        new($"'{name}' failed authentication at chunk {index} (modified, reordered, truncated or from another checkpoint)");

    /// <summary>
    /// The largest record's plaintext: a chunk (checked by the header's parser), or the whole file when it is smaller,
    /// as most images of a process tree are; at least 1 (a file of 0 bytes still has one empty record).
    /// </summary>
    private static int BlockSize(int chunk, long plaintextSize) => (int)Math.Clamp(plaintextSize, 1, chunk);

    private int ReadFully(Span<byte> dst) => _input.ReadAtLeast(dst, dst.Length, throwOnEndOfStream: false);

    public override long Length => _plaintextSize;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _digest.Dispose();
            _cipher.Dispose();
            if (_ownsInput) _input.Dispose();
        }
        base.Dispose(disposing);
    }
}
