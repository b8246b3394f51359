using System.Diagnostics;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>
/// The paper's baselines: a shell script that encrypts each image file with one process per file, sequentially, the
/// way a CRIU post-dump action script does. One script per tool, written into the run's folder (its text is in the
/// report's appendix and docs/benchmarks.md). Modes:
///   as CRIU's --action-script (CRTOOLS_SCRIPT_ACTION=post-dump): encrypt every file of $CRTOOLS_IMAGE_DIR to NAME.enc
///     and remove the plaintext (what a real hook must do); other actions do nothing;
///   encrypt-to SRC DST: encrypt every file of SRC into DST (the core benchmark: same input as Sealpoint's seal);
///   decrypt-in-place DIR: decrypt every NAME.enc back to NAME and remove NAME.enc (before restore).
/// The post-dump mode writes the start and end of its work (ns) to $BENCH_TIMING_FILE, so the encryption share of a
/// dump+encrypt run is known.
/// </summary>
public sealed class BaselineTool
{
    public string Name { get; }
    /// <summary>How the tool is called, for the report.</summary>
    public string EncryptCommand { get; }
    public string DecryptCommand { get; }
    public string ScriptPath { get; }

    private BaselineTool(string name, string encrypt, string decrypt, string scriptPath)
    {
        Name = name;
        EncryptCommand = encrypt;
        DecryptCommand = decrypt;
        ScriptPath = scriptPath;
    }

    public static readonly string[] Names = ["openssl", "age", "gpg"];

    /// <summary>Creates the tool's key material and its script in <paramref name="dir"/>. gpg gets a private GNUPGHOME
    /// whose agent is stopped at cleanup.</summary>
    public static BaselineTool Create(string name, string dir, Scratch scratch, bool gpgNoCompress = false)
    {
        Directory.CreateDirectory(dir);
        string passFile = Path.Combine(dir, "passphrase");
        File.WriteAllText(passFile, Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n");
        File.SetUnixFileMode(passFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string encrypt, decrypt;
        switch (name)
        {
            case "openssl":
            {
                string openssl = Tools.Require("openssl");
                // CTR, not CBC: no padding and the faster mode, so the baseline is not handicapped. PBKDF2 with its
                // default 10000 iterations runs once per file, as it would in a hook.
                encrypt = $"{openssl} enc -aes-256-ctr -pbkdf2 -pass file:{passFile} -in \"$1\" -out \"$2\"";
                decrypt = $"{openssl} enc -d -aes-256-ctr -pbkdf2 -pass file:{passFile} -in \"$1\" -out \"$2\"";
                break;
            }
            case "age":
            {
                string age = Tools.Require("age");
                string identity = Path.Combine(dir, "identity.txt");
                ProcessRunner.Run(Tools.Require("age-keygen"), ["-o", identity]);
                string recipients = Path.Combine(dir, "recipients.txt");
                string pub = ProcessRunner.Run(Tools.Require("age-keygen"), ["-y", identity]).StandardOutput.Trim();
                File.WriteAllText(recipients, pub + "\n");
                // A recipient key (X25519): no passphrase prompt, no scrypt per file.
                encrypt = $"{age} -R {recipients} -o \"$2\" \"$1\"";
                decrypt = $"{age} -d -i {identity} -o \"$2\" \"$1\"";
                break;
            }
            case "gpg":
            {
                string gpg = Tools.Require("gpg");
                string home = Path.Combine(dir, "gnupg");
                Directory.CreateDirectory(home);
                File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                // `gpg -c` with its defaults (AES-256 in gpg 2.2, zlib compression, iterated S2K per file): what the
                // paper's hook runs. --pinentry-mode loopback lets --batch take the passphrase from a file.
                string common = $"{gpg} --homedir {home} --batch --yes --quiet --pinentry-mode loopback --passphrase-file {passFile}"
                                + (gpgNoCompress ? " --compress-algo none" : "");
                encrypt = $"{common} -c -o \"$2\" \"$1\"";
                decrypt = $"{common} -d -o \"$2\" \"$1\"";
                scratch.OnCleanup("stop the benchmark's gpg-agent", () =>
                    ProcessRunner.RunUnchecked(Tools.Require("gpgconf"), ["--homedir", home, "--kill", "gpg-agent"]));
                break;
            }
            default: throw new ArgumentException($"unknown baseline tool {name}");
        }
        string script = Path.Combine(dir, $"post-dump-{name}.sh");
        File.WriteAllText(script, Script(name, encrypt, decrypt));
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // The report shows the commands with placeholders instead of this run's temporary paths.
        string Display(string command) => command.Replace("\"$1\"", "IN").Replace("\"$2\"", "OUT").Replace(dir + "/", "")
            .Replace("/usr/bin/", "");
        return new BaselineTool(name, Display(encrypt), Display(decrypt), script);
    }

    private static string Script(string name, string encrypt, string decrypt) => $$$"""
        #!/bin/bash
        # Baseline of the Sealpoint benchmark: per-file encryption with {{{name}}}, one process per file, sequentially,
        # as a CRIU post-dump action script does (criu dump --action-script THIS).
        set -euo pipefail
        enc() { {{{encrypt}}}; }
        dec() { {{{decrypt}}}; }
        mode=${1:-${CRTOOLS_SCRIPT_ACTION:-}}
        case "$mode" in
          post-dump)
            [ -z "${BENCH_TIMING_FILE:-}" ] || date +%s%N >"$BENCH_TIMING_FILE"
            for f in "$CRTOOLS_IMAGE_DIR"/*; do
              [ -f "$f" ] && [ ! -L "$f" ] || continue
              enc "$f" "$f.enc"
              rm -f "$f"
            done
            [ -z "${BENCH_TIMING_FILE:-}" ] || date +%s%N >>"$BENCH_TIMING_FILE"
            ;;
          encrypt-to)
            for f in "$2"/*; do
              [ -f "$f" ] && [ ! -L "$f" ] || continue
              enc "$f" "$3/${f##*/}.enc"
            done
            ;;
          decrypt-in-place)
            for f in "$2"/*.enc; do
              [ -f "$f" ] || continue
              dec "$f" "${f%.enc}"
              rm -f "$f"
            done
            ;;
          *) ;; # other CRIU actions (pre-dump, network-lock, ...): nothing to do
        esac

        """;

    /// <summary>Encrypts every file of <paramref name="source"/> into <paramref name="destination"/>; returns the wall time.</summary>
    public TimeSpan EncryptTo(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        return Run(["encrypt-to", source, destination]);
    }

    /// <summary>Decrypts every NAME.enc in <paramref name="dir"/> back to NAME; returns the wall time.</summary>
    public TimeSpan DecryptInPlace(string dir) => Run(["decrypt-in-place", dir]);

    /// <summary>Runs the post-dump mode on a directory after the fact (for `runc checkpoint`, whose CRIU runs in RPC mode
    /// and takes no action script from us): same work as the hook.</summary>
    public TimeSpan PostDump(string imagesDir) => Run([], new Dictionary<string, string?>
    {
        ["CRTOOLS_SCRIPT_ACTION"] = "post-dump", ["CRTOOLS_IMAGE_DIR"] = imagesDir,
    });

    private TimeSpan Run(IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? env = null)
    {
        var clock = Stopwatch.StartNew();
        var result = ProcessRunner.RunUnchecked("/bin/bash", [ScriptPath, .. args], new RunOptions { Timeout = TimeSpan.FromHours(2), Environment = env });
        clock.Stop();
        if (!result.Succeeded)
            throw new InvalidOperationException($"baseline {Name} failed: {result.Describe()}\nfix: check that {Name} works (packaging/install.sh installs it).");
        return clock.Elapsed;
    }

    /// <summary>The encryption share of a dump run with this script as action script, from $BENCH_TIMING_FILE.</summary>
    public static TimeSpan? ReadHookTime(string timingFile)
    {
        if (!File.Exists(timingFile)) return null;
        var lines = File.ReadAllLines(timingFile);
        if (lines.Length < 2 || !long.TryParse(lines[0], out long start) || !long.TryParse(lines[1], out long end)) return null;
        return TimeSpan.FromTicks((end - start) / 100);
    }
}
