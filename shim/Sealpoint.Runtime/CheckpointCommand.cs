using Sealpoint.Packaging;
using Sealpoint.Packaging.Lineage;
using Sealpoint.Core.Format;
using Sealpoint.Packaging.Incremental;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Keys;
using Sealpoint.Core.Policy;

namespace Sealpoint.Runtime;

/// <summary>
/// runc checkpoint, sealed: the policy is decided and the recipients loaded before anything is dumped; runc dumps
/// into private memory-backed staging with every flag the engine gave; the images are sealed into the image path
/// the engine asked for; staging is wiped. If sealing fails after the dump, the plaintext stays in staging
/// (memory only) and the error says where and how to recover.
/// </summary>
public static class CheckpointCommand
{
    /// <summary>Test switch (documented in the runtime README): makes sealing fail right after a successful dump.</summary>
    public const string FailSealingVariable = "SEALPOINT_TEST_FAIL_SEALING";

    public static int Run(RuncArguments args, NodeConfig config)
    {
        var timer = new PhaseTimer("sealpoint-runc");
        var runc = new RealRunc(config);
        if (args.Problem is not null || args.ContainerId is not { } id)
            throw new SealpointException(ErrorKind.Usage,
                args.Problem ?? $"checkpoint needs exactly one container id, got {args.Positionals.Count} ({string.Join(" ", args.Positionals.Select(NodeConfig.Printable))})",
                "give runc checkpoint [options] <container-id>");

        // The crypto library's, HMAC's and JSON's one-time set-up on the spare core while runc state runs: the certificates
        // are parsed and the envelope written later on this thread. Wasted only on a container that is not sealed.
        EnvelopeFile.StartWarmUp(writing: true);

        // 1. Decide before touching the container: any error here leaves it running and untouched.
        using var state = runc.State(args, id, out string stateError)
            ?? throw new SealpointException(ErrorKind.NotFound, $"cannot read the state of container {id}: {(stateError.Length > 0 ? stateError : "runc state failed")}",
                "check the container id and the --root the engine uses");
        string bundle = state.RootElement.TryGetProperty("bundle", out var b) && b.GetString() is { Length: > 0 } bs
            ? bs
            : throw new SealpointException(ErrorKind.External, $"runc state of {id} names no bundle", "check the runc version");
        timer.Mark("runc state");
        var decision = SealingPolicy.Decide(ContainerBundle.ReadAnnotations(bundle), config);
        if (!decision.Seal) return runc.Exec(args.Tokens); // not sealed: runc does exactly what the engine asked

        var recipients = SealingPolicy.LoadRecipients(decision, config, NodeState.VerifiedCertificatesCache());
        timer.Mark("policy and recipient certificates");
        bool preDump = args.IsSet("pre-dump");
        if (args.IsSet("lazy-pages") || args.Value("page-server") is not null)
            throw new SealpointException(ErrorKind.Policy,
                "--lazy-pages and --page-server send memory pages over the network instead of into image files, so they cannot be sealed",
                "checkpoint without --lazy-pages/--page-server, or set io.sealpoint.encrypt=false on this container if that is acceptable");
        string imagePath = Path.GetFullPath(args.Value("image-path") ?? "checkpoint").TrimEnd('/');
        // runc overwrites an earlier checkpoint in the image path (podman checkpoints -R into the same folder each
        // time): an earlier checkpoint is replaced once the new one is sealed. Anything else there is refused.
        bool replace = Directory.Exists(imagePath) && Directory.EnumerateFileSystemEntries(imagePath).Any();
        if (File.Exists(imagePath) || (replace && !IsCheckpoint(imagePath)))
            throw new SealpointException(ErrorKind.Usage, $"the image path {imagePath} holds files that are not a checkpoint",
                "give an empty or new --image-path (or one holding an earlier checkpoint, which is then replaced)");

        var staging = new Staging(config.Staging, config.StagingHugePages);
        var staged = new StagedImages(staging.Create(id, preDump ? "pre-dump" : "checkpoint"));
        bool keep = false;
        try
        {
            string plain = staged.Mirror(imagePath);
            staged.CreateParents(plain);
            Directory.CreateDirectory(plain, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            // A CRIU parent (--parent-path) gives the lineage; otherwise the container's previous checkpoint on this node does.
            var lineages = new ContainerLineages(NodeState.FromEnvironment());
            ParentCheckpoint? parent = StageParent(args, config, staged, imagePath) ?? lineages.ParentFor(id);

            // 2. runc dumps into staging, with every other flag as the engine gave it; the memory-page images are sealed
            // into the image path while CRIU still writes them (the dump is one thread, the other cores are free).
            using var pageIndex = NodePageIndex.TryStart(warning => Console.Error.WriteLine($"sealpoint-runc: warning: {warning}"));
            var options = Options(decision, recipients, parent, id) with { PageObserver = pageIndex?.Recorder };
            string sealInto = replace ? $"{imagePath}.sealpoint-new-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}" : imagePath;
            using var sealer = FollowingSealer.Start(plain, sealInto, options);
            timer.Mark("staging");
            int exit = runc.Run(args.WithCommandValue("image-path", plain));
            timer.Mark("runc checkpoint");
            if (exit != 0)
            {
                // A dump that completed (inventory.img is written last) of a container that is gone is the container's
                // only state: keep it and say so, rather than wipe it with the error.
                if (!preDump && File.Exists(Path.Combine(plain, "inventory.img")) && runc.Status(args, id) is null or "stopped")
                {
                    keep = true;
                    KeepPending(staged, plain, imagePath, id, decision, recipients, parent, $"runc checkpoint exited with {exit} after a complete dump");
                    RuncLog.Error(args, PendingMessage(staged, plain, id, $"runc checkpoint failed (exit {exit}) after CRIU wrote a complete dump, and container {id} is no longer running"));
                }
                return exit;
            }

            // 3. Seal the rest into the image path the engine asked for.
            try
            {
                if (config.FailSealing || Environment.GetEnvironmentVariable(FailSealingVariable) == "1")
                    throw new SealpointException(ErrorKind.Io, "sealing failed on purpose ([testing] fail_sealing or " + FailSealingVariable + ")",
                        "turn the test switch off");
                var envelope = sealer.Complete();
                if (replace) SwapIn(sealInto, imagePath);
                timer.Mark($"seal (of which {sealer.SealedWhileFollowing >> 20} MiB while runc dumped)");
                pageIndex?.Save(envelope);
                if (!preDump) RememberLineage(lineages, id, envelope);
                timer.Mark("page index and lineage");
            }
            catch (Exception e) when (e is SealpointException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                keep = true;
                string why = e is SealpointException se ? se.Describe() : e.Message;
                KeepPending(staged, plain, imagePath, id, decision, recipients, parent, why);
                throw new SealpointException(e is SealpointException s2 ? s2.Kind : ErrorKind.Io,
                    PendingMessage(staged, plain, id, $"the checkpoint of {id} was dumped but sealing it into {imagePath} failed: {why}"));
            }
            return 0;
        }
        finally
        {
            if (!keep) staged.Wipe();
            timer.Mark("wipe staging");
        }
    }

    /// <summary>The checkpoint is complete whatever happens here: a failure to remember it only costs the next one its lineage.</summary>
    private static void RememberLineage(ContainerLineages lineages, string id, Envelope envelope)
    {
        try { lineages.Record(id, envelope); }
        catch (Exception e) when (e is SealpointException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"sealpoint-runc: warning: checkpoint {envelope.CheckpointId} of {id} is sealed, but its lineage was not recorded " +
                $"({(e is SealpointException s ? s.Describe() : e.Message)}); the next checkpoint of {id} starts a new lineage");
        }
    }

    /// <summary>An image folder a checkpoint was written to: it holds CRIU's inventory or a sealed envelope.</summary>
    private static bool IsCheckpoint(string dir) =>
        File.Exists(Path.Combine(dir, "inventory.img")) || SealedCheckpoint.IsSealed(dir);

    /// <summary>A new sealed checkpoint, complete in <paramref name="fresh"/>, replaces the old one: the old one goes only now.</summary>
    private static void SwapIn(string fresh, string imagePath)
    {
        string old = fresh.Replace(".sealpoint-new-", ".sealpoint-old-", StringComparison.Ordinal);
        try
        {
            Directory.Move(imagePath, old);
            Directory.Move(fresh, imagePath);
        }
        catch (IOException e)
        {
            throw new SealpointException(ErrorKind.Io, $"the new sealed checkpoint is complete in {fresh} but could not replace the old one in {imagePath}: {e.Message}",
                $"move {fresh} to {imagePath} by hand");
        }
        FileSystem.RemoveTree(old);
    }

    internal static SealOptions Options(SealingDecision decision, IReadOnlyList<Recipient> recipients, ParentCheckpoint? parent, string id) => new()
    {
        Recipients = recipients,
        PagesCipher = decision.PagesCipher,
        MetadataCipher = decision.MetadataCipher,
        Parent = parent,
        Annotations = decision.EnvelopeAnnotations(id),
        Sync = true,
    };

    /// <summary>
    /// --parent-path (relative to the image path): a sealed parent chain is opened into staging at the same relative
    /// place, and its lineage continues in the new checkpoint.
    /// </summary>
    private static ParentCheckpoint? StageParent(RuncArguments args, NodeConfig config, StagedImages staged, string imagePath)
    {
        string? parentPath = args.Value("parent-path");
        if (parentPath is null) return null;
        if (Path.IsPathRooted(parentPath)) return null; // runc refuses it ("--parent-path must be relative"): let it say so
        string parentReal = Path.GetFullPath(Path.Combine(imagePath, parentPath)).TrimEnd('/');
        if (!SealedCheckpoint.IsSealed(parentReal))
        {
            if (Directory.Exists(parentReal)) staged.LinkPlaintextParent(parentReal, allowed: true, "the parent checkpoint (--parent-path)");
            return null; // a missing parent: runc reports it
        }
        using var identity = RestoreCommand.LoadIdentity(config, "open the sealed parent checkpoint (--parent-path)");
        var envelope = staged.OpenChain(parentReal, identity, config.AllowPlaintextRestore);
        return new ParentCheckpoint(envelope.CheckpointId, envelope.LineageId, envelope.Generation);
    }

    private static void KeepPending(StagedImages staged, string plain, string imagePath, string id, SealingDecision decision,
        IReadOnlyList<Recipient> recipients, ParentCheckpoint? parent, string error)
    {
        try
        {
            new PendingSeal
            {
                ContainerId = id, Images = plain, ImagePath = imagePath,
                Recipients = decision.Recipients.Select(r => r.Value).ToList(),
                PagesCipher = decision.PagesCipher.Name(), MetadataCipher = decision.MetadataCipher.Name(),
                Parent = parent, Annotations = decision.EnvelopeAnnotations(id), Error = error, Failed = DateTimeOffset.UtcNow,
            }.Write(staged.Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The marker is what protects the folder from the hook's wipe; say so if it could not be written.
            RuncLog.Warning(null, $"could not write {PendingSeal.PathIn(staged.Directory)}: {e.Message}; do not stop the container's hooks before recovering");
        }
    }

    private static string PendingMessage(StagedImages staged, string plain, string id, string what) =>
        $"{what}. The container's state is NOT lost: the plaintext checkpoint is kept in memory only (tmpfs) at {plain}. " +
        $"Fix: once the cause is fixed, seal it with '{CorePath()} seal-pending {staged.Directory}', " +
        $"or restore from it directly with 'runc restore --image-path {plain} {id}' (then remove {staged.Directory}); it is lost at reboot";

    internal static string CorePath() => Environment.ProcessPath ?? "sealpoint-runc-core";
}
