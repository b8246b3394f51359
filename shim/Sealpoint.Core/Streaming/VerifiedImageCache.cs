using System.Security.Cryptography;

namespace Sealpoint.Core.Streaming;

/// <summary>
/// The plaintext of small images that the checks before a streamed restore already verified in full, kept so that
/// serving them to CRIU needs no second decryption (a tree of 100 processes has ~600 of them; each costs about a
/// quarter of a millisecond to open and decrypt while CRIU waits). Bounded by <see cref="Budget"/> bytes in all; images
/// beyond it are decrypted again when served. What CRIU receives is exactly what was verified. Wiped on dispose.
/// </summary>
public sealed class VerifiedImageCache : IDisposable
{
    /// <summary>Largest image kept: one metadata chunk.</summary>
    public const int MaxImageSize = StreamingLimits.StreamBuffer;

    private readonly Dictionary<string, byte[]> _images = new(StringComparer.Ordinal);
    private long _bytes;

    /// <summary>Part of the streamer's stated memory bound (docs/streaming.md).</summary>
    public const long Budget = 4L * 1024 * 1024;

    /// <summary>Takes ownership of <paramref name="plaintext"/> (verified in full); false, and nothing kept, when the budget is spent.</summary>
    public bool TryAdd(string name, byte[] plaintext)
    {
        lock (_images)
        {
            if (plaintext.Length > MaxImageSize || _bytes + plaintext.Length > Budget || _images.ContainsKey(name)) return false;
            _images[name] = plaintext;
            _bytes += plaintext.Length;
            return true;
        }
    }

    /// <summary>The verified plaintext of an image, if kept (an image may be served more than once).</summary>
    public bool TryGet(string name, out ReadOnlyMemory<byte> plaintext)
    {
        lock (_images)
        {
            bool found = _images.TryGetValue(name, out var bytes);
            plaintext = bytes;
            return found;
        }
    }

    public void Dispose()
    {
        lock (_images)
        {
            foreach (var bytes in _images.Values) CryptographicOperations.ZeroMemory(bytes);
            _images.Clear();
            _bytes = 0;
        }
    }
}
