using System.Reflection;
using System.Xml.Linq;

namespace Sealpoint.TestSupport;

/// <summary>
/// Paths inside the repository and to the freshly built programs, so tests run what was just
/// built (bin/&lt;Configuration&gt;/&lt;TargetFramework&gt;/), not what install.sh installed.
/// </summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>The folder holding Shim.sln (SEALPOINT_REPO_ROOT overrides the search).</summary>
    public static string Root => RootLazy.Value;

    /// <summary>The build configuration these tests were built with (Debug/Release).</summary>
    public static string Configuration { get; } = Metadata("Sealpoint.Configuration");

    public static string TargetFramework { get; } = Metadata("Sealpoint.TargetFramework");

    /// <summary>Folder of a project by name, e.g. "Sealpoint.Cli" → &lt;root&gt;/shim/Sealpoint.Cli.</summary>
    public static string ProjectDir(string projectName)
    {
        var matches = Directory.EnumerateDirectories(Root)
            .Select(top => Path.Combine(top, projectName))
            .Where(dir => File.Exists(Path.Combine(dir, projectName + ".csproj")))
            .ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new TestEnvironmentException($"no project {projectName}/{projectName}.csproj under any top-level folder of {Root}"),
            _ => throw new TestEnvironmentException($"project {projectName} is ambiguous: {string.Join(", ", matches)}"),
        };
    }

    /// <summary>Build output folder of a project for the current configuration; throws if not built.</summary>
    public static string BuildOutput(string projectName)
    {
        var dir = Path.Combine(ProjectDir(projectName), "bin", Configuration, TargetFramework);
        if (!Directory.Exists(dir))
            throw new TestEnvironmentException(
                $"{projectName} is not built for {Configuration} ({dir} missing): run dotnet build {Path.Combine(Root, "Shim.sln")} -c {Configuration}");
        return dir;
    }

    /// <summary>The built executable (apphost) of a program project, e.g. Program("Sealpoint.Cli") → .../sealpoint.</summary>
    public static string Program(string projectName)
    {
        var project = Path.Combine(ProjectDir(projectName), projectName + ".csproj");
        var assemblyName = XDocument.Load(project).Descendants("AssemblyName").Select(e => e.Value.Trim()).FirstOrDefault() ?? projectName;
        var path = Path.Combine(BuildOutput(projectName), assemblyName);
        if (!File.Exists(path))
            throw new TestEnvironmentException(
                $"{path} missing: rebuild with dotnet build {Path.Combine(Root, "Shim.sln")} -c {Configuration}");
        return path;
    }

    private static string FindRoot()
    {
        if (Environment.GetEnvironmentVariable("SEALPOINT_REPO_ROOT") is { Length: > 0 } env)
        {
            if (!File.Exists(Path.Combine(env, "Shim.sln")))
                throw new TestEnvironmentException($"SEALPOINT_REPO_ROOT={env} holds no Shim.sln: point it at the repository root or unset it");
            return env;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Shim.sln")))
                return dir.FullName;
        throw new TestEnvironmentException(
            $"no Shim.sln above {AppContext.BaseDirectory}: run the tests from the repository build, or set SEALPOINT_REPO_ROOT");
    }

    private static string Metadata(string key) =>
        typeof(RepoPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"assembly metadata {key} missing: see Sealpoint.TestSupport.csproj");
}
