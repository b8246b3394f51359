namespace Sealpoint.Oci.Registry;

/// <summary>
/// One challenge of a <c>WWW-Authenticate</c> header (RFC 9110 §11.6.1): a scheme and its auth-params, e.g.
/// <c>Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"</c>. Parsing is total: any
/// input yields a (possibly empty) list, never an exception, since the header comes from an untrusted server.
/// </summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public const int MaxHeaderLength = 16 * 1024;

    public string? this[string name] => Parameters.TryGetValue(name, out var v) ? v : null;
    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);
    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public static IReadOnlyList<AuthChallenge> ParseAll(IEnumerable<string> headerValues) =>
        headerValues.SelectMany(Parse).ToList();

    public static IReadOnlyList<AuthChallenge> Parse(string? header)
    {
        var result = new List<AuthChallenge>();
        if (string.IsNullOrEmpty(header) || header.Length > MaxHeaderLength) return result;
        int i = 0;
        string? scheme = null;
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        void Flush()
        {
            if (scheme is not null) result.Add(new AuthChallenge(scheme, parameters));
            scheme = null;
            parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        }

        while (i < header.Length)
        {
            SkipSpaceAndCommas(header, ref i);
            if (i >= header.Length) break;
            string token = ReadToken(header, ref i);
            if (token.Length == 0) { i++; continue; } // stray character: skip it
            int afterToken = i;
            SkipSpace(header, ref i);
            bool assignment = i + 1 < header.Length && header[i] == '=' && header[i + 1] != '='
                || i + 1 == header.Length && header[i] == '=';
            if (assignment)
            {
                // auth-param: name "=" ( token / quoted-string ); one without a scheme before it is dropped.
                i++;
                SkipSpace(header, ref i);
                string value = i < header.Length && header[i] == '"' ? ReadQuoted(header, ref i) : ReadToken68(header, ref i);
                if (scheme is not null) parameters.TryAdd(token, value);
                continue;
            }
            // A token not followed by "=" starts a new challenge.
            i = afterToken;
            Flush();
            scheme = token;
            // The token68 form ("Negotiate abc==") carries nothing we use: skip it when it stands alone.
            SkipSpace(header, ref i);
            int save = i;
            string t68 = ReadToken68(header, ref i);
            SkipSpace(header, ref i);
            if (t68.Length > 0 && (i >= header.Length || header[i] == ',') && (t68.EndsWith('=') || !t68.Contains('=')))
                continue;
            i = save;
        }
        Flush();
        return result;
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);

    private static string ReadToken(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && IsTokenChar(s[i])) i++;
        return s[start..i];
    }

    private static string ReadToken68(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && (IsTokenChar(s[i]) || s[i] is '/' or ':' or '=' or '+')) i++;
        return s[start..i];
    }

    private static string ReadQuoted(string s, ref int i)
    {
        var sb = new System.Text.StringBuilder();
        i++; // opening quote
        while (i < s.Length)
        {
            char c = s[i++];
            if (c == '"') return sb.ToString();
            if (c == '\\' && i < s.Length) c = s[i++];
            sb.Append(c);
        }
        return sb.ToString(); // unterminated: take what there is
    }

    private static void SkipSpace(string s, ref int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t') i++;
    }

    private static void SkipSpaceAndCommas(string s, ref int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t' or ',') i++;
    }
}
