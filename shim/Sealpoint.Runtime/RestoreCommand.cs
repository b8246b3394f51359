using Sealpoint.Packaging;
using Sealpoint.Packaging.Lineage;
using System.Diagnostics;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Core.Policy;

namespace Sealpoint.Runtime;

/// <summary>
/// runc restore of a sealed checkpoint, opened (with its parent chain) into private memory-backed staging with the
/// node's identity: the envelope, every file's header and tag table are checked first; small images are verified and
/// decrypted there, large memory images are served there decrypted read by read as CRIU reads them (each page verified
/// before CRIU receives it). runc restores from staging with every other flag the engine gave. It is started at once
/// and waits at its and CRIU's first reads (held files) until the checkpoint is verified and in place; staging is wiped
/// once CRIU has read it. A plaintext checkpoint goes to runc unchanged when the policy allows it.
/// </summary>
public static class RestoreCommand
{
    /// <summary>Tests only: milliseconds to wait before the held files are released (runc and CRIU waiting at them).</summary>
    public const string HoldForTestsVariable = "SEALPOINT_TEST_HOLD_RESTORE_MS";

    /// <summary>CRIU's inventory.img starts with this magic (little-endian); a sealed one does not.</summary>
    private static readonly byte[] InventoryMagic = [0x16, 0x31, 0x31, 0x58];

    public static int Run(RuncArguments args, NodeConfig config)
    {
        var timer = new PhaseTimer("sealpoint-runc");
        var runc = new RealRunc(config);
        // A command line we cannot follow (e.g. podman's probe `restore --lsm-mount-context`): runc answers it.
        if (args.Problem is not null || args.ContainerId is not { } id) return runc.Exec(args.Tokens);

        string imagePath = Path.GetFullPath(args.Value("image-path") ?? "checkpoint").TrimEnd('/');
        if (!SealedCheckpoint.IsSealed(imagePath))
        {
            CheckPlaintext(args, config, imagePath);
            return runc.Exec(args.Tokens);
        }

        // Nothing of the checkpoint reaches runc or CRIU before it is checked (served memory pages: each as CRIU reads
        // it, and a bad one stops CRIU before any task runs): a wrong key or a damaged checkpoint restores nothing.
        // runc and CRIU start at once all the same, and wait for the checkpoint at its first two reads
        // (HeldReads): their start-up, ~60 ms here, overlaps loading the key and opening the checkpoint.
        string keyPath = IdentityPath(config, "open sealed checkpoints");
        var staging = new Staging(config.Staging, config.StagingHugePages);
        var staged = new StagedImages(staging.Create(id, "restore")) { ServePages = config.ServePages };
        string marker = Path.Combine(staging.ContainerDir(id), Staging.RestoringMarker);
        bool detach = args.IsSet("detach", "d");
        RealRunc.Child? early = null;
        var released = new ManualResetEventSlim();
        try
        {
            File.WriteAllText(marker, "");
            var arguments = args.WithCommandValue("image-path", staged.Mirror(imagePath));
            // Without --detach runc stays until the container exits; staging is wiped as soon as it runs.
            Action<ChildProcess>? whileRunning = detach ? null
                : process => WipeWhenRunning(runc, args, id, process, released, () => staged.ForeignMount() is null && Cleanup(marker, staged));
            // Lazy pages: CRIU's restore is driven by another process as well; that stays as it was, serial.
            if (!args.IsSet("lazy-pages") && staged.Hold(imagePath, HeldReads.WhenVerified, HeldReads.Last))
            {
                early = runc.Start(arguments);
                whileRunning?.Invoke(early.Process);
            }
            timer.Mark(early is null ? "staging" : "staging, runc started");
            // The envelope MAC's and the lineage records' code's one-time set-up (nothing secret) runs on the spare core
            // while the key loads. Not before runc has started: the two threads then contended, and runc started later
            // (~8 ms; the same with the key loading there instead, measured).
            Task.Run(() =>
            {
                EnvelopeFile.WarmUp(writing: false);
                LineageStateJson.WarmUp();
            });
            using var identity = LoadIdentityFrom(config, keyPath);
            timer.Mark("node identity");
            // Rollback and fork protection (docs/registry.md): judged on the authenticated envelope, before decrypting.
            var lineage = new LineageGuard(NodeState.FromEnvironment());
            var restored = staged.OpenChain(imagePath, identity, config.AllowPlaintextRestore, envelope => lineage.Check(envelope, force: false));
            timer.Mark("verify and decrypt");
            // Recorded before CRIU may restore: a failed restore then still refuses older generations, never fewer.
            lineage.Record(restored);
            timer.Mark("lineage");
            if (staged.Served.Count > 0) timer.Mark($"pages served, not decrypted: {string.Join(", ", staged.Served)}");
            if (early is not null)
            {
                if (Environment.GetEnvironmentVariable(HoldForTestsVariable) is { } holdMs && int.TryParse(holdMs, out int ms)) Thread.Sleep(ms);
                staged.ReleaseHeld();
            }
            released.Set();
            RecordContainerLineage(args, id, restored);
            int status = early?.Wait() ?? runc.Run(arguments, whileRunning);
            timer.Mark("runc restore");
            return status == 0 ? 0 : ExplainServedFailure(staged, status);
        }
        catch when (early is not null)
        {
            // runc and CRIU are waiting for the checkpoint: end of file makes them fail before any task exists, and
            // the error that stopped the restore is this one, reported once runc has cleaned up.
            lock (staged) staged.EndHolds();
            early.Wait();
            throw;
        }
        finally
        {
            early?.Dispose();
            Cleanup(marker, staged);
            timer.Mark("wipe staging");
        }
    }

    /// <summary>
    /// The restored container's next checkpoint continues this lineage. Recorded while CRIU restores (CRIU does not
    /// need it), also when the restore then fails, as before. Once CRIU may restore, a failure here must not fail the
    /// restore (the container may be running): it is a warning, and the next checkpoint starts a new lineage.
    /// </summary>
    private static void RecordContainerLineage(RuncArguments args, string id, Envelope restored)
    {
        try { new ContainerLineages(NodeState.FromEnvironment()).Record(id, restored); }
        catch (SealpointException e)
        {
            RuncLog.Warning(args, $"the container's lineage was not recorded, so its next checkpoint starts a new lineage: {e.Describe()}");
        }
    }

    /// <summary>
    /// What runc and CRIU read first from the image directory, so a restore can start them before the checkpoint is
    /// open and hold them there. runc reads descriptors.json before it starts CRIU (released as soon as it is
    /// verified: runc restores nothing with it); CRIU reads inventory.img before any other image, in every version
    /// (cr_restore_tasks, check_img_inventory), released when the whole chain is verified and in place.
    /// </summary>
    internal static class HeldReads
    {
        public static readonly string[] WhenVerified = ["descriptors.json"];
        public static readonly string[] Last = ["inventory.img"];
    }

    /// <summary>
    /// runc failed: when a served memory image failed its check while CRIU read it, that is the cause (runc only saw
    /// CRIU's read error), and the restore stopped before any task ran. Otherwise runc's own exit status stands.
    /// </summary>
    private static int ExplainServedFailure(StagedImages staged, int exit)
    {
        if (staged.ServeFailure is not { } failure) return exit;
        throw new IntegrityException($"{failure}; CRIU's read of it failed, so the restore stopped before the container ran (the checkpoint on disk is unchanged)",
            "the sealed checkpoint was modified or damaged; restore an intact copy");
    }

    /// <summary>Loads the node's identity from [keys] identity: a name in the PKI or a private key path.</summary>
    public static Identity LoadIdentity(NodeConfig config, string purpose) => LoadIdentityFrom(config, IdentityPath(config, purpose));

    /// <summary>The private key [keys] identity names; fails when the node has none.</summary>
    private static string IdentityPath(NodeConfig config, string purpose)
    {
        if (config.Identity is null)
            throw new SealpointException(ErrorKind.Key, $"this node has no decryption identity to {purpose}",
                $"set [keys] identity in {config.Source} to this node's name in {config.PkiRoot} (or to its private key path)");
        return config.Identity.StartsWith('/') ? config.Identity : new Pki(config.PkiRoot).KeyPath(config.Identity);
    }

    private static Identity LoadIdentityFrom(NodeConfig config, string keyPath)
    {
        try { return Identity.Load(keyPath); }
        catch (SealpointException e)
        {
            throw new SealpointException(e.Kind, $"the node identity ([keys] identity = \"{config.Identity}\") cannot be loaded: {e.Message}", e.Fix, e);
        }
    }

    /// <summary>
    /// A checkpoint without an envelope: restored only if the node allows plaintext restore or this container
    /// opted out of sealing. Sealed files whose envelope is gone are reported as such, not as plaintext.
    /// </summary>
    private static void CheckPlaintext(RuncArguments args, NodeConfig config, string imagePath)
    {
        string inventory = Path.Combine(imagePath, "inventory.img");
        if (!File.Exists(inventory)) return; // no checkpoint at all: runc says so
        if (!StartsWithInventoryMagic(inventory))
            throw new IntegrityException($"{imagePath} holds image files that are neither plaintext CRIU images nor a complete sealed checkpoint ({Core.Format.ImageFiles.EnvelopeName} is missing)",
                "the sealed checkpoint is incomplete; copy it again with its sealpoint.envelope");
        if (config.AllowPlaintextRestore) return;
        string bundle = Path.GetFullPath(args.Value("bundle", "b") ?? ".");
        SealingDecision decision;
        try { decision = SealingPolicy.Decide(ContainerBundle.ReadAnnotations(bundle), config); }
        catch (SealpointException e)
        {
            throw new SealpointException(ErrorKind.Policy, $"the checkpoint in {imagePath} is not sealed, and this container's sealing policy is invalid: {e.Message}", e.Fix, e);
        }
        if (decision.Seal)
            throw new SealpointException(ErrorKind.Policy,
                $"the checkpoint in {imagePath} is not sealed, and this node restores only sealed checkpoints for containers that are sealed ({decision.Reason})",
                $"restore a sealed checkpoint, or set [policy] allow_plaintext_restore = true in {config.Source}");
    }

    private static bool StartsWithInventoryMagic(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual(InventoryMagic);
    }

    /// <summary>
    /// The restoring marker (the hooks have run once the container runs) and the plaintext images. Called by the
    /// watcher thread and at the end, possibly at the same moment: once, under a lock.
    /// </summary>
    private static bool Cleanup(string marker, StagedImages staged)
    {
        lock (staged)
        {
            try { File.Delete(marker); } catch (IOException) { }
            return staged.Wipe();
        }
    }

    private static void WipeWhenRunning(RealRunc runc, RuncArguments args, string id, ChildProcess process, ManualResetEventSlim released, Func<bool> wipe)
    {
        var watcher = new Thread(() =>
        {
            // runc records the container as running after CRIU's post-restore notification: every image has been read.
            // CRIU then still unmounts what it mounted in its work folder (staging, without --work-path): wait for that.
            // Nothing can run before the checkpoint is released to CRIU, so no `runc state` competes with opening it.
            // Any failure here only means staging is wiped at the end instead; it must never end the process.
            try
            {
                while (!released.Wait(100) && !process.HasExited) { }
                bool running = false;
                while (!process.HasExited)
                {
                    running = running || runc.Status(args, id) is "running" or "paused" or "stopped";
                    if (running && wipe()) return;
                    Thread.Sleep(100);
                }
            }
            catch (Exception e)
            {
                RuncLog.Warning(null, $"staging will be wiped when runc exits ({e.Message})");
            }
        }) { IsBackground = true, Name = "staging-wipe" };
        watcher.Start();
    }
}
