using System.Runtime.InteropServices;

namespace Sealpoint.Core.Crypto;

/// <summary>
/// AES-256-GCM and ChaCha20-Poly1305 through the OpenSSL EVP interface that .NET itself uses, with one cipher context
/// per key: the key schedule is set once and each message only sets its nonce. For 4 KiB pages this halves the
/// per-message overhead of <see cref="System.Security.Cryptography.AesGcm"/>, which re-keys on every call. Same
/// algorithms, same inputs, byte-identical output (the test vectors were made with .NET's classes). When libcrypto
/// cannot be loaded, or SEALPOINT_CRYPTO=dotnet, <see cref="Aead"/> uses .NET's classes instead.
/// </summary>
internal sealed unsafe class OpenSslAead : IDisposable
{
    private const int CtrlAeadSetIvLen = 0x9;
    private const int CtrlAeadGetTag = 0x10;
    private const int CtrlAeadSetTag = 0x11;

    private static readonly Api? Lib = Api.Load();
    private nint _ctx;

    private OpenSslAead(nint ctx) => _ctx = ctx;

    public static OpenSslAead? TryCreate(AeadAlgorithm algorithm, ReadOnlySpan<byte> key)
    {
        if (Lib is not { } lib || key.Length != AeadAlgorithms.KeySize) return null;
        nint cipher = algorithm == AeadAlgorithm.Aes256Gcm ? lib.Aes256Gcm() : lib.ChaCha20Poly1305();
        nint ctx = lib.CtxNew();
        if (cipher == 0 || ctx == 0) { if (ctx != 0) lib.CtxFree(ctx); return null; }
        fixed (byte* k = key)
        {
            if (lib.CipherInit(ctx, cipher, 0, null, null, 1) != 1
                || lib.Ctrl(ctx, CtrlAeadSetIvLen, AeadAlgorithms.NonceSize, null) != 1
                || lib.CipherInit(ctx, 0, 0, k, null, -1) != 1)
            {
                lib.CtxFree(ctx);
                return null;
            }
        }
        return new OpenSslAead(ctx);
    }

    public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        var lib = Lib!;
        int n;
        fixed (byte* iv = nonce, a = aad, p = plaintext, c = ciphertext, t = tag)
        {
            if (lib.CipherInit(_ctx, 0, 0, null, iv, 1) != 1
                || (aad.Length > 0 && lib.Update(_ctx, null, &n, a, aad.Length) != 1)
                || (plaintext.Length > 0 && lib.Update(_ctx, c, &n, p, plaintext.Length) != 1)
                || lib.Final(_ctx, c + plaintext.Length, &n) != 1
                || lib.Ctrl(_ctx, CtrlAeadGetTag, tag.Length, t) != 1)
                throw new System.Security.Cryptography.CryptographicException("OpenSSL AEAD encryption failed");
        }
    }

    /// <summary>Decrypts and verifies; on a bad tag the output is zeroed and false returned.</summary>
    public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> aad)
    {
        var lib = Lib!;
        int n;
        bool ok;
        fixed (byte* iv = nonce, a = aad, p = plaintext, c = ciphertext, t = tag)
        {
            ok = lib.CipherInit(_ctx, 0, 0, null, iv, 0) == 1
                && (aad.Length == 0 || lib.Update(_ctx, null, &n, a, aad.Length) == 1)
                && (ciphertext.Length == 0 || lib.Update(_ctx, p, &n, c, ciphertext.Length) == 1)
                && lib.Ctrl(_ctx, CtrlAeadSetTag, tag.Length, t) == 1
                && lib.Final(_ctx, p + ciphertext.Length, &n) == 1;
        }
        if (!ok) System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        return ok;
    }

    public void Dispose()
    {
        if (_ctx != 0) Lib!.CtxFree(_ctx);
        _ctx = 0;
    }

    /// <summary>The few EVP entry points, resolved once from the libcrypto .NET already loads.</summary>
    private sealed class Api
    {
        public delegate* unmanaged<nint> CtxNew;
        public delegate* unmanaged<nint, void> CtxFree;
        public delegate* unmanaged<nint> Aes256Gcm;
        public delegate* unmanaged<nint> ChaCha20Poly1305;
        public delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int> CipherInit;
        public delegate* unmanaged<nint, byte*, int*, byte*, int, int> Update;
        public delegate* unmanaged<nint, byte*, int*, int> Final;
        public delegate* unmanaged<nint, int, int, byte*, int> Ctrl;

        public static Api? Load()
        {
            if (Environment.GetEnvironmentVariable("SEALPOINT_CRYPTO") == "dotnet") return null;
            foreach (string name in new[] { "libcrypto.so.3", "libcrypto.so.1.1" })
            {
                if (!NativeLibrary.TryLoad(name, out nint h)) continue;
                try
                {
                    return new Api
                    {
                        CtxNew = (delegate* unmanaged<nint>)NativeLibrary.GetExport(h, "EVP_CIPHER_CTX_new"),
                        CtxFree = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(h, "EVP_CIPHER_CTX_free"),
                        Aes256Gcm = (delegate* unmanaged<nint>)NativeLibrary.GetExport(h, "EVP_aes_256_gcm"),
                        ChaCha20Poly1305 = (delegate* unmanaged<nint>)NativeLibrary.GetExport(h, "EVP_chacha20_poly1305"),
                        CipherInit = (delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int>)NativeLibrary.GetExport(h, "EVP_CipherInit_ex"),
                        Update = (delegate* unmanaged<nint, byte*, int*, byte*, int, int>)NativeLibrary.GetExport(h, "EVP_CipherUpdate"),
                        Final = (delegate* unmanaged<nint, byte*, int*, int>)NativeLibrary.GetExport(h, "EVP_CipherFinal_ex"),
                        Ctrl = (delegate* unmanaged<nint, int, int, byte*, int>)NativeLibrary.GetExport(h, "EVP_CIPHER_CTX_ctrl"),
                    };
                }
                catch (EntryPointNotFoundException) { }
            }
            return null;
        }
    }
}
