using System.Text;
using Sealpoint.Core;
using Sealpoint.Hook;

namespace Sealpoint.Runtime.Tests;

public class HookStateTests
{
    private static HookState Read(string s) => HookState.Read(new MemoryStream(Encoding.UTF8.GetBytes(s)));

    [Fact]
    public void ReadsTheOciState()
    {
        var s = Read("""{"ociVersion":"1.0.2","id":"abc-1","status":"creating","pid":42,"bundle":"/b","annotations":{"io.sealpoint.encrypt":"true"}}""");
        Assert.Equal("abc-1", s.Id);
        Assert.Equal("/b", s.Bundle);
        Assert.Equal("true", s.Annotations!["io.sealpoint.encrypt"]);
    }

    [Theory]
    [InlineData("", "invalid JSON")]
    [InlineData("[]", "not a JSON object")]
    [InlineData("{\"bundle\":\"/b\"}", "no \"id\"")]
    [InlineData("{\"id\":\"../../etc\"}", "invalid container id")]
    [InlineData("{\"id\":\"a\\u0000b\"}", "invalid container id")]
    public void UnusableStateIsAClearError(string input, string fragment)
    {
        var e = Assert.ThrowsAny<SealpointException>(() => Read(input));
        Assert.Equal(ErrorKind.Usage, e.Kind);
        Assert.Contains(fragment, e.Message);
        Assert.DoesNotContain('\0', e.Message);
    }

    [Fact]
    public void OversizedStateIsRefused() =>
        Assert.Contains("more than", Assert.ThrowsAny<SealpointException>(() => Read("{\"id\":\"" + new string('a', 2 << 20) + "\"}")).Message);
}
