namespace Sealpoint.Core.Crypto;

internal static class Hex
{
    public static string Lower(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    public static bool TryDecode(string? text, int expectedBytes, out byte[] bytes)
    {
        bytes = [];
        if (text is null || text.Length != expectedBytes * 2) return false;
        try { bytes = Convert.FromHexString(text); return true; }
        catch (FormatException) { return false; }
    }
}
