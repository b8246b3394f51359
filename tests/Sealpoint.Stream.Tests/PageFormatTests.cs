using System.Security.Cryptography;
using Sealpoint.Core;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;
using Sealpoint.Core.Streaming;
using Sealpoint.TestSupport;

namespace Sealpoint.Stream.Tests;

/// <summary>
/// The streaming page sealer and opener against the core's sequential ones (docs/format.md page-file layout):
/// byte-identical files for any size and write split, and identical plaintext back.
/// </summary>
public class PageFormatTests
{
    private static readonly byte[] DataKey = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<int, int, int> Cases => new()
    {
        { 0, 4096, 2 },
        { 100, 7, 2 },
        { 4096 * 64, 65536, 2 },
        { 4096 * 64 + 1, 65536, 3 },
        { 3 * 1024 * 1024 + 4096 * 5 + 123, 100_000, 2 },
        { 5 * 1024 * 1024, 1 << 20, 1 },
        { 5 * 1024 * 1024, 4096 * 3 + 17, 4 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parallel_page_sealing_gives_the_sequential_sealers_bytes(int size, int split, int threads)
    {
        using var dir = TempDir.Create("stream-pageformat");
        byte[] plain = RandomNumberGenerator.GetBytes(size);
        var header = new SealedFileHeader(SealedFileKind.Pages, AeadAlgorithm.Aes256Gcm, SealedFile.PageSize, RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16));
        const string name = "pages-1.img";

        SealedFileInfo sequential;
        using (var output = Create(dir.File("sequential")))
        using (var s = new PagesSealingStream(output, SealedFile.CreateCipher(DataKey, header, name), header))
        {
            Write(s, plain, split);
            sequential = s.Finish();
        }
        SealedFileInfo parallel;
        using (var s = new ParallelPageSealer(Create(dir.File("parallel")), dir.File("parallel.tags"), header, () => SealedFile.CreateCipher(DataKey, header, name), threads))
        {
            Write(s, plain, split);
            parallel = s.Finish();
        }
        Assert.Equal(sequential, parallel);
        Assert.True(File.ReadAllBytes(dir.File("sequential")).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("parallel"))), "the sealed bytes differ");
        Assert.False(File.Exists(dir.File("parallel.tags")), "the tag side file was left behind");

        // And the parallel opener returns the plaintext, verifying size and digest.
        var handle = File.OpenHandle(dir.File("parallel"));
        using var opener = new ParallelPageOpener(handle, header.ToBytes(), name, size, parallel.Digest, () => SealedFile.CreateCipher(DataKey, header, name), threads);
        var back = new MemoryStream();
        opener.CopyTo(back, split);
        Assert.True(plain.AsSpan().SequenceEqual(back.ToArray()), "the opened plaintext differs");
    }

    [Fact]
    public void The_opener_refuses_a_swapped_tag_table_entry_and_a_wrong_digest()
    {
        using var dir = TempDir.Create("stream-pageformat-bad");
        int size = 2 * 1024 * 1024;
        byte[] plain = RandomNumberGenerator.GetBytes(size);
        var header = new SealedFileHeader(SealedFileKind.Pages, AeadAlgorithm.Aes256Gcm, SealedFile.PageSize, RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16));
        SealedFileInfo info;
        using (var s = new ParallelPageSealer(Create(dir.File("f")), dir.File("f.tags"), header, () => SealedFile.CreateCipher(DataKey, header, "p"), 2))
        {
            s.Write(plain);
            info = s.Finish();
        }
        // A wrong expected digest: all pages verify, the end does not.
        using (var opener = new ParallelPageOpener(File.OpenHandle(dir.File("f")), header.ToBytes(), "p", size, "sha256:" + new string('0', 64),
                   () => SealedFile.CreateCipher(DataKey, header, "p"), 2))
            Assert.Contains("does not match the digest", Assert.Throws<IntegrityException>(() => opener.CopyTo(System.IO.Stream.Null)).Message);
        // Tags of pages 10 and 11 swapped in the tag table: page 10 fails.
        using (var f = new FileStream(dir.File("f"), FileMode.Open, FileAccess.ReadWrite))
        {
            byte[] a = new byte[16], b = new byte[16];
            f.Position = size + 10 * 16; f.ReadExactly(a); f.ReadExactly(b);
            f.Position = size + 10 * 16; f.Write(b); f.Write(a);
        }
        using (var opener = new ParallelPageOpener(File.OpenHandle(dir.File("f")), header.ToBytes(), "p", size, info.Digest,
                   () => SealedFile.CreateCipher(DataKey, header, "p"), 2))
            Assert.Contains("failed authentication at page 10", Assert.Throws<IntegrityException>(() => opener.CopyTo(System.IO.Stream.Null)).Message);
    }

    private static FileStream Create(string path) => new(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0 });

    private static void Write(System.IO.Stream s, byte[] data, int split)
    {
        for (int off = 0; off < data.Length; off += split) s.Write(data, off, Math.Min(split, data.Length - off));
    }
}
