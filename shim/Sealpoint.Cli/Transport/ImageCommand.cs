using Sealpoint.Cli.CommandLine;
using Sealpoint.Core;
using Sealpoint.Oci;
using Sealpoint.Oci.Content;
using Sealpoint.Oci.Layout;
using Sealpoint.Oci.Registry;
using Sealpoint.Packaging;

namespace Sealpoint.Cli.Transport;

/// <summary>Where an image lives: an OCI layout folder or a registry repository, and the tag/digest named there.</summary>
public sealed record ImageLocation(IImageStore Store, string? Reference, string Text, RegistryClient? Client) : IDisposable
{
    public void Dispose() => Client?.Dispose();
}

/// <summary>Base of the commands that read or write images: shared options, store opening, error mapping.</summary>
public abstract class ImageCommand : Command
{
    public static readonly OptionSpec Insecure = new("insecure", null, "talk plain HTTP to the registry (loopback test registries)");
    public static readonly OptionSpec CaFile = new("ca-file", "FILE", "PEM file of CA certificates trusted for the registry's TLS certificate");
    public static readonly OptionSpec AuthFile = new("authfile", "FILE", "registry credentials (default: $REGISTRY_AUTH_FILE, then podman's and docker's auth files)");
    public static readonly OptionSpec Username = new("username", "USER", "registry user name; the password is read from stdin (--password-stdin)");
    public static readonly OptionSpec PasswordStdin = new("password-stdin", null, "read the registry password from standard input");
    public static readonly OptionSpec Retries = new("retries", "N", "attempts per registry operation on transient failures (default 4)");
    public static readonly OptionSpec Timeout = new("timeout", "SECONDS", "give up on a registry that makes no progress for this long (default 60)");
    public static readonly OptionSpec StateDir = new("state-dir", "DIR", $"node-local state (default: $SEALPOINT_STATE_DIR or {NodeState.DefaultRoot})");
    public static readonly OptionSpec NoProgress = new("no-progress", null, "no progress bar even on a terminal");

    public static IReadOnlyList<OptionSpec> RegistryOptionsForInspect => RegistryOptions;

    protected static IReadOnlyList<OptionSpec> RegistryOptions => [Insecure, CaFile, AuthFile, Username, PasswordStdin, Retries, Timeout, NoProgress];

    public sealed override int Run(ParsedArguments args, Output output)
    {
        try
        {
            return RunImage(args, output);
        }
        catch (OciException e)
        {
            throw new SealpointException(e.Kind switch
            {
                OciErrorKind.Usage => ErrorKind.Usage,
                OciErrorKind.NotFound => ErrorKind.NotFound,
                OciErrorKind.Unauthorized => ErrorKind.Key,
                OciErrorKind.Integrity => ErrorKind.Integrity,
                OciErrorKind.Config => ErrorKind.Config,
                OciErrorKind.Io => ErrorKind.Io,
                _ => ErrorKind.External,
            }, e.Message, e.Fix);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0 && e.InnerExceptions[0] is SealpointException or OciException)
        {
            if (e.InnerExceptions[0] is OciException oci) throw new SealpointException(ErrorKind.External, oci.Message, oci.Fix);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
    }

    protected abstract int RunImage(ParsedArguments args, Output output);

    protected static NodeState State(ParsedArguments args) => NodeState.FromEnvironment(args.Get("state-dir"));

    /// <summary>Is this text an image location (rather than a local folder or file)?</summary>
    public static bool LooksLikeImage(string text) =>
        text.StartsWith("oci:", StringComparison.Ordinal) || text.StartsWith("docker://", StringComparison.Ordinal)
        || (!File.Exists(text) && !Directory.Exists(text) && Reference.TryParse(text, out var r, out _) && r!.Registry != Reference.DockerHub);

    /// <summary>Opens <c>oci:DIR[:TAG]</c>, <c>docker://REF</c> or <c>REF</c>. Layouts are created when <paramref name="create"/>.</summary>
    public static ImageLocation Open(string text, ParsedArguments args, Output output, bool create)
    {
        if (OciLayout.ParseLocation(text) is var (dir, tag))
        {
            var layout = create ? OciLayout.OpenOrCreate(dir) : OciLayout.Open(dir);
            return new ImageLocation(layout, tag, text, null);
        }
        var reference = Reference.Parse(text);
        var client = new RegistryClient(reference.Registry, ClientOptions(args, output));
        var store = new RegistryRepository(client, reference.Repository);
        return new ImageLocation(store, reference.Digest?.ToString() ?? reference.Tag, text, client);
    }

    public static RegistryClientOptions ClientOptions(ParsedArguments args, Output output)
    {
        ICredentialProvider credentials;
        if (args.Get("username") is { } user)
        {
            if (!args.Has("password-stdin"))
                throw new SealpointException(ErrorKind.Usage, "--username needs --password-stdin", "pipe the password in: echo \"$PW\" | sealpoint ... --username USER --password-stdin");
            string password = Console.In.ReadLine() ?? "";
            credentials = new StaticCredentials(new RegistryCredentials(user, password));
        }
        else
        {
            credentials = AuthFileCredentials.FromEnvironment(args.Get("authfile"));
        }
        int timeout = args.GetInt("timeout", 60);
        bool tty = !Console.IsErrorRedirected && !args.Has("no-progress") && !output.IsJson;
        return new RegistryClientOptions
        {
            Insecure = args.Has("insecure"),
            CaFile = args.Get("ca-file"),
            Credentials = credentials,
            MaxAttempts = args.GetInt("retries", 4),
            RequestTimeout = TimeSpan.FromSeconds(timeout),
            StallTimeout = TimeSpan.FromSeconds(timeout),
            Observer = new ProgressObserver(output.Error, tty),
        };
    }
}
