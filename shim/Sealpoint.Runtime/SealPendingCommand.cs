using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Keys;

namespace Sealpoint.Runtime;

/// <summary>
/// `sealpoint-runc-core seal-pending STAGING-DIR [--image-path PATH]`: the recovery for a checkpoint whose dump
/// succeeded but whose sealing failed. Seals the plaintext kept in staging (memory) with the recipients decided at
/// checkpoint time (validated again now), into the original image path or another one, then wipes staging.
/// </summary>
public static class SealPendingCommand
{
    public const string Usage = "sealpoint-runc-core seal-pending STAGING-DIR [--image-path PATH]";

    public static int Run(IReadOnlyList<string> arguments, NodeConfig config)
    {
        string? dir = null, imagePath = null;
        for (int i = 0; i < arguments.Count; i++)
        {
            string a = arguments[i];
            if (a is "--image-path" or "-image-path" && i + 1 < arguments.Count) imagePath = arguments[++i];
            else if (a.StartsWith("--image-path=", StringComparison.Ordinal)) imagePath = a["--image-path=".Length..];
            else if (!a.StartsWith('-') && dir is null) dir = a;
            else throw new SealpointException(ErrorKind.Usage, $"unexpected argument '{NodeConfig.Printable(a)}'", $"usage: {Usage}");
        }
        if (dir is null) throw new SealpointException(ErrorKind.Usage, "no staging folder given", $"usage: {Usage}");
        dir = Path.GetFullPath(dir);
        var pending = PendingSeal.Read(dir);
        string images = Path.GetFullPath(pending.Images);
        if (!images.StartsWith(dir + "/", StringComparison.Ordinal) || !Directory.Exists(images))
            throw new SealpointException(ErrorKind.Usage, $"the images {images} named in {PendingSeal.PathIn(dir)} are not inside {dir}", "give the folder sealpoint-runc named");
        string destination = Path.GetFullPath(imagePath ?? pending.ImagePath);
        var pki = new Pki(config.PkiRoot);
        var recipients = pending.Recipients.Select(pki.ResolveRecipient).ToList();
        CheckpointSealer.SealDirectory(images, destination, new SealOptions
        {
            Recipients = recipients,
            PagesCipher = AeadAlgorithms.Parse(pending.PagesCipher, PendingSeal.PathIn(dir)),
            MetadataCipher = AeadAlgorithms.Parse(pending.MetadataCipher, PendingSeal.PathIn(dir)),
            Parent = pending.Parent,
            Annotations = pending.Annotations,
            Sync = true,
        });
        Staging.RemoveOperation(dir); // its own tmpfs, if it has one, is unmounted first
        Console.Error.WriteLine($"sealpoint-runc: sealed the checkpoint of {pending.ContainerId} into {destination}; removed {dir}");
        return 0;
    }
}
