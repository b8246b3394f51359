using Sealpoint.Core.Crypto;

namespace Sealpoint.Core.Tests;

/// <summary>
/// Which OpenSSL <see cref="OpenSslLibrary"/> chooses, with a fake loader (loading a real one would change this test
/// process's OpenSSL for every other test). That the programs really run on the private build, and that what one
/// library seals the other opens, is checked end to end (E2E.Tests, OpenSslTests).
/// </summary>
public class OpenSslLibraryTests
{
    private sealed class Loader(string? failOn = null)
    {
        public List<string> Loaded { get; } = [];

        public string? Load(string path)
        {
            if (failOn is not null && path.EndsWith(failOn)) return $"{path}: cannot open shared object file";
            Loaded.Add(path);
            return null;
        }
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("sealpoint-openssl-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }

    private static string PrivateBuild(TempDir dir)
    {
        File.WriteAllText(System.IO.Path.Combine(dir.Path, OpenSslLibrary.Crypto), "");
        File.WriteAllText(System.IO.Path.Combine(dir.Path, OpenSslLibrary.Ssl), "");
        return dir.Path;
    }

    [Fact]
    public void The_private_build_is_loaded_libcrypto_first_so_libssl_binds_to_it()
    {
        using var dir = new TempDir();
        string lib = PrivateBuild(dir);
        var loader = new Loader();
        var selection = OpenSslLibrary.Select(null, lib, loader.Load);
        Assert.Equal(new OpenSslLibrary.Selection(lib, null), selection);
        Assert.Equal([System.IO.Path.Combine(lib, OpenSslLibrary.Crypto), System.IO.Path.Combine(lib, OpenSslLibrary.Ssl)], loader.Loaded);
    }

    [Fact]
    public void Without_a_private_build_the_system_library_is_used_quietly()
    {
        using var dir = new TempDir();
        var loader = new Loader();
        Assert.Equal(new OpenSslLibrary.Selection(null, null), OpenSslLibrary.Select(null, dir.Path, loader.Load));
        Assert.Equal(new OpenSslLibrary.Selection(null, null), OpenSslLibrary.Select("", System.IO.Path.Combine(dir.Path, "absent"), loader.Load));
        // Half a build (libssl missing) is not loaded: libcrypto 3.5 under the system's libssl 3.0 would be a mix.
        File.WriteAllText(System.IO.Path.Combine(dir.Path, OpenSslLibrary.Crypto), "");
        Assert.Equal(new OpenSslLibrary.Selection(null, null), OpenSslLibrary.Select(null, dir.Path, loader.Load));
        Assert.Empty(loader.Loaded);
    }

    [Fact]
    public void System_asks_for_the_system_library_even_when_a_private_build_is_installed()
    {
        using var dir = new TempDir();
        var loader = new Loader();
        Assert.Equal(new OpenSslLibrary.Selection(null, null), OpenSslLibrary.Select("system", PrivateBuild(dir), loader.Load));
        Assert.Empty(loader.Loaded);
    }

    [Fact]
    public void A_directory_asked_for_without_the_libraries_warns_and_names_the_fix()
    {
        using var dir = new TempDir();
        var loader = new Loader();
        string asked = System.IO.Path.Combine(dir.Path, "elsewhere");
        var selection = OpenSslLibrary.Select(asked, PrivateBuild(dir), loader.Load);
        Assert.Null(selection.Directory);
        Assert.Contains($"{OpenSslLibrary.DirectoryVariable}={asked}", selection.Warning);
        Assert.Contains("using the system's OpenSSL", selection.Warning);
        Assert.Contains("Fix:", selection.Warning);
        Assert.Empty(loader.Loaded);
    }

    [Fact]
    public void A_private_libcrypto_that_fails_to_load_leaves_the_system_library_and_warns_with_the_reason_and_the_fix()
    {
        using var dir = new TempDir();
        string lib = PrivateBuild(dir);
        var loader = new Loader(failOn: OpenSslLibrary.Crypto);
        var selection = OpenSslLibrary.Select(null, lib, loader.Load);
        Assert.Null(selection.Directory);
        Assert.Contains(lib, selection.Warning);
        Assert.Contains("cannot open shared object file", selection.Warning);
        Assert.Contains("using the system's", selection.Warning);
        Assert.Contains("install.sh", selection.Warning);
        Assert.Contains($"{OpenSslLibrary.DirectoryVariable}=system", selection.Warning);
        Assert.Empty(loader.Loaded); // libssl is not tried without its libcrypto
    }

    [Fact]
    public void A_private_libssl_that_fails_to_load_says_the_process_runs_on_a_mix()
    {
        using var dir = new TempDir();
        string lib = PrivateBuild(dir);
        var selection = OpenSslLibrary.Select(null, lib, new Loader(failOn: OpenSslLibrary.Ssl).Load);
        Assert.Equal(lib, selection.Directory); // the private libcrypto stays loaded: it is what the process runs on
        Assert.Contains($"private {OpenSslLibrary.Crypto} with the system's {OpenSslLibrary.Ssl}", selection.Warning);
        Assert.Contains("cannot open shared object file", selection.Warning);
        Assert.Contains("install.sh", selection.Warning);
    }

    [Fact]
    public void The_running_version_is_the_one_OpenSSL_reports()
    {
        // This process has not selected a private build, so .NET runs on the system's libcrypto.so.3.
        Assert.Matches(@"^3\.\d+\.\d+$", OpenSslLibrary.RunningVersion());
        Assert.StartsWith($"OpenSSL {OpenSslLibrary.RunningVersion()} (", OpenSslLibrary.Describe());
    }
}
