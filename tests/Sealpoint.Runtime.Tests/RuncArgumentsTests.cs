namespace Sealpoint.Runtime.Tests;

public class RuncArgumentsTests
{
    private static RuncArguments P(params string[] a) => RuncArguments.Parse(a);

    [Fact]
    public void GlobalFlagsWithValuesInEveryForm()
    {
        var a = P("--root", "/run/r", "--log=/b/log.json", "-log-format", "json", "--debug", "-systemd-cgroup", "--criu=/x/criu", "--rootless", "false",
            "checkpoint", "--image-path", "/img", "c1");
        Assert.Equal("checkpoint", a.Command);
        Assert.Equal("/run/r", a.Root);
        Assert.Equal("/b/log.json", a.Log);
        Assert.Equal("json", a.LogFormat);
        Assert.True(a.HasGlobal("debug"));
        Assert.True(a.HasGlobal("systemd-cgroup"));
        Assert.Equal("/x/criu", a.GlobalFlags.Single(f => f.Name == "criu").Value);
        Assert.Equal("false", a.GlobalFlags.Single(f => f.Name == "rootless").Value);
        Assert.Equal("c1", a.ContainerId);
        Assert.Equal("/img", a.Value("image-path"));
        Assert.Null(a.Problem);
    }

    [Fact]
    public void ValueOfAGlobalFlagIsNotTakenForTheCommand()
    {
        // "--root checkpoint": checkpoint is --root's value, the command comes after.
        var a = P("--root", "checkpoint", "restore", "c1");
        Assert.Equal("restore", a.Command);
        Assert.Equal("checkpoint", a.Root);
    }

    [Fact]
    public void DoubleDashEndsGlobalFlags()
    {
        var a = P("--debug", "--", "checkpoint", "c1");
        Assert.Equal("checkpoint", a.Command);
        Assert.Equal("c1", a.ContainerId);
        Assert.Equal(["--debug"], a.GlobalTokens);
    }

    [Fact]
    public void PodmanCheckpointWithDuplicatedLeaveRunning()
    {
        var a = P("checkpoint", "--image-path", "/b/checkpoint", "--work-path", "/b", "--leave-running", "--tcp-established", "--file-locks", "--leave-running", "abc");
        Assert.Equal("abc", a.ContainerId);
        Assert.True(a.IsSet("leave-running"));
        Assert.True(a.IsSet("tcp-established"));
        Assert.True(a.IsSet("file-locks"));
        Assert.False(a.IsSet("pre-dump"));
        Assert.Equal("/b", a.Value("work-path"));
    }

    [Fact]
    public void ConmonRestoreWithFlagsRuncDoesNotKnow()
    {
        var a = P("--systemd-cgroup", "--log-format=json", "--log", "/x/oci-log", "restore", "--bundle", "/b", "--pid-file", "/b/pidfile", "--no-new-keyring",
            "--detach", "--image-path", "/b/checkpoint", "--work-path", "/b", "--tcp-close", "--preserve-fds", "2", "--console-socket", "/s.sock", "ctr1");
        Assert.Equal("ctr1", a.ContainerId);
        Assert.Equal("/b", a.Value("bundle", "b"));
        Assert.True(a.IsSet("detach", "d"));
        Assert.Equal("2", a.Value("preserve-fds"));
        Assert.Equal("/s.sock", a.Value("console-socket"));
        Assert.True(a.IsSet("tcp-close"));
        Assert.Null(a.Problem);
    }

    [Fact]
    public void GoRuncRestoreWithSingleDashFlags()
    {
        var a = P("--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json", "restore", "--image-path", "/i", "--work-path", "/w",
            "--detach", "--pid-file", "/b/init.pid", "-no-subreaper", "--bundle", "/b", "t1");
        Assert.Equal("t1", a.ContainerId);
        Assert.True(a.IsSet("no-subreaper"));
        Assert.Equal("/run/containerd/runc/default", a.Root);
    }

    [Fact]
    public void ShortBundleAndDetachAndBooleanValues()
    {
        var a = P("restore", "-b", "/b", "-d=true", "--file-locks=false", "c");
        Assert.Equal("/b", a.Value("bundle", "b"));
        Assert.True(a.IsSet("detach", "d"));
        Assert.False(a.IsSet("file-locks"));
        Assert.Equal("c", a.ContainerId);
    }

    [Fact]
    public void FlagsAfterTheContainerIdAreFlags()
    {
        var a = P("checkpoint", "c1", "--leave-running", "--image-path", "/i");
        Assert.Equal("c1", a.ContainerId);
        Assert.True(a.IsSet("leave-running"));
        Assert.Equal("/i", a.Value("image-path"));
    }

    [Fact]
    public void LastValueWins()
    {
        var a = P("checkpoint", "--image-path", "/a", "--image-path=/b", "c");
        Assert.Equal("/b", a.Value("image-path"));
    }

    [Fact]
    public void MissingValueIsAProblemLikeRuncsProbe()
    {
        var a = P("restore", "--lsm-mount-context");
        Assert.Equal("restore", a.Command);
        Assert.Contains("flag needs an argument", a.Problem);
        Assert.Null(a.ContainerId);
    }

    [Fact]
    public void EmptyAndNoCommand()
    {
        Assert.Null(P().Command);
        Assert.Null(P("--debug").Command);
        Assert.Null(P("--root").Command);
    }

    [Fact]
    public void ImagePathIsReplacedInPlaceKeepingEverythingElse()
    {
        var a = P("--root", "/r", "checkpoint", "--image-path", "/old", "--leave-running", "--leave-running", "--unknown-flag", "c1");
        Assert.Equal(["--root", "/r", "checkpoint", "--image-path", "/new", "--leave-running", "--leave-running", "--unknown-flag", "c1"],
            a.WithCommandValue("image-path", "/new"));
        var inline = P("checkpoint", "-image-path=/old", "c1");
        Assert.Equal(["checkpoint", "-image-path=/new", "c1"], inline.WithCommandValue("image-path", "/new"));
        var twice = P("restore", "--image-path", "/a", "--image-path=/b", "c1");
        Assert.Equal(["restore", "--image-path", "/n", "--image-path=/n", "c1"], twice.WithCommandValue("image-path", "/n"));
    }

    [Fact]
    public void ImagePathIsAddedAfterTheCommandWhenAbsent()
    {
        var a = P("--log", "/l", "restore", "-d", "c1");
        Assert.Equal(["--log", "/l", "restore", "--image-path", "/s", "-d", "c1"], a.WithCommandValue("image-path", "/s"));
    }

    [Fact]
    public void GlobalTokensForStateCallsKeepTheRoot()
    {
        var a = P("--root=/r", "--systemd-cgroup", "checkpoint", "c1");
        Assert.Equal(["--root=/r", "--systemd-cgroup"], a.GlobalTokens);
    }

    [Fact]
    public void TooManyPositionalsLeaveNoContainerId()
    {
        Assert.Null(P("checkpoint", "a", "b").ContainerId);
        Assert.Null(P("checkpoint").ContainerId);
    }
}
