using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Packaging;
using Sealpoint.Packaging.Incremental;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Tests;

/// <summary>A PKI with three node identities (A seals, B restores, C is nobody's recipient) and per-node state folders.</summary>
public sealed class TestNodes : IDisposable
{
    private readonly TempDir _temp = TempDir.Create("oci-nodes");

    public TestNodes()
    {
        Pki = new Pki(_temp.Dir("pki"));
        Pki.InitCa("sealpoint-test-ca", KeyAlgorithm.P256, 2, force: false);
        foreach (var n in new[] { "nodeA", "nodeB", "nodeC" }) Pki.Issue(n, KeyAlgorithm.P256, 1, force: false);
        StateA = new NodeState(_temp.File("state-a"));
        StateB = new NodeState(_temp.File("state-b"));
    }

    public Pki Pki { get; }
    public NodeState StateA { get; }
    public NodeState StateB { get; }
    public string PkiRoot => Pki.Root;
    public string Temp => _temp.Path;

    public Recipient Recipient(string name) => Pki.ResolveRecipient(name);
    public Identity Identity(string name) => Core.Keys.Identity.Load(Pki.KeyPath(name));

    /// <summary>Seals a plaintext image folder on node A, recording keyed page hashes as the runtime does.</summary>
    public Envelope SealOnA(string plain, string sealedDir, string[] recipients, Envelope? parent = null)
    {
        using var recorder = PageHashRecorder.ForNode(StateA);
        var envelope = CheckpointSealer.SealDirectory(plain, sealedDir, new SealOptions
        {
            Recipients = recipients.Select(Recipient).ToList(),
            Parent = parent is null ? null : new ParentCheckpoint(parent.CheckpointId, parent.LineageId, parent.Generation),
            PageObserver = recorder,
            Sync = false,
        });
        recorder.Save(StateA, envelope);
        return envelope;
    }

    public void Dispose() => _temp.Dispose();
}

/// <summary>A CRIU-like image folder: random memory (pages-*.img), small metadata images, stats, a parent symlink.</summary>
public static class SyntheticCheckpoint
{
    public const int Page = 4096;

    public static string Create(string dir, int pages1, int pages2 = 3, int seed = 1, string? secret = null)
    {
        Directory.CreateDirectory(dir);
        var rng = new Random(seed);
        var a = new byte[(long)pages1 * Page];
        rng.NextBytes(a);
        if (secret is not null) System.Text.Encoding.ASCII.GetBytes(secret).CopyTo(a, a.Length / 2 + 17);
        File.WriteAllBytes(Path.Combine(dir, "pages-1.img"), a);
        var b = new byte[pages2 * Page - 100]; // a short last page
        rng.NextBytes(b);
        File.WriteAllBytes(Path.Combine(dir, "pages-2.img"), b);
        var core = new byte[20000];
        rng.NextBytes(core);
        if (secret is not null) System.Text.Encoding.ASCII.GetBytes(secret).CopyTo(core, 100);
        File.WriteAllBytes(Path.Combine(dir, "core-1.img"), core);
        File.WriteAllBytes(Path.Combine(dir, "inventory.img"), [0x16, 0x31, 0x31, 0x58, 1, 2, 3]);
        File.WriteAllBytes(Path.Combine(dir, "stats-dump"), [1, 2, 3, 4]);
        File.CreateSymbolicLink(Path.Combine(dir, "parent"), "../previous");
        return dir;
    }

    /// <summary>A copy of <paramref name="from"/> whose pages-1.img has <paramref name="count"/> pages re-randomized from page <paramref name="first"/>.</summary>
    public static string ChangePages(string from, string to, long first, long count, int seed)
    {
        Copy(from, to);
        var path = Path.Combine(to, "pages-1.img");
        var data = File.ReadAllBytes(path);
        var fresh = new byte[count * Page];
        new Random(seed).NextBytes(fresh);
        fresh.CopyTo(data, first * Page);
        File.WriteAllBytes(path, data);
        return to;
    }

    /// <summary>A copy with <paramref name="count"/> new pages inserted at page <paramref name="at"/> (everything after shifts).</summary>
    public static string InsertPages(string from, string to, long at, int count, int seed)
    {
        Copy(from, to);
        var path = Path.Combine(to, "pages-1.img");
        var data = File.ReadAllBytes(path);
        var fresh = new byte[count * Page];
        new Random(seed).NextBytes(fresh);
        File.WriteAllBytes(path, [.. data.AsSpan(0, (int)(at * Page)), .. fresh, .. data.AsSpan((int)(at * Page))]);
        return to;
    }

    public static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var e in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (e.LinkTarget is not null) File.CreateSymbolicLink(Path.Combine(to, e.Name), e.LinkTarget);
            else File.Copy(e.FullName, Path.Combine(to, e.Name));
        }
    }

    /// <summary>Every file of both folders is byte-identical (and symlinks point the same way).</summary>
    public static void AssertSameTree(string expected, string actual)
    {
        var a = new DirectoryInfo(expected).EnumerateFileSystemInfos().Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        var b = new DirectoryInfo(actual).EnumerateFileSystemInfos().Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(a, b);
        foreach (var name in a)
        {
            var x = new FileInfo(Path.Combine(expected, name));
            var y = new FileInfo(Path.Combine(actual, name));
            Assert.Equal(x.LinkTarget, y.LinkTarget);
            if (x.LinkTarget is null)
                Assert.True(File.ReadAllBytes(x.FullName).AsSpan().SequenceEqual(File.ReadAllBytes(y.FullName)), $"{name} differs between {expected} and {actual}");
        }
    }
}

/// <summary>Runs the sealpoint CLI in-process.</summary>
public static class Cli
{
    public sealed record Result(int ExitCode, string Out, string Err)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Err}";
    }

    public static Result Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Sealpoint.Cli.Program.Run(args, stdout, stderr);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    public static Result Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"sealpoint {string.Join(' ', args)} failed: {r}");
        return r;
    }
}
