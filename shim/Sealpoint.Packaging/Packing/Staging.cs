using System.Security.Cryptography;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;

namespace Sealpoint.Packaging.Packing;

/// <summary>
/// Private temporary folders: for plaintext only on a memory-backed file system (so it never reaches a disk), for
/// ciphertext anywhere. Removed on Dispose.
/// </summary>
public sealed class Staging : IDisposable
{
    private const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private Staging(string path) => Path = path;

    public string Path { get; }

    /// <summary>A folder for ciphertext under <paramref name="parent"/> (default: the system temp folder).</summary>
    public static Staging ForCiphertext(string? parent, string purpose)
    {
        string root = parent ?? System.IO.Path.GetTempPath();
        return Create(root, purpose);
    }

    /// <summary>A folder for plaintext on tmpfs: /dev/shm, $XDG_RUNTIME_DIR or /run, whichever is memory-backed.</summary>
    public static Staging ForPlaintext(string purpose)
    {
        foreach (var candidate in new[] { "/dev/shm", Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"), "/run" })
        {
            if (string.IsNullOrEmpty(candidate) || !Directory.Exists(candidate) || !FileSystem.IsMemoryBacked(candidate)) continue;
            try { return Create(candidate, purpose); }
            catch (UnauthorizedAccessException) { }
            catch (IOException) { }
        }
        throw new SealpointException(ErrorKind.Config, "no memory-backed folder (/dev/shm, $XDG_RUNTIME_DIR, /run) for plaintext staging",
            "mount a tmpfs on /dev/shm; Sealpoint never stages plaintext on disk");
    }

    private static Staging Create(string root, string purpose)
    {
        string path = System.IO.Path.Combine(root, $"sealpoint-{purpose}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        Directory.CreateDirectory(path, PrivateDir);
        return new Staging(path);
    }

    public string Sub(string name)
    {
        string p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p, PrivateDir);
        return p;
    }

    public void Dispose() => FileSystem.RemoveTree(Path);
}
