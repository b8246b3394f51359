using System.Text;
using Sealpoint.Core;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Stream.Tests;

/// <summary>CRIU's image-streamer framing and descriptor passing, without CRIU (socketpairs and pipes).</summary>
public class ProtocolTests
{
    [Fact]
    public void Request_is_length_prefixed_protobuf_field_1_string()
    {
        byte[] framed = StreamerProtocol.EncodeRequest("pages-1.img");
        // 4-byte little-endian length 13, then tag 0x0A (field 1, length-delimited), length 11, the name.
        Assert.Equal(new byte[] { 13, 0, 0, 0, 0x0A, 11 }, framed[..6]);
        Assert.Equal("pages-1.img", Encoding.UTF8.GetString(framed[6..]));
        Assert.Equal(13, StreamerProtocol.DecodeLength(framed.AsSpan(0, 4)));
        Assert.Equal("pages-1.img", StreamerProtocol.DecodeRequest(framed.AsSpan(4)));
    }

    [Fact]
    public void Long_names_use_a_multi_byte_varint_length()
    {
        string name = new('a', 200);
        byte[] framed = StreamerProtocol.EncodeRequest(name);
        Assert.Equal(new byte[] { 0x0A, 0xC8, 0x01 }, framed[4..7]); // 200 = 0xC8 0x01
        Assert.Equal(name, StreamerProtocol.DecodeRequest(framed.AsSpan(4)));
    }

    [Fact]
    public void Reply_encodes_exists_as_field_1_varint()
    {
        Assert.Equal(new byte[] { 2, 0, 0, 0, 0x08, 1 }, StreamerProtocol.EncodeReply(true));
        Assert.Equal(new byte[] { 2, 0, 0, 0, 0x08, 0 }, StreamerProtocol.EncodeReply(false));
        Assert.True(StreamerProtocol.DecodeReply(new byte[] { 0x08, 1 }));
        Assert.False(StreamerProtocol.DecodeReply(new byte[] { 0x08, 0 }));
    }

    [Fact]
    public void Unknown_fields_are_skipped()
    {
        // field 2 varint 150, field 3 fixed64, field 1 "core.img", field 4 fixed32.
        byte[] message = [0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 8, .. "core.img"u8, 0x25, 9, 9, 9, 9];
        Assert.Equal("core.img", StreamerProtocol.DecodeRequest(message));
    }

    [Theory]
    [InlineData(new byte[] { }, "no file name")]
    [InlineData(new byte[] { 0x0A, 5, (byte)'a' }, "runs past the end")]
    [InlineData(new byte[] { 0x0A, 0x80 }, "varint runs past")]
    [InlineData(new byte[] { 0x0B }, "wire type 3")]
    [InlineData(new byte[] { 0x0A, 2, 0xC3, 0x28 }, "not valid UTF-8")]
    public void Malformed_requests_are_clear_errors(byte[] message, string expected)
    {
        var e = Assert.Throws<SealpointException>(() => StreamerProtocol.DecodeRequest(message));
        Assert.Equal(ErrorKind.External, e.Kind);
        Assert.Contains("protocol was violated", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_oversized_length_prefix_is_refused_before_reading()
    {
        var e = Assert.Throws<SealpointException>(() => StreamerProtocol.DecodeLength(new byte[] { 0, 0, 0, 1 }));
        Assert.Contains("16777216 bytes", e.Message);
    }

    [Fact]
    public void A_pipe_end_passed_over_a_socketpair_carries_data()
    {
        var (criuSide, streamerSide) = OwnedFd.CreateSocketPair();
        using var _1 = criuSide;
        using var _2 = streamerSide;
        var (read, write) = OwnedFd.CreatePipe();
        using (read)
        {
            criuSide.SendFd(read.Fd);
        }
        using var received = streamerSide.ReceiveFd(null, 5000, "test pipe");
        Assert.NotNull(received);
        using (write) write.WriteAll("hello through the pipe"u8, null, 5000, "test");
        var buffer = new byte[64];
        int n = received!.ReadFull(buffer, null, 5000, "test");
        Assert.Equal("hello through the pipe", Encoding.UTF8.GetString(buffer, 0, n));
        // The received descriptor is close-on-exec, so CRIU (a later child) never inherits it.
        string flags = File.ReadLines($"/proc/self/fdinfo/{received.Fd}").First(l => l.StartsWith("flags:"));
        Assert.True((Convert.ToInt32(flags.Split(':')[1].Trim(), 8) & 0x80000) != 0, flags);
    }

    [Fact]
    public void A_message_without_a_descriptor_is_a_protocol_violation()
    {
        var (a, b) = OwnedFd.CreateSocketPair();
        using var _1 = a;
        using var _2 = b;
        a.WriteAll(new byte[] { 0 }, null, 1000, "test");
        var e = Assert.Throws<SealpointException>(() => b.ReceiveFd(null, 1000, "the pipe"));
        Assert.Contains("expected one pipe descriptor", e.Message);
    }

    [Fact]
    public void End_of_stream_between_messages_is_a_clean_end_and_inside_one_is_an_error()
    {
        var (criu, streamer) = OwnedFd.CreateSocketPair();
        using var connection = new StreamerConnection(streamer, 1000);
        var criuSide = new StreamerConnection(criu, 1000);
        criuSide.SendRequest("inventory.img");
        Assert.Equal("inventory.img", connection.ReadRequest(null));
        criu.WriteAll(new byte[] { 9, 0 }, null, 1000, "half a prefix");
        criuSide.Dispose();
        var e = Assert.Throws<SealpointException>(() => connection.ReadRequest(null));
        Assert.Contains("inside a message's length prefix", e.Message);

        var (criu2, streamer2) = OwnedFd.CreateSocketPair();
        using var connection2 = new StreamerConnection(streamer2, 1000);
        criu2.Dispose();
        Assert.Null(connection2.ReadRequest(null));
    }

    [Fact]
    public void A_peer_that_stops_mid_message_times_out_instead_of_hanging()
    {
        var (criu, streamer) = OwnedFd.CreateSocketPair();
        using var _ = criu;
        using var connection = new StreamerConnection(streamer, 300);
        criu.WriteAll(new byte[] { 20, 0, 0, 0, 0x0A }, null, 1000, "a partial request");
        var e = Assert.Throws<SealpointException>(() => connection.ReadRequest(null));
        Assert.Contains("timed out after 0.3 s", e.Message);
    }

    [Fact]
    public void Cancellation_wakes_a_blocked_read()
    {
        var (criu, streamer) = OwnedFd.CreateSocketPair();
        using var _ = criu;
        using var connection = new StreamerConnection(streamer, 1000);
        using var cancel = new PollCancellation();
        var reader = Task.Run(() => connection.ReadRequest(cancel));
        Thread.Sleep(100);
        Assert.False(reader.IsCompleted);
        cancel.Cancel();
        Assert.Throws<StreamCancelledException>(() => reader.GetAwaiter().GetResult());
    }

    [Fact]
    public void A_writer_whose_reader_left_gets_peer_closed_not_a_signal()
    {
        var (read, write) = OwnedFd.CreatePipe();
        read.Dispose();
        using (write) Assert.Throws<PeerClosedException>(() => write.WriteAll(new byte[10], null, 1000, "test"));
    }
}
