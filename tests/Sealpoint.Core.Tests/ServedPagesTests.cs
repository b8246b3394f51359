using System.Buffers.Binary;
using System.Security.Cryptography;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Fuse;
using Sealpoint.TestSupport;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Memory images served decrypted read by read (Fuse/): the protocol codec on its own, fuzzed; then the real kernel
/// FUSE (root and /dev/fuse needed: these fail, never skip, without them), read the ways CRIU reads, and tampered.
/// </summary>
public sealed class ServedPagesTests(TestPki pki) : IClassFixture<TestPki>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sealpoint-served-").FullName;

    public void Dispose()
    {
        foreach (string f in Directory.EnumerateFiles(_work, "*", SearchOption.AllDirectories))
            if (Config.Staging.IsMountPoint(f)) Config.Staging.Unmount(f);
        Directory.Delete(_work, recursive: true);
    }

    private static byte[] Request(FuseProtocol.Opcode op, ulong unique, ReadOnlySpan<byte> body)
    {
        byte[] r = new byte[FuseProtocol.InHeaderSize + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(r, (uint)r.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(4), (uint)op);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(8), unique);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(16), FuseProtocol.RootId);
        body.CopyTo(r.AsSpan(FuseProtocol.InHeaderSize));
        return r;
    }

    [Fact]
    public void RequestHeadersDecodeAndMalformedOnesAreRejected()
    {
        byte[] read = new byte[40];
        BinaryPrimitives.WriteUInt64LittleEndian(read.AsSpan(8), 1 << 20);
        BinaryPrimitives.WriteUInt32LittleEndian(read.AsSpan(16), 4096);
        byte[] request = Request(FuseProtocol.Opcode.Read, 77, read);
        var header = FuseProtocol.ParseHeader(request);
        Assert.Equal(FuseProtocol.Opcode.Read, header!.Value.Opcode);
        Assert.Equal(77UL, header.Value.Unique);
        Assert.Equal(new FuseProtocol.ReadRequest(0, 1 << 20, 4096), FuseProtocol.ParseRead(request.AsSpan(FuseProtocol.InHeaderSize)));

        Assert.Null(FuseProtocol.ParseHeader(request.AsSpan(0, 39))); // shorter than a header
        Assert.Null(FuseProtocol.ParseHeader(request.AsSpan(0, 60))); // length field disagrees with what was read
        Assert.Null(FuseProtocol.ParseRead(new byte[23]));
        BinaryPrimitives.WriteUInt64LittleEndian(read.AsSpan(8), ulong.MaxValue);
        Assert.Null(FuseProtocol.ParseRead(read)); // an offset no file has
        Assert.Null(FuseProtocol.ParseInit(new byte[15]));
        Assert.Null(FuseProtocol.ParseOpenFlags(new byte[7]));
        Assert.Null(FuseProtocol.ParseAccessMask(new byte[3]));
    }

    [Fact]
    public void InitReplyGrantsOnlyWhatTheKernelOfferedAndAskedFor()
    {
        byte[] body = new byte[FuseProtocol.InitOutSize];
        uint offered = FuseProtocol.AsyncRead | FuseProtocol.MaxPagesFlag | (1u << 13) /* readdirplus */;
        FuseProtocol.WriteInitOut(body, new FuseProtocol.InitRequest(7, 44, 131072, offered), 256);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(body));
        Assert.Equal(FuseProtocol.Minor, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4))); // the lower of the two
        Assert.Equal(FuseProtocol.AsyncRead | FuseProtocol.MaxPagesFlag, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(12)));
        Assert.Equal(256, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(28)));
        FuseProtocol.WriteInitOut(body, new FuseProtocol.InitRequest(7, 26, 0, 0), 256);
        Assert.Equal(26u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(12)));
    }

    [Fact]
    public void RandomRequestsNeverCrashTheDecoders()
    {
        var rng = new Random(4242);
        for (int i = 0; i < 20_000; i++)
        {
            byte[] input = new byte[rng.Next(0, 200)];
            rng.NextBytes(input);
            if (input.Length >= 4 && rng.Next(2) == 0) BinaryPrimitives.WriteUInt32LittleEndian(input, (uint)input.Length);
            var header = FuseProtocol.ParseHeader(input);
            if (header is not null) Assert.Equal((uint)input.Length, header.Value.Length);
            var body = input.AsSpan(Math.Min(input.Length, FuseProtocol.InHeaderSize));
            var read = FuseProtocol.ParseRead(body);
            if (read is { } r) Assert.True(r.Offset >= 0 && r.Size >= 0);
            FuseProtocol.ParseInit(body);
            FuseProtocol.ParseOpenFlags(body);
            FuseProtocol.ParseAccessMask(body);
        }
    }

    private (string SealedDir, byte[] Plain) Seal(int pagesBytes)
    {
        string src = Path.Combine(_work, "plain-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(src);
        byte[] plain = RandomNumberGenerator.GetBytes(pagesBytes);
        File.WriteAllBytes(Path.Combine(src, "pages-1.img"), plain);
        File.WriteAllBytes(Path.Combine(src, "inventory.img"), RandomNumberGenerator.GetBytes(40));
        string sealedDir = Path.Combine(_work, "sealed-" + Guid.NewGuid().ToString("n"));
        CheckpointSealer.SealDirectory(src, sealedDir, new SealOptions { Recipients = [pki.Recipient("node-a")], Sync = false });
        Directory.Delete(src, recursive: true);
        return (sealedDir, plain);
    }

    private static void RequireFuse()
    {
        Tools.RequireRoot();
        if (!File.Exists("/dev/fuse"))
            throw new TestEnvironmentException("/dev/fuse is missing: load the fuse module (modprobe fuse) to test served memory images");
    }

    private SealedPageMount Serve(string sealedDir, string placeholder)
    {
        File.WriteAllBytes(placeholder, []);
        using var identity = pki.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        return checkpoint.TryServePages("pages-1.img", placeholder, 2)
            ?? throw new TestEnvironmentException("mounting the served image failed although this is root with /dev/fuse");
    }

    [Fact]
    public void ServedImageReadsBackExactlyHoweverItIsRead_AndUnmountsClean()
    {
        RequireFuse();
        // Not a whole number of MiB or of pages: the last read and the last page are short.
        var (sealedDir, plain) = Seal(5 * 1024 * 1024 + 3 * 4096 + 100);
        string placeholder = Path.Combine(_work, "pages-1.img");
        byte[] back = new byte[plain.Length];
        using (var mount = Serve(sealedDir, placeholder))
        {
            Assert.True(Config.Staging.IsMountPoint(placeholder));
            Assert.Equal(plain.Length, new FileInfo(placeholder).Length);
            using (var file = File.OpenHandle(placeholder))
            {
                // Front to back in 1 MiB reads, as CRIU reads (the read-ahead path).
                for (long off = 0; off < plain.Length;)
                {
                    int n = RandomAccess.Read(file, back.AsSpan((int)off, (int)Math.Min(1 << 20, plain.Length - off)), off);
                    Assert.True(n > 0, $"short read at {off}");
                    off += n;
                }
                Assert.True(plain.AsSpan().SequenceEqual(back), "sequential reads differ from the plaintext");

                // Unaligned, odd-sized, backwards and past the end.
                var rng = new Random(7);
                byte[] piece = new byte[300_000];
                for (int i = 0; i < 40; i++)
                {
                    long off = rng.NextInt64(0, plain.Length);
                    int want = rng.Next(1, piece.Length);
                    int n = RandomAccess.Read(file, piece.AsSpan(0, want), off);
                    Assert.Equal((int)Math.Min(want, plain.Length - off), n);
                    Assert.True(plain.AsSpan((int)off, n).SequenceEqual(piece.AsSpan(0, n)), $"read of {want} at {off} differs");
                }
                Assert.Equal(0, RandomAccess.Read(file, piece, plain.Length));

                // Two readers at once, as two restored tasks would.
                Parallel.For(0, 2, t =>
                {
                    byte[] mine = new byte[1 << 20];
                    for (long off = t * (1L << 20); off < plain.Length; off += 2L << 20)
                    {
                        int n = RandomAccess.Read(file, mine.AsSpan(0, (int)Math.Min(mine.Length, plain.Length - off)), off);
                        Assert.True(plain.AsSpan((int)off, n).SequenceEqual(mine.AsSpan(0, n)), $"parallel read at {off} differs");
                    }
                });
            }
            var write = Record.Exception(() => File.OpenWrite(placeholder).Dispose()); // read-only
            Assert.True(write is IOException or UnauthorizedAccessException, $"opening the served image for writing gave {write?.GetType().Name ?? "no error"}");
            Assert.Null(mount.Failure);
            Assert.True(mount.BytesServed >= plain.Length);
        }
        Assert.False(Config.Staging.IsMountPoint(placeholder), "the served image is still mounted after Dispose");
        Assert.Equal(0, new FileInfo(placeholder).Length);
    }

    [Fact]
    public void AModifiedPageFailsItsReadAndIsNamed_OthersStillRead()
    {
        RequireFuse();
        var (sealedDir, plain) = Seal(3 * 1024 * 1024);
        string sealedPages = Path.Combine(sealedDir, "pages-1.img");
        const long badPage = 400;
        using (var f = new FileStream(sealedPages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = badPage * 4096 + 17;
            int b = f.ReadByte();
            f.Position = badPage * 4096 + 17;
            f.WriteByte((byte)(b ^ 0x40));
        }
        string placeholder = Path.Combine(_work, "pages-1.img");
        using var mount = Serve(sealedDir, placeholder);
        using var file = File.OpenHandle(placeholder);
        byte[] buffer = new byte[1 << 20];
        // Pages 0-255 are intact and released; the read-ahead then meets page 400 and leaves that range to the reader.
        Assert.Equal(1 << 20, RandomAccess.Read(file, buffer, 0));
        Assert.True(plain.AsSpan(0, 1 << 20).SequenceEqual(buffer));
        Assert.ThrowsAny<IOException>(() => RandomAccess.Read(file, buffer, 1 << 20)); // pages 256-511 hold page 400
        Assert.Contains($"page {badPage}", mount.Failure);
        Assert.Contains("pages-1.img", mount.Failure);
        // Every page is judged by its own tag: the page before the bad one is released, the bad one never.
        Assert.Equal(4096, RandomAccess.Read(file, buffer.AsSpan(0, 4096), (badPage - 1) * 4096));
        Assert.True(plain.AsSpan((int)((badPage - 1) * 4096), 4096).SequenceEqual(buffer.AsSpan(0, 4096)));
        Assert.ThrowsAny<IOException>(() => RandomAccess.Read(file, buffer.AsSpan(0, 4096), badPage * 4096));
    }

    [Fact]
    public void RemovingAnOperationFolderUnmountsServedImagesLeftInIt()
    {
        RequireFuse();
        var (sealedDir, _) = Seal(1 << 20);
        string operation = Path.Combine(_work, "restore-op");
        Directory.CreateDirectory(Path.Combine(operation, "fs"));
        string placeholder = Path.Combine(operation, "fs", "pages-1.img");
        using var mount = Serve(sealedDir, placeholder);
        Assert.Equal([placeholder], Config.Staging.ServedImagesUnder(operation));
        // What the hook does with the leftovers of a restore that was killed while serving.
        Config.Staging.RemoveOperation(operation);
        Assert.False(Directory.Exists(operation));
        Assert.Empty(Config.Staging.ServedImagesUnder(_work));
    }

    [Fact]
    public void AModifiedTagTableIsRefusedBeforeAnythingIsMounted()
    {
        RequireFuse();
        var (sealedDir, _) = Seal(2 * 1024 * 1024);
        string sealedPages = Path.Combine(sealedDir, "pages-1.img");
        using (var f = new FileStream(sealedPages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 2 * 1024 * 1024 + 16 * 5 + 3; // the sixth page's tag
            int b = f.ReadByte();
            f.Position -= 1;
            f.WriteByte((byte)(b ^ 0x01));
        }
        string placeholder = Path.Combine(_work, "pages-1.img");
        var e = Assert.Throws<IntegrityException>(() => Serve(sealedDir, placeholder));
        Assert.Contains("pages-1.img", e.Message);
        Assert.False(Config.Staging.IsMountPoint(placeholder));
    }
}
