using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;

namespace Sealpoint.Core.Checkpoint;

/// <summary>
/// Writes one sealed checkpoint into a directory. Files may be added concurrently (from disk or as streams);
/// the envelope is written last by <see cref="Complete"/>, so a directory without it is never taken for a checkpoint.
/// Disposing an uncompleted writer removes everything it wrote.
/// </summary>
public sealed class SealedCheckpointWriter : IDisposable
{
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly byte[] _dataKey = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _checkpointId = RandomNumberGenerator.GetBytes(SealedFile.IdSize);
    private readonly SealOptions _options;
    // Null until the recipients are known (CreateBeforeRecipients, then WrapFor); Complete needs them.
    private volatile IReadOnlyList<RecipientStanza>? _stanzas;
    private readonly ConcurrentDictionary<string, FileEntry?> _entries = new(StringComparer.Ordinal);
    private readonly bool _createdDirectory;
    private readonly bool _inPlace;
    private bool _completed;

    private SealedCheckpointWriter(string directory, SealOptions options, bool createdDirectory, bool inPlace = false, bool recipientsLater = false)
    {
        _inPlace = inPlace;
        Directory = directory;
        _options = options;
        _createdDirectory = createdDirectory;
        // Wrapping first: a bad recipient fails before anything is written.
        if (!recipientsLater) WrapFor(options.Recipients);
    }

    public string Directory { get; }
    public string CheckpointId => Hex.Lower(_checkpointId);

    /// <summary>Starts a sealed checkpoint in <paramref name="directory"/>, which must be missing or empty.</summary>
    public static SealedCheckpointWriter Create(string directory, SealOptions options) => Create(ReserveDirectory(directory), options);

    /// <summary>
    /// <see cref="Create"/> for a producer that learns its recipients while it already seals (a streamed dump loads
    /// the certificates while CRIU starts): <see cref="SealOptions.Recipients"/> is ignored, and <see cref="WrapFor"/>
    /// must come before <see cref="Complete"/>. Until then the data key exists only in this process.
    /// </summary>
    public static SealedCheckpointWriter CreateBeforeRecipients(string directory, SealOptions options) =>
        CreateBeforeRecipients(ReserveDirectory(directory), options);

    /// <summary>
    /// The output directory checked (missing or empty) and created ahead of its writer: a streamed dump refuses an unusable
    /// one before CRIU starts, and creates the writer (the data key: OpenSSL's first use) while CRIU starts.
    /// </summary>
    public static ReservedDirectory ReserveDirectory(string directory)
    {
        directory = Path.GetFullPath(directory);
        bool created = !System.IO.Directory.Exists(directory);
        if (created) System.IO.Directory.CreateDirectory(directory, PrivateDir);
        else if (System.IO.Directory.EnumerateFileSystemEntries(directory).Any())
            throw new SealpointException(ErrorKind.Usage, $"{directory} is not empty; a sealed checkpoint needs an empty directory",
                "choose a new output directory or empty this one");
        return new ReservedDirectory(directory, created);
    }

    /// <summary><see cref="CreateBeforeRecipients(string, SealOptions)"/> in a directory <see cref="ReserveDirectory"/> checked.</summary>
    public static SealedCheckpointWriter CreateBeforeRecipients(ReservedDirectory reserved, SealOptions options) =>
        Start(reserved, options, recipientsLater: true);

    /// <summary><see cref="Create"/> in a directory <see cref="ReserveDirectory"/> checked.</summary>
    public static SealedCheckpointWriter Create(ReservedDirectory reserved, SealOptions options) => Start(reserved, options, recipientsLater: false);

    /// <summary>A writer in a reserved directory; one that cannot start (a refused recipient) leaves no directory behind.</summary>
    private static SealedCheckpointWriter Start(ReservedDirectory reserved, SealOptions options, bool recipientsLater)
    {
        try { return new(reserved.Path, options, reserved.Created, recipientsLater: recipientsLater); }
        catch
        {
            reserved.Release();
            throw;
        }
    }

    /// <summary>Wraps the data key for <paramref name="recipients"/> (once; see <see cref="CreateBeforeRecipients"/>).</summary>
    public void WrapFor(IReadOnlyList<Recipient> recipients)
    {
        if (_stanzas is not null) throw new InvalidOperationException("the data key is already wrapped for this checkpoint's recipients");
        if (recipients.Count == 0)
            throw new SealpointException(ErrorKind.Usage, "no recipients given", "name at least one recipient certificate (--recipient CERT)");
        _stanzas = recipients.DistinctBy(r => r.Id).Select(r => r.Wrap(_dataKey, _checkpointId)).ToList();
    }

    /// <summary>
    /// A writer that seals the files of <paramref name="directory"/> where they are (<see cref="SealExisting"/>).
    /// If it fails midway the directory is left without an envelope and is not a usable checkpoint any more.
    /// </summary>
    public static SealedCheckpointWriter CreateInPlace(string directory, SealOptions options) =>
        new(Path.GetFullPath(directory), options, createdDirectory: false, inPlace: true);

    /// <summary>Seals a file on disk; page files use every core.</summary>
    public FileEntry SealFile(string name, string sourcePath)
    {
        Reserve(name);
        if (ImageFiles.PlaintextNames.Contains(name)) return AddPlainFile(name, sourcePath);
        var kind = ImageFiles.KindOf(name);
        var header = NewHeader(kind);
        using var source = File.OpenHandle(sourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(source);
        using var destination = CreateOutput(name);
        var info = SealedFileIO.Seal(source, length, destination, header, () => SealedFile.CreateCipher(_dataKey, header, name), PageVisitorFor(name));
        return Record(name, kind, info);
    }

    /// <summary>
    /// Seals a file that is already in this writer's directory, replacing its plaintext. Page files are encrypted in
    /// place (no second copy, and the plaintext blocks themselves are overwritten); other files are sealed beside and
    /// renamed over. Only for writers made with <see cref="CreateInPlace"/>.
    /// </summary>
    public FileEntry SealExisting(string name)
    {
        if (!_inPlace) throw new InvalidOperationException("SealExisting needs a writer made with CreateInPlace");
        Reserve(name);
        string path = Path.Combine(Directory, name);
        if (ImageFiles.PlaintextNames.Contains(name))
        {
            using var hashing = new PlainWriteStream(Stream.Null);
            using (var input = File.OpenRead(path)) input.CopyTo(hashing);
            return Record(name, hashing.Finish(name));
        }
        var kind = ImageFiles.KindOf(name);
        var header = NewHeader(kind);
        Func<FileCipher> newCipher = () => SealedFile.CreateCipher(_dataKey, header, name);
        if (kind == SealedFileKind.Pages)
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 0);
            return Record(name, kind, SealedFileIO.Seal(file.SafeFileHandle, file.Length, file, header, newCipher, PageVisitorFor(name)));
        }
        string tmp = path + ".sealpoint-tmp";
        SealedFileInfo info;
        using (var source = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan))
        using (var destination = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile, BufferSize = 0 }))
            info = SealedFileIO.Seal(source, RandomAccess.GetLength(source), destination, header, newCipher);
        File.Move(tmp, path, overwrite: true);
        return Record(name, kind, info);
    }

    /// <summary>A stream that seals what is written to it as file <paramref name="name"/>; call Commit when all is written.</summary>
    public SealedFileStream CreateFile(string name)
    {
        Reserve(name);
        var output = CreateOutput(name);
        if (ImageFiles.PlaintextNames.Contains(name))
            return new SealedFileStream(name, new PlainWriteStream(output), s => Record(name, ((PlainWriteStream)s).Finish(name)));
        var kind = ImageFiles.KindOf(name);
        var header = NewHeader(kind);
        var cipher = SealedFile.CreateCipher(_dataKey, header, name);
        if (kind == SealedFileKind.Pages)
            return new SealedFileStream(name, new PagesSealingStream(output, cipher, header, PageVisitorFor(name)), s => Record(name, kind, ((PagesSealingStream)s).Finish()));
        var sealing = new SealingStream(output, cipher, header, ownsOutput: true);
        return new SealedFileStream(name, sealing, s => Record(name, kind, ((SealingStream)s).Finish()));
    }

    /// <summary>
    /// Like <see cref="CreateFile(string)"/>, but a memory-page image is sealed on <paramref name="pageThreads"/> threads:
    /// for streamed dumps, where a large page image arrives through one pipe. Same sealed format.
    /// </summary>
    internal SealedFileStream CreateFile(string name, int pageThreads)
    {
        if (pageThreads <= 1 || !ImageFiles.IsPages(name)) return CreateFile(name);
        Reserve(name);
        var header = NewHeader(SealedFileKind.Pages);
        // The side file holds the tags (no plaintext) until the final size places the tag table; removed at Commit.
        var sealer = new Streaming.ParallelPageSealer(CreateOutput(name), Path.Combine(Directory, name + ".sealpoint-tags"), header,
            () => SealedFile.CreateCipher(_dataKey, header, name), pageThreads, PageVisitorFor(name));
        return new SealedFileStream(name, sealer, s => Record(name, SealedFileKind.Pages, ((Streaming.ParallelPageSealer)s).Finish()));
    }

    /// <summary>
    /// A page file sealed piece by piece while its source is still being written (<see cref="FollowingSealer"/>):
    /// same layout and bytes as <see cref="SealFile"/> would give for the final source.
    /// </summary>
    internal GrowingPageFile BeginGrowingPages(string name)
    {
        if (!ImageFiles.IsPages(name)) throw new ArgumentException($"'{name}' is not a page image", nameof(name));
        Reserve(name);
        var header = NewHeader(SealedFileKind.Pages);
        return new GrowingPageFile(name, CreateOutput(name), header, () => SealedFile.CreateCipher(_dataKey, header, name), PageVisitorFor(name),
            info => Record(name, SealedFileKind.Pages, info));
    }

    /// <summary>The observer's view of one page file (<see cref="SealOptions.PageObserver"/>), or null.</summary>
    private PageVisitor? PageVisitorFor(string name) =>
        _options.PageObserver is { } observer && ImageFiles.IsPages(name) ? (index, page) => observer.OnPage(name, index, page) : null;

    public void AddSymlink(string name, string target)
    {
        Reserve(name);
        File.CreateSymbolicLink(Path.Combine(Directory, name), target);
        _entries[name] = new FileEntry { Name = name, Kind = FileEntryKinds.Symlink, Target = target };
    }

    /// <summary>Records a symlink already present in an in-place writer's directory.</summary>
    public void AddExistingSymlink(string name, string target)
    {
        if (!_inPlace) throw new InvalidOperationException("AddExistingSymlink needs a writer made with CreateInPlace");
        Reserve(name);
        _entries[name] = new FileEntry { Name = name, Kind = FileEntryKinds.Symlink, Target = target };
    }

    private FileEntry AddPlainFile(string name, string sourcePath)
    {
        using var output = CreateOutput(name);
        using var plain = new PlainWriteStream(output);
        using (var input = File.OpenRead(sourcePath)) input.CopyTo(plain);
        return Record(name, plain.Finish(name));
    }

    /// <summary>Writes the envelope (after syncing the files) and returns it; the checkpoint is complete from here on.</summary>
    public Envelope Complete()
    {
        var stanzas = _stanzas ?? throw new InvalidOperationException("the data key was never wrapped for the recipients (WrapFor)");
        // Plain loops, not LINQ over the dictionary's pairs: those generic instantiations are not precompiled, and their
        // JIT cost 7-8 ms here, while a streamed dump's tasks wait frozen for this envelope.
        var unfinished = new List<string>();
        var files = new List<FileEntry>(_entries.Count);
        foreach (var (name, entry) in _entries)
        {
            if (entry is null) unfinished.Add(name);
            else files.Add(entry);
        }
        files.Sort(static (x, y) => string.CompareOrdinal(x.Name, y.Name));
        if (unfinished.Count > 0)
            throw new SealpointException(ErrorKind.Internal, $"sealed checkpoint in {Directory} has unfinished files: {string.Join(", ", unfinished)}",
                "the producer of those files failed; the checkpoint is incomplete and must be taken again");
        var envelope = new Envelope
        {
            CheckpointId = CheckpointId,
            LineageId = _options.Parent?.LineageId ?? Hex.Lower(RandomNumberGenerator.GetBytes(SealedFile.IdSize)),
            Generation = (_options.Parent?.Generation ?? 0) + 1,
            ParentId = _options.Parent?.CheckpointId,
            Created = DateTimeOffset.UtcNow,
            MetadataCipher = _options.MetadataCipher.Name(),
            PagesCipher = _options.PagesCipher.Name(),
            Recipients = stanzas,
            Files = files,
            Annotations = _options.Annotations,
        };
        if (_options.Sync) FileSystem.SyncFileSystemOf(Directory);
        string path = Path.Combine(Directory, ImageFiles.EnvelopeName);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile }))
        {
            fs.Write(EnvelopeFile.Serialize(envelope, _dataKey));
            if (_options.Sync) fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path);
        if (_options.Sync) FileSystem.SyncFileSystemOf(Directory);
        _completed = true;
        return envelope;
    }

    private void Reserve(string name)
    {
        if (_completed) throw new InvalidOperationException("checkpoint already completed");
        if (!ImageFiles.IsValidName(name) || name == ImageFiles.EnvelopeName || name == ImageFiles.EnvelopeName + ".tmp")
            throw new SealpointException(ErrorKind.Usage, $"'{name}' cannot be part of a sealed checkpoint", "image files must be plain names inside the image directory");
        if (!_entries.TryAdd(name, null))
            throw new SealpointException(ErrorKind.Usage, $"'{name}' was added to the checkpoint twice");
    }

    private SealedFileHeader NewHeader(SealedFileKind kind) => new(kind,
        kind == SealedFileKind.Pages ? _options.PagesCipher : _options.MetadataCipher,
        SealedFile.ChunkSizeOf(kind), _checkpointId, RandomNumberGenerator.GetBytes(16));

    private FileStream CreateOutput(string name) => new(Path.Combine(Directory, name), new FileStreamOptions
    {
        Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = PrivateFile, BufferSize = 0,
    });

    private FileEntry Record(string name, SealedFileKind kind, SealedFileInfo info) => Record(name, new FileEntry
    {
        Name = name, Kind = kind == SealedFileKind.Pages ? FileEntryKinds.Pages : FileEntryKinds.Stream, Size = info.PlaintextSize, Digest = info.Digest,
    });

    private FileEntry Record(string name, FileEntry entry)
    {
        _entries[name] = entry;
        return entry;
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_dataKey);
        if (_completed) return;
        if (_inPlace)
        {
            foreach (var name in _entries.Keys) FileSystem.RemoveTree(Path.Combine(Directory, name + ".sealpoint-tmp"));
            return;
        }
        foreach (var name in _entries.Keys) FileSystem.RemoveTree(Path.Combine(Directory, name));
        FileSystem.RemoveTree(Path.Combine(Directory, ImageFiles.EnvelopeName + ".tmp"));
        if (_createdDirectory) FileSystem.RemoveTree(Directory);
    }
}

/// <summary>An output directory <see cref="SealedCheckpointWriter.ReserveDirectory"/> checked; <see cref="Release"/> undoes it when no writer took it.</summary>
public sealed record ReservedDirectory(string Path, bool Created)
{
    public void Release()
    {
        if (Created) FileSystem.RemoveTree(Path);
    }
}

/// <summary>One file being written into a sealed checkpoint. <see cref="Commit"/> finishes it; disposing without it leaves it unfinished.</summary>
public sealed class SealedFileStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly Func<Stream, FileEntry> _commit;
    private FileEntry? _entry;

    internal SealedFileStream(string name, Stream inner, Func<Stream, FileEntry> commit)
    {
        Name = name;
        _inner = inner;
        _commit = commit;
    }

    public string Name { get; }

    /// <summary>The sealing stream underneath, for writers that fill its buffers directly.</summary>
    internal Stream Inner => _inner;

    public FileEntry Commit() => _entry ??= _commit(_inner);

    public override void Write(ReadOnlySpan<byte> buffer) => _inner.Write(buffer);
    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => _inner.WriteAsync(buffer, ct);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => _inner.WriteAsync(buffer, offset, count, ct);
    public override long Length => _inner.Length;
    public override long Position { get => _inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Writes a plaintext file while hashing it, for the few files that stay plaintext.</summary>
internal sealed class PlainWriteStream(Stream output) : WriteOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _size;

    public FileEntry Finish(string? name = null)
    {
        output.Flush();
        return new FileEntry { Name = name ?? "", Kind = FileEntryKinds.Plain, Size = _size, Digest = "sha256:" + Hex.Lower(_hash.GetHashAndReset()) };
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        output.Write(buffer);
        _size += buffer.Length;
    }

    public override long Length => _size;
    public override long Position { get => _size; set => throw new NotSupportedException(); }
    public override void Flush() { }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _hash.Dispose(); output.Dispose(); }
        base.Dispose(disposing);
    }
}

/// <summary>One page file of a <see cref="SealedCheckpointWriter"/> sealed in steps as its source grows; not thread-safe.</summary>
internal sealed class GrowingPageFile : IDisposable
{
    private readonly FileStream _output;
    private readonly SealedFileHeader _header;
    private readonly Func<FileCipher> _newCipher;
    private readonly PageVisitor? _onPage;
    private readonly Func<SealedFileInfo, FileEntry> _record;
    private FileCipher? _cipher;
    private byte[]? _buffer;
    private byte[] _tags = new byte[4096];

    internal GrowingPageFile(string name, FileStream output, SealedFileHeader header, Func<FileCipher> newCipher, PageVisitor? onPage,
        Func<SealedFileInfo, FileEntry> record)
    {
        Name = name;
        _output = output;
        _header = header;
        _newCipher = newCipher;
        _onPage = onPage;
        _record = record;
    }

    public string Name { get; }
    /// <summary>Plaintext bytes sealed so far (whole blocks).</summary>
    public long Sealed { get; private set; }

    /// <summary>
    /// Seals, on this thread, the whole blocks of <paramref name="source"/> below <paramref name="available"/> bytes that
    /// are not sealed yet, at most <paramref name="maxBytes"/> of them (so that a caller can stop between steps).
    /// </summary>
    public void Advance(SafeFileHandle source, long available, long maxBytes = long.MaxValue)
    {
        long end = Math.Min(available, Sealed + maxBytes) / PagesFile.BlockBytes * PagesFile.BlockBytes;
        if (end <= Sealed) return;
        EnsureTags(end / SealedFile.PageSize);
        _cipher ??= _newCipher();
        _buffer ??= GC.AllocateUninitializedArray<byte>(PagesFile.BlockBytes);
        PagesFile.SealRange(source, end, _output.SafeFileHandle, Sealed / SealedFile.PageSize, end / SealedFile.PageSize, _tags, _newCipher, _onPage, _cipher, _buffer);
        Sealed = end;
    }

    /// <summary>Seals the rest of a source of final length <paramref name="length"/> on every core, writes tag table and header, records the file.</summary>
    public FileEntry Finish(SafeFileHandle source, long length)
    {
        if (length < Sealed)
            throw new SealpointException(ErrorKind.Internal, $"'{Name}' shrank from {Sealed} to {length} bytes while CRIU wrote it",
                "take the checkpoint again; report this, CRIU appends to page images");
        long pages = SealedFile.RecordCount(SealedFileKind.Pages, length);
        EnsureTags(pages);
        if (_tags.Length != pages * SealedFile.TagSize) Array.Resize(ref _tags, (int)(pages * SealedFile.TagSize));
        PagesFile.SealRange(source, length, _output.SafeFileHandle, Sealed / SealedFile.PageSize, pages, _tags, _newCipher, _onPage);
        Sealed = length;
        return _record(PagesFile.WriteTail(_output.SafeFileHandle, length, _header, _tags));
    }

    private void EnsureTags(long pages)
    {
        long needed = pages * SealedFile.TagSize;
        if (needed <= _tags.Length) return;
        Array.Resize(ref _tags, (int)Math.Max(needed, Math.Min((long)_tags.Length * 2, int.MaxValue)));
    }

    public void Dispose()
    {
        _cipher?.Dispose();
        if (_buffer is not null) CryptographicOperations.ZeroMemory(_buffer);
        _output.Dispose();
    }
}
