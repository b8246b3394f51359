using System.Globalization;
using System.Text;

namespace Sealpoint.Core.Config;

public enum TomlKind { String, Boolean, Integer, StringArray }

/// <summary>One value of the TOML subset, with the line it was defined on (for error messages).</summary>
public sealed record TomlValue(TomlKind Kind, int Line, string? String = null, bool Boolean = false, long Integer = 0, IReadOnlyList<string>? Strings = null)
{
    public string KindName => Kind switch
    {
        TomlKind.String => "a string",
        TomlKind.Boolean => "a boolean",
        TomlKind.Integer => "an integer",
        _ => "an array of strings",
    };
}

/// <summary>A parsed document: table name ("" for keys before the first table) → key → value, in file order.</summary>
public sealed record TomlDocument(string Source, IReadOnlyDictionary<string, IReadOnlyDictionary<string, TomlValue>> Tables, IReadOnlyDictionary<string, int> TableLines);

/// <summary>
/// A strict parser for the small TOML subset the node config needs: [tables] (no dotted or array tables),
/// bare keys, basic and literal strings, booleans, decimal integers, arrays of strings (may span lines),
/// comments. Anything else — floats, dates, inline tables, multi-line strings, quoted or dotted keys,
/// duplicate keys — is refused with its line number. The config is input from whoever can write the file,
/// so the parser never recurses, never backtracks and refuses oversized input.
/// </summary>
public static class Toml
{
    public const int MaxBytes = 1 << 20;
    private const int MaxStringLength = 64 * 1024;
    private const int MaxArrayItems = 4096;

    public static TomlDocument ParseFile(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > MaxBytes) throw Error(path, 0, $"the file is larger than {MaxBytes} bytes", "a node config is a few hundred bytes; check the path");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SealpointException(e is FileNotFoundException or DirectoryNotFoundException ? ErrorKind.NotFound : ErrorKind.Config,
                $"cannot read the node config {path}: {e.Message}", "check the path and that this user may read it");
        }
        return Parse(bytes, path);
    }

    public static TomlDocument Parse(byte[] utf8, string source)
    {
        if (utf8.Length > MaxBytes) throw Error(source, 0, $"the input is larger than {MaxBytes} bytes", "shorten it");
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(utf8); }
        catch (DecoderFallbackException) { throw Error(source, 0, "the file is not valid UTF-8", "save it as UTF-8 text"); }
        return Parse(text, source);
    }

    public static TomlDocument Parse(string text, string source)
    {
        if (text.Length > MaxBytes) throw Error(source, 0, $"the input is larger than {MaxBytes} characters", "shorten it");
        return new Parser(text, source).Run();
    }

    internal static SealpointException Error(string source, int line, string problem, string? fix = null) =>
        new(ErrorKind.Config, line > 0 ? $"{source} line {line}: {problem}" : $"{source}: {problem}",
            fix ?? "see config.example.toml for the accepted syntax (a TOML subset)");

    private sealed class Parser(string text, string source)
    {
        private int _pos;
        private int _line = 1;
        private readonly Dictionary<string, Dictionary<string, TomlValue>> _tables = new(StringComparer.Ordinal) { [""] = new(StringComparer.Ordinal) };
        private readonly Dictionary<string, int> _tableLines = new(StringComparer.Ordinal) { [""] = 0 };

        public TomlDocument Run()
        {
            if (_pos < text.Length && text[_pos] == '\uFEFF') _pos++; // a UTF-8 BOM is harmless
            var current = _tables[""];
            while (true)
            {
                SkipBlanks();
                if (_pos >= text.Length) break;
                char c = text[_pos];
                if (c == '#') { SkipComment(); continue; }
                if (c == '\n') { NewLine(); continue; }
                if (c == '\r') { ExpectNewLine(); continue; }
                if (c == '[') current = ReadTableHeader();
                else ReadKeyValue(current);
                EndOfLine();
            }
            return new TomlDocument(source,
                _tables.ToDictionary(t => t.Key, t => (IReadOnlyDictionary<string, TomlValue>)t.Value, StringComparer.Ordinal),
                _tableLines);
        }

        private Dictionary<string, TomlValue> ReadTableHeader()
        {
            int line = _line;
            _pos++; // [
            if (Peek() == '[') throw Fail("arrays of tables ([[...]]) are not supported", "use plain [table] headers");
            SkipBlanks();
            string name = ReadBareKey("table name");
            SkipBlanks();
            if (Peek() == '.') throw Fail($"dotted table names ([{name}.…]) are not supported", "use the tables listed in config.example.toml");
            if (Peek() != ']') throw Fail($"the table header [{name} is not closed with ']'");
            _pos++;
            if (_tables.ContainsKey(name)) throw Fail($"table [{name}] is defined twice (first on line {_tableLines[name]})", "merge the two tables");
            var table = new Dictionary<string, TomlValue>(StringComparer.Ordinal);
            _tables[name] = table;
            _tableLines[name] = line;
            return table;
        }

        private void ReadKeyValue(Dictionary<string, TomlValue> table)
        {
            char c = text[_pos];
            if (c is '"' or '\'') throw Fail("quoted keys are not supported", "write the key without quotes (letters, digits, '_' and '-')");
            string key = ReadBareKey("key");
            SkipBlanks();
            if (Peek() == '.') throw Fail($"dotted keys ({key}.…) are not supported", "put the key in its [table]");
            if (Peek() != '=') throw Fail($"expected '=' after the key '{key}'", "write key = value");
            _pos++;
            SkipBlanks();
            int line = _line;
            var value = ReadValue(key);
            if (table.TryGetValue(key, out var previous))
                throw Error(source, line, $"the key '{key}' is set twice (first on line {previous.Line})", "keep one of them");
            table[key] = value with { Line = line };
        }

        private TomlValue ReadValue(string key)
        {
            if (_pos >= text.Length || text[_pos] is '\n' or '\r' or '#') throw Fail($"the key '{key}' has no value", "write key = value");
            char c = text[_pos];
            if (c == '"' || c == '\'')
            {
                if (Lookahead(c, 3)) throw Fail("multi-line strings are not supported", "write the value on one line");
                return new TomlValue(TomlKind.String, _line, String: ReadString());
            }
            if (c == '[') return ReadArray(key);
            if (c == '{') throw Fail("inline tables are not supported", "use a [table] with one key per line");
            string word = ReadWord();
            if (word == "true") return new TomlValue(TomlKind.Boolean, _line, Boolean: true);
            if (word == "false") return new TomlValue(TomlKind.Boolean, _line, Boolean: false);
            if (IsInteger(word, out long n)) return new TomlValue(TomlKind.Integer, _line, Integer: n);
            if (word.Length == 0) throw Fail($"the value of '{key}' is not a string, boolean, integer or array of strings", "quote strings: key = \"value\"");
            throw Fail($"the value '{Shorten(word)}' of '{key}' is not a string, boolean, integer or array of strings (floats, dates and bare words are not supported)",
                "quote strings: key = \"value\"");
        }

        private TomlValue ReadArray(string key)
        {
            int startLine = _line;
            _pos++; // [
            var items = new List<string>();
            bool needComma = false;
            while (true)
            {
                SkipBlanksAndNewLines();
                if (_pos >= text.Length) throw Error(source, startLine, $"the array of '{key}' is not closed with ']'", "close it with ']'");
                char c = text[_pos];
                if (c == ']') { _pos++; break; }
                if (c == ',')
                {
                    if (!needComma) throw Fail($"unexpected ',' in the array of '{key}'", "separate strings with one comma");
                    _pos++;
                    needComma = false;
                    continue;
                }
                if (needComma) throw Fail($"expected ',' or ']' in the array of '{key}'", "separate strings with commas");
                if (c is not ('"' or '\'')) throw Fail($"the array of '{key}' may only hold strings", "quote every item: [\"a\", \"b\"]");
                if (Lookahead(c, 3)) throw Fail("multi-line strings are not supported", "write each item on one line");
                if (items.Count >= MaxArrayItems) throw Fail($"the array of '{key}' has more than {MaxArrayItems} items");
                items.Add(ReadString());
                needComma = true;
            }
            return new TomlValue(TomlKind.StringArray, startLine, Strings: items);
        }

        private string ReadString()
        {
            char quote = text[_pos++];
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= text.Length || text[_pos] is '\n' or '\r') throw Fail("the string is not closed on its line", $"close it with {quote}");
                char c = text[_pos++];
                if (c == quote) break;
                if (c < 0x20 && c != '\t' || c == 0x7F) throw Fail($"control character U+{(int)c:X4} in a string", "remove it, or write it as an escape (\\n, \\uXXXX) in a \"basic\" string");
                if (c == '\\' && quote == '"') sb.Append(ReadEscape());
                else sb.Append(c);
                if (sb.Length > MaxStringLength) throw Fail($"a string is longer than {MaxStringLength} characters");
            }
            return sb.ToString();
        }

        private string ReadEscape()
        {
            if (_pos >= text.Length) throw Fail("the string ends in a lone backslash");
            char e = text[_pos++];
            switch (e)
            {
                case '"': return "\"";
                case '\\': return "\\";
                case 'n': return "\n";
                case 't': return "\t";
                case 'r': return "\r";
                case 'b': return "\b";
                case 'f': return "\f";
                case 'u':
                case 'U':
                    int digits = e == 'u' ? 4 : 8;
                    if (_pos + digits > text.Length || !int.TryParse(text.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp)
                        || text.AsSpan(_pos, digits).ContainsAnyExcept("0123456789abcdefABCDEF"))
                        throw Fail($"\\{e} must be followed by {digits} hex digits");
                    _pos += digits;
                    if (cp is < 0 or > 0x10FFFF || cp is >= 0xD800 and <= 0xDFFF) throw Fail($"\\{e} escape U+{cp:X} is not a Unicode scalar value");
                    return char.ConvertFromUtf32(cp);
                default:
                    throw Fail($"unknown escape sequence \\{(e < 0x20 ? "?" : e.ToString())}", "use \\\\ for a backslash, or a 'literal string'");
            }
        }

        private string ReadBareKey(string what)
        {
            int start = _pos;
            while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] is '_' or '-')) _pos++;
            if (_pos == start)
                throw Fail(_pos < text.Length ? $"'{Printable(text[_pos])}' cannot start a {what}" : $"a {what} is missing",
                    "keys and table names are letters, digits, '_' and '-'");
            return text[start.._pos];
        }

        private string ReadWord()
        {
            int start = _pos;
            while (_pos < text.Length && text[_pos] is not (' ' or '\t' or '\n' or '\r' or '#' or ',' or ']')) _pos++;
            return text[start.._pos];
        }

        private static bool IsInteger(string word, out long value)
        {
            value = 0;
            if (word.Length == 0 || word.Length > 40) return false;
            var span = word.AsSpan();
            int i = span[0] is '+' or '-' ? 1 : 0;
            if (i == span.Length) return false;
            // TOML: digits with single underscores between them; no leading zeros.
            if (span[i] == '0' && span.Length > i + 1) return false;
            var digits = new StringBuilder();
            for (int j = i; j < span.Length; j++)
            {
                char c = span[j];
                if (char.IsAsciiDigit(c)) digits.Append(c);
                else if (c == '_' && j > i && char.IsAsciiDigit(span[j - 1]) && j + 1 < span.Length && char.IsAsciiDigit(span[j + 1])) continue;
                else return false;
            }
            return long.TryParse((span[0] == '-' ? "-" : "") + digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
        }

        private void EndOfLine()
        {
            SkipBlanks();
            if (_pos >= text.Length) return;
            char c = text[_pos];
            if (c == '#') { SkipComment(); return; }
            if (c == '\n') { NewLine(); return; }
            if (c == '\r') { ExpectNewLine(); return; }
            throw Fail($"unexpected '{Printable(c)}' after the value", "put one key = value per line; comments start with #");
        }

        private void SkipComment()
        {
            while (_pos < text.Length && text[_pos] != '\n')
            {
                char c = text[_pos];
                if (c < 0x20 && c != '\t' && c != '\r' || c == 0x7F) throw Fail($"control character U+{(int)c:X4} in a comment", "remove it");
                if (c == '\r' && (_pos + 1 >= text.Length || text[_pos + 1] != '\n')) throw Fail("a lone carriage return", "use \\n or \\r\\n line ends");
                _pos++;
            }
        }

        private void SkipBlanks()
        {
            while (_pos < text.Length && text[_pos] is ' ' or '\t') _pos++;
        }

        private void SkipBlanksAndNewLines()
        {
            while (_pos < text.Length)
            {
                char c = text[_pos];
                if (c is ' ' or '\t') _pos++;
                else if (c == '\n') NewLine();
                else if (c == '\r') ExpectNewLine();
                else if (c == '#') SkipComment();
                else break;
            }
        }

        private void NewLine() { _pos++; _line++; }

        private void ExpectNewLine()
        {
            if (_pos + 1 < text.Length && text[_pos + 1] == '\n') { _pos += 2; _line++; return; }
            throw Fail("a lone carriage return", "use \\n or \\r\\n line ends");
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private bool Lookahead(char c, int count)
        {
            if (_pos + count > text.Length) return false;
            for (int i = 0; i < count; i++) if (text[_pos + i] != c) return false;
            return true;
        }

        private static string Printable(char c) => c < 0x20 || c == 0x7F || char.IsSurrogate(c) ? $"U+{(int)c:X4}" : c.ToString();
        private static string Shorten(string s)
        {
            string cut = s.Length <= 40 ? s : s[..40] + "…";
            return string.Concat(cut.Select(ch => ch < 0x20 || ch == 0x7F || char.IsSurrogate(ch) ? "?" : ch.ToString()));
        }

        private SealpointException Fail(string problem, string? fix = null) => Error(source, _line, problem, fix);
    }
}
