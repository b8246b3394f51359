using System.Text.Json;

namespace Sealpoint.Runtime.Tests;

public class RuncLogTests
{
    [Fact]
    public void JsonEntriesAreOneObjectPerLineAsContainerdReadsThem()
    {
        string dir = Directory.CreateTempSubdirectory("sp-log-").FullName;
        try
        {
            string log = Path.Combine(dir, "log.json");
            File.WriteAllText(log, "{\"level\":\"info\",\"msg\":\"x\",\"time\":\"2024-01-01T00:00:00Z\"}\n");
            var args = RuncArguments.Parse(["--log", log, "--log-format", "json", "checkpoint", "c"]);
            RuncLog.Error(args, "bad \"quote\" \\ and\nnewline \u0001");
            var lines = File.ReadAllLines(log);
            Assert.Equal(2, lines.Length);
            using var entry = JsonDocument.Parse(lines[1]);
            Assert.Equal("error", entry.RootElement.GetProperty("level").GetString());
            Assert.Equal("bad \"quote\" \\ and newline \u0001", entry.RootElement.GetProperty("msg").GetString());
            Assert.True(DateTimeOffset.TryParse(entry.RootElement.GetProperty("time").GetString(), out _));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TextEntriesUseLogrusFormat()
    {
        string dir = Directory.CreateTempSubdirectory("sp-log-").FullName;
        try
        {
            string log = Path.Combine(dir, "log");
            RuncLog.Error(RuncArguments.Parse(["--log=" + log, "restore", "c"]), "it \"failed\"");
            string line = File.ReadAllText(log);
            Assert.Matches("^time=\"[0-9T:Z-]+\" level=error msg=\"it \\\\\"failed\\\\\"\"\n$", line);
        }
        finally { Directory.Delete(dir, true); }
    }
}
