using System.Runtime.InteropServices;

namespace Sealpoint.Core.Checkpoint;

/// <summary>Linux file-system facts and durability calls the sealed format relies on.</summary>
public static partial class FileSystem
{
    private const long TmpfsMagic = 0x01021994;
    private const long RamfsMagic = 0x858458f6;

    /// <summary>True when <paramref name="path"/> lives in memory (tmpfs/ramfs): plaintext there never reaches a disk.</summary>
    public static bool IsMemoryBacked(string path)
    {
        var buf = new byte[256];
        if (statfs(path, buf) != 0) return false;
        long type = BitConverter.ToInt64(buf, 0);
        return type == TmpfsMagic || type == RamfsMagic;
    }

    /// <summary>Flushes the whole file system holding <paramref name="path"/> (one call instead of an fsync per file).</summary>
    public static void SyncFileSystemOf(string path)
    {
        int fd = open(path, 0 /* O_RDONLY */);
        if (fd < 0) throw new SealpointException(ErrorKind.Io, $"cannot open {path} to sync it (errno {Marshal.GetLastPInvokeError()})", "check the path and permissions");
        try
        {
            if (syncfs(fd) != 0) throw new SealpointException(ErrorKind.Io, $"syncing {path} to disk failed (errno {Marshal.GetLastPInvokeError()})", "check the disk (dmesg) and free space");
        }
        finally { close(fd); }
    }

    /// <summary>A new file only its owner may read or write (0600), failing if the path exists.</summary>
    public static FileStream CreatePrivate(string path) => new(path, new FileStreamOptions
    {
        Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });

    /// <summary>Removes a directory tree; plaintext staging is only ever on memory-backed file systems, so unlinking frees it.</summary>
    public static void RemoveTree(string path)
    {
        try
        {
            if (Directory.Exists(path) && !new DirectoryInfo(path).Attributes.HasFlag(FileAttributes.ReparsePoint)) Directory.Delete(path, recursive: true);
            else if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
        }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>True when the open <paramref name="handle"/> is still the file at <paramref name="path"/> (same device and inode).</summary>
    public static bool SameFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        var open = new byte[256];
        var named = new byte[256];
        if (fstat((int)handle.DangerousGetHandle(), open) != 0 || lstat(path, named) != 0) return false;
        return BitConverter.ToUInt64(open, 0) == BitConverter.ToUInt64(named, 0) && BitConverter.ToUInt64(open, 8) == BitConverter.ToUInt64(named, 8);
    }

    /// <summary>lstat(2) says regular file: not a FIFO, socket or device a reader could block on.</summary>
    public static bool IsRegularFile(string path)
    {
        var buf = new byte[256];
        if (lstat(path, buf) != 0) return false;
        uint mode = BitConverter.ToUInt32(buf, 24); // st_mode in x86-64 struct stat
        return (mode & 0xF000) == 0x8000;
    }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int lstat(string path, byte[] buf);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int fstat(int fd, byte[] buf);

    [LibraryImport("libc", EntryPoint = "statfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statfs(string path, byte[] buf);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int syncfs(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int close(int fd);
}
