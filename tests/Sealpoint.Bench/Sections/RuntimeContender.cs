using Sealpoint.Bench.Running;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>`sealpoint-runc checkpoint`/`restore` on the runc container: the runtime seals on checkpoint and opens on restore.</summary>
public sealed class RuntimeContender(string runtime, SealpointSetup sealpoint, Scratch scratch) : Contender
{
    public override string Name => "sealpoint-runc";
    public override string Family => "container";
    public override ContenderKind Kind => ContenderKind.Sealpoint;
    public override string Describe => "`sealpoint-runc checkpoint --image-path DIR --work-path WORK ID`; `sealpoint-runc restore -d --bundle B --image-path DIR --work-path WORK ID`";

    public override Timing Checkpoint(Subject subject, string images, string work) =>
        throw new NotImplementedException("the runtime contender is wired up once the runtime branch is merged");

    public override Timing Restore(Subject subject, string images, string work) =>
        throw new NotImplementedException("the runtime contender is wired up once the runtime branch is merged");

    /// <summary>The built sealpoint-runc launcher, or null with the reason.</summary>
    public static string? Locate(out string? missing)
    {
        missing = "sealpoint-runc is not part of this build (the runtime branch is not merged into the benchmark's branch)";
        _ = sealpointUnused;
        return null;
    }

    private static readonly object? sealpointUnused = null;
}
