using System.Formats.Tar;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;

namespace Sealpoint.Packaging.Packing;

/// <summary>
/// The engine's own checkpoint files (podman's spec.dump and config.dump with the container's environment,
/// rootfs-diff.tar with files it wrote, devshm-checkpoint.tar, network.status …) sealed as a second small sealed set,
/// <c>sealpoint-engine/</c>, for the checkpoint's recipients. Its envelope names the checkpoint it belongs to
/// (<see cref="CheckpointImage.EngineForAnnotation"/>), authenticated with it, so sets cannot be swapped between
/// checkpoints. Sub-folders (volumes/) travel as one tar file each inside the set.
/// </summary>
public static class EngineFiles
{
    public static Envelope Seal(IReadOnlyList<EngineEntry> entries, string destination, IReadOnlyList<Recipient> recipients, string checkpointId, string? engine)
    {
        var annotations = new Dictionary<string, string> { [CheckpointImage.EngineForAnnotation] = checkpointId };
        if (engine is not null) annotations[CheckpointImage.EngineAnnotation] = engine;
        using var writer = SealedCheckpointWriter.Create(destination, new SealOptions
        {
            Recipients = recipients, Annotations = annotations, Sync = false,
        });
        foreach (var e in entries)
        {
            if (!e.IsDirectory)
            {
                writer.SealFile(e.Name, e.Path);
                continue;
            }
            using var stream = writer.CreateFile(e.Name + CheckpointImage.FolderTarSuffix);
            TarFile.CreateFromDirectory(e.Path, stream, includeBaseDirectory: false);
            stream.Commit();
        }
        return writer.Complete();
    }

    /// <summary>
    /// Authenticates the set with <paramref name="identity"/>, checks it belongs to <paramref name="checkpointId"/>, and
    /// decrypts it into <paramref name="destination"/> (files at its top level, sub-folders unpacked). Nothing is written
    /// unless every file verified.
    /// </summary>
    public static Envelope Open(string sealedSet, Identity identity, string checkpointId, string destination, string plaintextScratch)
    {
        using var set = SealedCheckpoint.Open(sealedSet, identity);
        string? owner = set.Envelope.Annotations?.GetValueOrDefault(CheckpointImage.EngineForAnnotation);
        if (owner != checkpointId)
            throw new IntegrityException($"the engine files in {sealedSet} belong to checkpoint {owner ?? "(none)"}, not to {checkpointId} (swapped between checkpoints)");
        string scratch = Path.Combine(plaintextScratch, "engine-open");
        set.DecryptTo(scratch);
        try
        {
            Directory.CreateDirectory(destination);
            foreach (var f in set.Envelope.Files)
            {
                string from = Path.Combine(scratch, f.Name);
                if (f.Name.EndsWith(CheckpointImage.FolderTarSuffix, StringComparison.Ordinal))
                {
                    string dir = Path.Combine(destination, f.Name[..^CheckpointImage.FolderTarSuffix.Length]);
                    Directory.CreateDirectory(dir);
                    using var tar = File.OpenRead(from);
                    ExtractFolder(tar, dir);
                }
                else if (f.Kind != FileEntryKinds.Symlink)
                {
                    File.Copy(from, Path.Combine(destination, f.Name), overwrite: false);
                }
            }
        }
        finally
        {
            FileSystem.RemoveTree(scratch);
        }
        return set.Envelope;
    }

    /// <summary>Unpacks a folder tar (authenticated content, but still: no absolute paths, no '..', no links out).</summary>
    private static void ExtractFolder(Stream tar, string destination)
    {
        using var reader = new TarReader(tar);
        string root = Path.GetFullPath(destination) + "/";
        TarEntry? entry;
        while ((entry = reader.GetNextEntry()) is not null)
        {
            string target = Path.GetFullPath(Path.Combine(root, entry.Name));
            if (!target.StartsWith(root, StringComparison.Ordinal) && target + "/" != root)
                throw new IntegrityException($"engine folder entry '{LayerTar.Sanitize(entry.Name)}' points outside its folder");
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Directory.CreateDirectory(target);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    entry.ExtractToFile(target, overwrite: false);
                    break;
                case TarEntryType.SymbolicLink:
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.CreateSymbolicLink(target, entry.LinkName);
                    break;
                default:
                    break; // devices, fifos: not recreated
            }
        }
    }
}
