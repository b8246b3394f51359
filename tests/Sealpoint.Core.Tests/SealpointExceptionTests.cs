namespace Sealpoint.Core.Tests;

/// <summary>The one line a user reads for every failure: the problem, one full stop, the fix.</summary>
public sealed class SealpointExceptionTests
{
    [Theory]
    [InlineData("envelope x is truncated", "use an intact copy", "envelope x is truncated. Fix: use an intact copy")]
    // A framework message quoted as the problem ends with its own full stop; it is not doubled.
    [InlineData("cannot read /x: Could not find file '/x'.", "check the path", "cannot read /x: Could not find file '/x'. Fix: check the path")]
    [InlineData("no fix is known", null, "no fix is known")]
    public void DescribeJoinsProblemAndFixWithOneFullStop(string problem, string? fix, string expected) =>
        Assert.Equal(expected, new SealpointException(ErrorKind.Io, problem, fix).Describe());
}
