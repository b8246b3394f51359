using Sealpoint.Core.Crypto;
using Sealpoint.TestSupport;

namespace Sealpoint.E2E.Tests;

/// <summary>
/// The programs run on the private OpenSSL that packaging/install.sh builds (Core/Crypto/OpenSslLibrary.cs), and the
/// format does not depend on the library: a real CRIU dump sealed on the private build opens on the system's OpenSSL
/// byte for byte, and the other way round, for both ciphers.
/// </summary>
public sealed class OpenSslTests(SealpointCli cli) : IClassFixture<SealpointCli>
{
    private static readonly Dictionary<string, string?> OnSystem = new() { [OpenSslLibrary.DirectoryVariable] = "system" };
    private static readonly Dictionary<string, string?> OnPrivate = new() { [OpenSslLibrary.DirectoryVariable] = null };

    private static void RequirePrivateBuild()
    {
        string stamp = Path.Combine(Path.GetDirectoryName(OpenSslLibrary.DefaultDirectory)!, ".sealpoint-installed");
        if (!File.Exists(stamp) || !File.Exists(Path.Combine(OpenSslLibrary.DefaultDirectory, OpenSslLibrary.Ssl)))
            throw new TestEnvironmentException($"no private OpenSSL build in {OpenSslLibrary.DefaultDirectory}: {InstallPaths.InstallHint}");
    }

    [Fact]
    public void The_programs_report_the_private_build_and_the_system_library_when_asked()
    {
        RequirePrivateBuild();
        string onPrivate = cli.RunWith(OnPrivate, "--version").StandardOutput;
        Assert.Contains($"(private build in {OpenSslLibrary.DefaultDirectory})", onPrivate);
        Assert.Matches(@"OpenSSL 3\.([5-9]|\d\d)\.\d+ \(private", onPrivate);

        // `openssl version`: "OpenSSL 3.0.19 27 Jan 2026 (Library: ...)"; the program must run on the same library.
        string systemVersion = ProcessRunner.Run("openssl", ["version"]).StandardOutput.Split(' ')[1];
        Assert.Contains($"OpenSSL {systemVersion} (system)", cli.RunWith(OnSystem, "--version").StandardOutput);
    }

    [Theory]
    [InlineData("aes-256-gcm")]
    [InlineData("chacha20-poly1305")]
    public void A_checkpoint_sealed_on_one_library_opens_on_the_other_byte_for_byte(string cipher)
    {
        Tools.RequireRoot();
        RequirePrivateBuild();
        using var dir = TempDir.Create("openssl-cross");
        using var shm = TempDir.Create("openssl-cross-open", inShm: true);
        using var workload = Workload.StartMemHog(16, "sealpoint-secret-" + Guid.NewGuid().ToString("N"), dir.Dir("workload"));
        string images = shm.Dir("images"); // CRIU's plain dump holds the workload's secret: memory-backed, like the opened copies
        Criu.Dump(workload.Pid, images, new CriuOptions { LeaveRunning = true });
        workload.Kill();

        foreach (var (sealOn, openOn, label) in new[] { (OnPrivate, OnSystem, "private-to-system"), (OnSystem, OnPrivate, "system-to-private") })
        {
            string sealedDir = Path.Combine(dir.Path, $"sealed-{label}"), opened = Path.Combine(shm.Path, label);
            cli.RunWith(sealOn, "seal", images, "--out", sealedDir, "-r", "node-a", "-r", "node-b", "--cipher", cipher);
            cli.RunWith(openOn, "open", sealedDir, "--key", cli.KeyOf("node-b"), "--out", opened);
            foreach (var file in Directory.EnumerateFiles(images))
                Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(opened, Path.GetFileName(file)))),
                    $"{label}, {cipher}: {Path.GetFileName(file)} differs after seal and open");
        }
    }
}
