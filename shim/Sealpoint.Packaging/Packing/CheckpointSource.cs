using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Sealpoint.Core;
using Sealpoint.Core.Checkpoint;
using Sealpoint.Core.Format;

namespace Sealpoint.Packaging.Packing;

/// <summary>A file or folder the engine put next to the CRIU images (spec.dump, config.dump, rootfs-diff.tar, volumes/ …).</summary>
public sealed record EngineEntry(string Name, string Path, bool IsDirectory);

/// <summary>
/// What is packed: a sealed CRIU image folder, and the engine's files when the source is a podman export archive
/// (<c>.tar</c>, <c>.tar.gz</c>, <c>.tar.zst</c>) or a bundle-like folder holding <c>checkpoint/</c>. Archive contents
/// are staged: sealed images as ciphertext anywhere, engine files (plaintext) on tmpfs only.
/// </summary>
public sealed class CheckpointSource : IDisposable
{
    private readonly List<Staging> _staging = [];

    private CheckpointSource(string description) => Description = description;

    public string Description { get; }
    /// <summary>The sealed CRIU image folder.</summary>
    public string CheckpointDirectory { get; private set; } = "";
    public IReadOnlyList<EngineEntry> EngineEntries { get; private set; } = [];
    /// <summary>Engine that produced the source ("podman" for export archives), for annotations.</summary>
    public string? Engine { get; private set; }
    /// <summary>Container name from config.dump, when there is one.</summary>
    public string? ContainerName { get; private set; }
    public string? RuntimeName { get; private set; }

    public Envelope Envelope => SealedCheckpoint.ReadEnvelopeUnverified(CheckpointDirectory);

    public static CheckpointSource Open(string path, string? workDir = null)
    {
        string full = System.IO.Path.GetFullPath(path);
        var source = new CheckpointSource(full);
        try
        {
            if (Directory.Exists(full))
            {
                if (SealedCheckpoint.IsSealed(full))
                {
                    source.CheckpointDirectory = full;
                }
                else if (SealedCheckpoint.IsSealed(System.IO.Path.Combine(full, CheckpointImage.CheckpointDir)))
                {
                    source.CheckpointDirectory = System.IO.Path.Combine(full, CheckpointImage.CheckpointDir);
                    source.SetEngineEntries(full);
                }
                else if (File.Exists(System.IO.Path.Combine(full, "inventory.img")) || Directory.Exists(System.IO.Path.Combine(full, CheckpointImage.CheckpointDir)))
                {
                    throw NotSealed(full);
                }
                else
                {
                    throw new SealpointException(ErrorKind.Usage, $"{full} is neither a sealed checkpoint nor a folder holding a sealed checkpoint/",
                        "give a sealed CRIU image folder (sealpoint seal), a podman export archive, or a folder with checkpoint/ inside");
                }
            }
            else if (File.Exists(full))
            {
                source.ExtractArchive(full, workDir);
            }
            else
            {
                throw new SealpointException(ErrorKind.NotFound, $"{full} does not exist", "give a sealed checkpoint folder or a podman export archive");
            }
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    private static SealpointException NotSealed(string where) => new(ErrorKind.Policy,
        $"the CRIU images in {where} are not sealed; Sealpoint only packs sealed checkpoints (everything that leaves the node is ciphertext)",
        "checkpoint with the sealpoint-runc runtime, or seal the images first (sealpoint seal DIR --recipient CERT)");

    private void SetEngineEntries(string root)
    {
        Engine = "podman";
        var entries = new List<EngineEntry>();
        foreach (var e in new DirectoryInfo(root).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (e.Name == CheckpointImage.CheckpointDir) continue;
            if (e.LinkTarget is not null)
                throw new SealpointException(ErrorKind.Usage, $"{e.FullName} is a symbolic link; engine files must be regular files or folders", "remove it");
            if (!ImageFiles.IsValidName(e.Name) || e.Name == ImageFiles.EnvelopeName || e.Name.EndsWith(CheckpointImage.FolderTarSuffix, StringComparison.Ordinal))
                throw new SealpointException(ErrorKind.Usage, $"'{e.Name}' in {root} cannot be packed (reserved name)", "remove it");
            if (e is DirectoryInfo) entries.Add(new EngineEntry(e.Name, e.FullName, true));
            else if (FileSystem.IsRegularFile(e.FullName)) entries.Add(new EngineEntry(e.Name, e.FullName, false));
            else throw new SealpointException(ErrorKind.Usage, $"{e.FullName} is not a regular file", "remove it");
        }
        EngineEntries = entries;
        ReadContainerConfig(root);
    }

    private void ReadContainerConfig(string root)
    {
        string config = System.IO.Path.Combine(root, "config.dump");
        if (!File.Exists(config) || new FileInfo(config).Length > 16 << 20) return;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(config));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return;
            if (doc.RootElement.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String) ContainerName = n.GetString();
            if (doc.RootElement.TryGetProperty("runtime", out var r) && r.ValueKind == JsonValueKind.String) RuntimeName = r.GetString();
            else if (doc.RootElement.TryGetProperty("ociRuntime", out var o) && o.ValueKind == JsonValueKind.String) RuntimeName = o.GetString();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { }
    }

    /// <summary>Unpacks a podman export archive: checkpoint/ as ciphertext into a work folder, the rest onto tmpfs.</summary>
    private void ExtractArchive(string archive, string? workDir)
    {
        var sealedStage = Staging.ForCiphertext(workDir, "pack");
        _staging.Add(sealedStage);
        var plainStage = Staging.ForPlaintext("pack");
        _staging.Add(plainStage);
        string checkpoint = sealedStage.Sub(CheckpointImage.CheckpointDir);
        string engine = plainStage.Sub("engine");

        using (var input = OpenDecompressed(archive, out var finish))
        {
            using var reader = new TarReader(input);
            TarEntry? entry;
            int count = 0;
            while ((entry = reader.GetNextEntry()) is not null)
            {
                if (++count > 1_000_000) throw new SealpointException(ErrorKind.Usage, $"{archive} has more than a million entries", "give a podman checkpoint export");
                string name = entry.Name;
                while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
                name = name.TrimEnd('/');
                if (name.Length == 0 || name == ".") continue;
                var parts = name.Split('/');
                if (name.StartsWith('/') || parts.Any(p => p is "" or "." or ".."))
                    throw new SealpointException(ErrorKind.Integrity, $"{archive} holds an unsafe path '{LayerTar.Sanitize(name)}'", "give an archive written by podman container checkpoint --export");
                if (parts[0] == CheckpointImage.CheckpointDir)
                {
                    if (parts.Length == 1) continue;
                    if (parts.Length > 2) throw new SealpointException(ErrorKind.Usage, $"{archive}: checkpoint/ holds a subfolder '{LayerTar.Sanitize(name)}'", "CRIU image folders are flat");
                    Extract(entry, System.IO.Path.Combine(checkpoint, parts[1]), allowSymlink: true, archive);
                }
                else
                {
                    string target = System.IO.Path.Combine([engine, .. parts]);
                    if (entry.EntryType == TarEntryType.Directory) { Directory.CreateDirectory(target); continue; }
                    Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
                    Extract(entry, target, allowSymlink: parts.Length > 1, archive);
                }
            }
            finish();
        }
        if (!SealedCheckpoint.IsSealed(checkpoint))
        {
            if (File.Exists(System.IO.Path.Combine(checkpoint, "inventory.img"))) throw NotSealed($"{archive} (checkpoint/)");
            throw new SealpointException(ErrorKind.Usage, $"{archive} holds no sealed checkpoint/ folder", "give a podman export archive of a container checkpointed with sealpoint-runc");
        }
        CheckpointDirectory = checkpoint;
        SetEngineEntries(engine);
    }

    private static void Extract(TarEntry entry, string target, bool allowSymlink, string archive)
    {
        switch (entry.EntryType)
        {
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                using (var output = new FileStream(target, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                }))
                {
                    entry.DataStream?.CopyTo(output);
                }
                break;
            case TarEntryType.SymbolicLink when allowSymlink:
                File.CreateSymbolicLink(target, entry.LinkName);
                break;
            case TarEntryType.Directory:
                Directory.CreateDirectory(target);
                break;
            default:
                throw new SealpointException(ErrorKind.Usage, $"{archive}: entry '{LayerTar.Sanitize(entry.Name)}' is a {entry.EntryType}, which a checkpoint archive does not hold",
                    "give an archive written by podman container checkpoint --export");
        }
    }

    /// <summary>The archive's tar stream: gzip and zstd are recognised by their magic numbers (podman writes zstd by default).</summary>
    internal static Stream OpenDecompressed(string archive, out Action finish)
    {
        var file = File.OpenRead(archive);
        Span<byte> magic = stackalloc byte[4];
        int n = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        file.Position = 0;
        finish = () => { };
        if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return new GZipStream(file, CompressionMode.Decompress);
        if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        {
            file.Dispose();
            var psi = new ProcessStartInfo("zstd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-dc", "--", archive }) psi.ArgumentList.Add(a);
            Process process;
            try { process = Process.Start(psi)!; }
            catch (System.ComponentModel.Win32Exception)
            {
                throw new SealpointException(ErrorKind.Config, $"{archive} is zstd-compressed and the zstd tool is not installed", "apt-get install zstd, or export with --compress none");
            }
            var stderr = process.StandardError.ReadToEndAsync();
            finish = () =>
            {
                process.WaitForExit();
                if (process.ExitCode != 0)
                    throw new SealpointException(ErrorKind.External, $"zstd could not decompress {archive}: {stderr.Result.Trim()}", "check that the archive is complete");
                process.Dispose();
            };
            return process.StandardOutput.BaseStream;
        }
        return file;
    }

    public void Dispose()
    {
        foreach (var s in _staging) s.Dispose();
    }
}
