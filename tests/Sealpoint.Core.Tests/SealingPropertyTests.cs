using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Properties of sealed files over random sizes and random write patterns: the sequential writer (used by
/// streaming dumps) and the parallel whole-file sealer produce the same bytes; every path opens back to the input.
/// </summary>
public sealed class SealingPropertyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sealpoint-prop-").FullName;
    private readonly byte[] _dataKey = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<SealedFileKind, AeadAlgorithm> Kinds() => new()
    {
        { SealedFileKind.Stream, AeadAlgorithm.ChaCha20Poly1305 },
        { SealedFileKind.Stream, AeadAlgorithm.Aes256Gcm },
        { SealedFileKind.Pages, AeadAlgorithm.Aes256Gcm },
        { SealedFileKind.Pages, AeadAlgorithm.ChaCha20Poly1305 },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AnyWriteSplitGivesTheSameSealedBytes_AndEveryPathOpensBackToTheInput(SealedFileKind kind, AeadAlgorithm aead)
    {
        var rng = new Random(kind == SealedFileKind.Pages ? 1 : 2);
        int[] sizes = [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 2 * 65536, 1 << 20, (1 << 20) + 4096 * 3 + 17, rng.Next(1, 3 << 20)];
        foreach (int size in sizes)
        {
            byte[] plain = RandomNumberGenerator.GetBytes(size);
            var header = new SealedFileHeader(kind, aead, SealedFile.ChunkSizeOf(kind), RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16));
            string name = kind == SealedFileKind.Pages ? "pages-1.img" : "core-1.img";

            byte[] viaStream = SealSequentially(plain, header, name, rng);
            byte[] viaStream2 = SealSequentially(plain, header, name, rng);
            Assert.Equal(viaStream, viaStream2);
            Assert.Equal(SealedFile.SealedSize(kind, size), viaStream.Length);

            string plainPath = Path.Combine(_dir, "plain"), sealedPath = Path.Combine(_dir, "sealed");
            File.WriteAllBytes(plainPath, plain);
            SealedFileInfo info;
            using (var src = File.OpenHandle(plainPath))
            using (var dst = new FileStream(sealedPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 0))
                info = SealedFileIO.Seal(src, size, dst, header, () => SealedFile.CreateCipher(_dataKey, header, name));
            Assert.Equal(viaStream, File.ReadAllBytes(sealedPath));

            string openedPath = Path.Combine(_dir, "opened");
            File.Delete(openedPath);
            using (var sealedHandle = File.OpenHandle(sealedPath))
            using (var outStream = new FileStream(openedPath, FileMode.CreateNew, FileAccess.Write))
                SealedFileIO.Open(sealedHandle, header, header.ToBytes(), name, size, info.Digest, outStream.SafeFileHandle,
                    () => SealedFile.CreateCipher(_dataKey, header, name));
            Assert.Equal(plain, File.ReadAllBytes(openedPath));

            if (kind == SealedFileKind.Pages)
            {
                // In place: the same file becomes its sealed form.
                string inPlace = Path.Combine(_dir, "inplace");
                File.WriteAllBytes(inPlace, plain);
                using (var f = new FileStream(inPlace, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 0))
                    SealedFileIO.Seal(f.SafeFileHandle, size, f, header, () => SealedFile.CreateCipher(_dataKey, header, name));
                Assert.Equal(viaStream, File.ReadAllBytes(inPlace));
            }
        }
    }

    private byte[] SealSequentially(byte[] plain, SealedFileHeader header, string name, Random rng)
    {
        var output = new MemoryStream();
        var cipher = SealedFile.CreateCipher(_dataKey, header, name);
        Stream sealing = header.Kind == SealedFileKind.Pages
            ? new PagesSealingStream(output, cipher, header)
            : new SealingStream(output, cipher, header, ownsOutput: false);
        for (int off = 0; off < plain.Length;)
        {
            int n = Math.Min(plain.Length - off, rng.Next(1, 3) == 1 ? rng.Next(1, 5000) : rng.Next(1, 200_000));
            sealing.Write(plain, off, n);
            off += n;
        }
        if (sealing is PagesSealingStream p) p.Finish(); else ((SealingStream)sealing).Finish();
        byte[] bytes = output.ToArray();
        sealing.Dispose();
        return bytes;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
