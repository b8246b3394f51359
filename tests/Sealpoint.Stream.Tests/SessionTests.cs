using System.Security.Cryptography;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Keys;
using Sealpoint.Core.Streaming;
using Sealpoint.TestSupport;

namespace Sealpoint.Stream.Tests;

/// <summary>A throw-away PKI with two identities (a local helper, like Core.Tests' TestPki).</summary>
public sealed class StreamTestPki : IDisposable
{
    public StreamTestPki()
    {
        Root = Directory.CreateTempSubdirectory("sealpoint-stream-pki-").FullName;
        Pki = new Pki(Root);
        Pki.InitCa("stream test CA", KeyAlgorithm.P256, 30, force: false);
        Pki.Issue("node-a", KeyAlgorithm.P256, 30, force: false);
        Pki.Issue("node-b", KeyAlgorithm.Rsa2048, 30, force: false);
    }

    public string Root { get; }
    public Pki Pki { get; }
    public Recipient Recipient(string name) => Pki.ResolveRecipient(name);
    public Identity Identity(string name) => Core.Keys.Identity.Load(Pki.KeyPath(name));
    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// The capture and serve sessions over their real socket, with the test playing CRIU's part of the protocol
/// (connect, request, pass a pipe). CRIU itself is exercised in <see cref="CriuStreamTests"/>.
/// </summary>
public class SessionTests(StreamTestPki keys) : IClassFixture<StreamTestPki>
{
    [Fact]
    public async Task Interleaved_writes_across_open_images_never_deadlock_and_seal_correctly()
    {
        using var dir = TempDir.Create("stream-capture");
        string sealedDir = dir.File("sealed");
        var contents = new Dictionary<string, byte[]>
        {
            ["pages-1.img"] = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 4096),
            ["pagemap-1.img"] = RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + 17),
            ["core-1.img"] = RandomNumberGenerator.GetBytes(1024 * 1024 + 5),
            ["empty.img"] = [],
        };
        using (var writer = SealedCheckpointWriter.Create(sealedDir, new SealOptions { Recipients = [keys.Recipient("node-a")], Sync = false }))
        {
            using var session = new CaptureSession(writer, dir.File("capture.sock"));
            session.Start();
            using var criu = new StreamerConnection(UnixListener.Connect(dir.File("capture.sock")));
            var pipes = new Dictionary<string, OwnedFd>();
            foreach (var name in contents.Keys)
            {
                var (read, write) = OwnedFd.CreatePipe();
                criu.SendRequest(name);
                criu.Socket.SendFd(read.Fd);
                read.Dispose();
                pipes[name] = write;
            }
            // Round-robin 200 KiB pieces: each write blocks unless the session drains every pipe at once.
            const int piece = 200 * 1024;
            var writing = Task.Run(() =>
            {
                for (int off = 0; contents.Values.Any(c => off < c.Length); off += piece)
                    foreach (var (name, data) in contents)
                        if (off < data.Length) pipes[name].WriteAll(data.AsSpan(off, Math.Min(piece, data.Length - off)), null, 10_000, name);
                foreach (var p in pipes.Values) p.Dispose();
            });
            var finished = await Task.WhenAny(writing, Task.Delay(TimeSpan.FromSeconds(60)));
            Assert.True(finished == writing, "writing interleaved images did not finish: the session does not serve them concurrently");
            await writing;
            session.Finish(TimeSpan.FromSeconds(30));
            Assert.Equal(contents.Count, session.ImagesStreamed);
            Assert.True(session.MaxOpenAtOnce >= 3, $"images were not open together (max {session.MaxOpenAtOnce})");
            writer.Complete();
        }
        using var identity = keys.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        checkpoint.Verify();
        foreach (var (name, data) in contents)
        {
            using var s = checkpoint.OpenFile(name);
            var copy = new MemoryStream();
            s.CopyTo(copy);
            Assert.True(data.AsSpan().SequenceEqual(copy.ToArray()), $"{name} differs after sealing and opening");
        }
    }

    [Fact]
    public void A_session_that_failed_before_criu_connected_refuses_criu_and_resets_a_waiting_one()
    {
        using var dir = TempDir.Create("stream-failed-early");
        using var writer = SealedCheckpointWriter.Create(dir.File("sealed"), new SealOptions { Recipients = [keys.Recipient("node-a")], Sync = false });

        // CRIU already waits in the backlog, with a pipe sent, when the session fails (a recipient that cannot be read).
        using var session = new CaptureSession(writer, dir.File("capture.sock"));
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("capture.sock")));
        var (read, write) = OwnedFd.CreatePipe();
        criu.SendRequest("pages-1.img");
        criu.Socket.SendFd(read.Fd);
        read.Dispose();
        session.Fail(new SealpointException(ErrorKind.Key, "test: recipient unreadable"));
        session.Start();
        session.Stop();
        // The pipe's reading end went with the reset connection: CRIU's write fails instead of blocking once it is full.
        using (write)
            Assert.Throws<PeerClosedException>(() =>
            {
                for (int i = 0; i < 64; i++) write.WriteAll(new byte[64 * 1024], null, 5000, "pages-1.img");
            });

        // A CRIU that connects after the failure is refused at once.
        using var late = new CaptureSession(writer, dir.File("late.sock"));
        late.Fail(new SealpointException(ErrorKind.Key, "test: recipient unreadable"));
        late.Start();
        late.Stop();
        Assert.Throws<SealpointException>(() => UnixListener.Connect(dir.File("late.sock")).Dispose());
    }

    [Fact]
    public void A_request_arriving_just_before_finish_is_still_sealed()
    {
        using var dir = TempDir.Create("stream-late");
        using var writer = SealedCheckpointWriter.Create(dir.File("sealed"), new SealOptions { Recipients = [keys.Recipient("node-a")], Sync = false });
        using var session = new CaptureSession(writer, dir.File("capture.sock"));
        session.Start();
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("capture.sock")));
        for (int i = 0; i < 20; i++)
        {
            var (read, write) = OwnedFd.CreatePipe();
            criu.SendRequest($"file-{i}.img");
            criu.Socket.SendFd(read.Fd);
            read.Dispose();
            using (write) write.WriteAll(new byte[100 + i], null, 5000, "late");
        }
        // No waiting: Finish must see every request already on the socket.
        session.Finish(TimeSpan.FromSeconds(30));
        Assert.Equal(20, session.ImagesStreamed);
        Assert.Equal(20, writer.Complete().Files.Count);
    }

    [Fact]
    public void Serve_answers_exists_streams_verified_plaintext_and_serves_a_file_twice()
    {
        using var dir = TempDir.Create("stream-serve");
        byte[] pages = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 100); // read ahead by several threads, odd tail
        byte[] core = RandomNumberGenerator.GetBytes(100_000);
        string sealedDir = SealFiles(dir, ("pages-1.img", pages), ("core-1.img", core));
        using var identity = keys.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        using var session = new ServeSession(checkpoint, dir.File("serve.sock"));
        session.Start();
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("serve.sock")));

        criu.SendRequest("no-such.img");
        Assert.False(criu.ReadReply());
        Assert.Equal(core, Fetch(criu, "core-1.img"));
        Assert.Equal(pages, Fetch(criu, "pages-1.img"));
        Assert.Equal(core, Fetch(criu, "core-1.img"));
        criu.SendRequest("sealpoint.envelope");
        Assert.False(criu.ReadReply());
        Assert.Null(session.Failure);
        Assert.Equal(2, session.ImagesMissing);
    }

    [Fact]
    public void A_tampered_image_fails_before_the_reader_sees_its_end()
    {
        using var dir = TempDir.Create("stream-tamper");
        byte[] core = RandomNumberGenerator.GetBytes(300_000);
        string sealedDir = SealFiles(dir, ("core-1.img", core));
        // Flip one byte in the third 64 KiB chunk.
        var (received, failureHandledBeforeEnd, failure) = ServeTampered(dir, sealedDir, "core-1.img", 64 + 2 * (65536 + 16) + 100);
        Assert.True(failureHandledBeforeEnd, "the pipe ended before the failure was handled (CRIU could take a cut-short image as complete)");
        var e = Assert.IsType<IntegrityException>(failure);
        Assert.Contains("chunk 2", e.Message);
        // Only the two verified chunks were released.
        Assert.Equal(2 * 65536, received.Length);
        Assert.True(core.AsSpan(0, 2 * 65536).SequenceEqual(received.ToArray()));
    }

    [Fact]
    public void A_tampered_page_in_a_large_page_file_stops_the_stream_at_the_last_verified_batch()
    {
        using var dir = TempDir.Create("stream-tamper-pages");
        byte[] pages = RandomNumberGenerator.GetBytes(4 * 1024 * 1024);
        string sealedDir = SealFiles(dir, ("pages-1.img", pages));
        // Page 700 (pages sit at their plaintext offsets), in the third batch of 256.
        var (received, handledBeforeEnd, failure) = ServeTampered(dir, sealedDir, "pages-1.img", 700L * 4096 + 10);
        Assert.True(handledBeforeEnd, "the pipe ended before the failure was handled");
        Assert.Contains("failed authentication at page 700", Assert.IsType<IntegrityException>(failure).Message);
        Assert.True(received.Length <= 700 * 4096, $"{received.Length} bytes released, beyond the bad page");
        Assert.True(pages.AsSpan(0, (int)received.Length).SequenceEqual(received.ToArray()));
    }

    /// <summary>
    /// Flips one byte of a sealed image, serves the image to a stand-in for CRIU and drains the pipe. Returns what was
    /// released, whether the failure was handled before the pipe ended (CRIU must never see a clean end), and the failure.
    /// </summary>
    private (MemoryStream Received, bool HandledBeforeEnd, Exception? Failure) ServeTampered(TempDir dir, string sealedDir, string name, long flipAt)
    {
        bool handled = false, handledBeforeEnd = false;
        var received = new MemoryStream();
        var buffer = new byte[65536];
        var failure = ServeTampered(dir, sealedDir, name, flipAt, _ => Volatile.Write(ref handled, true), (read, _) =>
        {
            int n;
            while ((n = read.ReadSome(buffer, null, 10_000, name)) > 0) received.Write(buffer, 0, n);
            handledBeforeEnd = Volatile.Read(ref handled);
        });
        return (received, handledBeforeEnd, failure);
    }

    /// <summary>Flips one byte of a sealed image and serves it to <paramref name="reader"/>, a stand-in for CRIU; returns the session's failure.</summary>
    private Exception? ServeTampered(TempDir dir, string sealedDir, string name, long flipAt, Action<Exception>? onFailure, Action<OwnedFd, ServeSession> reader)
    {
        using (var f = new FileStream(Path.Combine(sealedDir, name), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = flipAt;
            int b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 1));
        }
        using var identity = keys.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        using var session = new ServeSession(checkpoint, dir.File("serve.sock")) { OnFailure = onFailure };
        session.Start();
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("serve.sock")));
        criu.SendRequest(name);
        Assert.True(criu.ReadReply());
        var (read, write) = OwnedFd.CreatePipe();
        criu.Socket.SendFd(write.Fd);
        write.Dispose();
        using (read) reader(read, session);
        return session.Failure;
    }

    [Fact]
    public void A_page_image_read_slowly_and_in_odd_pieces_arrives_intact_though_the_pipe_holds_references()
    {
        // Pages go into the pipe by reference (vmsplice): a batch reused before the reader consumed it would show as
        // wrong bytes here. 12 MiB through a 1 MiB pipe cycles every batch many times while the reader lags.
        using var dir = TempDir.Create("stream-splice");
        byte[] pages = RandomNumberGenerator.GetBytes(12 * 1024 * 1024 + 3 * 4096);
        string sealedDir = SealFiles(dir, ("pages-1.img", pages));
        using var identity = keys.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        using var session = new ServeSession(checkpoint, dir.File("serve.sock"));
        session.Start();
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("serve.sock")));
        byte[] received = Fetch(criu, "pages-1.img", piece: 4096 + 123, pauseEvery: 97);
        Assert.Equal(pages.Length, received.Length);
        Assert.True(pages.AsSpan().SequenceEqual(received), "the bytes read differ from the sealed plaintext");
        Assert.Null(session.Failure);
    }

    [Fact]
    public void Page_images_served_at_once_past_the_parallel_limit_go_one_thread_each_and_arrive_intact()
    {
        // CRIU restoring a tree reads every task's pages at once: only the first images get all cores (and their
        // batches), the rest one thread each, so memory does not grow with the number of large processes.
        using var dir = TempDir.Create("stream-parallel-limit");
        int count = ServeSession.ParallelPageImagesAtOnce + 2;
        var images = Enumerable.Range(1, count).Select(i => ($"pages-{i}.img", RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + i * 4096))).ToArray();
        string sealedDir = SealFiles(dir, images);
        using var identity = keys.Identity("node-a");
        using var checkpoint = SealedCheckpoint.Open(sealedDir, identity);
        using var session = new ServeSession(checkpoint, dir.File("serve.sock"));
        session.Start();
        using var criu = new StreamerConnection(UnixListener.Connect(dir.File("serve.sock")));
        // Every image is asked for before any is read: each is larger than its pipe, so all are being served together.
        var pipes = new List<OwnedFd>();
        foreach (var (name, _) in images)
        {
            criu.SendRequest(name);
            Assert.True(criu.ReadReply());
            var (read, write) = OwnedFd.CreatePipe();
            criu.Socket.SendFd(write.Fd);
            write.Dispose();
            pipes.Add(read);
        }
        var buffer = new byte[65536];
        for (int i = 0; i < count; i++)
        {
            var received = new MemoryStream();
            using (var read = pipes[i])
            {
                int n;
                while ((n = read.ReadSome(buffer, null, 10_000, images[i].Item1)) > 0) received.Write(buffer, 0, n);
            }
            Assert.True(images[i].Item2.AsSpan().SequenceEqual(received.ToArray()), $"{images[i].Item1} arrived changed");
        }
        Assert.Null(session.Failure);
        Assert.Equal(ServeSession.ParallelPageImagesAtOnce, session.MaxParallelPageImages);
    }

    [Fact]
    public void A_tampered_page_fails_the_session_even_while_the_reader_reads_nothing()
    {
        // Batches before the bad page may already sit in the pipe by reference when it is found (or the failure comes
        // first: workers run ahead); the session lets a reader take those verified batches for a moment, but a reader
        // that takes nothing must not hold the failure back.
        using var dir = TempDir.Create("stream-splice-idle");
        string sealedDir = SealFiles(dir, ("pages-1.img", RandomNumberGenerator.GetBytes(8 * 1024 * 1024)));
        // Page 600: the third batch of 256, behind one that fills the pipe and one that waits for room in it.
        var failure = ServeTampered(dir, sealedDir, "pages-1.img", 600L * 4096 + 7, null, (_, session) =>
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (session.Failure is null && DateTime.UtcNow < deadline) Thread.Sleep(10);
        });
        Assert.Contains("failed authentication at page 600", Assert.IsType<IntegrityException>(failure).Message);
    }

    /// <param name="piece">Bytes per read.</param>
    /// <param name="pauseEvery">Sleeps 1 ms after every this many reads (0: never), so the server runs ahead.</param>
    private static byte[] Fetch(StreamerConnection criu, string name, int piece = 65536, int pauseEvery = 0)
    {
        criu.SendRequest(name);
        Assert.True(criu.ReadReply());
        var (read, write) = OwnedFd.CreatePipe();
        criu.Socket.SendFd(write.Fd);
        write.Dispose();
        var result = new MemoryStream();
        var buffer = new byte[piece];
        using (read)
        {
            int n, reads = 0;
            while ((n = read.ReadSome(buffer, null, 10_000, name)) > 0)
            {
                result.Write(buffer, 0, n);
                if (pauseEvery > 0 && ++reads % pauseEvery == 0) Thread.Sleep(1);
            }
        }
        return result.ToArray();
    }

    private string SealFiles(TempDir dir, params (string Name, byte[] Data)[] files)
    {
        string sealedDir = dir.File("sealed");
        using var writer = SealedCheckpointWriter.Create(sealedDir, new SealOptions { Recipients = [keys.Recipient("node-a")], Sync = false });
        foreach (var (name, data) in files)
        {
            using var s = writer.CreateFile(name);
            s.Write(data);
            s.Commit();
        }
        writer.Complete();
        return sealedDir;
    }
}
