using Sealpoint.Core.Config;

namespace Sealpoint.Core.Tests;

/// <summary>Mount points read back from /proc/self/mountinfo, whose fields escape space, tab, newline and backslash in octal.</summary>
public sealed class MountInfoTests
{
    [Theory]
    [InlineData("/var/lib/sealpoint", "/var/lib/sealpoint")]
    [InlineData(@"/run/with\040space", "/run/with space")]
    [InlineData(@"/a\011tab\012newline\134backslash", "/a\ttab\nnewline\\backslash")]
    [InlineData(@"/not\08octal\04", @"/not\08octal\04")]
    [InlineData(@"\134", @"\")]
    [InlineData(@"/ends\", @"/ends\")]
    public void OctalEscapesAreDecoded_AndNothingElse(string field, string expected) =>
        Assert.Equal(expected, Staging.UnescapeOctal(field));

    [Fact]
    public void MountsAreReadFromMountInfo_ProcAmongThem()
    {
        // /proc is mounted on every Linux machine this runs on.
        Assert.Contains(Staging.Mounts(), m => m.MountPoint == "/proc" && m.FsType == "proc");
    }
}
