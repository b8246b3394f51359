using System.Text.Json.Nodes;
using Sealpoint.Cli.CommandLine;
using Sealpoint.Core;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Cli.Commands;

public sealed class RestoreCommand : Command
{
    public override string Name => "restore";
    public override string Summary => "restore a sealed checkpoint with CRIU, streaming verified images to it (no plaintext file)";
    public override string Arguments => "[-- CRIU OPTIONS]";
    public override string Details =>
        "Runs 'criu restore --stream' and answers its image requests from the sealed checkpoint in DIR. Every chunk and\n" +
        "page is verified before CRIU gets it, and a bad one kills CRIU and what it restored so far. Before CRIU gets any image,\n" +
        "every file except memory pages is verified completely and every page file's header and tag table is checked\n" +
        "against the envelope, so a damaged checkpoint is refused early except for a modified page, which is caught as it\n" +
        "is served; the page data is read and decrypted once. --verify-first verifies every page first as well (a second\n" +
        "pass); --no-preverify checks nothing before CRIU gets images. Without -d CRIU, and so this command, waits for the restored\n" +
        "tree to exit. CRIU's log (restore.log) goes to the work directory, as for 'sealpoint dump'. Options after '--' go\n" +
        "to CRIU unchanged. See docs/streaming.md.";
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new("images-dir", "DIR", "the sealed checkpoint", Short: "D"),
        new("key", "KEY", "a recipient's private key (PEM path, or identity name in the PKI)", Short: "k"),
        new("criu", "PATH", "CRIU 4.x to run (default: $SEALPOINT_CRIU, else criu on PATH)"),
        new("work-dir", "DIR", "CRIU's work directory for its log and stats (kept)", Short: "W"),
        new("restore-detached", null, "CRIU: return once the tree runs (do not wait for it)", Short: "d"),
        new("shell-job", null, "CRIU: the tree is a shell job (shares a terminal)"),
        new("tcp-established", null, "CRIU: restore established TCP connections"),
        new("ext-unix-sk", null, "CRIU: allow external Unix sockets"),
        new("file-locks", null, "CRIU: restore file locks"),
        new("pidfile", "FILE", "CRIU: write the restored root's pid here (relative to the current directory)"),
        new("log-file", "FILE", "CRIU's log file (relative to the current directory)", Short: "o"),
        new("verbosity", "N", "CRIU's log level 0-4 (CRIU's -vN)", Short: "v"),
        new("verify-first", null, "verify every file completely, pages included, before CRIU gets any image (a second pass over the pages)"),
        new("no-preverify", null, "check nothing before CRIU gets images (chunks and pages are still verified as served)"),
        PkiOption,
        Json,
    ];

    public override int Run(ParsedArguments args, Output output)
    {
        string dir = args.Require("images-dir", "give the sealed checkpoint: -D DIR");
        if (args.Has("verify-first") && args.Has("no-preverify"))
            throw new SealpointException(ErrorKind.Usage, "--verify-first and --no-preverify contradict each other",
                "give at most one of them (neither: header, tag table and metadata checks before CRIU gets any image)");
        var options = new StreamRestoreOptions
        {
            CriuPath = CriuProcess.Resolve(args.Get("criu")),
            ImagesDirectory = dir,
            // Read while CRIU starts; a missing key file is refused now.
            Identity = Defaults.LoadIdentityLater(args),
            WorkDirectory = args.Get("work-dir"),
            CriuArguments = CriuPassThrough.Collect(args, ["restore-detached", "shell-job", "tcp-established", "ext-unix-sk", "file-locks"], ["pidfile"]),
            Check = args.Has("no-preverify") ? RestoreCheck.None : args.Has("verify-first") ? RestoreCheck.Full : RestoreCheck.Tables,
        };
        var result = StreamingRestore.Run(options);
        long peak = ProcessMemory.PeakRssBytes();
        if (output.IsJson)
            output.WriteJson(new JsonObject
            {
                ["directory"] = Path.GetFullPath(dir), ["checkpointId"] = result.CheckpointId, ["images"] = result.Images,
                ["memory"] = MemoryReport.Json(),
                ["imagesMissing"] = result.ImagesMissing, ["plaintextBytes"] = result.Bytes, ["maxOpenImages"] = result.MaxOpenImages,
                ["seconds"] = result.Elapsed.TotalSeconds, ["verifySeconds"] = result.VerifyElapsed.TotalSeconds, ["peakRssBytes"] = peak,
                ["log"] = result.LogPath,
            });
        output.Line($"restored checkpoint {result.CheckpointId} from {Path.GetFullPath(dir)} through the stream: {result.Images} images ({result.Bytes:N0} bytes) in {result.Elapsed.TotalMilliseconds:F0} ms");
        return 0;
    }
}
