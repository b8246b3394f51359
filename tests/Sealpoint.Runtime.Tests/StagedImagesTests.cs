using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;
using Sealpoint.Core.Keys;
using Sealpoint.TestSupport;

namespace Sealpoint.Runtime.Tests;

/// <summary>
/// Parent chains (incremental checkpoints) opened into staging. CRIU cannot make real incremental dumps on this
/// machine (no soft-dirty tracking, see environment.md), so the chains here are sealed synthetic image folders
/// with CRIU's relative "parent" links.
/// </summary>
public sealed class StagedImagesTests : IDisposable
{
    private readonly TestPki _pki = new("node1", "node2");
    private readonly TempDir _disk = TempDir.Create("chain");
    private readonly TempDir _shm = TempDir.Create("staging", inShm: true);

    public void Dispose()
    {
        _pki.Dispose();
        _disk.Dispose();
        _shm.Dispose();
    }

    private Sealpoint.Core.Format.Envelope Seal(string name, string? parentLink, ParentCheckpoint? parent, string recipient = "node1")
    {
        string plain = _shm.Dir("plain-" + name);
        File.WriteAllText(Path.Combine(plain, "inventory.img"), $"inventory of {name}");
        File.WriteAllText(Path.Combine(plain, "pages-1.img"), new string('p', 8192) + name);
        if (parentLink is not null) File.CreateSymbolicLink(Path.Combine(plain, "parent"), parentLink);
        var envelope = CheckpointSealer.SealDirectory(plain, Path.Combine(_disk.Path, "b", name), new SealOptions
        {
            Recipients = [_pki.Pki.ResolveRecipient(recipient)], Parent = parent, Sync = false,
        });
        FileSystem.RemoveTree(plain);
        return envelope;
    }

    private static ParentCheckpoint P(Sealpoint.Core.Format.Envelope e) => new(e.CheckpointId, e.LineageId, e.Generation);

    [Fact]
    public void ChainIsOpenedAtTheSameRelativePlaces()
    {
        var grand = Seal("pre1", null, null);
        var parent = Seal("pre2", "../pre1", P(grand));
        Seal("checkpoint", "../pre2", P(parent));
        var staged = new StagedImages(_shm.Dir("op"));
        using var identity = Identity.Load(_pki.Pki.KeyPath("node1"));
        string top = Path.Combine(_disk.Path, "b", "checkpoint");
        staged.OpenChain(top, identity, allowPlaintextParent: false);

        string plainTop = staged.Mirror(top);
        Assert.Equal("inventory of checkpoint", File.ReadAllText(Path.Combine(plainTop, "inventory.img")));
        // The parent links resolve inside staging, to plaintext.
        Assert.Equal("inventory of pre2", File.ReadAllText(Path.Combine(plainTop, "parent", "inventory.img")));
        Assert.Equal("inventory of pre1", File.ReadAllText(Path.Combine(plainTop, "parent", "parent", "inventory.img")));
        Assert.StartsWith(staged.FsRoot, Path.GetFullPath(Path.Combine(plainTop, "..", "pre1")));
        Assert.True(FileSystem.IsMemoryBacked(plainTop));
    }

    /// <summary>
    /// runc and CRIU are started before the checkpoint is open and held at their first reads: the early file arrives
    /// once verified, the last one only when the caller releases it, after the whole chain is in place.
    /// </summary>
    [Fact]
    public async Task HeldReadersGetTheirFilesOnlyWhenVerified_AndTheLastOneOnlyOnRelease()
    {
        var parent = Seal("pre", null, null);
        string top = Path.Combine(_disk.Path, "b", "checkpoint");
        Seal("checkpoint", "../pre", P(parent));
        var staged = new StagedImages(_shm.Dir("op"));
        Assert.True(staged.Hold(top, releasedWhenVerified: ["pages-1.img"], releasedLast: ["inventory.img"]));
        string plainTop = staged.Mirror(top);
        var early = Task.Run(() => File.ReadAllText(Path.Combine(plainTop, "pages-1.img")));
        var last = Task.Run(() => File.ReadAllText(Path.Combine(plainTop, "inventory.img")));
        await Task.Delay(200);
        Assert.False(early.IsCompleted || last.IsCompleted, "a held reader got something before the checkpoint was opened");

        using (var identity = Identity.Load(_pki.Pki.KeyPath("node1")))
            staged.OpenChain(top, identity, allowPlaintextParent: false);
        Assert.Equal(new string('p', 8192) + "checkpoint", await early.WaitAsync(TimeSpan.FromSeconds(20)));
        // Everything else, the parent included, is in place while the last reader still waits.
        Assert.Equal("inventory of pre", File.ReadAllText(Path.Combine(plainTop, "parent", "inventory.img")));
        await Task.Delay(200);
        Assert.False(last.IsCompleted, "the last held reader got its file before the release");
        staged.ReleaseHeld();
        Assert.Equal("inventory of checkpoint", await last.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(staged.Wipe());
    }

    [Fact]
    public async Task AHeldReaderGetsNothingWhenTheChainFails()
    {
        var real = Seal("pre", null, null);
        string top = Path.Combine(_disk.Path, "b", "checkpoint");
        Seal("checkpoint", "../pre", P(real));
        Directory.Move(Path.Combine(_disk.Path, "b", "pre"), Path.Combine(_disk.Path, "b", "pre-real"));
        Seal("pre", null, null); // the parent replaced
        var staged = new StagedImages(_shm.Dir("op"));
        Assert.True(staged.Hold(top, releasedWhenVerified: [], releasedLast: ["inventory.img"]));
        var last = Task.Run(() => File.ReadAllBytes(Path.Combine(staged.Mirror(top), "inventory.img")));
        using (var identity = Identity.Load(_pki.Pki.KeyPath("node1")))
            Assert.Contains("parent replaced", Assert.ThrowsAny<SealpointException>(() => staged.OpenChain(top, identity, false)).Message);
        await Task.Delay(200);
        Assert.False(last.IsCompleted);
        staged.EndHolds();
        Assert.Empty(await last.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(staged.Wipe());
        // Nothing to hold without the file CRIU reads first: the caller then opens the checkpoint before starting runc.
        File.Delete(Path.Combine(top, "inventory.img"));
        Assert.False(new StagedImages(_shm.Dir("op2")).Hold(top, [], ["inventory.img"]));
    }

    [Fact]
    public void ReplacedParentIsRefused()
    {
        var real = Seal("pre", null, null);
        Seal("checkpoint", "../pre", P(real));
        // Another checkpoint put where the parent was.
        Directory.Move(Path.Combine(_disk.Path, "b", "pre"), Path.Combine(_disk.Path, "b", "pre-real"));
        Seal("pre", null, null);
        var staged = new StagedImages(_shm.Dir("op"));
        using var identity = Identity.Load(_pki.Pki.KeyPath("node1"));
        var e = Assert.ThrowsAny<SealpointException>(() => staged.OpenChain(Path.Combine(_disk.Path, "b", "checkpoint"), identity, false));
        Assert.Equal(ErrorKind.Integrity, e.Kind);
        Assert.Contains("parent replaced", e.Message);
    }

    [Fact]
    public void MissingOrPlaintextParent()
    {
        Seal("checkpoint", "../gone", null);
        var staged = new StagedImages(_shm.Dir("op"));
        using var identity = Identity.Load(_pki.Pki.KeyPath("node1"));
        string top = Path.Combine(_disk.Path, "b", "checkpoint");
        Assert.Contains("incomplete checkpoint chain", Assert.ThrowsAny<SealpointException>(() => staged.OpenChain(top, identity, false)).Message);

        Directory.CreateDirectory(Path.Combine(_disk.Path, "b", "gone"));
        var staged2 = new StagedImages(_shm.Dir("op2"));
        var refused = Assert.ThrowsAny<SealpointException>(() => staged2.OpenChain(top, identity, false));
        Assert.Contains("is not sealed and this node refuses plaintext", refused.Message);
        var staged3 = new StagedImages(_shm.Dir("op3"));
        staged3.OpenChain(top, identity, allowPlaintextParent: true);
        Assert.Equal(Path.Combine(_disk.Path, "b", "gone"), new DirectoryInfo(staged3.Mirror(Path.Combine(_disk.Path, "b", "gone"))).LinkTarget);
    }

    [Fact]
    public void ParentSealedForAnotherNodeFailsWithTheRecipientMessage()
    {
        var parent = Seal("pre", null, null, recipient: "node2");
        Seal("checkpoint", "../pre", P(parent));
        var staged = new StagedImages(_shm.Dir("op"));
        using var identity = Identity.Load(_pki.Pki.KeyPath("node1"));
        var e = Assert.ThrowsAny<SealpointException>(() => staged.OpenChain(Path.Combine(_disk.Path, "b", "checkpoint"), identity, false));
        Assert.Equal(ErrorKind.Key, e.Kind);
        Assert.Contains("is not a recipient", e.Message);
    }

    [Fact]
    public void StagingRootMustBeMemoryBackedAndPrivate()
    {
        var onDisk = Assert.ThrowsAny<SealpointException>(() => new Staging(Path.Combine(_disk.Path, "staging")).EnsureRoot());
        Assert.Contains("not on a memory-backed file system", onDisk.Message);
        Assert.False(Directory.Exists(Path.Combine(_disk.Path, "staging")), "the refused folder was created on disk");

        string root = Path.Combine(_shm.Path, "root");
        var staging = new Staging(root);
        string dir = staging.Create("ctr-1", "checkpoint");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(root));
        Assert.StartsWith(Path.Combine(root, "ctr-1"), dir);
        Assert.ThrowsAny<SealpointException>(() => staging.Create("../escape", "x"));

        // A symlink planted where the container's folder goes is refused.
        File.CreateSymbolicLink(Path.Combine(root, "ctr-2"), _disk.Path);
        Assert.Contains("symlink", Assert.ThrowsAny<SealpointException>(() => staging.Create("ctr-2", "checkpoint")).Message);
    }

    [Fact]
    public void EachOperationGetsItsOwnHugePageTmpfsWhichTheWipeUnmounts()
    {
        Assert.True(Environment.UserName == "root", "these tests run as root (CRIU and runc need it)");
        string root = Path.Combine(_shm.Path, "huge-root");
        var staging = new Staging(root, hugePages: true);
        string dir = staging.Create("ctr-1", "restore");
        Assert.True(Staging.IsMountPoint(dir), $"{dir} is not a mount point");
        Assert.True(Sealpoint.Core.Checkpoint.FileSystem.IsMemoryBacked(dir));
        string options = File.ReadLines("/proc/self/mountinfo").Single(l => l.Split(' ')[4] == dir);
        Assert.Contains("huge=within_size", options);
        if (Environment.OSVersion.Version >= new Version(6, 4)) Assert.Contains("noswap", options);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));

        // A file sized before it is written (as a restore decrypts page images) gets huge pages; the wipe unmounts.
        string pages = Path.Combine(dir, "pages-1.img");
        using (var f = File.OpenHandle(pages, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(f, 8 << 20);
            RandomAccess.Write(f, new byte[8 << 20], 0);
        }
        Assert.True(new StagedImages(dir).Wipe());
        Assert.False(Directory.Exists(dir));
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Split(' ')[4] == dir);

        // A leftover mounted operation (its process was killed) is unmounted and removed by the container's wipe.
        string leftover = staging.Create("ctr-2", "checkpoint");
        File.WriteAllText(Path.Combine(leftover, "inventory.img"), "x");
        Assert.Empty(staging.WipeContainer("ctr-2"));
        Assert.False(Directory.Exists(leftover));
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Split(' ')[4] == leftover);

        // Without huge pages the operation folder is a plain folder of the root.
        string plain = new Staging(root).Create("ctr-3", "checkpoint");
        Assert.False(Staging.IsMountPoint(plain));
    }
}
