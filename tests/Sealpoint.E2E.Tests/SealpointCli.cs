using System.Text.Json.Nodes;
using Sealpoint.TestSupport;

namespace Sealpoint.E2E.Tests;

/// <summary>Runs the freshly built `sealpoint` program against a throw-away PKI (node-a, node-b, node-c).</summary>
public sealed class SealpointCli : IDisposable
{
    private readonly TempDir _pki = TempDir.Create("pki");

    public SealpointCli()
    {
        Program = RepoPaths.Program("Sealpoint.Cli");
        Run("keys", "init");
        Run("keys", "issue", "node-a");
        Run("keys", "issue", "node-b", "--algorithm", "rsa2048");
        Run("keys", "issue", "node-c", "--algorithm", "p384");
    }

    public string Program { get; }
    public string PkiRoot => _pki.Path;
    public string KeyOf(string name) => Path.Combine(PkiRoot, name, "private", "key.pem");

    public ProcessResult Run(params string[] args) => ProcessRunner.Run(Program, args, Options([0]));

    /// <summary>Runs with more environment variables (e.g. SEALPOINT_OPENSSL_DIR); exit code 0 required.</summary>
    public ProcessResult RunWith(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var merged = new Dictionary<string, string?>(Options([0]).Environment!);
        foreach (var (name, value) in environment) merged[name] = value;
        return ProcessRunner.Run(Program, args, Options([0]) with { Environment = merged });
    }

    /// <summary>Runs and accepts any exit code; the caller asserts on it.</summary>
    public ProcessResult Try(params string[] args) => ProcessRunner.RunUnchecked(Program, args, Options(null));

    public JsonObject Json(params string[] args) => JsonNode.Parse(Run([.. args, "--json"]).StandardOutput)!.AsObject();

    private RunOptions Options(int[]? accept) => new()
    {
        Environment = new Dictionary<string, string?> { ["SEALPOINT_PKI"] = PkiRoot },
        Timeout = TimeSpan.FromMinutes(5),
        AcceptExitCodes = accept ?? Enumerable.Range(0, 256).ToArray(),
    };

    public void Dispose() => _pki.Dispose();
}
