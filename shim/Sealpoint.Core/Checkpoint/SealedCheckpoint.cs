using System.Security.Cryptography;
using Sealpoint.Core.Crypto;
using Sealpoint.Core.Format;
using Sealpoint.Core.Keys;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Core.Checkpoint;

/// <summary>
/// A sealed checkpoint directory opened with a recipient's key: the envelope is authenticated, the directory
/// listing checked against it, and files are verified before any of their plaintext is released.
/// </summary>
public sealed class SealedCheckpoint : IDisposable
{
    private readonly byte[] _dataKey;

    private SealedCheckpoint(string directory, Envelope envelope, byte[] dataKey)
    {
        Directory = directory;
        Envelope = envelope;
        _dataKey = dataKey;
    }

    public string Directory { get; }
    public Envelope Envelope { get; }

    public static bool IsSealed(string directory) => File.Exists(Path.Combine(directory, ImageFiles.EnvelopeName));

    /// <summary>The envelope as stored, without a key: its contents are not authenticated (for inspect).</summary>
    public static Envelope ReadEnvelopeUnverified(string directory) =>
        EnvelopeFile.Read(Path.Combine(directory, ImageFiles.EnvelopeName)).Envelope;

    public static SealedCheckpoint Open(string directory, Identity identity)
    {
        directory = Path.GetFullPath(directory);
        string path = Path.Combine(directory, ImageFiles.EnvelopeName);
        var file = EnvelopeFile.Read(path);
        byte[] key = identity.UnwrapDataKey(file.Envelope, path);
        try
        {
            file.VerifyMac(key, path);
            var checkpoint = new SealedCheckpoint(directory, file.Envelope, key);
            checkpoint.CheckListing();
            return checkpoint;
        }
        catch
        {
            CryptographicOperations.ZeroMemory(key);
            throw;
        }
    }

    /// <summary>
    /// The directory holds exactly the envelope's files, each of the right type and sealed size. From one listing of
    /// the directory: one lstat per file, a readlink only for links (a process tree has ~700 files).
    /// </summary>
    private void CheckListing()
    {
        var listed = Envelope.Files.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var present = new Dictionary<string, FileSystemInfo>(StringComparer.Ordinal);
        foreach (var entry in new DirectoryInfo(Directory).EnumerateFileSystemInfos())
        {
            if (entry.Name == ImageFiles.EnvelopeName) continue;
            if (!listed.ContainsKey(entry.Name))
                throw new IntegrityException($"'{entry.Name}' in {Directory} is not in the envelope (added after sealing)",
                    $"remove '{entry.Name}' if it is not part of the checkpoint, or use an intact copy");
            present[entry.Name] = entry;
        }
        foreach (var f in Envelope.Files)
        {
            present.TryGetValue(f.Name, out var info);
            bool isLink = info is not null && info.Attributes.HasFlag(FileAttributes.ReparsePoint);
            if (f.Kind == FileEntryKinds.Symlink)
            {
                string? target = isLink ? info!.LinkTarget : null;
                if (target != f.Target)
                    throw new IntegrityException($"symlink '{f.Name}' in {Directory} is missing or points to '{target}' instead of '{f.Target}'");
                continue;
            }
            if (info is not FileInfo file || isLink)
                throw new IntegrityException($"'{f.Name}' listed in the envelope is missing from {Directory} (deleted after sealing)");
            long expected = f.IsSealed ? SealedFile.SealedSize(f.Kind == FileEntryKinds.Pages ? SealedFileKind.Pages : SealedFileKind.Stream, f.Size!.Value) : f.Size!.Value;
            if (file.Length != expected)
                throw new IntegrityException($"'{f.Name}' in {Directory} has {file.Length} bytes, the envelope says {expected} (truncated, extended or replaced)");
        }
    }

    /// <summary>Verifies every file completely without writing plaintext anywhere.</summary>
    public void Verify() => ForEachFile((entry, _, directories) => ProcessFile(entry, destinationDirectory: null, directories), null);

    /// <summary>
    /// Verifies and decrypts the whole checkpoint into <paramref name="outputDirectory"/> (missing or empty).
    /// Work happens in a sibling folder that becomes <paramref name="outputDirectory"/> only when every file verified;
    /// on any failure it is removed, so no plaintext of a bad checkpoint is left behind.
    /// </summary>
    public void DecryptTo(string outputDirectory) => DecryptTo(outputDirectory, placeholder: null);

    /// <summary>
    /// Like <see cref="DecryptTo(string)"/>, but files <paramref name="placeholder"/> picks get an empty private file
    /// instead of their plaintext (their content is served another way, <see cref="TryServePages"/>); they are
    /// still listed, so the directory has every name CRIU expects.
    /// </summary>
    public void DecryptTo(string outputDirectory, Func<FileEntry, bool>? placeholder)
    {
        outputDirectory = Path.GetFullPath(outputDirectory);
        if (System.IO.Directory.Exists(outputDirectory) && System.IO.Directory.EnumerateFileSystemEntries(outputDirectory).Any())
            throw new SealpointException(ErrorKind.Usage, $"{outputDirectory} is not empty", "give a new or empty output directory");
        string partial = $"{outputDirectory.TrimEnd('/')}.sealpoint-partial-{Hex.Lower(RandomNumberGenerator.GetBytes(4))}";
        System.IO.Directory.CreateDirectory(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            ForEachFile((entry, _, directories) =>
            {
                if (placeholder is not null && placeholder(entry)) FileSystem.CreatePrivate(Path.Combine(partial, entry.Name)).Dispose();
                else ProcessFile(entry, partial, directories);
            }, partial);
            if (System.IO.Directory.Exists(outputDirectory)) System.IO.Directory.Delete(outputDirectory);
            System.IO.Directory.Move(partial, outputDirectory);
        }
        catch
        {
            FileSystem.RemoveTree(partial);
            throw;
        }
    }

    /// <summary>
    /// Verifies and decrypts every file <paramref name="skip"/> does not pick straight into <paramref name="directory"/>,
    /// which exists and is private to the caller (staging), without <see cref="DecryptTo(string)"/>'s partial folder:
    /// for a directory whose readers are already held (<see cref="HeldFile"/>) until every file is in place. On a
    /// failure, files already written stay there for the caller to wipe.
    /// </summary>
    public void DecryptInto(string directory, Func<FileEntry, bool> skip) =>
        ForEachFile((entry, destination, directories) => { if (!skip(entry)) ProcessFile(entry, destination, directories); }, Path.GetFullPath(directory));

    /// <summary>Small files only: whatever is read into memory whole.</summary>
    public const int MaxVerifiedInMemory = 16 << 20;

    /// <summary>One listed file, verified completely, as bytes in memory (for a <see cref="HeldFile"/>); wipe them after use.</summary>
    public byte[] ReadVerified(string name)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name)
            ?? throw new SealpointException(ErrorKind.NotFound, $"'{name}' is not part of checkpoint {Envelope.CheckpointId}");
        if (entry.Size is not { } size || size > MaxVerifiedInMemory)
            throw new IntegrityException($"'{name}' is {entry.Size} bytes, more than the {MaxVerifiedInMemory} read into memory");
        byte[] content = new byte[size];
        try
        {
            using var reader = OpenFile(name);
            reader.ReadExactly(content);
            // The digest and the last record are checked at end of file: nothing is released before.
            if (reader.Read(stackalloc byte[1]) != 0) throw new IntegrityException($"'{name}' is longer than the envelope says");
            return content;
        }
        catch
        {
            CryptographicOperations.ZeroMemory(content);
            throw;
        }
    }

    /// <summary>Verifies and decrypts one listed file into <paramref name="directory"/> (where it must not exist yet).</summary>
    public void DecryptFile(string name, string directory)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name)
            ?? throw new SealpointException(ErrorKind.NotFound, $"'{name}' is not part of checkpoint {Envelope.CheckpointId}");
        using var directories = new PassDirectories(Directory, Path.GetFullPath(directory));
        ProcessFile(entry, directory, directories);
    }

    /// <summary>A verifying, decrypting stream over one sealed file (plaintext files are checked against their digest at the end).</summary>
    public Stream OpenFile(string name)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name)
            ?? throw new SealpointException(ErrorKind.NotFound, $"'{name}' is not part of checkpoint {Envelope.CheckpointId}");
        string path = Path.Combine(Directory, name);
        if (entry.Kind == FileEntryKinds.Symlink)
            throw new SealpointException(ErrorKind.Usage, $"'{name}' is a symlink to '{entry.Target}', not a file");
        if (!entry.IsSealed) return new PlainVerifyingStream(File.OpenRead(path), entry);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var (header, headerBytes) = ReadHeader(handle, entry);
            var cipher = SealedFile.CreateCipher(_dataKey, header, name);
            if (header.Kind == SealedFileKind.Pages)
                return new PagesOpeningStream(handle, cipher, headerBytes, name, entry.Size!.Value, entry.Digest!);
            var input = new FileStream(handle, FileAccess.Read, 1 << 16) { Position = SealedFile.HeaderSize };
            return new OpeningStream(input, cipher, header, headerBytes, name, entry.Size!.Value, entry.Digest!);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Whether <see cref="OpenFile(string, int)"/> opens this file with several threads: page files of 1 MiB or more.</summary>
    internal static bool OpensInParallel(FileEntry entry) => entry is { Kind: FileEntryKinds.Pages, Size: >= 1 << 20 };

    /// <summary>
    /// Like <see cref="OpenFile(string)"/>, but a page file of 1 MiB or more is verified and decrypted by
    /// <paramref name="threads"/> threads reading ahead (bounded): for streamed restores, where it goes through one pipe.
    /// </summary>
    internal Stream OpenFile(string name, int threads)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name);
        if (threads <= 1 || entry is null || !OpensInParallel(entry)) return OpenFile(name);
        var handle = File.OpenHandle(Path.Combine(Directory, name), FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var (header, headerBytes) = ReadHeader(handle, entry);
            return new Streaming.ParallelPageOpener(handle, headerBytes, name, entry.Size!.Value, entry.Digest!,
                () => SealedFile.CreateCipher(_dataKey, header, name), threads);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The cheap part of verifying a page file: its header (this checkpoint, the listed kind and cipher) and its tag
    /// table against the envelope's digest (SHA-256 over header || tags, docs/format.md 2.5), without reading or
    /// decrypting a page. The tags are MACs under a secret key, so a matching table proves that any page body whose
    /// tag check passes later is the sealed one; a modified body is then caught by its own tag when it is read.
    /// Reads 16 bytes per page in <paramref name="buffer"/>-sized pieces (memory does not grow with the file).
    /// </summary>
    public void CheckPageTable(string name, Span<byte> buffer)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name && f.Kind == FileEntryKinds.Pages)
            ?? throw new SealpointException(ErrorKind.NotFound, $"'{name}' is not a page file of checkpoint {Envelope.CheckpointId}");
        using var handle = File.OpenHandle(Path.Combine(Directory, name), FileMode.Open, FileAccess.Read, FileShare.Read);
        CheckPageTable(handle, entry, buffer);
    }

    /// <summary>The checks of <see cref="CheckPageTable(string, Span{byte})"/> on an open file; returns its header.</summary>
    private SealedFileHeader CheckPageTable(Microsoft.Win32.SafeHandles.SafeFileHandle handle, FileEntry entry, Span<byte> buffer)
    {
        string name = entry.Name;
        var (header, headerBytes) = ReadHeader(handle, entry);
        long plaintextSize = entry.Size!.Value;
        long tagBytes = SealedFile.RecordCount(SealedFileKind.Pages, plaintextSize) * SealedFile.TagSize;
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        digest.AppendData(headerBytes);
        for (long off = 0; off < tagBytes;)
        {
            var piece = buffer[..(int)Math.Min(buffer.Length, tagBytes - off)];
            PagesFile.ReadExactly(handle, piece, plaintextSize + off, name);
            digest.AppendData(piece);
            off += piece.Length;
        }
        string actual = "sha256:" + Hex.Lower(digest.GetHashAndReset());
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(actual), System.Text.Encoding.ASCII.GetBytes(entry.Digest!)))
            throw new IntegrityException($"'{name}' does not match the digest in the envelope (its tag table or header was modified)");
        return header;
    }

    /// <summary>
    /// Serves the page file <paramref name="name"/> decrypted, read by read, on <paramref name="placeholder"/> (an existing
    /// empty file), <see cref="Fuse.SealedPageMount"/>. Its header and tag table are checked against the envelope now,
    /// each page when it is read; the file keys are derived now, so the mount outlives this object. Null when this
    /// process cannot mount (no /dev/fuse, not root): decrypt the file instead.
    /// </summary>
    public Fuse.SealedPageMount? TryServePages(string name, string placeholder, int threads)
    {
        var entry = Envelope.Files.FirstOrDefault(f => f.Name == name && f.Kind == FileEntryKinds.Pages)
            ?? throw new SealpointException(ErrorKind.NotFound, $"'{name}' is not a page file of checkpoint {Envelope.CheckpointId}");
        var handle = File.OpenHandle(Path.Combine(Directory, name), FileMode.Open, FileAccess.Read, FileShare.Read);
        Fuse.SealedPageSource? source = null;
        try
        {
            var header = CheckPageTable(handle, entry, new byte[64 * 1024]);
            var ciphers = new FileCipher[2 * Math.Max(1, threads)]; // serving and reading ahead
            for (int i = 0; i < ciphers.Length; i++) ciphers[i] = SealedFile.CreateCipher(_dataKey, header, name);
            source = new Fuse.SealedPageSource(handle, name, entry.Size!.Value, ciphers);
            var mount = Fuse.SealedPageMount.TryMount(placeholder, source);
            if (mount is null) source.Dispose();
            return mount;
        }
        catch
        {
            if (source is not null) source.Dispose();
            else handle.Dispose();
            throw;
        }
    }

    private void ForEachFile(Action<FileEntry, string?, PassDirectories> body, string? destination)
    {
        // Largest first, so the big page files do not start last.
        var order = Envelope.Files.OrderByDescending(f => f.Size ?? 0).ToList();
        using var directories = new PassDirectories(Directory, destination);
        try
        {
            Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, f => body(f, destination, directories));
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is SealpointException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    private void ProcessFile(FileEntry entry, string? destinationDirectory, PassDirectories directories)
    {
        string source = Path.Combine(Directory, entry.Name);
        string? target = destinationDirectory is null ? null : Path.Combine(destinationDirectory, entry.Name);
        if (entry.Kind == FileEntryKinds.Symlink)
        {
            if (target is not null) File.CreateSymbolicLink(target, entry.Target!);
            return;
        }
        if (target is null)
        {
            // Verification only: every kind through its verifying reader, into a wiped scratch buffer, never to disk.
            using var reader = OpenFile(entry.Name);
            byte[] scratch = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(entry.Size ?? 0, 1, 1 << 20));
            try { while (reader.Read(scratch) > 0) { } }
            finally { CryptographicOperations.ZeroMemory(scratch); }
            return;
        }
        if (!entry.IsSealed)
        {
            using var verify = new PlainVerifyingStream(File.OpenRead(source), entry);
            using var output = FileSystem.CreatePrivate(target);
            verify.CopyTo(output);
            return;
        }
        if (entry.Kind == FileEntryKinds.Stream && entry.Size <= SealedFile.StreamChunkSize)
        {
            OpenSmallStreamFile(entry, source, target, directories);
            return;
        }
        using var handle = File.OpenHandle(source, FileMode.Open, FileAccess.Read, FileShare.Read);
        var (header, headerBytes) = ReadHeader(handle, entry);
        using var destination = FileSystem.CreatePrivate(target);
        SealedFileIO.Open(handle, header, headerBytes, entry.Name, entry.Size!.Value, entry.Digest!, destination.SafeFileHandle,
            () => SealedFile.CreateCipher(_dataKey, header, entry.Name));
    }

    private (SealedFileHeader, byte[]) ReadHeader(Microsoft.Win32.SafeHandles.SafeFileHandle handle, FileEntry entry)
    {
        var expectedKind = entry.Kind == FileEntryKinds.Pages ? SealedFileKind.Pages : SealedFileKind.Stream;
        byte[] bytes = new byte[SealedFile.HeaderSize];
        if (RandomAccess.Read(handle, bytes, SealedFile.HeaderOffset(expectedKind, entry.Size!.Value)) < bytes.Length)
            throw new IntegrityException($"'{entry.Name}' is truncated (no complete header)");
        return (CheckHeader(bytes, entry), bytes);
    }

    /// <summary>A sealed file's header, parsed and checked against the envelope: this checkpoint's, the listed kind and cipher.</summary>
    private SealedFileHeader CheckHeader(byte[] bytes, FileEntry entry)
    {
        var expectedKind = entry.Kind == FileEntryKinds.Pages ? SealedFileKind.Pages : SealedFileKind.Stream;
        var header = SealedFile.ParseHeader(bytes, entry.Name);
        string owner = Hex.Lower(header.CheckpointId);
        if (owner != Envelope.CheckpointId)
            throw new IntegrityException($"'{entry.Name}' belongs to checkpoint {owner}, not to {Envelope.CheckpointId} (files mixed between checkpoints)");
        var expectedCipher = AeadAlgorithms.Parse(expectedKind == SealedFileKind.Pages ? Envelope.PagesCipher : Envelope.MetadataCipher, "envelope");
        if (header.Kind != expectedKind || header.Aead != expectedCipher)
            throw new IntegrityException($"'{entry.Name}' is not the kind of sealed file the envelope lists (swapped with another file)");
        return header;
    }

    /// <summary>
    /// A stream file of one record into a new private file, with six system calls: open, one read of the whole file,
    /// close; create, one write, close. Through FileStream it took ~14 (locks, file-system and seek probes), and a
    /// process tree has ~600 such files; the checks are <see cref="SealedFileIO"/>'s. Both are opened relative to the
    /// pass's <paramref name="directories"/> (<paramref name="source"/> and <paramref name="target"/> name them in errors).
    /// </summary>
    private unsafe void OpenSmallStreamFile(FileEntry entry, string source, string target, PassDirectories directories)
    {
        int size = (int)entry.Size!.Value;
        int sealedSize = SealedFile.HeaderSize + size + SealedFile.TagSize;
        // The sealed file and one byte more (to see data appended), then the plaintext.
        int length = sealedSize + 1 + size;
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int got = ReadUpTo(source, directories.OpenSource(entry.Name), buffer.AsSpan(0, sealedSize + 1));
            if (got < SealedFile.HeaderSize) throw new IntegrityException($"'{entry.Name}' is truncated (no complete header)");
            byte[] headerBytes = buffer[..SealedFile.HeaderSize];
            var header = CheckHeader(headerBytes, entry);
            var plaintext = buffer.AsSpan(sealedSize + 1, size);
            using (var cipher = SealedFile.CreateCipher(_dataKey, header, entry.Name))
                SealedFileIO.OpenSingleRecord(buffer.AsSpan(SealedFile.HeaderSize, got - SealedFile.HeaderSize), headerBytes, entry.Name, entry.Digest!, cipher, plaintext);
            int fd = directories.CreateDestination(entry.Name);
            if (fd < 0) throw new SealpointException(ErrorKind.Io, $"cannot create {target}: {Posix.ErrorText(Posix.Errno)}", "check the output folder");
            try
            {
                fixed (byte* p = plaintext)
                    for (int off = 0; off < size;)
                    {
                        nint n = Posix.PWrite(fd, p + off, (nuint)(size - off), off);
                        if (n < 0 && Posix.Errno == Posix.EINTR) continue;
                        if (n <= 0) throw new SealpointException(ErrorKind.Io, $"writing {target} failed: {Posix.ErrorText(Posix.Errno)}", "check free memory (staging is tmpfs) or space on the output folder");
                        off += (int)n;
                    }
            }
            finally { Posix.Close(fd); }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, length));
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads from the start of <paramref name="fd"/> (<paramref name="path"/>, which it closes) until <paramref name="into"/> is full or the file ends; returns the bytes read.</summary>
    private static unsafe int ReadUpTo(string path, int fd, Span<byte> into)
    {
        if (fd < 0)
        {
            int errno = Posix.Errno;
            if (errno == 2 /* ENOENT */) throw new IntegrityException($"'{Path.GetFileName(path)}' listed in the envelope is missing from {Path.GetDirectoryName(path)} (deleted after sealing)");
            if (errno == 40 /* ELOOP: O_NOFOLLOW met a link */) throw new IntegrityException($"'{Path.GetFileName(path)}' in {Path.GetDirectoryName(path)} was replaced by a symbolic link after the listing check");
            throw new SealpointException(ErrorKind.Io, $"cannot open {path}: {Posix.ErrorText(errno)}", "check the path and permissions");
        }
        try
        {
            int got = 0;
            fixed (byte* p = into)
                while (got < into.Length)
                {
                    nint n = Posix.PRead(fd, p + got, (nuint)(into.Length - got), got);
                    if (n < 0 && Posix.Errno == Posix.EINTR) continue;
                    if (n < 0) throw new SealpointException(ErrorKind.Io, $"reading {path} failed: {Posix.ErrorText(Posix.Errno)}", "check the disk (dmesg)");
                    if (n == 0) break;
                    got += (int)n;
                }
            return got;
        }
        finally { Posix.Close(fd); }
    }

    /// <summary>
    /// The sealed directory and the destination of one pass over the files, each opened once, so that each small file
    /// is opened by its name relative to them (openat) instead of its path being walked from / twice per file (a
    /// staging path has 10-15 components, and a process tree ~600 small files). Names are single path segments
    /// (the envelope's validation); neither open follows a symbolic link. Both return -1 with errno set on failure.
    /// </summary>
    private sealed class PassDirectories : IDisposable
    {
        private readonly int _source, _destination = -1;

        public PassDirectories(string source, string? destination)
        {
            _source = OpenDirectory(source);
            try { if (destination is not null) _destination = OpenDirectory(destination); }
            catch
            {
                Posix.Close(_source);
                throw;
            }
        }

        private static int OpenDirectory(string path)
        {
            int fd = Posix.Open(path, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_CLOEXEC);
            if (fd < 0) throw new SealpointException(ErrorKind.Io, $"cannot open the folder {path}: {Posix.ErrorText(Posix.Errno)}", "check the path and permissions");
            return fd;
        }

        /// <summary>The sealed file, to read.</summary>
        public int OpenSource(string name) => Posix.OpenAt(_source, name, Posix.O_RDONLY | Posix.O_CLOEXEC | Posix.O_NOFOLLOW);

        /// <summary>A new private (0600) destination file, to write; fails if the name exists.</summary>
        public int CreateDestination(string name) =>
            Posix.OpenAt(_destination, name, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL | Posix.O_CLOEXEC | Posix.O_NOFOLLOW, 0x180 /* 0600 */);

        public void Dispose()
        {
            if (_source >= 0) Posix.Close(_source);
            if (_destination >= 0) Posix.Close(_destination);
        }
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_dataKey);
}

/// <summary>Reads a plaintext file and fails at its end unless size and SHA-256 match the envelope.</summary>
internal sealed class PlainVerifyingStream(Stream inner, FileEntry entry) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (n > 0) { _hash.AppendData(buffer[..n]); _read += n; return n; }
        if (_read != entry.Size || "sha256:" + Hex.Lower(_hash.GetHashAndReset()) != entry.Digest)
            throw new IntegrityException($"plaintext file '{entry.Name}' does not match its envelope entry (modified after sealing)");
        return 0;
    }

    public override long Length => entry.Size ?? 0;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { inner.Dispose(); _hash.Dispose(); }
        base.Dispose(disposing);
    }
}
