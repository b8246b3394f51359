using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Streaming;
using Sealpoint.Packaging;

namespace Sealpoint.Cli.Commands;

public sealed class DumpCommand : Command
{
    public override string Name => "dump";
    public override string Summary => "checkpoint a process tree with CRIU, sealing every image as CRIU streams it (no plaintext file)";
    public override string Arguments => "[-- CRIU OPTIONS]";
    public override string Details =>
        "Runs 'criu dump --stream' and seals each image as it arrives; DIR receives the same sealed format as 'sealpoint seal'.\n" +
        "The tasks stay frozen until the sealed checkpoint (envelope included) is on disk; only then does CRIU stop them\n" +
        "(or, with --leave-running, resume them). On any failure no checkpoint is left and the tasks keep running.\n" +
        "CRIU's log (dump.log) and stats-dump go to the work directory: --work-dir, else a temporary one that is removed\n" +
        "after success and kept (and named) after a failure. Options after '--' go to CRIU unchanged. See docs/streaming.md.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("tree", "PID", "the process tree to dump (CRIU's -t)", Short: "t"),
        new("images-dir", "DIR", "where the sealed checkpoint goes (missing or empty)", Short: "D"),
        new("recipient", "CERT", "recipient certificate (PEM path, or identity name in the PKI)", Repeatable: true, Short: "r"),
        new("criu", "PATH", "CRIU 4.x to run (default: $SEALPOINT_CRIU, else criu on PATH)"),
        new("work-dir", "DIR", "CRIU's work directory for its log and stats (kept)", Short: "W"),
        new("leave-running", null, "CRIU: resume the tasks after the dump instead of stopping them", Short: "R"),
        new("shell-job", null, "CRIU: the tree is a shell job (shares a terminal)"),
        new("tcp-established", null, "CRIU: dump established TCP connections"),
        new("ext-unix-sk", null, "CRIU: allow external Unix sockets"),
        new("file-locks", null, "CRIU: dump file locks"),
        new("log-file", "FILE", "CRIU's log file (relative to the current directory)", Short: "o"),
        new("verbosity", "N", "CRIU's log level 0-4 (CRIU's -vN)", Short: "v"),
        new("cipher", "AEAD", "metadata cipher: chacha20-poly1305 (default) or aes-256-gcm"),
        new("pages-cipher", "AEAD", "memory page cipher: aes-256-gcm (default) or chacha20-poly1305"),
        new("no-sync", null, "do not flush to disk before writing the envelope (faster, less safe)"),
        PkiOption,
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        var timer = new PhaseTimer("sealpoint");
        timer.Mark(".NET start-up, arguments");
        string pidText = args.Require("tree", "give the process tree to dump: -t PID");
        if (!int.TryParse(pidText, out int pid) || pid <= 0)
            throw UsageError($"-t needs a process id, not '{pidText}'", "write -t PID");
        string dir = args.Require("images-dir", "give the directory for the sealed checkpoint: -D DIR");
        // Whether the certificate files exist is checked now; reading, parsing and checking them (OpenSSL's first use, the
        // CA and CRL checks) runs while CRIU starts (StreamDumpOptions.LoadRecipients), and a verdict already reached on
        // this node is reused.
        var pki = Defaults.Pki(args, NodeState.VerifiedCertificatesCache());
        var loadRecipients = Defaults.RecipientsFoundNowLoadedLater(args, pki);
        timer.Mark("recipient certificates found");
        var seal = new SealOptions
        {
            Recipients = [],
            MetadataCipher = AeadAlgorithms.Parse(args.Get("cipher") ?? "chacha20-poly1305", "--cipher"),
            PagesCipher = AeadAlgorithms.Parse(args.Get("pages-cipher") ?? "aes-256-gcm", "--pages-cipher"),
            Sync = !args.Has("no-sync"),
        };
        var criuArgs = CriuPassThrough.Collect(args, ["leave-running", "shell-job", "tcp-established", "ext-unix-sk", "file-locks"]);
        var options = new StreamDumpOptions
        {
            CriuPath = CriuProcess.Resolve(args.Get("criu")),
            Pid = pid,
            ImagesDirectory = dir,
            Seal = seal,
            WorkDirectory = args.Get("work-dir"),
            CriuArguments = criuArgs,
            LoadRecipients = loadRecipients,
        };
        var result = StreamingDump.Run(options);
        var e = result.Envelope;
        long peak = ProcessMemory.PeakRssBytes();
        if (output.IsJson)
            output.WriteJson(new JsonObject
            {
                ["directory"] = Path.GetFullPath(dir), ["checkpointId"] = e.CheckpointId, ["lineageId"] = e.LineageId,
                ["memory"] = MemoryReport.Json(),
                ["files"] = e.Files.Count, ["plaintextBytes"] = result.Bytes, ["maxOpenImages"] = result.MaxOpenImages,
                ["seconds"] = result.Elapsed.TotalSeconds, ["peakRssBytes"] = peak, ["processRunning"] = result.ProcessLeftRunning,
                ["log"] = result.LogPath,
                ["recipients"] = new JsonArray(e.Recipients.Select(r => (JsonNode)r.Id).ToArray()),
            });
        output.Line($"dumped process {pid} through the stream and sealed {result.Images} images ({result.Bytes:N0} bytes) into {Path.GetFullPath(dir)} in {result.Elapsed.TotalMilliseconds:F0} ms");
        output.Line($"checkpoint {e.CheckpointId}, {e.Recipients.Count} recipient(s); process {(result.ProcessLeftRunning ? "left running" : "stopped by CRIU")}; streamer peak memory {peak / (1024 * 1024)} MiB");
        return 0;
    }
}
