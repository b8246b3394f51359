using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;

namespace Sealpoint.Core.Checkpoint;

/// <summary>Seals a plaintext CRIU image directory (flat files plus symlinks such as CRIU's <c>parent</c>).</summary>
public static class CheckpointSealer
{
    public static Envelope SealDirectory(string source, string destination, SealOptions options)
    {
        source = Path.GetFullPath(source);
        destination = Path.GetFullPath(destination);
        if (!Directory.Exists(source))
            throw new SealpointException(ErrorKind.NotFound, $"image directory {source} does not exist", "give the directory CRIU dumped into (-D/--images-dir)");
        if (SealedCheckpoint.IsSealed(source))
            throw new SealpointException(ErrorKind.Usage, $"{source} is already sealed", "it needs no further sealing; use 'sealpoint open' to decrypt it");
        if (source == destination)
            throw new SealpointException(ErrorKind.Usage, "source and destination are the same directory", "use SealInPlace, or a different destination");
        var entries = Scan(source);
        using var writer = SealedCheckpointWriter.Create(destination, options);
        foreach (var link in entries.Where(e => e.LinkTarget is not null)) writer.AddSymlink(link.Name, link.LinkTarget!);
        var files = entries.Where(e => e.LinkTarget is null).OrderByDescending(e => ((FileInfo)e).Length).ToList();
        ForEachInParallel(files, f => writer.SealFile(f.Name, f.FullName));
        return writer.Complete();
    }

    /// <summary>
    /// Seals a directory's files where they are: the fastest way (page files are encrypted in place, no second copy)
    /// and it overwrites the plaintext itself. An interruption leaves the directory unusable, so this is opt-in.
    /// </summary>
    public static Envelope SealFilesInPlace(string directory, SealOptions options)
    {
        directory = Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
            throw new SealpointException(ErrorKind.NotFound, $"image directory {directory} does not exist", "give the directory CRIU dumped into (-D/--images-dir)");
        if (SealedCheckpoint.IsSealed(directory))
            throw new SealpointException(ErrorKind.Usage, $"{directory} is already sealed", "it needs no further sealing; use 'sealpoint open' to decrypt it");
        var entries = Scan(directory);
        using var writer = SealedCheckpointWriter.CreateInPlace(directory, options);
        foreach (var link in entries.Where(e => e.LinkTarget is not null)) writer.AddExistingSymlink(link.Name, link.LinkTarget!);
        var files = entries.Where(e => e.LinkTarget is null).OrderByDescending(e => ((FileInfo)e).Length).ToList();
        ForEachInParallel(files, f => writer.SealExisting(f.Name));
        return writer.Complete();
    }

    /// <summary>
    /// Seals a directory and puts the sealed result in its place: sealed into a sibling, then swapped in, then the
    /// plaintext removed. If anything fails before the swap, the original directory is untouched.
    /// </summary>
    public static Envelope SealInPlace(string directory, SealOptions options)
    {
        directory = Path.GetFullPath(directory).TrimEnd('/');
        string suffix = Hex.Lower(RandomNumberGenerator.GetBytes(4));
        string sealedTmp = $"{directory}.sealpoint-sealing-{suffix}";
        string plainTmp = $"{directory}.sealpoint-plain-{suffix}";
        var envelope = SealDirectory(directory, sealedTmp, options);
        Directory.Move(directory, plainTmp);
        Directory.Move(sealedTmp, directory);
        FileSystem.RemoveTree(plainTmp);
        return envelope;
    }

    /// <summary>Runs <paramref name="body"/> for every file on every core (largest first as given); the first Sealpoint error is rethrown as itself.</summary>
    internal static void ForEachInParallel(IEnumerable<FileSystemInfo> files, Action<FileSystemInfo> body)
    {
        try
        {
            Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is SealpointException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    internal static List<FileSystemInfo> Scan(string source)
    {
        var result = new List<FileSystemInfo>();
        foreach (var e in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            if (e.LinkTarget is not null) { result.Add(e); continue; }
            if (e is DirectoryInfo)
                throw new SealpointException(ErrorKind.Usage, $"{e.FullName} is a directory; CRIU image directories are flat",
                    "give the image directory itself, or move the subdirectory out");
            if (e.Name == ImageFiles.EnvelopeName || !ImageFiles.IsValidName(e.Name))
                throw new SealpointException(ErrorKind.Usage, $"{e.FullName} cannot be sealed (reserved name)", "remove it from the image directory");
            if (!FileSystem.IsRegularFile(e.FullName))
                throw new SealpointException(ErrorKind.Usage, $"{e.FullName} is not a regular file", "remove it from the image directory");
            result.Add(e);
        }
        return result;
    }
}
