namespace Sealpoint.Core.Streaming;

/// <summary>
/// CRIU's images and work directory during a streamed dump or restore (its -D and -W). It holds CRIU's socket,
/// log and statistics, never an image: with --stream CRIU sends every image through the socket. A directory the
/// user named is kept; a temporary one is removed after success and kept after a failure, for its log (unless it is
/// empty: CRIU was stopped before it logged).
/// </summary>
public sealed class WorkDirectory : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private readonly bool _temporary;
    private readonly List<string> _ownFiles = [];

    private WorkDirectory(string path, bool temporary)
    {
        Path = path;
        _temporary = temporary;
    }

    public string Path { get; }

    /// <summary>Keep the directory at dispose (after a failure, so its log can be read).</summary>
    public bool Keep { get; set; }

    public static WorkDirectory Create(string? given, string purpose)
    {
        if (given is not null)
        {
            string full = System.IO.Path.GetFullPath(given);
            if (!Directory.Exists(full)) Directory.CreateDirectory(full, Private);
            return new WorkDirectory(full, temporary: false);
        }
        // mkdtemp(3): a fresh name, mode 0700, and no OpenSSL (whose first use costs ~15 ms before CRIU can start).
        return new WorkDirectory(Directory.CreateTempSubdirectory($"sealpoint-{purpose}-").FullName, temporary: true);
    }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A file of ours (socket, hook, markers): removed at dispose even from a kept directory.</summary>
    public string OwnFile(string name)
    {
        string path = File(name);
        if (System.IO.File.Exists(path) || Directory.Exists(path))
            throw new SealpointException(ErrorKind.Usage, $"{path} already exists", "use an empty work directory (--work-dir), or remove that file if no other sealpoint uses it");
        _ownFiles.Add(path);
        return path;
    }

    public void Dispose()
    {
        foreach (var f in _ownFiles)
            try { System.IO.File.Delete(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        if (!_temporary) return;
        try
        {
            // Kept after a failure for CRIU's log; an empty folder (CRIU stopped before it logged) would only pile up.
            if (!Keep || !Directory.EnumerateFileSystemEntries(Path).Any()) Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
