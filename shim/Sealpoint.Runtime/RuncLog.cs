using System.Text;

namespace Sealpoint.Runtime;

/// <summary>
/// Errors as engines expect them from runc: one line on stderr, and an entry appended to runc's --log file in
/// runc's format (--log-format json: {"level","msg","time"} per line, which containerd's shim reads back and
/// reports the last "error" of; text: logrus' key=value format). Never logs key material.
/// </summary>
public static class RuncLog
{
    public static void Error(RuncArguments? args, string message) => Write(args, "error", message, toStderr: true);

    public static void Warning(RuncArguments? args, string message) => Write(args, "warning", message, toStderr: true);

    private static void Write(RuncArguments? args, string level, string message, bool toStderr)
    {
        message = message.Replace('\n', ' ').Trim();
        if (toStderr)
        {
            try { Console.Error.WriteLine($"sealpoint-runc: {message}"); } catch (IOException) { }
        }
        string? path = args?.Log;
        if (string.IsNullOrEmpty(path)) return;
        string time = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        string line = args!.LogFormat == "json"
            ? $"{{\"level\":\"{level}\",\"msg\":\"{Escape(message)}\",\"time\":\"{time}\"}}\n"
            : $"time=\"{time}\" level={level} msg=\"{Escape(message)}\"\n";
        try
        {
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            stream.Write(Encoding.UTF8.GetBytes(line));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { Console.Error.WriteLine($"sealpoint-runc: cannot append to the log file {path}: {e.Message}"); } catch (IOException) { }
        }
    }

    /// <summary>JSON string escaping; also valid for logrus' Go-quoted text values for the characters we emit.</summary>
    internal static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length + 8);
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7F) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }
}
