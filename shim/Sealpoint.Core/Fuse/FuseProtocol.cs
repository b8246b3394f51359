using System.Buffers.Binary;

namespace Sealpoint.Core.Fuse;

/// <summary>
/// The part of the Linux FUSE protocol (include/uapi/linux/fuse.h, protocol 7.x) a read-only file system of one
/// regular file needs: request headers, the INIT negotiation, attributes, OPEN and READ, and error replies. Pure
/// encoding and decoding, little-endian as on every platform Sealpoint runs on; no I/O.
/// </summary>
internal static class FuseProtocol
{
    public const uint Major = 7;
    /// <summary>The protocol minor version Sealpoint speaks: 7.28 added max_pages, which 1 MiB reads need.</summary>
    public const uint Minor = 31;
    public const ulong RootId = 1;

    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;
    public const int AttrSize = 88;
    public const int AttrOutSize = 16 + AttrSize;
    public const int InitOutSize = 64;
    public const int OpenOutSize = 16;
    public const int StatfsOutSize = 80;
    /// <summary>The kernel refuses device reads into smaller buffers.</summary>
    public const int MinReadBuffer = 8192;

    public enum Opcode : uint
    {
        Lookup = 1, Forget = 2, GetAttr = 3, SetAttr = 4, ReadLink = 5, Open = 14, Read = 15, Write = 16, Statfs = 17,
        Release = 18, Fsync = 20, GetXattr = 22, ListXattr = 23, Flush = 25, Init = 26, OpenDir = 27, ReadDir = 28,
        ReleaseDir = 29, Access = 34, Create = 35, Interrupt = 36, Destroy = 38, BatchForget = 42, Lseek = 46,
    }

    // INIT flags.
    public const uint AsyncRead = 1 << 0;
    public const uint AsyncDio = 1 << 15;
    public const uint MaxPagesFlag = 1 << 22;

    // OPEN reply flags: every read goes to the server (nothing of the plaintext enters the page cache).
    public const uint FopenDirectIo = 1 << 0;

    public const int ENOENT = 2, EIO = 5, EBADF = 9, EACCES = 13, EINVAL = 22, EROFS = 30, ENOSYS = 38;

    public readonly record struct InHeader(uint Length, Opcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid);

    /// <summary>Decodes a request header; null when the request is shorter than one or its length field disagrees.</summary>
    public static InHeader? ParseHeader(ReadOnlySpan<byte> request)
    {
        if (request.Length < InHeaderSize) return null;
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(request);
        if (length != request.Length) return null;
        return new InHeader(length, (Opcode)BinaryPrimitives.ReadUInt32LittleEndian(request[4..]), BinaryPrimitives.ReadUInt64LittleEndian(request[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(request[16..]), BinaryPrimitives.ReadUInt32LittleEndian(request[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[28..]), BinaryPrimitives.ReadUInt32LittleEndian(request[32..]));
    }

    /// <summary>Requests the kernel expects no reply to.</summary>
    public static bool NeedsNoReply(Opcode op) => op is Opcode.Forget or Opcode.BatchForget or Opcode.Interrupt;

    public static void WriteOutHeader(Span<byte> reply, int length, int error, ulong unique)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)length);
        BinaryPrimitives.WriteInt32LittleEndian(reply[4..], -error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply[8..], unique);
    }

    public readonly record struct InitRequest(uint Major, uint Minor, uint MaxReadahead, uint Flags);

    public static InitRequest? ParseInit(ReadOnlySpan<byte> body) => body.Length < 16 ? null
        : new InitRequest(BinaryPrimitives.ReadUInt32LittleEndian(body), BinaryPrimitives.ReadUInt32LittleEndian(body[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(body[8..]), BinaryPrimitives.ReadUInt32LittleEndian(body[12..]));

    /// <summary>
    /// The INIT reply: asynchronous direct reads of up to <paramref name="maxPages"/> pages each (several in flight for
    /// one large read, so the server's threads work in parallel), tiny writes (nothing is writable).
    /// </summary>
    public static void WriteInitOut(Span<byte> body, InitRequest request, ushort maxPages)
    {
        body[..InitOutSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(body, Major);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], Math.Min(request.Minor, Minor));
        BinaryPrimitives.WriteUInt32LittleEndian(body[8..], 0); // max_readahead: reads are direct
        BinaryPrimitives.WriteUInt32LittleEndian(body[12..], request.Flags & (AsyncRead | AsyncDio | MaxPagesFlag));
        BinaryPrimitives.WriteUInt16LittleEndian(body[16..], 16); // max_background
        BinaryPrimitives.WriteUInt16LittleEndian(body[18..], 12); // congestion_threshold
        BinaryPrimitives.WriteUInt32LittleEndian(body[20..], 4096); // max_write
        BinaryPrimitives.WriteUInt32LittleEndian(body[24..], 1); // time_gran
        BinaryPrimitives.WriteUInt16LittleEndian(body[28..], maxPages);
    }

    /// <summary>struct fuse_attr of a read-only regular file owned by root (0400).</summary>
    public static void WriteFileAttr(Span<byte> attr, ulong inode, long size)
    {
        attr[..AttrSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(attr, inode);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[8..], (ulong)size);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[16..], (ulong)((size + 511) / 512));
        BinaryPrimitives.WriteUInt32LittleEndian(attr[60..], 0x8000 | 0x100); // mode: S_IFREG | 0400
        BinaryPrimitives.WriteUInt32LittleEndian(attr[64..], 1); // nlink
        BinaryPrimitives.WriteUInt32LittleEndian(attr[80..], 4096); // blksize
    }

    public static void WriteAttrOut(Span<byte> body, ulong inode, long size)
    {
        body[..16].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body, 3600); // attr_valid: the file never changes while served
        WriteFileAttr(body[16..], inode, size);
    }

    public static void WriteOpenOut(Span<byte> body, ulong handle)
    {
        body[..OpenOutSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body, handle);
        BinaryPrimitives.WriteUInt32LittleEndian(body[8..], FopenDirectIo);
    }

    public static void WriteStatfsOut(Span<byte> body, long size)
    {
        body[..StatfsOutSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body, (ulong)((size + 4095) / 4096)); // blocks
        BinaryPrimitives.WriteUInt64LittleEndian(body[24..], 1); // files
        BinaryPrimitives.WriteUInt32LittleEndian(body[40..], 4096); // bsize
        BinaryPrimitives.WriteUInt32LittleEndian(body[44..], 255); // namelen
        BinaryPrimitives.WriteUInt32LittleEndian(body[48..], 4096); // frsize
    }

    /// <summary>open(2) flags of an OPEN request; null when the body is short.</summary>
    public static uint? ParseOpenFlags(ReadOnlySpan<byte> body) => body.Length < 8 ? null : BinaryPrimitives.ReadUInt32LittleEndian(body);

    public readonly record struct ReadRequest(ulong Handle, long Offset, int Size);

    public static ReadRequest? ParseRead(ReadOnlySpan<byte> body)
    {
        if (body.Length < 24) return null;
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(body[16..]);
        if (offset > long.MaxValue || size > int.MaxValue) return null;
        return new ReadRequest(BinaryPrimitives.ReadUInt64LittleEndian(body), (long)offset, (int)size);
    }

    public static uint? ParseAccessMask(ReadOnlySpan<byte> body) => body.Length < 4 ? null : BinaryPrimitives.ReadUInt32LittleEndian(body);
}
