namespace Sealpoint.Core.Streaming;

/// <summary>
/// CRIU's side of the streamer socket, as the streamer sees it: framed requests in, replies and pipe
/// descriptors exchanged. The same type plays CRIU's part in the protocol tests.
/// </summary>
public sealed class StreamerConnection(OwnedFd socket, int messageTimeoutMs = StreamerConnection.MessageTimeoutMs) : IDisposable
{
    /// <summary>How long the rest of a message may take once its first byte arrived.</summary>
    public const int MessageTimeoutMs = 30_000;

    public OwnedFd Socket { get; } = socket;

    /// <summary>
    /// The next request's file name, or null when CRIU closed the connection between messages.
    /// Waiting for the first byte has no timeout (CRIU may work for minutes between images); the
    /// caller's cancellation ends the wait when CRIU exits.
    /// </summary>
    public string? ReadRequest(PollCancellation? cancel)
    {
        Span<byte> prefix = stackalloc byte[4];
        int got = Socket.ReadSome(prefix, cancel, -1, "the next image request");
        if (got == 0) return null;
        got += Socket.ReadFull(prefix[got..], cancel, messageTimeoutMs, "an image request");
        if (got < 4) throw StreamerProtocol.Violation("the connection ended inside a message's length prefix");
        int length = StreamerProtocol.DecodeLength(prefix);
        Span<byte> message = stackalloc byte[length];
        if (Socket.ReadFull(message, cancel, messageTimeoutMs, "an image request") < length)
            throw StreamerProtocol.Violation("the connection ended inside a request");
        return StreamerProtocol.DecodeRequest(message);
    }

    /// <summary>The pipe end CRIU passes after a request.</summary>
    public OwnedFd ReceivePipe(string filename, PollCancellation? cancel) =>
        Socket.ReceiveFd(cancel, messageTimeoutMs, $"the pipe for image '{filename}'")
        ?? throw StreamerProtocol.Violation($"the connection ended before the pipe for image '{filename}' arrived");

    public void SendReply(bool exists, PollCancellation? cancel) =>
        Socket.WriteAll(StreamerProtocol.EncodeReply(exists), cancel, messageTimeoutMs, "an image reply");

    /// <summary>CRIU's part: a request.</summary>
    public void SendRequest(string filename, PollCancellation? cancel = null) =>
        Socket.WriteAll(StreamerProtocol.EncodeRequest(filename), cancel, messageTimeoutMs, "an image request");

    /// <summary>CRIU's part: read a reply.</summary>
    public bool ReadReply(PollCancellation? cancel = null)
    {
        Span<byte> prefix = stackalloc byte[4];
        if (Socket.ReadFull(prefix, cancel, messageTimeoutMs, "an image reply") < 4)
            throw StreamerProtocol.Violation("the connection ended before a reply");
        int length = StreamerProtocol.DecodeLength(prefix);
        Span<byte> message = stackalloc byte[length];
        if (Socket.ReadFull(message, cancel, messageTimeoutMs, "an image reply") < length)
            throw StreamerProtocol.Violation("the connection ended inside a reply");
        return StreamerProtocol.DecodeReply(message);
    }

    public void Dispose() => Socket.Dispose();
}
