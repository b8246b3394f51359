using System.Security.Cryptography;
using Sealpoint.Core;

namespace Sealpoint.Packaging;

/// <summary>
/// Sealpoint's node-local state folder (default <c>/var/lib/sealpoint</c>, or <c>$SEALPOINT_STATE_DIR</c>): the
/// rollback/fork record, the node's page-hash key, keyed page indexes and pack history. Root-only (0700/0600):
/// none of it may leave the node. Files are replaced atomically; writers serialize on a lock file.
/// </summary>
public sealed class NodeState
{
    public const string DefaultRoot = "/var/lib/sealpoint";
    private const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public NodeState(string root) => Root = Path.GetFullPath(root);

    public string Root { get; }

    public static NodeState FromEnvironment(string? explicitRoot = null)
    {
        string? env = Environment.GetEnvironmentVariable("SEALPOINT_STATE_DIR");
        return new NodeState(explicitRoot ?? (string.IsNullOrEmpty(env) ? DefaultRoot : env));
    }

    /// <summary>
    /// The node's cache of recipient certificates that passed the CA and CRL checks (<see cref="Core.Keys.Pki.VerifiedCache"/>);
    /// null, i.e. every check made in full, when the state folder cannot be used (not root, say).
    /// </summary>
    public static string? VerifiedCertificatesCache()
    {
        try { return FromEnvironment().EnsureDirectory("verified-certificates"); }
        catch (SealpointException) { return null; }
    }

    public string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Creates the folder (and sub-folders) private to the owner; refuses a folder others can read.</summary>
    public string EnsureDirectory(params string[] parts)
    {
        string dir = PathOf(parts);
        try
        {
            foreach (var d in Ancestors(dir))
            {
                if (!Directory.Exists(d)) Directory.CreateDirectory(d, PrivateDir);
            }
            var mode = File.GetUnixFileMode(Root);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
                throw new SealpointException(ErrorKind.Config, $"state folder {Root} can be read or written by others (mode {Convert.ToString((int)mode, 8)})",
                    $"chmod 700 {Root}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SealpointException(ErrorKind.Io, $"cannot create state folder {dir}: {e.Message}", "run as root, or set --state-dir / SEALPOINT_STATE_DIR to a writable folder");
        }
        return dir;
    }

    private IEnumerable<string> Ancestors(string dir)
    {
        var chain = new List<string>();
        for (string? d = dir; d is not null && d.Length >= Root.Length; d = Path.GetDirectoryName(d)) chain.Add(d);
        chain.Reverse();
        return chain;
    }

    /// <summary>Writes a state file atomically (temp, fsync, rename), mode 0600.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        string tmp = $"{path}.{Environment.ProcessId}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}.tmp";
        try
        {
            using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile }))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw new SealpointException(ErrorKind.Io, $"cannot write state file {path}: {e.Message}", "check free space and permissions of the state folder");
        }
    }

    /// <summary>An exclusive lock on <paramref name="name"/> in the state folder (advisory flock), waited for up to 30 s.</summary>
    public IDisposable Lock(string name)
    {
        string path = Path.Combine(EnsureDirectory(), name + ".lock");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                return new FileStream(path, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, UnixCreateMode = PrivateFile });
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
            catch (IOException e)
            {
                throw new SealpointException(ErrorKind.Io, $"state file lock {path} is held by another process for more than 30 s: {e.Message}", "wait for the other sealpoint command, or remove a stale lock file");
            }
        }
    }

    /// <summary>The node's secret key for keyed page hashes (32 random bytes, created on first use, never leaves the node).</summary>
    public byte[] PageHashKey()
    {
        string path = Path.Combine(EnsureDirectory(), "page-hash.key");
        using (Lock("page-hash-key"))
        {
            if (!File.Exists(path)) WriteAtomic(path, RandomNumberGenerator.GetBytes(32));
        }
        Core.Keys.Identity.RequireOwnerOnly(path);
        byte[] key = File.ReadAllBytes(path);
        if (key.Length != 32)
            throw new SealpointException(ErrorKind.Config, $"{path} is not a 32-byte key", $"remove it (incremental packing then starts over with full uploads)");
        return key;
    }
}
