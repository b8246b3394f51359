namespace Sealpoint.Oci.Registry;

/// <summary>A user name and password (or token) for one registry. ToString never shows the secret.</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    public override string ToString() => $"{Username}:<redacted>";
}

/// <summary>Finds credentials for a registry and repository; null when there are none.</summary>
public interface ICredentialProvider
{
    RegistryCredentials? Find(string registry, string repository);

    /// <summary>Where credentials were looked for, for error messages (never their contents).</summary>
    string Describe { get; }
}

/// <summary>No credentials: anonymous access only.</summary>
public sealed class NoCredentials : ICredentialProvider
{
    public static readonly NoCredentials Instance = new();
    public RegistryCredentials? Find(string registry, string repository) => null;
    public string Describe => "no credentials configured";
}

/// <summary>The same credentials for every registry (from --username/--password-stdin).</summary>
public sealed class StaticCredentials(RegistryCredentials credentials) : ICredentialProvider
{
    public RegistryCredentials? Find(string registry, string repository) => credentials;
    public string Describe => $"credentials given on the command line for user '{credentials.Username}'";
}
