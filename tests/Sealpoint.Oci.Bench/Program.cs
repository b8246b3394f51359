using System.Diagnostics;
using System.Formats.Tar;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Oci.Registry;
using Sealpoint.Packaging;
using Sealpoint.Packaging.Incremental;
using Sealpoint.Packaging.Packing;
using Sealpoint.TestSupport;

namespace Sealpoint.Oci.Bench;

/// <summary>Incremental checkpoint upload benchmark (README.md): bytes a full and an incremental push send to a registry.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        int mib = 1024, percent = 5;
        bool restore = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--mib": mib = int.Parse(args[++i]); break;
                case "--percent": percent = int.Parse(args[++i]); break;
                case "--restore": restore = true; break;
                default:
                    Console.Error.WriteLine("usage: sealpoint-oci-bench [--mib 1024] [--percent 5] [--restore]");
                    return 2;
            }
        }
        try
        {
            Run(mib, percent, restore);
            return 0;
        }
        catch (Exception e) when (e is Core.SealpointException or OciException or ProcessFailedException or TestEnvironmentException or TimeoutException)
        {
            Console.Error.WriteLine($"sealpoint-oci-bench: {e.Message}");
            return 1;
        }
    }

    private static void Run(int mib, int percent, bool restore)
    {
        Tools.RequireRoot();
        string podman = Tools.Require("podman"), runc = Tools.Require("runc");
        using var temp = TempDir.Create("oci-bench");
        using var shm = TempDir.Create("oci-bench", inShm: true);
        var pki = new Pki(temp.Dir("pki"));
        pki.InitCa("bench-ca", KeyAlgorithm.P256, 1, force: false);
        pki.Issue("nodeA", KeyAlgorithm.P256, 1, force: false);
        pki.Issue("nodeB", KeyAlgorithm.P256, 1, force: false);
        var stateA = new NodeState(temp.File("state-a"));
        var stateB = new NodeState(temp.File("state-b"));
        var recipients = new[] { pki.ResolveRecipient("nodeB") };
        using var registry = TestSupport.Registry.Start();
        string name = "spo-bench-" + Guid.NewGuid().ToString("N")[..8];
        string reference = $"{registry.Host}/bench/{name}";

        ProcessResult Podman(params string[] a)
        {
            var r = ProcessRunner.RunUnchecked(podman, ["--runtime", runc, .. a], new RunOptions { Timeout = TimeSpan.FromMinutes(10) });
            if (!r.Succeeded) throw new ProcessFailedException(r);
            return r;
        }
        long Counter() => long.TryParse(ProcessRunner.RunUnchecked(podman, ["--runtime", runc, "exec", name, "cat", "/tmp/counter"]).StandardOutput.Trim(), out long v) ? v : 0;
        void WaitCounter(long value, TimeSpan timeout) => Poll.Until(() => Counter() >= value, timeout, () => $"{name} to count to {value}", TimeSpan.FromMilliseconds(200));

        try
        {
            Console.WriteLine($"container {name}: memhog {mib} MiB, {percent} % of pages change between checkpoints; registry {registry.Host}");
            Podman("run", "-d", "--network", "none", "--name", name, InstallPaths.TestImage, "memhog", mib.ToString(), "SPBENCH-SECRET", "/tmp/counter", percent.ToString());
            WaitCounter(3, TimeSpan.FromMinutes(5));

            var (sealed1, env1) = CheckpointAndSeal(Podman, name, shm, temp, pki, stateA, recipients, null, "g1", leaveRunning: true);
            var push1 = Push(sealed1, $"{reference}:g1", stateA, registry);

            long before = Counter();
            Podman("kill", "--signal", "USR1", name);
            WaitCounter(before + 2, TimeSpan.FromMinutes(5));
            var (sealed2, env2) = CheckpointAndSeal(Podman, name, shm, temp, pki, stateA, recipients, env1, "g2", leaveRunning: false);
            var push2 = Push(sealed2, $"{reference}:g2", stateA, registry);

            Console.WriteLine();
            Console.WriteLine($"memory in checkpoint:     {MemoryBytes(env1),15:N0} bytes (generation 1), {MemoryBytes(env2):N0} (generation 2)");
            Console.WriteLine($"full push (generation 1): {push1.Sent,15:N0} bytes sent, registry storage +{push1.StorageGrowth:N0} bytes, {push1.Chunks} memory chunks, {push1.Seconds:F1} s");
            Console.WriteLine($"incremental push (gen 2): {push2.Sent,15:N0} bytes sent, registry storage +{push2.StorageGrowth:N0} bytes, {push2.NewChunks} new and {push2.ReusedChunks} reused chunks, {push2.Seconds:F1} s");
            double ratio = (double)push2.Sent / push1.Sent;
            Console.WriteLine($"incremental / full:       {ratio * 100,14:F2} %  (target: at most 10 %) {(ratio <= 0.10 ? "MET" : "NOT MET")}");

            // Node B: pull generation 2 (rebuilds memory from both generations' layers and verifies everything).
            using var identity = Identity.Load(pki.KeyPath("nodeB"));
            var clock = Stopwatch.StartNew();
            using var client = new RegistryClient(registry.Host, new RegistryClientOptions { Insecure = true });
            var pulled = Unpacker.PullToArchiveAsync(new RegistryRepository(client, $"bench/{name}"), "g2", shm.File("restore.tar"),
                new PullOptions { Identity = identity, State = stateB, WorkDir = temp.Path }, CancellationToken.None).GetAwaiter().GetResult();
            Console.WriteLine($"pull on node B (gen 2):   {client.Stats.BytesReceived,15:N0} bytes received, {pulled.Chunks} chunks ({pulled.ReusedChunks} from generation 1), verified, {clock.Elapsed.TotalSeconds:F1} s");

            if (restore)
            {
                Podman("rm", "-f", name);
                string opened = OpenArchive(shm, shm.File("restore.tar"), identity);
                File.Delete(shm.File("restore.tar"));
                Podman("container", "restore", "--import", opened);
                File.Delete(opened);
                long after = Counter();
                Podman("kill", "--signal", "USR2", name);
                WaitCounter(after + 2, TimeSpan.FromMinutes(5));
                // memhog checks every page against its checksums on SIGUSR2 and exits 3 on a mismatch, before counting on.
                var state = Podman("inspect", "--format", "{{.State.Status}}", name).StandardOutput.Trim();
                if (state != "running") throw new TimeoutException($"memhog stopped after the memory check (state {state}): {Podman("logs", name).StandardOutput}");
                Console.WriteLine($"restore on node B:        container counts on from {after}; memhog checked all {mib * 256} pages after restore: intact");
            }
        }
        finally
        {
            ProcessRunner.RunUnchecked(podman, ["rm", "-f", "--ignore", name]);
        }
    }

    private static long MemoryBytes(Envelope e) => e.Files.Where(f => f.Kind == FileEntryKinds.Pages).Sum(f => f.Size ?? 0);

    /// <summary>podman export (uncompressed), then its CRIU images sealed for B with keyed page hashes recorded: node A's sealpoint-runc.</summary>
    private static (string, Envelope) CheckpointAndSeal(Func<string[], ProcessResult> podman, string name, TempDir shm, TempDir temp, Pki pki,
        NodeState stateA, Recipient[] recipients, Envelope? parent, string label, bool leaveRunning)
    {
        var clock = Stopwatch.StartNew();
        string archive = shm.File($"{label}.tar");
        podman(leaveRunning
            ? ["container", "checkpoint", "--leave-running", "--compress", "none", "--export", archive, name]
            : ["container", "checkpoint", "--compress", "none", "--export", archive, name]);
        string plain = shm.Dir($"{label}-plain");
        ProcessRunner.Run("tar", ["-xf", archive, "-C", plain]);
        File.Delete(archive);
        string bundle = temp.Dir($"{label}-bundle");
        using var recorder = PageHashRecorder.ForNode(stateA);
        var envelope = CheckpointSealer.SealDirectory(Path.Combine(plain, "checkpoint"), Path.Combine(bundle, "checkpoint"), new SealOptions
        {
            Recipients = recipients, PageObserver = recorder, Sync = false,
            Parent = parent is null ? null : new ParentCheckpoint(parent.CheckpointId, parent.LineageId, parent.Generation),
        });
        recorder.Save(stateA, envelope);
        Directory.Delete(Path.Combine(plain, "checkpoint"), recursive: true);
        // The engine's files stay beside checkpoint/, as in podman's bundle; pack seals them.
        foreach (var e in new DirectoryInfo(plain).EnumerateFileSystemInfos())
        {
            if (e is DirectoryInfo d) CopyDir(d.FullName, Path.Combine(bundle, e.Name));
            else File.Copy(e.FullName, Path.Combine(bundle, e.Name));
        }
        Directory.Delete(plain, recursive: true);
        Console.WriteLine($"{label}: checkpoint {envelope.CheckpointId} generation {envelope.Generation} exported and sealed in {clock.Elapsed.TotalSeconds:F1} s");
        return (bundle, envelope);
    }

    private static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.EnumerateDirectories(from)) CopyDir(d, Path.Combine(to, Path.GetFileName(d)));
    }

    private sealed record PushFigures(long Sent, long StorageGrowth, int Chunks, int NewChunks, int ReusedChunks, double Seconds);

    private static PushFigures Push(string bundle, string reference, NodeState stateA, TestSupport.Registry registry)
    {
        long storageBefore = DirectorySize(registry.StorageDir);
        var clock = Stopwatch.StartNew();
        var r = Oci.Reference.Parse(reference);
        using var client = new RegistryClient(r.Registry, new RegistryClientOptions { Insecure = true });
        using var source = CheckpointSource.Open(bundle);
        using var image = Packer.Pack(source, new PackOptions
        {
            State = stateA, Recipients = source.Envelope.Recipients.Select(x => new Pki(Path.Combine(Path.GetDirectoryName(stateA.Root)!, "pki")).ResolveRecipient(x.Subject!.Replace("CN=", ""))).ToList(),
        });
        var published = Publisher.PublishAsync(image, new RegistryRepository(client, r.Repository), r.Tag, stateA, CancellationToken.None).GetAwaiter().GetResult();
        Console.WriteLine($"pushed {reference}@{published.Manifest.Digest}: {client.Stats}; {published.BlobsPresent} blob(s) the registry already had");
        return new PushFigures(client.Stats.BytesSent, DirectorySize(registry.StorageDir) - storageBefore, image.Stats.Chunks, image.Stats.NewChunks,
            image.Stats.ReusedChunks, clock.Elapsed.TotalSeconds);
    }

    private static long DirectorySize(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    /// <summary>Opens the sealed checkpoint/ of a pulled archive for podman with runc (node B's sealpoint-runc does this at restore).</summary>
    private static string OpenArchive(TempDir shm, string archive, Identity identity)
    {
        string dir = shm.Dir("restore");
        ProcessRunner.Run("tar", ["-xf", archive, "-C", dir]);
        string checkpoint = Path.Combine(dir, "checkpoint");
        using (var sealedCheckpoint = SealedCheckpoint.Open(checkpoint, identity)) sealedCheckpoint.DecryptTo(checkpoint + ".opened");
        Directory.Delete(checkpoint, recursive: true);
        Directory.Move(checkpoint + ".opened", checkpoint);
        string opened = shm.File("restore-opened.tar");
        TarFile.CreateFromDirectory(dir, opened, includeBaseDirectory: false);
        Directory.Delete(dir, recursive: true);
        return opened;
    }
}
