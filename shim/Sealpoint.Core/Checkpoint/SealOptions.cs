using Sealpoint.Core.Crypto;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Checkpoint;

/// <summary>The checkpoint a new one continues: its lineage and generation carry over (incremental chains, rollback checks).</summary>
public sealed record ParentCheckpoint(string CheckpointId, string LineageId, long Generation);

/// <summary>
/// Hears each page of the memory images (<c>pages-*.img</c>) while it is sealed, from any thread and in any order.
/// For keyed hashes that find unchanged pages in the next checkpoint (docs/registry.md); implementations must not
/// keep or copy the plaintext.
/// </summary>
public interface IPageObserver
{
    void OnPage(string file, long index, ReadOnlySpan<byte> plaintext);
}

public sealed record SealOptions
{
    public required IReadOnlyList<Recipient> Recipients { get; init; }
    public AeadAlgorithm MetadataCipher { get; init; } = AeadAlgorithm.ChaCha20Poly1305;
    public AeadAlgorithm PagesCipher { get; init; } = AeadAlgorithm.Aes256Gcm;
    public ParentCheckpoint? Parent { get; init; }
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    /// <summary>Sees every memory page's plaintext while it is sealed (node-local change detection for incremental transfer).</summary>
    public IPageObserver? PageObserver { get; init; }
    /// <summary>Flush the sealed files to disk before the envelope is written, so a crash never leaves a checkpoint that looks complete but is not.</summary>
    public bool Sync { get; init; } = true;
}
