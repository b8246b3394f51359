using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Sealpoint.Core.Crypto;

/// <summary>
/// Which OpenSSL this process uses. packaging/install.sh builds a private OpenSSL 3.5 from Debian trixie's source into
/// <see cref="DefaultDirectory"/>, because the system's 3.0 has no AES-GCM code for VAES/AVX-512: on this project's
/// machines it seals a 4 KiB page in ~0.85 µs instead of ~1.65 µs (docs/benchmarks.md). <see cref="Select"/>, first
/// thing in every program, loads that libcrypto and libssl by path; .NET's own OpenSSL shim and
/// <see cref="OpenSslAead"/> later ask for "libcrypto.so.3" / "libssl.so.3" by name, and the dynamic loader hands them
/// the already loaded libraries with that soname. Without the private build the system's OpenSSL is used, as before.
///
/// <c>SEALPOINT_OPENSSL_DIR</c>: another directory holding libcrypto.so.3 and libssl.so.3, or <c>system</c> for the
/// system's OpenSSL even when the private build is installed.
/// </summary>
public static class OpenSslLibrary
{
    public const string DirectoryVariable = "SEALPOINT_OPENSSL_DIR";
    public const string DefaultDirectory = "/opt/sealpoint/openssl/lib";
    public const string Crypto = "libcrypto.so.3";
    public const string Ssl = "libssl.so.3";

    /// <summary>What <see cref="Select"/> did: the private directory in use (null: the system's), and a warning when a
    /// private build was asked for or installed but could not be used.</summary>
    public sealed record Selection(string? Directory, string? Warning);

    private static Selection? _selected;

    /// <summary>The outcome of <see cref="Select"/>, or null if this process has not called it.</summary>
    public static Selection? Selected => _selected;

    /// <summary>
    /// Loads the private OpenSSL when there is one. Must run before anything in the process uses cryptography (.NET
    /// loads its OpenSSL once, on first use); a later call returns the first outcome.
    /// </summary>
    public static Selection Select() =>
        _selected ??= Select(Environment.GetEnvironmentVariable(DirectoryVariable), DefaultDirectory, TryLoad);

    internal static Selection Select(string? setting, string defaultDirectory, Func<string, string?> load)
    {
        if (setting == "system") return new Selection(null, null);
        bool asked = !string.IsNullOrEmpty(setting);
        string directory = asked ? setting! : defaultDirectory;
        string crypto = Path.Combine(directory, Crypto), ssl = Path.Combine(directory, Ssl);
        if (!File.Exists(crypto) || !File.Exists(ssl))
        {
            // No private build installed is the ordinary case of a machine without install.sh's OpenSSL step.
            return asked
                ? new Selection(null, $"{DirectoryVariable}={setting} holds no {Crypto} and {Ssl}; using the system's OpenSSL. " +
                                      $"Fix: point {DirectoryVariable} at the directory holding both, or set it to 'system'")
                : new Selection(null, null);
        }
        const string fix = "Fix: run packaging/install.sh again to rebuild it, or set " + DirectoryVariable + "=system";
        // libcrypto first: libssl needs it by soname, and must get this one, not the system's.
        if (load(crypto) is { } cryptoFailure)
            return new Selection(null, $"the private OpenSSL in {directory} could not be loaded ({cryptoFailure}); using the " +
                                       $"system's, which seals pages about half as fast. {fix}");
        // A loaded library cannot be unloaded: the process now runs on this libcrypto whatever happens to libssl.
        if (load(ssl) is { } sslFailure)
            return new Selection(directory, $"the private {Ssl} in {directory} could not be loaded ({sslFailure}); this process " +
                                            $"runs on the private {Crypto} with the system's {Ssl}. {fix}");
        return new Selection(directory, null);
    }

    /// <summary>The OpenSSL version .NET's cryptography runs on, e.g. "3.5.7"; loads OpenSSL if nothing has yet.</summary>
    public static string RunningVersion()
    {
        long v = SafeEvpPKeyHandle.OpenSslVersion; // 0xMNN00PP0: major, minor, patch
        return $"{(v >> 28) & 0xF}.{(v >> 20) & 0xFF}.{(v >> 4) & 0xFF}";
    }

    /// <summary>One line for `--version`: the OpenSSL in use and where it comes from.</summary>
    public static string Describe() =>
        $"OpenSSL {RunningVersion()} ({(Selected?.Directory is { } d ? $"private build in {d}" : "system")})";

    private static string? TryLoad(string path)
    {
        try
        {
            NativeLibrary.Load(path);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            return e.Message;
        }
    }
}
