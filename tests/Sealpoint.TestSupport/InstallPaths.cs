namespace Sealpoint.TestSupport;

/// <summary>
/// Where packaging/install.sh puts things. SEALPOINT_PREFIX overrides /opt/sealpoint (for a
/// private install); the other paths follow from it.
/// </summary>
public static class InstallPaths
{
    public static string Prefix { get; } =
        Environment.GetEnvironmentVariable("SEALPOINT_PREFIX") is { Length: > 0 } p ? p : "/opt/sealpoint";

    /// <summary>The launcher script running the private CRIU 4.x.</summary>
    public const string CriuLauncher = "/usr/local/sbin/criu";

    public static string Workloads => Path.Combine(Prefix, "workloads");
    public static string BusyboxRootfs => Path.Combine(Prefix, "testdata", "busybox-rootfs");

    /// <summary>The podman image made from <see cref="BusyboxRootfs"/> (busybox + workloads in /bin).</summary>
    public const string TestImage = "localhost/sealpoint-test:latest";

    public const string InstallHint = "run packaging/install.sh (as root) from the repository";
}
