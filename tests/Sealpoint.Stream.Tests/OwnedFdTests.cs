using System.Diagnostics;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Stream.Tests;

/// <summary>Waiting on a descriptor with a spin before the sleep: the same answers as without it.</summary>
public class OwnedFdTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(5_000)]
    public async Task A_wait_sees_data_that_comes_while_it_spins_and_after(int spinMicroseconds)
    {
        var (read, write) = OwnedFd.CreatePipe();
        using (read)
        using (write)
        {
            read.SpinMicroseconds = spinMicroseconds;
            var one = new byte[1];
            foreach (int delayMs in new[] { 1, 30 })
            {
                var writer = Task.Run(async () =>
                {
                    await Task.Delay(delayMs);
                    write.WriteAll("x"u8, null, 5000, "test");
                });
                Assert.True(read.Wait(Posix.POLLIN, null, 10_000), $"data written after {delayMs} ms was not seen");
                await writer;
                Assert.Equal(1, read.ReadSome(one, null, 1000, "test"));
            }
        }
    }

    [Fact]
    public async Task A_spinning_wait_still_times_out_and_still_sees_cancellation()
    {
        var (read, write) = OwnedFd.CreatePipe();
        using (read)
        using (write)
        {
            read.SpinMicroseconds = 5_000;
            var clock = Stopwatch.StartNew();
            Assert.False(read.Wait(Posix.POLLIN, null, 50), "nothing was written, yet the wait said ready");
            Assert.True(clock.ElapsedMilliseconds >= 45, $"a 50 ms wait ended after {clock.ElapsedMilliseconds} ms");

            using var cancel = new PollCancellation();
            var canceller = Task.Run(async () =>
            {
                await Task.Delay(2); // inside the spin
                cancel.Cancel();
            });
            Assert.Throws<StreamCancelledException>(() => read.Wait(Posix.POLLIN, cancel, 10_000));
            await canceller;
        }
    }

    [Fact]
    public void A_read_that_times_out_names_the_callers_fix_or_else_CRIUs_log()
    {
        var (read, write) = OwnedFd.CreatePipe();
        using (read)
        using (write)
        {
            var buffer = new byte[1];
            var own = Assert.Throws<Sealpoint.Core.SealpointException>(() => read.ReadSome(buffer, null, 20, "the stdout of runc", "run runc by hand"));
            Assert.Contains("the stdout of runc", own.Message);
            Assert.Equal("run runc by hand", own.Fix);
            var criu = Assert.Throws<Sealpoint.Core.SealpointException>(() => read.ReadSome(buffer, null, 20, "image 'pages-1.img'"));
            Assert.Contains("CRIU's log", criu.Fix);
        }
    }
}
