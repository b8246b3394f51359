using Sealpoint.Oci.Models;

namespace Sealpoint.Oci.Registry;

public sealed record RegistryClientOptions
{
    /// <summary>Plain HTTP instead of HTTPS (loopback registries in tests). Credentials are still sent if configured.</summary>
    public bool Insecure { get; init; }

    /// <summary>PEM file of CA certificates trusted for this registry, in addition to the system's.</summary>
    public string? CaFile { get; init; }

    public ICredentialProvider Credentials { get; init; } = NoCredentials.Instance;

    /// <summary>Longest wait for a response to a request without a large body (and for its body).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest time a blob upload or download may make no progress before it is abandoned.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per operation for transient failures (connection lost, 5xx, 429, timeout).</summary>
    public int MaxAttempts { get; init; } = 4;
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Blobs up to this size go up in one PUT; larger ones in chunks (resumable).</summary>
    public long MonolithicLimit { get; init; } = 32L << 20;
    public int ChunkSize { get; init; } = 16 << 20;

    public ITransferObserver? Observer { get; init; }
    public string UserAgent { get; init; } = "sealpoint/1";

    /// <summary>Replaces the HTTP stack (tests with an in-process server).</summary>
    public HttpMessageHandler? Handler { get; init; }
}

public enum TransferOutcome { Uploaded, AlreadyPresent, Mounted, Downloaded }

/// <summary>Hears about transfers: for progress bars and logs. Called from any thread.</summary>
public interface ITransferObserver
{
    void Started(Descriptor blob, string action);
    void Progress(Descriptor blob, long bytesDone);
    void Finished(Descriptor blob, TransferOutcome outcome);
    void Retrying(string operation, int attempt, TimeSpan delay, string reason);
}

/// <summary>What a client sent and received: the incremental-upload benchmark reads it.</summary>
public sealed class TransferStats
{
    private long _blobBytesSent, _manifestBytesSent, _bytesReceived, _uploaded, _present, _mounted;
    public long BlobBytesSent => Interlocked.Read(ref _blobBytesSent);
    public long ManifestBytesSent => Interlocked.Read(ref _manifestBytesSent);
    public long BytesSent => BlobBytesSent + ManifestBytesSent;
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);
    public long BlobsUploaded => Interlocked.Read(ref _uploaded);
    public long BlobsAlreadyPresent => Interlocked.Read(ref _present);
    public long BlobsMounted => Interlocked.Read(ref _mounted);

    internal void AddBlobBytes(long n) => Interlocked.Add(ref _blobBytesSent, n);
    internal void AddManifestBytes(long n) => Interlocked.Add(ref _manifestBytesSent, n);
    internal void AddReceived(long n) => Interlocked.Add(ref _bytesReceived, n);
    internal void Count(TransferOutcome o)
    {
        switch (o)
        {
            case TransferOutcome.Uploaded: Interlocked.Increment(ref _uploaded); break;
            case TransferOutcome.AlreadyPresent: Interlocked.Increment(ref _present); break;
            case TransferOutcome.Mounted: Interlocked.Increment(ref _mounted); break;
        }
    }

    public override string ToString() =>
        $"{BytesSent:N0} bytes sent ({BlobsUploaded} blobs uploaded, {BlobsAlreadyPresent} already present, {BlobsMounted} mounted), {BytesReceived:N0} bytes received";
}
