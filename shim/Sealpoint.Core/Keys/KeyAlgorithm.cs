using System.Security.Cryptography;

namespace Sealpoint.Core.Keys;

public enum KeyAlgorithm { P256, P384, Rsa2048, Rsa3072, Rsa4096 }

public static class KeyAlgorithms
{
    public static KeyAlgorithm Parse(string? name) => name?.ToLowerInvariant() switch
    {
        "p256" or "p-256" or "ec" or "ecdsa" => KeyAlgorithm.P256,
        "p384" or "p-384" => KeyAlgorithm.P384,
        "rsa2048" or "rsa" => KeyAlgorithm.Rsa2048,
        "rsa3072" => KeyAlgorithm.Rsa3072,
        "rsa4096" => KeyAlgorithm.Rsa4096,
        _ => throw new SealpointException(ErrorKind.Usage, $"unknown key algorithm '{name}'", "use p256, p384, rsa2048, rsa3072 or rsa4096"),
    };

    public static AsymmetricAlgorithm Generate(this KeyAlgorithm a) => a switch
    {
        KeyAlgorithm.P256 => ECDsa.Create(ECCurve.NamedCurves.nistP256),
        KeyAlgorithm.P384 => ECDsa.Create(ECCurve.NamedCurves.nistP384),
        KeyAlgorithm.Rsa2048 => RSA.Create(2048),
        KeyAlgorithm.Rsa3072 => RSA.Create(3072),
        KeyAlgorithm.Rsa4096 => RSA.Create(4096),
        _ => throw new ArgumentOutOfRangeException(nameof(a)),
    };
}
