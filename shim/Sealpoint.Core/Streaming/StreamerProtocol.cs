using System.Buffers.Binary;
using System.Text;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// CRIU's image-streamer messages (images/img-streamer.proto), framed as CRIU frames every protobuf object:
/// a 4-byte little-endian length, then the packed message. Two tiny messages, so they are encoded by hand:
/// <c>img_streamer_request_entry { required string filename = 1; }</c> and
/// <c>img_streamer_reply_entry { required bool exists = 1; }</c>.
/// </summary>
public static class StreamerProtocol
{
    /// <summary>CRIU's socket in the images directory on dump (<c>criu dump --stream</c>).</summary>
    public const string CaptureSocketName = "streamer-capture.sock";
    /// <summary>CRIU's socket in the images directory on restore (<c>criu restore --stream</c>).</summary>
    public const string ServeSocketName = "streamer-serve.sock";

    /// <summary>Longest request accepted: an image file name is at most 255 bytes, plus field overhead.</summary>
    public const int MaxMessageSize = 1024;

    /// <summary>A framed request: length prefix and message.</summary>
    public static byte[] EncodeRequest(string filename)
    {
        byte[] name = Encoding.UTF8.GetBytes(filename);
        var message = new List<byte>(name.Length + 8) { 0x0A }; // field 1, wire type 2 (length-delimited)
        WriteVarint(message, (ulong)name.Length);
        message.AddRange(name);
        return Frame(message.ToArray());
    }

    /// <summary>A framed reply: length prefix and message.</summary>
    public static byte[] EncodeReply(bool exists) => Frame([0x08, exists ? (byte)1 : (byte)0]); // field 1, wire type 0 (varint)

    /// <summary>The length a 4-byte prefix announces; refuses anything larger than a request can be.</summary>
    public static int DecodeLength(ReadOnlySpan<byte> prefix)
    {
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        if (length > MaxMessageSize)
            throw Violation($"a message announces {length} bytes (at most {MaxMessageSize} expected)");
        return (int)length;
    }

    /// <summary>The file name of a request message (without its prefix). Unknown fields are skipped, as protobuf requires.</summary>
    public static string DecodeRequest(ReadOnlySpan<byte> message)
    {
        string? filename = null;
        while (!message.IsEmpty)
        {
            ulong key = ReadVarint(ref message);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            if (field == 1 && wire == 2)
            {
                ulong length = ReadVarint(ref message);
                if (length > (ulong)message.Length) throw Violation("a request's file name runs past the end of the message");
                try { filename = new UTF8Encoding(false, true).GetString(message[..(int)length]); }
                catch (DecoderFallbackException) { throw Violation("a request's file name is not valid UTF-8"); }
                message = message[(int)length..];
            }
            else Skip(ref message, wire);
        }
        return filename ?? throw Violation("a request has no file name (required field 1 missing)");
    }

    /// <summary>The <c>exists</c> flag of a reply message (without its prefix).</summary>
    public static bool DecodeReply(ReadOnlySpan<byte> message)
    {
        bool? exists = null;
        while (!message.IsEmpty)
        {
            ulong key = ReadVarint(ref message);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            if (field == 1 && wire == 0) exists = ReadVarint(ref message) != 0;
            else Skip(ref message, wire);
        }
        return exists ?? throw Violation("a reply has no 'exists' field (required field 1 missing)");
    }

    private static byte[] Frame(byte[] message)
    {
        var framed = new byte[4 + message.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(framed, (uint)message.Length);
        message.CopyTo(framed, 4);
        return framed;
    }

    private static void WriteVarint(List<byte> to, ulong value)
    {
        while (value >= 0x80)
        {
            to.Add((byte)(value | 0x80));
            value >>= 7;
        }
        to.Add((byte)value);
    }

    private static ulong ReadVarint(ref ReadOnlySpan<byte> b)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (b.IsEmpty) throw Violation("a varint runs past the end of the message");
            byte x = b[0];
            b = b[1..];
            value |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return value;
        }
        throw Violation("a varint is longer than 10 bytes");
    }

    private static void Skip(ref ReadOnlySpan<byte> b, int wire)
    {
        int n = wire switch
        {
            0 => -1,
            1 => 8,
            2 => checked((int)Math.Min(ReadVarint(ref b), int.MaxValue)),
            5 => 4,
            _ => throw Violation($"unsupported protobuf wire type {wire}"),
        };
        if (n < 0) { ReadVarint(ref b); return; }
        if (n > b.Length) throw Violation("a field runs past the end of the message");
        b = b[n..];
    }

    internal static SealpointException Violation(string problem) =>
        new(ErrorKind.External, $"CRIU's image-streamer protocol was violated: {problem}",
            "use CRIU 4.x with its own --stream support; if it is, report this with CRIU's log");
}
