using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;
using Sealpoint.Core.Format;
using Sealpoint.Core.Fuse;
using Sealpoint.Core.Keys;

namespace Sealpoint.Runtime;

/// <summary>
/// One operation's private staging folder. Plaintext image directories are placed at the same absolute path
/// under STAGING/fs as their sealed counterparts have on disk, so the relative links between checkpoints
/// (--parent-path, CRIU's "parent" symlink, e.g. ../pre-checkpoint) resolve the same way inside staging.
/// </summary>
public sealed class StagedImages(string directory)
{
    private const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const int MaxChain = 64;

    public string Directory { get; } = directory;
    public string FsRoot => Path.Combine(Directory, "fs");

    /// <summary>Where the plaintext of the image directory <paramref name="realPath"/> lives in staging.</summary>
    public string Mirror(string realPath) => FsRoot + Path.GetFullPath(realPath).TrimEnd('/');

    /// <summary>Creates the (empty, private) parents of a mirrored path.</summary>
    public void CreateParents(string mirrored)
    {
        string parent = Path.GetDirectoryName(mirrored)!;
        System.IO.Directory.CreateDirectory(parent, PrivateDir);
    }

    /// <summary>
    /// Verifies and decrypts the sealed checkpoint in <paramref name="sealedDir"/> into its mirror, then its parent
    /// chain (CRIU's "parent" links). Each parent must be the checkpoint the child's envelope names. Nothing is
    /// left in staging when anything fails (the caller wipes the folder).
    /// </summary>
    public Envelope OpenChain(string sealedDir, Identity identity, bool allowPlaintextParent, Action<Envelope>? beforeDecrypting = null)
    {
        sealedDir = Path.GetFullPath(sealedDir).TrimEnd('/');
        Envelope? top = null;
        string? expectedId = null;
        for (int depth = 0; ; depth++)
        {
            if (depth >= MaxChain)
                throw new IntegrityException($"the parent chain of {sealedDir} is longer than {MaxChain} checkpoints (a loop?)");
            string plain = Mirror(sealedDir);
            bool held = depth == 0 && _held.Count > 0; // its mirror was made by Hold
            if (!held && (System.IO.Directory.Exists(plain) || File.Exists(plain)))
                throw new IntegrityException($"the parent chain of the checkpoint loops back to {sealedDir}");
            CreateParents(plain);
            Envelope envelope;
            using (var checkpoint = SealedCheckpoint.Open(sealedDir, identity))
            {
                envelope = checkpoint.Envelope;
                if (expectedId is not null && envelope.CheckpointId != expectedId)
                    throw new IntegrityException(
                        $"the parent checkpoint in {sealedDir} is {envelope.CheckpointId}, but its child was sealed on top of {expectedId} (parent replaced)",
                        "restore with the parent checkpoint the child was taken from");
                if (depth == 0) beforeDecrypting?.Invoke(envelope);
                if (held) DecryptHeld(checkpoint, plain);
                else DecryptOrServe(checkpoint, plain);
            }
            top ??= envelope;
            var link = envelope.Files.FirstOrDefault(f => f.Kind == FileEntryKinds.Symlink && f.Name == "parent");
            if (link is null) return top;
            if (Path.IsPathRooted(link.Target!))
                throw new SealpointException(ErrorKind.Usage, $"the parent link of {sealedDir} is absolute ({link.Target})",
                    "checkpoints taken with runc have relative parent links (--parent-path must be relative); re-take the checkpoint");
            string parentReal = Path.GetFullPath(Path.Combine(sealedDir, link.Target!)).TrimEnd('/');
            if (SealedCheckpoint.IsSealed(parentReal))
            {
                expectedId = envelope.ParentId;
                sealedDir = parentReal;
                continue;
            }
            LinkPlaintextParent(parentReal, allowPlaintextParent, $"the parent of {sealedDir}");
            return top;
        }
    }

    private readonly Dictionary<string, HeldFile> _held = new(StringComparer.Ordinal);
    private readonly HashSet<string> _releasedWhenVerified = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _verifiedUnreleased = new(StringComparer.Ordinal);

    /// <summary>
    /// Makes the mirror of the top checkpoint <paramref name="sealedDir"/> before it is opened, with
    /// <see cref="HeldFile"/>s in it, so its readers can start at once and wait there:
    /// <paramref name="releasedWhenVerified"/> files are handed over as soon as each is verified, during
    /// <see cref="OpenChain"/>; <paramref name="releasedLast"/> files only by <see cref="ReleaseHeld"/>, which the caller
    /// calls when the whole chain is verified and in place. Holds nothing and returns false when a file of
    /// <paramref name="releasedLast"/> is not in <paramref name="sealedDir"/> (the caller must not start the reader then).
    /// </summary>
    public bool Hold(string sealedDir, IReadOnlyList<string> releasedWhenVerified, IReadOnlyList<string> releasedLast)
    {
        sealedDir = Path.GetFullPath(sealedDir).TrimEnd('/');
        if (!releasedLast.All(name => File.Exists(Path.Combine(sealedDir, name)))) return false;
        string plain = Mirror(sealedDir);
        CreateParents(plain);
        System.IO.Directory.CreateDirectory(plain, PrivateDir);
        string pipes = Path.Combine(Directory, "held");
        System.IO.Directory.CreateDirectory(pipes, PrivateDir);
        foreach (string name in releasedWhenVerified.Concat(releasedLast))
        {
            if (!File.Exists(Path.Combine(sealedDir, name))) continue; // its reader fails as it would without Sealpoint
            _held[name] = HeldFile.Create(Path.Combine(plain, name), Path.Combine(pipes, $"{_held.Count}.pipe"));
            if (releasedWhenVerified.Contains(name)) _releasedWhenVerified.Add(name);
        }
        return true;
    }

    /// <summary>Hands the verified files held until the end to their readers (CRIU may start restoring now).</summary>
    public void ReleaseHeld()
    {
        foreach (var (name, content) in _verifiedUnreleased) _held[name].Release(content);
        _verifiedUnreleased.Clear();
    }

    /// <summary>Readers still held get end of file (they fail, restoring nothing); plaintext never handed over is wiped.</summary>
    public void EndHolds()
    {
        foreach (var h in _held.Values) h.Dispose();
        foreach (var content in _verifiedUnreleased.Values) System.Security.Cryptography.CryptographicOperations.ZeroMemory(content);
        _verifiedUnreleased.Clear();
    }

    /// <summary>The top checkpoint, into the mirror Hold made: files released when verified first (their readers wait), then the rest.</summary>
    private void DecryptHeld(SealedCheckpoint checkpoint, string plain)
    {
        foreach (string name in _releasedWhenVerified) _held[name].Release(checkpoint.ReadVerified(name));
        DecryptOrServe(checkpoint, plain, into: true);
        foreach (string name in _held.Keys.Where(n => !_releasedWhenVerified.Contains(n))) _verifiedUnreleased[name] = checkpoint.ReadVerified(name);
    }

    private readonly List<SealedPageMount> _mounts = [];
    private string? _serveFailure;

    /// <summary>Page images at least this large are served rather than decrypted when <see cref="ServePages"/> is on.</summary>
    public const long ServeThreshold = 1 << 20;

    /// <summary>Serve large memory images to CRIU decrypted read by read (FUSE) instead of decrypting them into staging.</summary>
    public bool ServePages { get; init; }

    /// <summary>The memory images being served (not decrypted into staging), by their mirrored path.</summary>
    public IReadOnlyList<string> Served
    {
        get { lock (_mounts) return [.. _mounts.Select(m => m.Path)]; }
    }

    /// <summary>The first check that failed while CRIU read a served image (CRIU's read then failed), or null.</summary>
    public string? ServeFailure
    {
        get
        {
            lock (_mounts) return _serveFailure ?? _mounts.Select(m => m.Failure).FirstOrDefault(f => f is not null);
        }
    }

    /// <summary>
    /// Verifies and decrypts one checkpoint into <paramref name="plain"/>, except that its large memory images, when
    /// served, get an empty file with the image served on it: their header and tag table are checked now, each page when
    /// CRIU reads it. Where this process cannot mount (rootless, no /dev/fuse) they are decrypted like the rest.
    /// </summary>
    private void DecryptOrServe(SealedCheckpoint checkpoint, string plain, bool into = false)
    {
        // A held file is read into memory and handed over, never served (its path is the held link).
        bool Serve(FileEntry e) => ServePages && e.Kind == FileEntryKinds.Pages && e.Size >= ServeThreshold && !(into && _held.ContainsKey(e.Name));
        if (into) checkpoint.DecryptInto(plain, e => Serve(e) || _held.ContainsKey(e.Name));
        else checkpoint.DecryptTo(plain, Serve);
        foreach (var entry in checkpoint.Envelope.Files.Where(Serve))
        {
            string path = Path.Combine(plain, entry.Name);
            if (into) FileSystem.CreatePrivate(path).Dispose();
            var mount = checkpoint.TryServePages(entry.Name, path, Environment.ProcessorCount);
            if (mount is null)
            {
                File.Delete(path);
                checkpoint.DecryptFile(entry.Name, plain);
                continue;
            }
            lock (_mounts) _mounts.Add(mount);
        }
    }

    /// <summary>Unmounts the served memory images (CRIU has read them, or failed); their failure is kept.</summary>
    public void StopServing()
    {
        lock (_mounts)
        {
            _serveFailure ??= _mounts.Select(m => m.Failure).FirstOrDefault(f => f is not null);
            foreach (var m in _mounts) m.Dispose();
            _mounts.Clear();
        }
    }

    /// <summary>A parent that was never sealed is used where it is (it is already plaintext on disk): a symlink in staging.</summary>
    public void LinkPlaintextParent(string parentReal, bool allowed, string what)
    {
        if (!System.IO.Directory.Exists(parentReal))
            throw new IntegrityException($"{what}, {parentReal}, does not exist (incomplete checkpoint chain)",
                "copy the whole checkpoint chain (every parent directory) along with the checkpoint");
        if (!allowed)
            throw new SealpointException(ErrorKind.Policy, $"{what}, {parentReal}, is not sealed and this node refuses plaintext checkpoints",
                "seal the parent too, or set [policy] allow_plaintext_restore = true in the node config");
        string plain = Mirror(parentReal);
        CreateParents(plain);
        File.CreateSymbolicLink(plain, parentReal);
    }

    /// <summary>
    /// Removes the operation's folder, and the container's folder when nothing else is left in it. Nothing is removed
    /// while something is mounted inside (CRIU mounts its cgroup yard in its work folder until it exits: deleting
    /// into it would act on the host's cgroups). Returns false then.
    /// </summary>
    public bool Wipe()
    {
        EndHolds();
        StopServing();
        if (ForeignMount() is { } mount)
        {
            RuncLog.Warning(null, $"{mount} is still mounted inside staging; {Directory} is left in memory (tmpfs) for now: remove it once unmounted");
            return false;
        }
        Staging.RemoveOperation(Directory);
        string? containerDir = Path.GetDirectoryName(Directory);
        try
        {
            if (containerDir is not null && !System.IO.Directory.EnumerateFileSystemEntries(containerDir).Any()) System.IO.Directory.Delete(containerDir);
        }
        catch (IOException) { } // another operation of the same container is using it
        return true;
    }

    /// <summary>
    /// A mount inside the operation's folder other than the folder's own private tmpfs (<see cref="Staging"/>): CRIU's
    /// cgroup yard while CRIU still runs. Null when there is none.
    /// </summary>
    public string? ForeignMount()
    {
        string self = Path.GetFullPath(Directory).TrimEnd('/');
        var served = Served;
        return MountsUnder(Directory).FirstOrDefault(m => m != self && !served.Contains(m));
    }

    /// <summary>Mount points at or below <paramref name="directory"/> (from /proc/self/mountinfo, octal escapes decoded).</summary>
    public static IEnumerable<string> MountsUnder(string directory)
    {
        string prefix = Path.GetFullPath(directory).TrimEnd('/');
        return Staging.Mounts().Select(m => m.MountPoint).Where(m => m == prefix || m.StartsWith(prefix + "/", StringComparison.Ordinal));
    }
}
