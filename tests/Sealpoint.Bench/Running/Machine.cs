using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>The machine and tool versions the figures were taken on, and how busy it was.</summary>
public sealed record MachineInfo(
    string Cpu, int Cores, long MemoryBytes, string Kernel, string Os, string Criu, string Runc, string DotNet,
    string OpenSsl, string Gpg, string Age, string WorkDir, string WorkDirFileSystem, string MemoryReporting = "")
{
    public static MachineInfo Collect(string workDir)
    {
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown";
        long mem = MemInfo("MemTotal") ?? 0;
        string os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME="))?.Split('=', 2)[1].Trim('"') ?? "unknown"
            : "unknown";
        return new MachineInfo(
            cpu, Environment.ProcessorCount, mem, File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), os,
            FirstLine("criu", "--version"), FirstLine("runc", "--version"),
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            FirstLine("openssl", "version"), FirstLine("gpg", "--version"), FirstLine("age", "--version"),
            Path.GetFullPath(workDir), FileSystemOf(workDir), MemoryReportingOf());
    }

    /// <summary>
    /// A VM that reports free memory to its host (virtio free page reporting) gets it back only through host faults:
    /// first touches after a while are slow, which the figures show as noise. Recorded so that runs compare.
    /// </summary>
    private static string MemoryReportingOf()
    {
        const string order = "/sys/module/page_reporting/parameters/page_reporting_order";
        try
        {
            return File.Exists(order)
                ? $"free page reporting to the host for free blocks of order >= {File.ReadAllText(order).Trim()} ({4 << int.Parse(File.ReadAllText(order).Trim())} KiB)"
                : "no free page reporting";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return "unknown"; }
    }

    /// <summary>A /proc/meminfo field in bytes.</summary>
    public static long? MemInfo(string field)
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith(field + ":"))
                return long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0]) * 1024;
        return null;
    }

    /// <summary>1, 5 and 15 minute load averages: the report states how busy the machine was while measuring.</summary>
    public static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static string FirstLine(string tool, string arg)
    {
        try
        {
            var path = Tools.Find(tool);
            if (path is null) return "not installed";
            var r = ProcessRunner.RunUnchecked(path, [arg], new RunOptions { Timeout = TimeSpan.FromSeconds(20) });
            string text = (r.StandardOutput + r.StandardError).Trim();
            return text.Split('\n')[0].Trim();
        }
        catch (Exception e) { return $"unknown ({e.Message})"; }
    }

    private static string FileSystemOf(string path)
    {
        try
        {
            var r = ProcessRunner.RunUnchecked("stat", ["-f", "-c", "%T", path]);
            return r.StandardOutput.Trim();
        }
        catch (Exception) { return "unknown"; }
    }
}
