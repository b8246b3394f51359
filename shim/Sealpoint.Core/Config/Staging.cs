using System.Runtime.InteropServices;
using Sealpoint.Core.Checkpoint;

namespace Sealpoint.Core.Config;

/// <summary>
/// The node's staging folder: where plaintext CRIU images live between CRIU and sealing (checkpoint) or between
/// opening and CRIU (restore). It must be memory-backed, so plaintext never reaches a disk, and private
/// (0700, owned by this user, not a symlink), because it sits in world-writable /dev/shm by default.
/// Layout: ROOT/CONTAINER-ID/OPERATION-RANDOM/ — so the hook can wipe a stopped container's leftovers.
/// Each operation's folder is, when the process may mount, a private tmpfs mounted huge=within_size: files whose size
/// is set before they are written (the memory images Sealpoint decrypts for a restore) get 2 MiB pages, which are
/// allocated, read by CRIU and freed much faster than 4 KiB ones (this machine: 1 GiB freed in 4 ms instead of
/// 150 ms), while the many small files CRIU writes keep 4 KiB pages (huge=always would give each one 2 MiB).
/// Unmounting frees everything at once.
/// </summary>
public sealed partial class Staging(string root, bool hugePages = false)
{
    /// <summary>The source name of the per-operation mounts in /proc/self/mountinfo.</summary>
    public const string MountSource = "sealpoint-staging";

    /// <summary>Written into a staging folder that holds a dump which could not be sealed: never wiped automatically.</summary>
    public const string PendingMarker = "sealpoint-pending.json";
    /// <summary>Present in ROOT/CONTAINER-ID while sealpoint-runc restores that container (the hook then skips recipient checks).</summary>
    public const string RestoringMarker = "restoring";

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string Root { get; } = Path.GetFullPath(root).TrimEnd('/');

    /// <summary>Creates (if needed) and checks the root: memory-backed, private, ours.</summary>
    public void EnsureRoot()
    {
        string? existing = Root;
        while (existing is not null && !Directory.Exists(existing) && !File.Exists(existing)) existing = Path.GetDirectoryName(existing);
        if (existing is null || !FileSystem.IsMemoryBacked(existing))
            throw NotMemoryBacked();
        Directory.CreateDirectory(Root, Private);
        CheckPrivate(Root);
        if (!FileSystem.IsMemoryBacked(Root)) throw NotMemoryBacked();
    }

    private SealpointException NotMemoryBacked() => new(ErrorKind.Config,
        $"the staging folder {Root} is not on a memory-backed file system (tmpfs/ramfs): plaintext checkpoint images would be written to disk",
        $"set [runtime] staging in the node config to a folder on tmpfs, e.g. {NodeConfig.DefaultStaging}");

    /// <summary>Refuses a folder that is a symlink, not ours, or open to others; tightens our own folder's mode.</summary>
    private static void CheckPrivate(string path)
    {
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null || !info.Exists)
            throw new SealpointException(ErrorKind.Policy, $"the staging folder {path} is a symlink or not a directory", $"remove {path}; Sealpoint recreates it");
        var st = new byte[256];
        if (lstat(path, st) != 0)
            throw new SealpointException(ErrorKind.Io, $"cannot stat the staging folder {path} (errno {Marshal.GetLastPInvokeError()})", "check the path");
        uint owner = BitConverter.ToUInt32(st, 28); // st_uid in x86-64 struct stat
        if (owner != geteuid())
            throw new SealpointException(ErrorKind.Policy, $"the staging folder {path} belongs to uid {owner}, not to this user ({geteuid()})",
                $"remove {path} (someone else created it); Sealpoint recreates it privately");
        if ((File.GetUnixFileMode(path) & ~Private) != 0) File.SetUnixFileMode(path, Private);
    }

    /// <summary>A new private folder for one operation on one container.</summary>
    public string Create(string containerId, string operation)
    {
        EnsureRoot();
        string containerDir = ContainerDir(containerId);
        Directory.CreateDirectory(containerDir, Private);
        CheckPrivate(containerDir);
        // Unique, not secret (the folder is private): the process id and a non-cryptographic random number. A
        // cryptographic one was the process's first use of OpenSSL's generator, ~9 ms before a restore could start runc.
        string dir = Path.Combine(containerDir, $"{operation}-{DateTime.UtcNow:yyyyMMddTHHmmss}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
        Directory.CreateDirectory(dir, Private);
        if (hugePages) TryMountPrivateTmpfs(dir);
        return dir;
    }

    /// <summary>
    /// Mounts a private tmpfs (0700, huge=within_size, noswap where the kernel has it, nosuid, nodev) on <paramref name="dir"/>. Without the right to mount
    /// (rootless) or without huge-page tmpfs in the kernel, the folder stays a plain folder of the (memory-backed) root:
    /// slower, equally private.
    /// </summary>
    private static bool TryMountPrivateTmpfs(string dir)
    {
        // noswap (Linux 6.4+): plaintext pages of this tmpfs are never written to a swap device.
        if (mount(MountSource, dir, "tmpfs", MsNoSuid | MsNoDev, "mode=0700,huge=within_size,noswap") != 0
            && mount(MountSource, dir, "tmpfs", MsNoSuid | MsNoDev, "mode=0700,huge=within_size") != 0) return false;
        if (!FileSystem.IsMemoryBacked(dir))
        {
            Unmount(dir);
            return false;
        }
        return true;
    }

    /// <summary>True when <paramref name="dir"/> is itself a mount point (its own device differs from its parent's).</summary>
    public static bool IsMountPoint(string dir)
    {
        var self = new byte[256];
        var parent = new byte[256];
        if (lstat(dir, self) != 0 || lstat(Path.GetDirectoryName(Path.GetFullPath(dir).TrimEnd('/')) ?? "/", parent) != 0) return false;
        return BitConverter.ToUInt64(self, 0) != BitConverter.ToUInt64(parent, 0); // st_dev
    }

    /// <summary>
    /// Unmounts an operation's private tmpfs, which frees its pages at once; lazily when a file in it is still open
    /// (the pages are then freed when the last one closes). Returns false when it is not a mount point.
    /// </summary>
    public static bool Unmount(string dir)
    {
        if (!IsMountPoint(dir)) return false;
        if (umount2(dir, 0) == 0) return true;
        return umount2(dir, MntDetach) == 0;
    }

    /// <summary>Removes an operation's folder: its private mount (if any) first, then what is left.</summary>
    public static void RemoveOperation(string dir)
    {
        // A restore killed while it served memory images leaves their (dead) FUSE mounts on files in here.
        foreach (string served in ServedImagesUnder(dir)) umount2(served, MntDetach);
        Unmount(dir);
        FileSystem.RemoveTree(dir);
    }

    /// <summary>The mount source of served memory images (Fuse/SealedPageMount).</summary>
    public const string ServedImageSource = "sealpoint-pages";

    /// <summary>Served memory images (FUSE mounts named <see cref="ServedImageSource"/>) below <paramref name="dir"/>.</summary>
    public static IEnumerable<string> ServedImagesUnder(string dir)
    {
        string prefix = Path.GetFullPath(dir).TrimEnd('/') + "/";
        return Mounts().Where(m => m.FsType == "fuse" && m.Source == ServedImageSource && m.MountPoint.StartsWith(prefix, StringComparison.Ordinal))
            .Select(m => m.MountPoint);
    }

    /// <summary>This process's mounts, from /proc/self/mountinfo (mount points with their octal escapes decoded).</summary>
    public static IEnumerable<(string MountPoint, string FsType, string Source)> Mounts()
    {
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root MOUNT-POINT options [optional...] - FSTYPE SOURCE superoptions
            string[] fields = line.Split(' ');
            int dash = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || dash < 5 || dash + 2 >= fields.Length) continue;
            yield return (UnescapeOctal(fields[4]), fields[dash + 1], fields[dash + 2]);
        }
    }

    /// <summary>
    /// mountinfo's escapes (\040 for a space, \011, \012, \134): three octal digits after a backslash. By hand, not
    /// with a Regex: the restore's wipe reads mountinfo on its critical path, and the first Regex costs milliseconds.
    /// </summary>
    internal static string UnescapeOctal(string field)
    {
        if (!field.Contains('\\')) return field;
        var sb = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                sb.Append((char)((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
                i += 3;
            }
            else sb.Append(field[i]);
        }
        return sb.ToString();

        static bool IsOctal(char c) => c is >= '0' and <= '7';
    }

    public string ContainerDir(string containerId)
    {
        if (!IsValidContainerId(containerId))
            throw new SealpointException(ErrorKind.Usage, $"'{NodeConfig.Printable(containerId)}' is not a valid container id", "container ids are letters, digits, '_', '+', '-' and '.'");
        return Path.Combine(Root, containerId);
    }

    /// <summary>runc's rule for container ids (^[\w+-\.]+$, not "." or "..").</summary>
    public static bool IsValidContainerId(string id) =>
        id.Length is > 0 and <= 1024 && id != "." && id != ".." && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '+' or '-' or '.');

    /// <summary>
    /// Removes a stopped container's leftover staging (e.g. of an operation that was killed), except folders holding
    /// a dump that could not be sealed: those are the container's state until someone recovers them.
    /// Returns the folders kept.
    /// </summary>
    public IReadOnlyList<string> WipeContainer(string containerId)
    {
        string containerDir = ContainerDir(containerId);
        if (!Directory.Exists(containerDir) || new DirectoryInfo(containerDir).LinkTarget is not null) return [];
        var kept = new List<string>();
        foreach (var entry in new DirectoryInfo(containerDir).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo d && d.LinkTarget is null && File.Exists(Path.Combine(d.FullName, PendingMarker))) { kept.Add(d.FullName); continue; }
            if (entry is DirectoryInfo { LinkTarget: null }) RemoveOperation(entry.FullName);
            else FileSystem.RemoveTree(entry.FullName);
        }
        if (kept.Count == 0) FileSystem.RemoveTree(containerDir);
        return kept;
    }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int lstat(string path, byte[] buf);

    private const ulong MsNoSuid = 2, MsNoDev = 4;
    private const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint geteuid();
}
