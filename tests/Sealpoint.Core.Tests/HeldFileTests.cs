using Sealpoint.Core.Checkpoint;
using Sealpoint.TestSupport;

namespace Sealpoint.Core.Tests;

/// <summary>
/// The held files a restore starts runc and CRIU on: a reader gets the content only once it is released, end of file
/// when the hold ends without it, and never waits on a hold that has ended.
/// </summary>
public sealed class HeldFileTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static (TempDir Dir, HeldFile Held) NewHeld()
    {
        var dir = TempDir.Create("held", inShm: true);
        return (dir, HeldFile.Create(dir.File("inventory.img"), dir.File("0.pipe")));
    }

    [Fact]
    public async Task AReaderInAnotherProcess_WaitsForTheRelease_ThenReadsExactlyTheContent()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        using (held)
        {
            // cat opens the link (/proc/PID/fd/N of this process) from its own process, as CRIU does.
            var reader = Task.Run(() => ChildProcess.Capture("/bin/cat", [held.Path]));
            await Task.Delay(300);
            Assert.False(reader.IsCompleted, "the reader finished before anything was released");
            held.Release("the verified inventory"u8.ToArray());
            Assert.Equal((0, "the verified inventory", ""), await reader.WaitAsync(Patience));
        }
    }

    [Fact]
    public void ContentReleasedBeforeTheReaderArrives_IsWaitingForIt()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        using (held)
        {
            byte[] content = new byte[200_000]; // more than a pipe holds: written while the reader reads
            new Random(7).NextBytes(content);
            byte[] expected = content.ToArray();
            held.Release(content);
            Assert.Equal(expected, File.ReadAllBytes(held.Path));
            // Read again (by CRIU or runc of another version): a regular private file now, no waiting.
            Assert.Null(new FileInfo(held.Path).LinkTarget);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(held.Path));
            Assert.Equal(expected, File.ReadAllBytes(held.Path));
        }
        Assert.True(File.Exists(held.Path)); // the content's file stays for the staging wipe
    }

    [Fact]
    public async Task AReaderAlreadyAtThePipe_GetsTheContentThere_AndASecondReadGetsItToo()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        using (held)
        {
            var first = Task.Run(() => File.ReadAllText(held.Path));
            await Task.Delay(300);
            Assert.False(first.IsCompleted);
            held.Release("inventory"u8.ToArray());
            Assert.Equal("inventory", await first.WaitAsync(Patience));
            Assert.Equal("inventory", await Task.Run(() => File.ReadAllText(held.Path)).WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task EndingTheHoldWithoutContent_GivesAWaitingReaderEndOfFile_AndALaterOneNoFile()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        var reader = Task.Run(() => File.ReadAllBytes(held.Path));
        await Task.Delay(300);
        Assert.False(reader.IsCompleted);
        held.Dispose();
        Assert.Empty(await reader.WaitAsync(Patience));
        Assert.False(File.Exists(held.Path));
        Assert.Null(new FileInfo(held.Path).LinkTarget);
    }

    [Fact]
    public async Task EndingTheHoldWhenNoReaderCameToThePipe_DoesNotWait_AndWipesTheArray()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        byte[] content = new byte[100_000];
        Array.Fill(content, (byte)0x5a);
        held.Release(content);
        await Task.Run(held.Dispose).WaitAsync(Patience); // throws TimeoutException if it waited for a reader
        Assert.All(content, b => Assert.Equal(0, b));
        Assert.Throws<ObjectDisposedException>(() => held.Release([1]));
        held.Dispose(); // twice is harmless
    }

    [Fact]
    public void TheLinkPointsIntoThisProcess_AtThePipe()
    {
        var (dir, held) = NewHeld();
        using var _ = dir;
        using (held)
        {
            string target = new FileInfo(held.Path).LinkTarget!;
            Assert.StartsWith($"/proc/{Environment.ProcessId}/fd/", target);
            Assert.Equal(dir.File("0.pipe"), new FileInfo(target).LinkTarget);
            Assert.Throws<SealpointException>(() => HeldFile.Create(dir.File("other"), dir.File("0.pipe"))); // the pipe exists
        }
    }
}
