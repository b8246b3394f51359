namespace Sealpoint.TestSupport;

/// <summary>
/// A fresh folder under /tmp (or /dev/shm, a tmpfs, when asked) that removes itself on Dispose.
/// Set SEALPOINT_KEEP_TEMP=1 to keep every folder for debugging (their paths are in the messages).
/// </summary>
public sealed class TempDir : IDisposable
{
    private static readonly bool KeepAll = Environment.GetEnvironmentVariable("SEALPOINT_KEEP_TEMP") == "1";

    public string Path { get; }

    /// <summary>Keep this folder after Dispose.</summary>
    public bool Keep { get; set; } = KeepAll;

    private TempDir(string path) => Path = path;

    /// <param name="label">Part of the folder name, to tell tests' folders apart.</param>
    /// <param name="inShm">Create it under /dev/shm (memory), e.g. for plaintext that must never reach a disk.</param>
    public static TempDir Create(string label = "test", bool inShm = false)
    {
        var parent = inShm ? "/dev/shm" : System.IO.Path.GetTempPath();
        var path = System.IO.Path.Combine(parent, $"sealpoint-{label}-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(path);
        System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new TempDir(path);
    }

    /// <summary>A path inside this folder (not created).</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A sub-folder, created.</summary>
    public string Dir(string name) => Directory.CreateDirectory(System.IO.Path.Combine(Path, name)).FullName;

    public override string ToString() => Path;

    public void Dispose()
    {
        if (Keep || !Directory.Exists(Path)) return;
        try
        {
            Directory.Delete(Path, recursive: true); // removes symlinks, does not follow them
        }
        catch (Exception)
        {
            // E.g. read-only or busy entries a container left: rm copes with more, and stays on this filesystem.
            ProcessRunner.RunUnchecked("rm", ["-rf", "--one-file-system", Path], new RunOptions { Timeout = TimeSpan.FromMinutes(1) });
        }
    }
}
