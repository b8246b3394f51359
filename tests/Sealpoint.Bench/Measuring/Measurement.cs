namespace Sealpoint.Bench.Measuring;

/// <summary>
/// One timed run of one step. <see cref="Repetition"/> 0 is the warm-up: kept in the raw data for transparency,
/// never in a median.
/// </summary>
public sealed record Measurement
{
    public required string Section { get; init; }
    public required string Workload { get; init; }
    /// <summary>"process" (criu CLI on a plain process tree), "container" (runc), or "-" where it does not apply.</summary>
    public required string Family { get; init; }
    public required string Contender { get; init; }
    /// <summary>What was timed: dump, seal, open, encrypt, checkpoint, restore, decrypt, call, ...</summary>
    public required string Phase { get; init; }
    public required int Repetition { get; init; }
    public required double Seconds { get; init; }
    /// <summary>Plaintext bytes of the checkpoint the step worked on (0 when not known).</summary>
    public long Bytes { get; init; }
    public int Files { get; init; }
    public DateTimeOffset At { get; init; } = DateTimeOffset.Now;
    public string? Note { get; init; }
    public bool Warmup => Repetition == 0;
}

/// <summary>A contender or step that did not run, and why. Reported, never silently dropped.</summary>
public sealed record Skip(string Section, string Workload, string Contender, string Reason);

/// <summary>A stated target and whether this run met it. Met is null when it could not be evaluated (the reason says why).</summary>
public sealed record TargetResult(string Section, string Name, string Requirement, string Measured, bool? Met, string? Reason = null)
{
    /// <summary>The issue that set the target, when it is not the section's own (#2 core, #6 suite).</summary>
    public string? Issue { get; init; }

    public string Verdict => Met switch { true => "met", false => "not met", null => "not evaluated" };
}

/// <summary>A figure that is not a time (bytes uploaded, per-call overhead) with its unit.</summary>
public sealed record Fact(string Section, string Name, string Value, string? Note = null);
