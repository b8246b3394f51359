using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.TestSupport;

namespace Sealpoint.Runtime.Tests;

/// <summary>
/// sealpoint-runc driven like an engine drives runc, on real containers (busybox rootfs, secretholder holding a
/// random secret in its heap), real runc and CRIU 4.x.
/// </summary>
public sealed class RuncEndToEndTests : IDisposable
{
    private const string Counter = "/counter";
    private readonly SealpointNode _node = new();
    private readonly TempDir _temp = TempDir.Create("runc-e2e");

    public void Dispose()
    {
        _node.Dispose();
        _temp.Dispose();
    }

    private static RuncBundle Start(string secret, Dictionary<string, string>? annotations = null)
    {
        var bundle = RuncBundle.Create(["/bin/secretholder", secret, Counter], new RuncBundleOptions { Annotations = annotations });
        bundle.Run();
        bundle.WaitForCounter(Counter, 3);
        return bundle;
    }

    /// <summary>runtime --root STATE ARGS, whatever its exit code.</summary>
    private static ProcessResult Call(string runtime, RuncBundle bundle, params string[] args) =>
        ProcessRunner.RunUnchecked(runtime, ["--root", bundle.StateRoot, .. args], new RunOptions
        {
            Timeout = TimeSpan.FromMinutes(2),
            Environment = new Dictionary<string, string?> { ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
        });

    private static void AssertSealed(string imagePath)
    {
        Assert.True(File.Exists(Path.Combine(imagePath, "sealpoint.envelope")), $"{imagePath} holds no sealpoint.envelope");
        Assert.True(File.Exists(Path.Combine(imagePath, "inventory.img")), $"{imagePath} holds no inventory.img (podman and CRI-O check it)");
    }

    /// <summary>
    /// Restores detached through the runtime and checks the counter went on from where it was: the counter file is
    /// zeroed first (same size, as CRIU checks it), so only the restored process can put a value there.
    /// </summary>
    internal static void RestoreAndContinue(string runtime, RuncBundle bundle, string imagePath, long counterAtCheckpoint)
    {
        File.WriteAllText(bundle.HostPath(Counter), $"{0,20}\n");
        Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(imagePath)!, "restore-work"));
        var restore = bundle.RuntimeDetached(runtime, ["restore", "--detach", "--bundle", bundle.Dir, "--image-path", imagePath,
            "--work-path", Path.Combine(Path.GetDirectoryName(imagePath)!, "restore-work"), bundle.Id]);
        Assert.True(restore.Succeeded, restore.Describe());
        bundle.WaitForStatus("running");
        long first = bundle.WaitForCounter(Counter, 1);
        Assert.True(first >= counterAtCheckpoint, $"the counter restarted: {first} < {counterAtCheckpoint}");
        bundle.WaitForCounter(Counter, first + 3);
    }

    [Fact]
    public void CheckpointIsSealedAndRestoreContinues()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string image = Path.Combine(_temp.Path, "checkpoint"), work = _temp.Dir("work");

        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, "--work-path", work, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        Assert.Null(bundle.Status()); // runc destroyed it after the dump, as without --leave-running
        AssertSealed(image);
        SecretScan.AssertAbsent(secret, image, work);
        _node.AssertStagingEmpty();

        RestoreAndContinue(_node.Runtime, bundle, image, counter);
        _node.AssertStagingEmpty();
    }

    /// <summary>The control that makes the other scans meaningful: an unsealed dump of the same workload holds the secret.</summary>
    [Fact]
    public void OptedOutContainerIsDumpedByRuncUnchangedAndHoldsTheSecret()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret, new() { ["io.sealpoint.encrypt"] = "false" });
        string image = Path.Combine(_temp.Path, "plain");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        Assert.False(File.Exists(Path.Combine(image, "sealpoint.envelope")));
        SecretScan.AssertPresent(secret, image);
        // Its plaintext checkpoint is restorable: the container opted out, so its plaintext is expected.
        RestoreAndContinue(_node.Runtime, bundle, image, bundle.TryReadCounter(Counter) ?? 0);
    }

    [Fact]
    public void LeaveRunningTwiceAndOtherFlagsKeepTheirMeaning()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string first = Path.Combine(_temp.Path, "first"), second = Path.Combine(_temp.Path, "second");
        var a = Call(_node.Runtime, bundle, "checkpoint", "--image-path", first, "--leave-running", "--tcp-established", "--file-locks",
            "--leave-running", "--manage-cgroups-mode", "soft", bundle.Id);
        Assert.True(a.Succeeded, a.Describe());
        Assert.Equal("running", bundle.Status());
        long before = bundle.TryReadCounter(Counter) ?? 0;
        long beforeSecond = bundle.WaitForCounter(Counter, before + 2); // it keeps counting
        // Flags after the container id, --flag=value, single dash: as runc accepts them.
        var b = Call(_node.Runtime, bundle, "checkpoint", bundle.Id, "-leave-running=true", $"--image-path={second}");
        Assert.True(b.Succeeded, b.Describe());
        Assert.Equal("running", bundle.Status());
        AssertSealed(first);
        AssertSealed(second);
        SecretScan.AssertAbsent(secret, first, second);

        // Again into the first image path, as podman -R does each time: the earlier checkpoint is replaced.
        string firstId = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(first).CheckpointId;
        long beforeThird = bundle.WaitForCounter(Counter, beforeSecond + 2);
        var c = Call(_node.Runtime, bundle, "checkpoint", "--leave-running", "--image-path", first, bundle.Id);
        Assert.True(c.Succeeded, c.Describe());
        Assert.NotEqual(firstId, Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(first).CheckpointId);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path, "first.sealpoint-*"));

        // A folder of other files is not a checkpoint to replace: refused before the dump.
        string other = _temp.Dir("not-a-checkpoint");
        File.WriteAllText(Path.Combine(other, "notes.txt"), "mine");
        var refused = Call(_node.Runtime, bundle, "checkpoint", "--leave-running", "--image-path", other, bundle.Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("holds files that are not a checkpoint", refused.StandardError);
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(other).Select(Path.GetFileName));

        bundle.Kill();
        bundle.WaitForStatus("stopped");
        bundle.Delete();
        RestoreAndContinue(_node.Runtime, bundle, first, beforeThird);
    }

    [Fact]
    public void DefaultImagePathIsCheckpointInTheWorkingDirectory()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string cwd = _temp.Dir("cwd");
        var result = ProcessRunner.RunUnchecked(_node.Runtime, ["--root", bundle.StateRoot, "checkpoint", "--leave-running", bundle.Id],
            new RunOptions { WorkingDirectory = cwd });
        Assert.True(result.Succeeded, result.Describe());
        AssertSealed(Path.Combine(cwd, "checkpoint"));
        SecretScan.AssertAbsent(secret, Path.Combine(cwd, "checkpoint"));
    }

    [Fact]
    public void PassThroughIsRuncItself()
    {
        string runc = Tools.Require("runc");
        using var bundle = RuncBundle.Create(["/bin/sleep", "1000"]);
        bundle.Run();
        foreach (string[] args in new[] { new[] { "--version" }, ["features"], ["state", bundle.Id], ["list", "--format", "json"], ["state", "no-such-container"],
                     ["checkpoint", "--help"], ["restore", "--lsm-mount-context"], ["--log-format", "json", "bogus-command"] })
        {
            var viaRunc = Call(runc, bundle, args);
            var viaSealpoint = Call(_node.Runtime, bundle, args);
            Assert.True(viaRunc.ExitCode == viaSealpoint.ExitCode, $"exit codes differ for {string.Join(' ', args)}: {viaRunc.Describe()}\n{viaSealpoint.Describe()}");
            Assert.Equal(viaRunc.StandardOutput, viaSealpoint.StandardOutput);
            if (args[0] is "--version" or "features") Assert.Equal(viaRunc.StandardError, viaSealpoint.StandardError);
        }
        Assert.Equal(0, Call(_node.Runtime, bundle, "checkpoint", "--help").ExitCode); // podman's and CRI-O's probe
        var probe = Call(_node.Runtime, bundle, "restore", "--lsm-mount-context");
        Assert.Contains("flag needs an argument", probe.StandardOutput + probe.StandardError); // podman's pod-restore probe

        // kill and exec reach the container as with runc.
        var exec = Call(_node.Runtime, bundle, "exec", bundle.Id, "/bin/sh", "-c", "echo hello-from-exec; exit 7");
        Assert.Equal(7, exec.ExitCode);
        Assert.Equal("hello-from-exec\n", exec.StandardOutput);
        Assert.Equal(0, Call(_node.Runtime, bundle, "kill", bundle.Id, "KILL").ExitCode);
        bundle.WaitForStatus("stopped");
    }

    [Fact]
    public void SuccessiveCheckpointsOfAContainerFormALineage_AndARestoredContainerContinuesIt()
    {
        using var bundle = Start(Secrets.New());
        string first = Path.Combine(_temp.Path, "gen1"), second = Path.Combine(_temp.Path, "gen2"), third = Path.Combine(_temp.Path, "gen3");
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--leave-running", "--image-path", first, bundle.Id).Succeeded);
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--image-path", second, bundle.Id).Succeeded);
        var g1 = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(first);
        var g2 = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(second);
        Assert.Equal((1L, (string?)null), (g1.Generation, g1.ParentId));
        Assert.Equal((g1.LineageId, 2L, g1.CheckpointId), (g2.LineageId, g2.Generation, g2.ParentId));

        long counter = bundle.TryReadCounter(Counter) ?? 0;
        RestoreAndContinue(_node.Runtime, bundle, second, counter);
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--image-path", third, bundle.Id).Succeeded);
        var g3 = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(third);
        Assert.Equal((g1.LineageId, 3L, g2.CheckpointId), (g3.LineageId, g3.Generation, g3.ParentId));
    }

    [Fact]
    public void AnOlderGenerationThanThisNodeRestoredIsRefusedUntilAnOperatorForcesIt()
    {
        using var bundle = Start(Secrets.New());
        string image = Path.Combine(_temp.Path, "older");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        var envelope = Core.Checkpoint.SealedCheckpoint.ReadEnvelopeUnverified(image);
        var state = new Packaging.NodeState(_node.StateDir);
        Assert.NotNull(Packaging.Incremental.PageHashIndex.TryLoad(state, envelope.CheckpointId)); // recorded for incremental packs

        // This node already restored generation 3 of the same lineage.
        var guard = new Packaging.Lineage.LineageGuard(state);
        guard.Record(envelope with { Generation = 3, CheckpointId = new string('e', 32), ParentId = new string('d', 32) });

        var refused = Call(_node.Runtime, bundle, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("rollback refused", refused.StandardError);
        Assert.Contains("generation 1", refused.StandardError);
        Assert.Null(bundle.Status());
        _node.AssertStagingEmpty();

        // An operator forces it (as `sealpoint pull --force` does): the record now names this checkpoint, and it restores.
        guard.Record(envelope, forced: true);
        RestoreAndContinue(_node.Runtime, bundle, image, counter);
    }

    [Fact]
    public void NonRecipientNodeFailsBeforeRestoringAndTheRightNodeRestores()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret, new() { ["io.sealpoint.recipients"] = "node2" });
        string image = Path.Combine(_temp.Path, "for-node2");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;

        // This node is node1: not a recipient.
        string log = Path.Combine(_temp.Path, "log.json");
        var refused = Call(_node.Runtime, bundle, "--log", log, "--log-format", "json", "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("is not a recipient of checkpoint", refused.StandardError);
        Assert.Contains("node2", refused.StandardError);
        Assert.Null(bundle.Status());
        Assert.Contains("is not a recipient", LastJsonError(log));
        _node.AssertStagingEmpty();

        var (_, asNode2) = _node.Variant("node2", identity: "node2");
        RestoreAndContinue(asNode2, bundle, image, counter);
    }

    [Fact]
    public void TamperedOrIncompleteCheckpointFailsBeforeRestoring()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string image = Path.Combine(_temp.Path, "checkpoint");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        string pristine = Path.Combine(_temp.Path, "pristine");
        CopyDirectory(image, pristine);

        // One flipped byte in the memory pages.
        string pages = Directory.GetFiles(image, "pages-*.img").OrderByDescending(f => new FileInfo(f).Length).First();
        using (var f = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            int b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)(b ^ 0x01));
        }
        AssertRestoreRefused(bundle, image, Path.GetFileName(pages));

        // A missing file.
        CopyOver(pristine, image);
        File.Delete(Path.Combine(image, "core-1.img"));
        AssertRestoreRefused(bundle, image, "core-1.img");

        // The envelope gone: sealed files must not be taken for a plaintext checkpoint.
        CopyOver(pristine, image);
        File.Delete(Path.Combine(image, "sealpoint.envelope"));
        AssertRestoreRefused(bundle, image, "sealpoint.envelope is missing");

        // An envelope whose JSON line is not JSON: refused in the JSON reader's own words, not a resource key
        // ("ExpectedStartOfPropertyNotFound"), which is what the runtime printed with UseSystemResourceKeys set.
        CopyOver(pristine, image);
        string envelope = Path.Combine(image, "sealpoint.envelope");
        string[] lines = File.ReadAllLines(envelope);
        lines[1] = "{x";
        File.WriteAllLines(envelope, lines);
        AssertRestoreRefused(bundle, image, "'x' is an invalid start of a property name");

        // The intact copy still restores: nothing was lost.
        RestoreAndContinue(_node.Runtime, bundle, pristine, counter);
    }

    /// <summary>
    /// A container with 64 MiB of random memory: its memory image is served to CRIU decrypted read by read (no
    /// plaintext copy in staging); a modified page stops the restore with the page named; the intact copy restores
    /// with every page intact (memhog checks each against its checksum).
    /// </summary>
    [Fact]
    public void LargeMemoryIsServedToCriuReadByRead_AndAModifiedPageStopsTheRestore()
    {
        string secret = Secrets.New();
        using var bundle = RuncBundle.Create(["/bin/memhog", "64", secret, Counter]);
        bundle.Run();
        bundle.WaitForCounter(Counter, 3);
        string image = Path.Combine(_temp.Path, "checkpoint");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        AssertSealed(image);
        SecretScan.AssertAbsent(secret, image);
        string pages = Directory.GetFiles(image, "pages-*.img").OrderByDescending(f => new FileInfo(f).Length).First();
        Assert.True(new FileInfo(pages).Length > 64L << 20, $"{pages} is smaller than memhog's memory");
        string pristine = Path.Combine(_temp.Path, "pristine");
        CopyDirectory(image, pristine);

        // One flipped byte in a page (not in the tag table): only CRIU's read of that page can find it.
        using (var f = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 40L << 20;
            int b = f.ReadByte();
            f.Position = 40L << 20;
            f.WriteByte((byte)(b ^ 0x01));
        }
        var refused = Call(_node.Runtime, bundle, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains($"'{Path.GetFileName(pages)}' failed authentication at page {(40L << 20) / 4096}", refused.StandardError);
        Assert.Contains("the restore stopped before the container ran", refused.StandardError);
        Assert.Null(bundle.Status());
        _node.AssertStagingEmpty();

        // The intact copy, traced: the image was served, not decrypted into staging.
        string traced = _temp.File("traced-runtime");
        File.WriteAllText(traced, $"#!/bin/sh\nSEALPOINT_TRACE=1 exec '{_node.Runtime}' \"$@\"\n");
        File.SetUnixFileMode(traced, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        RestoreAndContinue(traced, bundle, pristine, counter);
        Assert.Contains($"pages served, not decrypted: ", File.ReadAllText(bundle.OutputFile));
        Assert.Contains(Path.GetFileName(pages), File.ReadAllText(bundle.OutputFile));
        _node.AssertStagingEmpty();
        bundle.VerifyMemhogMemory(Counter);
        Assert.Contains("verify ok", File.ReadAllText(bundle.OutputFile));
        Assert.DoesNotContain("verify FAILED", File.ReadAllText(bundle.OutputFile));
    }

    /// <summary>
    /// sealpoint-runc killed (SIGKILL, no clean-up of its own) while runc and CRIU wait at the held inventory.img: its end of
    /// the pipe closes with it, CRIU reads end of file and stops before any task exists, runc cleans up and exits. Nothing
    /// hangs and no container is left; the checkpoint still restores. The dead operation's staging (tmpfs) is what the
    /// container's wipe removes (the poststop hook, or here directly).
    /// </summary>
    [Fact]
    public void KilledWhileRuncAndCriuWaitAtTheHeldFiles_NothingHangsAndTheCheckpointStillRestores()
    {
        using var bundle = Start(Secrets.New());
        string image = Path.Combine(_temp.Path, "checkpoint");
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id).Succeeded);
        long counter = bundle.TryReadCounter(Counter) ?? 0;

        string holding = _temp.File("holding-runtime");
        File.WriteAllText(holding, $"#!/bin/sh\n{RestoreCommand.HoldForTestsVariable}=120000 exec '{_node.Runtime}' \"$@\"\n");
        File.SetUnixFileMode(holding, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var output = File.Create(_temp.File("holding-runtime.out"));
        using var runtime = ChildProcess.Start(holding, ["--root", bundle.StateRoot, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id],
            new ChildOptions
            {
                Environment = new Dictionary<string, string?> { ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
                StdoutFd = (int)output.SafeFileHandle.DangerousGetHandle(), StderrFd = (int)output.SafeFileHandle.DangerousGetHandle(),
            });
        // CRIU's restore worker (swrk 3; runc's version probe uses another fd) under runc under the runtime.
        static bool IsCriuRestore(int pid)
        {
            try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains("swrk\u00003"); }
            catch (IOException) { return false; }
        }
        Poll.Until(() => Pids.Tree(runtime.Id).Any(IsCriuRestore), TimeSpan.FromSeconds(30), () => "CRIU's restore to start under the held runtime");
        Thread.Sleep(1000); // CRIU reaches inventory.img within ~0.1 s of its start here
        var below = Pids.Tree(runtime.Id).Where(p => p != runtime.Id).ToList();
        System.Diagnostics.Process.GetProcessById(runtime.Id).Kill(); // SIGKILL
        Assert.True(runtime.WaitForExit(10_000));
        Assert.Equal(128 + 9, runtime.ExitCode);
        Pids.WaitReaped(below, TimeSpan.FromSeconds(30)); // runc and CRIU ended on their own: nobody waits on the dead runtime
        Assert.Null(bundle.Status());

        var staging = new Sealpoint.Core.Config.Staging(_node.StagingRoot);
        Assert.NotEmpty(_node.StagingLeftovers());
        staging.WipeContainer(bundle.Id);
        _node.AssertStagingEmpty();
        RestoreAndContinue(_node.Runtime, bundle, image, counter);
        _node.AssertStagingEmpty();
    }

    private void AssertRestoreRefused(RuncBundle bundle, string image, string expected)
    {
        var r = Call(_node.Runtime, bundle, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.True(r.StandardError.Contains(expected, StringComparison.Ordinal), $"'{expected}' not in the runtime's error output:\n{r.StandardError}");
        Assert.DoesNotContain(".. Fix:", r.StandardError);
        Assert.Null(bundle.Status());
        _node.AssertStagingEmpty();
    }

    [Fact]
    public void MissingNodeKeyFailsBeforeRestoring()
    {
        using var bundle = Start(Secrets.New());
        string image = Path.Combine(_temp.Path, "checkpoint");
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id).Succeeded);
        var (_, noKey) = _node.Variant("nokey", identity: "/nonexistent/key.pem");
        var r = Call(noKey, bundle, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("private key /nonexistent/key.pem does not exist", r.StandardError);
        Assert.Null(bundle.Status());
    }

    [Fact]
    public void BadAnnotationOrUnknownRecipientLeavesTheContainerRunningAndUntouched()
    {
        foreach (var (annotations, expected) in new (Dictionary<string, string>, string)[]
                 {
                     (new() { ["io.sealpoint.encrypt"] = "maybe" }, "io.sealpoint.encrypt=\"maybe\" is not true or false"),
                     (new() { ["io.sealpoint.recipients"] = "nobody" }, "recipient 'nobody' (annotation io.sealpoint.recipients)"),
                     (new() { ["io.sealpoint.ciphr"] = "aes-256-gcm" }, "unknown annotation io.sealpoint.ciphr"),
                 })
        {
            using var bundle = Start(Secrets.New(), annotations);
            string image = Path.Combine(_temp.Path, "bad-" + Guid.NewGuid().ToString("N")[..6]);
            string log = Path.Combine(_temp.Path, $"log-{Guid.NewGuid():N}.json");
            var r = Call(_node.Runtime, bundle, "--log", log, "--log-format", "json", "checkpoint", "--image-path", image, bundle.Id);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains(expected, r.StandardError);
            Assert.Contains(expected, LastJsonError(log)); // what containerd would report
            Assert.Equal("running", bundle.Status());
            long now = bundle.TryReadCounter(Counter) ?? 0;
            bundle.WaitForCounter(Counter, now + 2);
            Assert.False(Directory.Exists(image) && Directory.EnumerateFileSystemEntries(image).Any(), $"{image} was written");
            _node.AssertStagingEmpty();
        }
    }

    [Fact]
    public void PlaintextCheckpointIsRefusedUnlessAllowed()
    {
        using var bundle = Start(Secrets.New());
        string image = Path.Combine(_temp.Path, "by-plain-runc");
        var dump = Call(Tools.Require("runc"), bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(dump.Succeeded, dump.Describe());
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        var refused = Call(_node.Runtime, bundle, "restore", "--detach", "--bundle", bundle.Dir, "--image-path", image, bundle.Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("is not sealed", refused.StandardError);
        Assert.Contains("allow_plaintext_restore", refused.StandardError);
        Assert.Null(bundle.Status());

        var (_, lenient) = _node.Variant("lenient", extraPolicy: "allow_plaintext_restore = true");
        RestoreAndContinue(lenient, bundle, image, counter);
    }

    [Fact]
    public void SealingFailureAfterTheDumpKeepsTheStateInMemoryAndIsRecoverable()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string image = Path.Combine(_temp.Path, "checkpoint"), work = _temp.Dir("work");
        var (_, failing) = _node.Variant("failing", extraTables: "[testing]\nfail_sealing = true");

        var r = Call(failing, bundle, "checkpoint", "--image-path", image, "--work-path", work, bundle.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("sealing failed on purpose", r.StandardError);
        Assert.Contains("NOT lost", r.StandardError);
        Assert.Null(bundle.Status()); // runc destroyed it: the dump is its only state now
        long counter = bundle.TryReadCounter(Counter) ?? 0;

        // No plaintext on disk: the image path is empty, the work path (CRIU's logs) holds no secret.
        Assert.False(Directory.Exists(image) && Directory.EnumerateFileSystemEntries(image).Any(), $"{image} holds files");
        SecretScan.AssertAbsent(secret, work);
        // The plaintext is in memory-backed staging, named in the message.
        string kept = Directory.GetDirectories(Path.Combine(_node.StagingRoot, bundle.Id)).Single();
        Assert.Contains(kept, r.StandardError);
        Assert.Contains($"seal-pending {kept}", r.StandardError);
        SecretScan.AssertPresent(secret, kept);

        // The poststop hook (container deleted) must not wipe it.
        var hook = ProcessRunner.RunUnchecked(_node.Hook, ["poststop"], new RunOptions
        {
            StandardInput = JsonSerializer.Serialize(new { ociVersion = "1.0.2", id = bundle.Id, status = "stopped", bundle = bundle.Dir }),
            Environment = _node.Environment,
        });
        Assert.True(hook.Succeeded, hook.Describe());
        Assert.Contains("kept", hook.StandardError);
        Assert.True(Directory.Exists(kept));

        // Recovery as the message says: seal it, then restore through sealpoint-runc.
        var recover = _node.RunCore(["seal-pending", kept]);
        Assert.True(recover.Succeeded, recover.Describe());
        AssertSealed(image);
        SecretScan.AssertAbsent(secret, image);
        Assert.False(Directory.Exists(kept));
        RestoreAndContinue(_node.Runtime, bundle, image, counter);
    }

    /// <summary>
    /// restore without --detach: sealpoint-runc stays (as runc does) until the container exits, wipes staging as soon
    /// as the container runs, forwards SIGTERM to runc (which hands it to the container) and exits with runc's status.
    /// </summary>
    [Fact]
    public async Task ForegroundRestoreWipesStagingForwardsSignalsAndExitStatus()
    {
        string secret = Secrets.New();
        using var bundle = Start(secret);
        string image = Path.Combine(_temp.Path, "checkpoint");
        Assert.True(Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id).Succeeded);
        long counter = bundle.TryReadCounter(Counter) ?? 0;
        File.WriteAllText(bundle.HostPath(Counter), $"{0,20}\n");

        var start = new System.Diagnostics.ProcessStartInfo(_node.Runtime)
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (string a in new[] { "--root", bundle.StateRoot, "restore", "--bundle", bundle.Dir, "--image-path", image, bundle.Id }) start.ArgumentList.Add(a);
        start.Environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        using var restore = System.Diagnostics.Process.Start(start)!;
        var stderr = restore.StandardError.ReadToEndAsync();
        _ = restore.StandardOutput.ReadToEndAsync(); // the container's output: read, so it never blocks
        try
        {
            bundle.WaitForStatus("running", TimeSpan.FromSeconds(60));
            long first = bundle.WaitForCounter(Counter, 1);
            Assert.True(first >= counter, $"restarted, not restored: {first} < {counter}");
            Poll.Until(() => _node.StagingLeftovers().Count == 0, TimeSpan.FromSeconds(30), () => $"staging to be wiped while the container runs: {string.Join(", ", _node.StagingLeftovers().Take(5))}");
            Assert.False(restore.HasExited, "restore without --detach returned while the container runs");

            // SIGTERM to sealpoint-runc reaches the container through runc: secretholder then exits 0, and so does restore.
            ProcessRunner.Run("kill", ["-TERM", restore.Id.ToString()]);
            Assert.True(restore.WaitForExit(60000), "restore did not end after SIGTERM");
            Assert.True(restore.ExitCode == 0, $"exit {restore.ExitCode}; stderr: {await stderr}");
        }
        finally
        {
            if (!restore.HasExited) restore.Kill(entireProcessTree: true);
        }
    }

    /// <summary>A container that exits with a status of its own: runc's exit status (the container's) comes back unchanged.</summary>
    [Fact]
    public async Task ForegroundRestoreReturnsTheContainersExitStatus()
    {
        using var bundle = RuncBundle.Create(["/bin/sh", "-c", "i=0; while [ ! -e /stop ]; do i=$((i+1)); echo $i > /counter.txt; sleep 0.1; done; exit 42"]);
        bundle.Run();
        Poll.Until(() => File.Exists(bundle.HostPath("/counter.txt")), TimeSpan.FromSeconds(20), () => "the shell to count");
        string image = Path.Combine(_temp.Path, "checkpoint");
        var checkpoint = Call(_node.Runtime, bundle, "checkpoint", "--image-path", image, bundle.Id);
        Assert.True(checkpoint.Succeeded, checkpoint.Describe());
        var restore = new System.Threading.Tasks.Task<ProcessResult>(() => Call(_node.Runtime, bundle, "restore", "--bundle", bundle.Dir, "--image-path", image, bundle.Id));
        restore.Start();
        bundle.WaitForStatus("running", TimeSpan.FromSeconds(60));
        File.WriteAllText(bundle.HostPath("/stop"), "");
        Assert.True(await Task.WhenAny(restore, Task.Delay(TimeSpan.FromSeconds(60))) == restore, "restore did not end when the container exited");
        var result = await restore;
        Assert.True(result.ExitCode == 42, result.Describe());
        _node.AssertStagingEmpty();
    }

    [Fact]
    public void StagingOnDiskIsRefusedBeforeTheDump()
    {
        using var bundle = Start(Secrets.New());
        string onDisk = _temp.Dir("disk-staging");
        var (config, runtime) = _node.Variant("disk");
        File.WriteAllText(config, File.ReadAllText(config).Replace(_node.StagingRoot, onDisk));
        var r = Call(runtime, bundle, "checkpoint", "--image-path", Path.Combine(_temp.Path, "x"), bundle.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("not on a memory-backed file system", r.StandardError);
        Assert.Equal("running", bundle.Status());
    }

    private static string LastJsonError(string logFile)
    {
        Assert.True(File.Exists(logFile), $"{logFile} was not written");
        string? last = null;
        foreach (string line in File.ReadAllLines(logFile).Where(l => l.Length > 0))
        {
            using var entry = JsonDocument.Parse(line); // every line must be one JSON object
            if (entry.RootElement.GetProperty("level").GetString() == "error") last = entry.RootElement.GetProperty("msg").GetString();
        }
        return last ?? throw new Xunit.Sdk.XunitException($"no error entry in {logFile}");
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (f.LinkTarget is not null) File.CreateSymbolicLink(Path.Combine(to, f.Name), f.LinkTarget);
            else File.Copy(f.FullName, Path.Combine(to, f.Name));
        }
    }

    private static void CopyOver(string from, string to)
    {
        Directory.Delete(to, recursive: true);
        CopyDirectory(from, to);
    }
}
