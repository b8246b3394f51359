using Sealpoint.Core;
using Sealpoint.Core.Streaming;
using Sealpoint.TestSupport;

namespace Sealpoint.Stream.Tests;

/// <summary>
/// <c>sealpoint dump</c> and <c>sealpoint restore</c> on real CRIU 4.x with real processes. A missing CRIU or
/// workload fails these tests with the fix in the message (Tools.Require), never skips them.
/// </summary>
public class CriuStreamTests(CliPki pki) : IClassFixture<CliPki>
{
    private const long Bound = 64L * 1024 * 1024;

    [Fact]
    public void Dump_and_restore_through_the_stream_leave_the_secret_in_no_file()
    {
        Tools.RequireRoot();
        Tools.Require("criu");
        string secret = Secrets.New("roundtrip");
        using var dir = TempDir.Create("stream-e2e");
        using var workload = Workload.StartSecretHolder(secret, dir.Dir("workload"));
        string images = dir.File("sealed"), dumpWork = dir.Dir("dump-work"), restoreWork = dir.Dir("restore-work");
        workload.WaitForProgress(2);

        var dump = SealpointCli.Run("dump", "-t", workload.Pid.ToString(), "-D", images, "-r", pki.Cert("node-a"),
            "--pki", pki.Root, "--work-dir", dumpWork, "--json");
        Assert.True(dump.Succeeded, dump.Describe());
        var json = SealpointCli.Json(dump);
        Assert.False((bool)json["processRunning"]!, "CRIU should stop the task after a successful dump");
        Pids.WaitReaped([workload.Pid], TimeSpan.FromSeconds(30));
        Assert.True(File.Exists(Path.Combine(images, "sealpoint.envelope")));
        Assert.True(File.Exists(Path.Combine(dumpWork, "dump.log")), "CRIU's log belongs in the work directory");
        Assert.False(Directory.EnumerateFiles(dumpWork, "*.img").Any(), "no image may land in the work directory");
        long counterAtDump = workload.ReadCounter();

        SecretSearch.AssertAbsentEverywhere(secret, images, dumpWork);

        // The same sealed format as 'sealpoint seal': inspect verifies it, open decrypts it, and the secret is
        // in the opened memory (which proves the search above could have found it).
        var inspect = SealpointCli.Run("inspect", images, "--verify", "--key", pki.Key("node-a"));
        Assert.True(inspect.Succeeded, inspect.Describe());
        using (var opened = TempDir.Create("stream-opened", inShm: true))
        {
            var open = SealpointCli.Run("open", images, "--key", pki.Key("node-a"), "--out", opened.File("plain"));
            Assert.True(open.Succeeded, open.Describe());
            SecretScan.AssertPresent(secret, opened.Path);
        }

        var restore = SealpointCli.RunToFile(dir.File("restore.out"), "restore", "-D", images, "--key", pki.Key("node-a"), "-d",
            "--work-dir", restoreWork, "--json");
        Assert.True(restore.Succeeded, restore.Describe());
        Assert.True(workload.IsAlive, $"the restored process {workload.Pid} is not running");
        long after = workload.WaitForCounter(counterAtDump + 3);
        Assert.True(after > counterAtDump);
        Assert.True(File.Exists(Path.Combine(restoreWork, "restore.log")));
        SecretSearch.AssertAbsentEverywhere(secret, images, dumpWork, restoreWork);
    }

    [Fact]
    public void Leave_running_resumes_the_task_after_the_checkpoint_is_sealed()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-leave");
        using var workload = Workload.StartSecretHolder(Secrets.New("leave"), dir.Dir("workload"));
        var dump = SealpointCli.Run("dump", "-t", workload.Pid.ToString(), "-D", dir.File("sealed"), "-r", pki.Cert("node-a"),
            "--pki", pki.Root, "--leave-running", "--json");
        Assert.True(dump.Succeeded, dump.Describe());
        Assert.True((bool)SealpointCli.Json(dump)["processRunning"]!);
        workload.WaitForProgress(3);
        var inspect = SealpointCli.Run("inspect", dir.File("sealed"), "--verify", "--key", pki.Key("node-a"));
        Assert.True(inspect.Succeeded, inspect.Describe());
    }

    [Theory]
    [InlineData("build")]
    [InlineData("installed")]
    public void Streamer_memory_stays_under_the_bound_for_a_dump_four_times_larger(string program)
    {
        Tools.RequireRoot();
        string cli = SealpointCli.Program(program);
        using var dir = TempDir.Create("stream-memory");
        using var workload = Workload.StartMemHog(256, Secrets.New("memory"), dir.Dir("workload"));
        string images = dir.File("sealed");
        var dump = SealpointCli.RunProgramToFileWith(cli, dir.File("dump.out"), new Dictionary<string, string?> { [MemoryProtection.LockVariable] = "always" },
            "dump", "-t", workload.Pid.ToString(), "-D", images, "-r", pki.Cert("node-a"), "--pki", pki.Root, "--json");
        Assert.True(dump.Succeeded, dump.Describe());
        var json = SealpointCli.Json(dump);
        long bytes = (long)json["plaintextBytes"]!, peak = (long)json["peakRssBytes"]!;
        Assert.True(bytes > 4 * Bound, $"the dump streamed only {bytes} bytes, not more than 4x the bound");
        Assert.True(peak < Bound, $"the streamer's peak RSS (VmHWM) was {peak / 1048576.0:F1} MiB for a {bytes / 1048576} MiB dump; the bound is 64 MiB");
        AssertMemoryLocked(json, "dump");
        Pids.WaitReaped([workload.Pid], TimeSpan.FromSeconds(30));

        var restore = SealpointCli.RunProgramToFile(cli, dir.File("restore.out"), "restore", "-D", images, "--key", pki.Key("node-a"), "-d", "--json");
        Assert.True(restore.Succeeded, restore.Describe());
        long restorePeak = (long)SealpointCli.Json(restore)["peakRssBytes"]!;
        Assert.True(restorePeak < Bound, $"the restore streamer's peak RSS was {restorePeak / 1048576.0:F1} MiB; the bound is 64 MiB");
        // By default memory is locked only on a node with swap (locking costs a tree restore ~10%); core dumps are always off.
        var memory = SealpointCli.Json(restore)["memory"]!;
        Assert.Equal(MemoryProtection.ActiveSwapDevices().Count > 0, (bool)memory["locked"]!);
        Assert.True((bool)memory["coreDumpsOff"]!, $"restore: the streamer could still dump core: {memory.ToJsonString()}");
        workload.WaitForProgress(2);
        workload.VerifyMemory(); // memhog checks every page against its checksums
    }

    /// <summary>
    /// Asked to lock (SEALPOINT_LOCK_MEMORY=always), the streamer held every plaintext page in memory that swap can never
    /// take (these tests run as root, which has CAP_IPC_LOCK) and could not dump core: nearly all of its resident memory
    /// is locked, as the kernel counts it.
    /// </summary>
    private static void AssertMemoryLocked(System.Text.Json.Nodes.JsonNode json, string what)
    {
        var memory = json["memory"]!;
        Assert.True((bool)memory["locked"]!, $"{what}: the streamer's memory was not locked: {memory.ToJsonString()}");
        Assert.True((bool)memory["coreDumpsOff"]!, $"{what}: the streamer could still dump core: {memory.ToJsonString()}");
        // Both proportional (PSS): shared library pages count in part. Special mappings (vDSO) are never locked.
        long resident = (long)memory["proportionalResidentBytes"]!, locked = (long)memory["lockedBytes"]!;
        Assert.True(resident > 0 && locked >= resident * 95 / 100,
            $"{what}: only {locked / 1024} of {resident / 1024} KiB resident (PSS) were locked (mlockall should lock every page as it is faulted in)");
    }

    [Theory]
    [InlineData("build")]
    [InlineData("installed")]
    public void A_process_tree_with_many_images_open_at_once_round_trips_within_the_bound(string program)
    {
        Tools.RequireRoot();
        string cli = SealpointCli.Program(program);
        using var dir = TempDir.Create("stream-tree");
        using var workload = Workload.StartProcTree(80, dir.Dir("workload"));
        Poll.Until(() => Pids.Tree(workload.Pid).Count == 80, TimeSpan.FromSeconds(20), () => "the tree to have 80 processes");
        var tree = Pids.Tree(workload.Pid);
        string images = dir.File("sealed");
        var dump = SealpointCli.RunProgram(cli, "dump", "-t", workload.Pid.ToString(), "-D", images, "-r", pki.Cert("node-a"), "--pki", pki.Root, "--json");
        Assert.True(dump.Succeeded, dump.Describe());
        var json = SealpointCli.Json(dump);
        // CRIU keeps small images of many tasks open at once (13 to 127 seen for this tree, depending on timing).
        Assert.True((int)json["maxOpenImages"]! >= 6, $"only {json["maxOpenImages"]} images were open at once; this test wants many");
        Assert.True((long)json["peakRssBytes"]! < Bound, $"peak RSS {(long)json["peakRssBytes"]! / 1048576.0:F1} MiB");
        Pids.WaitReaped(tree, TimeSpan.FromSeconds(30));
        long counter = workload.ReadCounter();
        var restore = SealpointCli.RunProgramToFile(cli, dir.File("restore.out"), "restore", "-D", images, "--key", pki.Key("node-a"), "-d", "--json");
        Assert.True(restore.Succeeded, restore.Describe());
        long restorePeak = (long)SealpointCli.Json(restore)["peakRssBytes"]!;
        Assert.True(restorePeak < Bound, $"the restore streamer's peak RSS was {restorePeak / 1048576.0:F1} MiB; the bound is 64 MiB");
        // By default memory is locked only on a node with swap (locking costs a tree restore ~10%); core dumps are always off.
        var memory = SealpointCli.Json(restore)["memory"]!;
        Assert.Equal(MemoryProtection.ActiveSwapDevices().Count > 0, (bool)memory["locked"]!);
        Assert.True((bool)memory["coreDumpsOff"]!, $"restore: the streamer could still dump core: {memory.ToJsonString()}");
        workload.WaitForCounter(counter + 2);
        Assert.Equal(80, Pids.Tree(workload.Pid).Count);
    }

    [Fact]
    public void Killing_criu_mid_dump_leaves_no_checkpoint_and_the_process_running()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-killcriu");
        using var workload = Workload.StartMemHog(768, Secrets.New("killcriu"), dir.Dir("workload"));
        string images = dir.File("sealed"), work = dir.Dir("work");
        // Once memory pages are flowing, SIGKILL every CRIU process.
        using var sealpoint = StartDumpUntilPagesFlow(dir, workload, images, "--work-dir", work);
        var criu = CriuProcess.Descendants(sealpoint.Id);
        Assert.NotEmpty(criu);
        foreach (int pid in criu) Posix_Kill(pid);
        Assert.True(sealpoint.WaitForExit(60_000), "sealpoint did not end after CRIU was killed");
        string output = File.ReadAllText(dir.File("dump.out"));
        Assert.Equal(9, sealpoint.ExitCode);
        Assert.Contains("criu dump failed", output);
        Assert.Contains("still running", output);
        FailedDump.AssertNoCheckpointAndProcessUntouched(workload, images);
    }

    [Fact]
    public void A_broken_pipe_when_the_streamer_dies_fails_criu_and_keeps_the_process()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-brokenpipe");
        using var workload = Workload.StartMemHog(768, Secrets.New("brokenpipe"), dir.Dir("workload"));
        string images = dir.File("sealed"), work = dir.Dir("work");
        using var sealpoint = StartDumpUntilPagesFlow(dir, workload, images, "--work-dir", work);
        var criu = CriuProcess.Descendants(sealpoint.Id);
        Assert.NotEmpty(criu);
        // The streamer vanishes: every image pipe breaks under CRIU.
        sealpoint.Kill();
        sealpoint.WaitForExit();
        Poll.Until(() => criu.All(p => !CriuProcess.IsRunning(p)), TimeSpan.FromSeconds(60), () => "CRIU to fail on the broken pipes");
        string log = File.ReadAllText(Path.Combine(work, "dump.log"));
        Assert.Contains("Dumping FAILED", log);
        Assert.False(File.Exists(Path.Combine(images, "sealpoint.envelope")), "a checkpoint without a finished dump must have no envelope");
        var restore = SealpointCli.Run("restore", "-D", images, "--key", pki.Key("node-a"));
        Assert.NotEqual(0, restore.ExitCode);
        Assert.True(workload.IsAlive, "the process died when the stream broke");
        workload.WaitForProgress(3);
        workload.VerifyMemory();
    }

    [Fact]
    public void A_full_disk_ends_with_a_clear_error_an_empty_directory_and_the_process_running()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-full");
        string small = dir.Dir("small");
        var mount = ProcessRunner.RunUnchecked("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", small]);
        Assert.True(mount.Succeeded, "this test mounts an 8 MiB tmpfs to fill: " + mount.Describe());
        try
        {
            using var workload = Workload.StartMemHog(64, Secrets.New("full"), dir.Dir("workload"));
            string images = Path.Combine(small, "sealed");
            var dump = SealpointCli.Run("dump", "-t", workload.Pid.ToString(), "-D", images, "-r", pki.Cert("node-a"), "--pki", pki.Root);
            Assert.Equal(7, dump.ExitCode);
            Assert.Contains("No space left on device", dump.StandardError);
            Assert.Contains("still running", dump.StandardError);
            Assert.False(Directory.Exists(images), $"the failed dump left {images} behind");
            Assert.True(workload.IsAlive);
            workload.WaitForProgress(3);
            workload.VerifyMemory();
        }
        finally { ProcessRunner.RunUnchecked("umount", [small]); }
    }

    [Fact]
    public void Interrupting_sealpoint_resumes_the_process_and_leaves_no_checkpoint()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-sigterm");
        using var workload = Workload.StartMemHog(768, Secrets.New("sigterm"), dir.Dir("workload"));
        string images = dir.File("sealed");
        using var sealpoint = StartDumpUntilPagesFlow(dir, workload, images);
        ProcessRunner.Run("kill", ["-TERM", sealpoint.Id.ToString()]);
        Assert.True(sealpoint.WaitForExit(60_000));
        string output = File.ReadAllText(dir.File("dump.out"));
        Assert.Equal(9, sealpoint.ExitCode);
        Assert.Contains("interrupted", output);
        FailedDump.AssertNoCheckpointAndProcessUntouched(workload, images);
    }

    [Fact]
    public void Dump_errors_name_the_problem_before_criu_touches_the_process()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-dumperrors");
        using var workload = Workload.StartSecretHolder(Secrets.New("errors"), dir.Dir("workload"));
        string pid = workload.Pid.ToString();

        var noCriu = ProcessRunner.RunUnchecked(SealpointCli.Path, ["dump", "-t", pid, "-D", dir.File("a"), "-r", pki.Cert("node-a"),
            "--pki", pki.Root, "--criu", "/nonexistent/criu"]);
        Assert.Equal(6, noCriu.ExitCode);
        Assert.Contains("CRIU was not found at /nonexistent/criu", noCriu.StandardError);

        var noRecipient = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("b"));
        Assert.Equal(2, noRecipient.ExitCode);
        Assert.Contains("--recipient", noRecipient.StandardError);

        var badCert = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("c"), "-r", dir.File("missing.pem"), "--pki", pki.Root);
        Assert.NotEqual(0, badCert.ExitCode);
        Assert.Contains("missing.pem", badCert.StandardError);

        var incremental = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("d"), "-r", pki.Cert("node-a"), "--pki", pki.Root, "--", "--track-mem");
        Assert.Equal(2, incremental.ExitCode);
        Assert.Contains("does not support incremental images", incremental.StandardError);

        var noProcess = SealpointCli.Run("dump", "-t", "999999", "-D", dir.File("e"), "-r", pki.Cert("node-a"), "--pki", pki.Root);
        Assert.Equal(6, noProcess.ExitCode);
        Assert.Contains("process 999999 is not running", noProcess.StandardError);

        // A CRIU failure (an option CRIU rejects) is reported with CRIU's exit code and the process keeps running.
        var criuFails = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("f"), "-r", pki.Cert("node-a"), "--pki", pki.Root, "--", "--no-such-criu-option");
        Assert.Equal(9, criuFails.ExitCode);
        Assert.Contains("criu dump failed with exit code", criuFails.StandardError);
        Assert.False(Directory.Exists(dir.File("f")));
        foreach (var d in "abcde") Assert.False(Directory.Exists(dir.File(d.ToString())), $"a refused dump left {d}/ behind");
        Assert.True(workload.IsAlive);
        workload.WaitForProgress(2);
    }

    [Fact]
    public void A_recipient_of_another_ca_or_revoked_fails_the_dump_and_the_process_keeps_running()
    {
        Tools.RequireRoot();
        Tools.Require("criu");
        using var dir = TempDir.Create("stream-badrecipient");
        using var workload = Workload.StartMemHog(64, Secrets.New("badrecipient"), dir.Dir("workload"));
        string pid = workload.Pid.ToString();
        // The CA and CRL checks run beside CRIU (StreamDumpOptions.RecipientChecks); whether they fail before CRIU starts
        // or while it dumps, the outcome must be the same: a clear error, no checkpoint, the process untouched.
        string other = dir.Dir("other-pki");
        Assert.True(SealpointCli.Run("keys", "init", "--pki", other).Succeeded);
        Assert.True(SealpointCli.Run("keys", "issue", "stranger", "--pki", other).Succeeded);
        var foreign = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("a"), "-r", Path.Combine(other, "stranger", "cert.pem"), "--pki", pki.Root);
        Assert.Equal(8, foreign.ExitCode);
        Assert.Contains("is not issued by the CA in", foreign.StandardError);

        // One good recipient does not make up for a revoked one.
        Assert.True(SealpointCli.Run("keys", "issue", "revoked", "--pki", other).Succeeded);
        Assert.True(SealpointCli.Run("keys", "revoke", "revoked", "--pki", other).Succeeded);
        var revoked = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("b"), "-r", "stranger", "-r", "revoked", "--pki", other);
        Assert.Equal(8, revoked.ExitCode);
        Assert.Contains("is revoked", revoked.StandardError);

        // A missing certificate file is refused before CRIU starts; a malformed one is parsed beside CRIU
        // (StreamDumpOptions.LoadRecipients) and fails the dump the same way.
        var missing = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("c"), "-r", dir.File("nowhere.pem"), "--pki", pki.Root);
        Assert.Equal(6, missing.ExitCode);
        Assert.Contains("does not exist", missing.StandardError);
        Assert.DoesNotContain("CRIU", missing.StandardError);
        string garbage = dir.File("garbage.pem");
        File.WriteAllText(garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        var malformed = SealpointCli.Run("dump", "-t", pid, "-D", dir.File("d"), "-r", garbage, "--pki", pki.Root);
        Assert.Equal(4, malformed.ExitCode);
        Assert.Contains("cannot be read", malformed.StandardError);

        FailedDump.AssertNoCheckpointAndProcessUntouched(workload, dir.File("a"), dir.File("b"), dir.File("c"), dir.File("d"));
    }

    [Fact]
    public void A_recipient_check_that_fails_while_criu_dumps_stops_the_dump_and_keeps_the_process()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-latecheck");
        using var workload = Workload.StartMemHog(256, Secrets.New("latecheck"), dir.Dir("workload"));
        string images = dir.File("sealed"), work = dir.Dir("work");
        // Fails only once CRIU has started writing images, so the failure arrives mid-dump.
        var options = LibraryDump(workload, images, work, () =>
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Directory.Exists(images) || !Directory.EnumerateFiles(images, "pages-*").Any())
            {
                if (DateTime.UtcNow > deadline) break;
                Thread.Sleep(5);
            }
            throw new Sealpoint.Core.SealpointException(Sealpoint.Core.ErrorKind.Policy, "test recipient check failed", "test fix");
        });
        var e = Assert.ThrowsAny<Sealpoint.Core.SealpointException>(() => StreamingDump.Run(options));
        Assert.Contains("test recipient check failed", e.Message);
        Assert.Contains("still running", e.Fix);
        FailedDump.AssertNoCheckpointAndProcessUntouched(workload, images);
    }

    [Fact]
    public void A_recipient_check_that_hangs_is_given_up_at_post_dump_and_the_process_resumes()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-hungcheck");
        using var workload = Workload.StartMemHog(64, Secrets.New("hungcheck"), dir.Dir("workload"));
        string images = dir.File("sealed");
        using var release = new ManualResetEventSlim();
        // A CRL on a stalled file system, say: the frozen tasks must not wait for it longer than the finish timeout.
        var options = LibraryDump(workload, images, dir.Dir("work"), () => release.Wait(TimeSpan.FromMinutes(2)))
            with { FinishTimeout = TimeSpan.FromSeconds(2) };
        var e = Assert.ThrowsAny<Sealpoint.Core.SealpointException>(() => StreamingDump.Run(options));
        release.Set();
        Assert.Contains("did not finish within 2 s", e.Message);
        Assert.Contains("still running", e.Fix);
        FailedDump.AssertNoCheckpointAndProcessUntouched(workload, images);
    }

    [Fact]
    public void Restore_refuses_missing_keys_non_recipients_and_tampered_images_before_criu_gets_an_image()
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-restore-refused");
        string images = DumpSecretHolder(dir, out int pid);

        var missing = SealpointCli.Run("restore", "-D", images, "--key", dir.File("no-key.pem"), "--work-dir", dir.Dir("w1"));
        Assert.Equal(6, missing.ExitCode);
        Assert.Contains("no-key.pem does not exist", missing.StandardError);

        var stranger = SealpointCli.Run("restore", "-D", images, "--key", pki.Key("node-b"), "--work-dir", dir.Dir("w2"));
        Assert.Equal(4, stranger.ExitCode);
        Assert.Contains("recipient", stranger.StandardError);

        // The default pre-check refuses a modified tag table or metadata file, and --verify-first a modified page,
        // each before CRIU is given an image. CRIU starts beside the checks (a missing key is refused before it) and is
        // stopped unanswered: nothing is restored, and its log, which only shows it starting, is not kept.
        var refused = new List<string>();
        void AssertRefusedBeforeCriu(string label, Action<string> tamper, string expected, params string[] extra)
        {
            string copy = CopyImages(images, dir.File("copy-" + label));
            tamper(copy);
            string work = dir.Dir("w-" + label);
            var r = SealpointCli.Run(["restore", "-D", copy, "--key", pki.Key("node-a"), "-d", "--work-dir", work, .. extra]);
            Assert.True(r.ExitCode == 5, $"{label}: {r.Describe()}");
            Assert.Contains(expected, r.StandardError);
            Assert.Contains("Fix:", r.StandardError);
            refused.Add(work);
        }
        AssertRefusedBeforeCriu("tag-table", c => FlipTagByteIn(c), "does not match the digest in the envelope");
        AssertRefusedBeforeCriu("metadata", c => FlipByteIn(c, "core-"), "failed authentication");
        AssertRefusedBeforeCriu("page-verify-first", c => FlipByteIn(c, "pages-"), "failed authentication", "--verify-first");
        var both = SealpointCli.Run("restore", "-D", images, "--key", pki.Key("node-a"), "--verify-first", "--no-preverify");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("contradict", both.StandardError);
        foreach (var w in refused.Concat([dir.File("w1"), dir.File("w2")]))
            Assert.False(File.Exists(Path.Combine(w, "restore.log")), $"a refused restore kept CRIU's log ({w})");
        Assert.False(Pids.IsAlive(pid), "a refused restore left a process running");
    }

    [Theory]
    [InlineData("default", "pages-")]
    [InlineData("--no-preverify", "pages-")]
    // A small metadata image is served on the control thread (it fits the pipe whole); unchecked before CRIU starts,
    // its failure must end the restore the same way.
    [InlineData("--no-preverify", "core-")]
    public void A_tampered_page_is_caught_while_serving_and_kills_criu_and_what_it_restored(string mode, string tampered)
    {
        Tools.RequireRoot();
        using var dir = TempDir.Create("stream-restore-tamper");
        string images = DumpSecretHolder(dir, out int pid);
        // A page body is not read before CRIU starts (only its tag table, which still matches): its own tag fails
        // when it is served, before its plaintext reaches CRIU's pipe.
        FlipByteIn(images, tampered);
        string work = dir.Dir("work");
        string[] extra = mode == "default" ? [] : [mode];
        var restore = SealpointCli.RunToFile(dir.File("restore.out"), ["restore", "-D", images, "--key", pki.Key("node-a"), "-d",
            "--work-dir", work, .. extra]);
        Assert.Equal(5, restore.ExitCode);
        Assert.Contains("failed authentication", restore.StandardOutput);
        Assert.Contains("were killed", restore.StandardOutput);
        Assert.True(File.Exists(Path.Combine(work, "restore.log")), "CRIU should have started (a page body is checked as it is served)");
        Thread.Sleep(500);
        Assert.False(Pids.IsAlive(pid), "the tampered restore left the restored process running");
    }

    private string DumpSecretHolder(TempDir dir, out int pid)
    {
        using var workload = Workload.StartSecretHolder(Secrets.New("restore"), dir.Dir("workload"));
        pid = workload.Pid;
        string images = dir.File("sealed");
        var dump = SealpointCli.Run("dump", "-t", pid.ToString(), "-D", images, "-r", pki.Cert("node-a"), "--pki", pki.Root);
        Assert.True(dump.Succeeded, dump.Describe());
        Pids.WaitReaped([pid], TimeSpan.FromSeconds(30));
        return images;
    }

    /// <summary>A streamed dump run through the library rather than the CLI, with recipient checks the test controls.</summary>
    private StreamDumpOptions LibraryDump(Workload workload, string images, string work, Action recipientChecks) => new()
    {
        CriuPath = CriuProcess.Resolve(null),
        Pid = workload.Pid,
        ImagesDirectory = images,
        Seal = new Sealpoint.Core.Checkpoint.SealOptions { Recipients = [new Sealpoint.Core.Keys.Pki(pki.Root).ResolveRecipient("node-a")], Sync = false },
        WorkDirectory = work,
        RecipientChecks = recipientChecks,
    };

    private static void FlipByteIn(string images, string prefix)
    {
        string file = Directory.EnumerateFiles(images, prefix + "*").OrderByDescending(f => new FileInfo(f).Length).First();
        using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        f.Position = f.Length / 2;
        int b = f.ReadByte();
        f.Position--;
        f.WriteByte((byte)(b ^ 0x40));
    }

    /// <summary>Flips a byte in the last tag of the largest page file's tag table (just before its 64-byte header).</summary>
    private static void FlipTagByteIn(string images)
    {
        string file = Directory.EnumerateFiles(images, "pages-*").OrderByDescending(f => new FileInfo(f).Length).First();
        Assert.True(new FileInfo(file).Length > 64 + 16, $"{file} has no page to tamper with");
        using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        f.Position = f.Length - 64 - 1;
        int b = f.ReadByte();
        f.Position--;
        f.WriteByte((byte)(b ^ 0x40));
    }

    private static string CopyImages(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        return to;
    }

    /// <summary>Starts `sealpoint dump` of <paramref name="workload"/> and returns once more than 16 MiB of pages have streamed (the dump still running).</summary>
    private System.Diagnostics.Process StartDumpUntilPagesFlow(TempDir dir, Workload workload, string images, params string[] more)
    {
        var sealpoint = SealpointCli.Start(dir.File("dump.out"), ["dump", "-t", workload.Pid.ToString(), "-D", images,
            "-r", pki.Cert("node-a"), "--pki", pki.Root, .. more]);
        Poll.Until(() => PagesBytes(images) > 16 << 20 || sealpoint.HasExited, TimeSpan.FromSeconds(60), () => "pages to stream");
        Assert.False(sealpoint.HasExited, "the dump ended before pages were streaming: " + File.ReadAllText(dir.File("dump.out")));
        return sealpoint;
    }

    private static long PagesBytes(string images)
    {
        try { return Directory.EnumerateFiles(images, "pages-*").Sum(f => new FileInfo(f).Length); }
        catch (IOException) { return 0; }
    }

    private static void Posix_Kill(int pid) => ProcessRunner.RunUnchecked("kill", ["-KILL", pid.ToString()]);
}
