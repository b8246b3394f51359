namespace Sealpoint.Core;

/// <summary>Failure classes; each maps to a distinct process exit code so scripts can tell them apart.</summary>
public enum ErrorKind
{
    Internal = 1,
    Usage = 2,
    Config = 3,
    /// <summary>No usable key: not a recipient, missing or unreadable key, bad certificate.</summary>
    Key = 4,
    /// <summary>Sealed data failed verification: tampered, truncated, swapped, incomplete.</summary>
    Integrity = 5,
    NotFound = 6,
    Io = 7,
    /// <summary>Refused by policy (plaintext restore forbidden, rollback, revoked recipient).</summary>
    Policy = 8,
    /// <summary>An external program (CRIU, runc) failed.</summary>
    External = 9,
}

/// <summary>An expected failure: says what went wrong and how to fix it. Never carries key material.</summary>
public class SealpointException : Exception
{
    public SealpointException(ErrorKind kind, string problem, string? fix = null, Exception? inner = null)
        : base(problem, inner)
    {
        Kind = kind;
        Fix = fix;
    }

    public ErrorKind Kind { get; }
    public string? Fix { get; }

    public int ExitCode => (int)Kind;

    /// <summary>One line for a user: the problem, then the fix.</summary>
    public string Describe() => Fix is null ? Message : WithFix(Message, Fix);

    /// <summary>
    /// "PROBLEM. Fix: FIX", with one full stop between them also when the problem quotes a framework message that ends
    /// with its own; for every program's last-resort catch as well.
    /// </summary>
    public static string WithFix(string problem, string fix) => $"{problem.TrimEnd('.')}. Fix: {fix}";
}

public sealed class IntegrityException(string problem, string? fix = null)
    : SealpointException(ErrorKind.Integrity, problem, fix ?? "the sealed checkpoint was modified or is incomplete; use an intact copy");
