using Sealpoint.Core.Streaming;

namespace Sealpoint.Stream.Tests;

/// <summary>CRIU's temporary work folder: kept after a failure for its log, never left empty.</summary>
public class WorkDirectoryTests
{
    [Fact]
    public void A_temporary_folder_kept_after_a_failure_is_removed_when_criu_wrote_nothing_into_it()
    {
        string path;
        using (var work = WorkDirectory.Create(null, "test"))
        {
            path = work.Path;
            File.WriteAllText(work.OwnFile("streamer.sock"), "");
            work.Keep = true; // as after a failure
        }
        Assert.False(Directory.Exists(path), $"{path} was left behind, empty");
    }

    [Fact]
    public void A_temporary_folder_kept_after_a_failure_keeps_criu_s_log_and_the_message_names_it()
    {
        string path, log;
        using (var work = WorkDirectory.Create(null, "test"))
        {
            path = work.Path;
            log = work.File("dump.log");
            Assert.Contains("CRIU wrote no log", CriuProcess.SeeLog(log));
            File.WriteAllText(log, "(00.001) Error (criu/cr-dump.c:1): example\n");
            work.Keep = true;
        }
        try
        {
            Assert.True(File.Exists(log));
            Assert.Equal($"see CRIU's log {log}", CriuProcess.SeeLog(log));
        }
        finally { Directory.Delete(path, recursive: true); }
    }
}
