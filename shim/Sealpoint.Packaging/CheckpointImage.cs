namespace Sealpoint.Packaging;

/// <summary>
/// Names of Sealpoint's checkpoint images: media types, annotations and the paths inside the checkpoint layer
/// (docs/registry.md, "Image layout"). Annotations are hints for tools; what counts is the authenticated envelope.
/// </summary>
public static class CheckpointImage
{
    /// <summary>The manifest's artifactType: a Sealpoint checkpoint (sealed CRIU images, sealed engine files).</summary>
    public const string ArtifactType = "application/vnd.sealpoint.checkpoint.v1";
    public const string MemoryMapMediaType = "application/vnd.sealpoint.memory-map.v1+json";
    public const int FormatVersion = 1;

    // Manifest annotations (hints; authenticated values are in the envelope).
    public const string CheckpointIdAnnotation = "io.sealpoint.checkpoint-id";
    public const string LineageAnnotation = "io.sealpoint.lineage";
    public const string GenerationAnnotation = "io.sealpoint.generation";
    public const string ParentAnnotation = "io.sealpoint.parent-id";
    public const string RecipientsAnnotation = "io.sealpoint.recipients";
    public const string FormatAnnotation = "io.sealpoint.format";
    public const string EngineAnnotation = "io.sealpoint.engine";

    /// <summary>Layer annotation: <c>checkpoint</c> (the one layer with envelope, metadata and engine files) or <c>memory</c> (a chunk).</summary>
    public const string LayerAnnotation = "io.sealpoint.layer";
    public const string CheckpointLayer = "checkpoint";
    public const string MemoryLayer = "memory";

    // Engine-compatible annotations (reference §2.6, §3.4, §2.7).
    public const string PodmanPrefix = "io.podman.annotations.checkpoint.";
    public const string PodmanName = PodmanPrefix + "name";
    public const string PodmanRuntimeName = PodmanPrefix + "runtime.name";
    public const string PodmanHostArch = PodmanPrefix + "host.arch";
    public const string CrioName = "io.kubernetes.cri-o.annotations.checkpoint.name";
    public const string CriuContainerName = "org.criu.checkpoint.container.name";
    public const string CriuEngineName = "org.criu.checkpoint.engine.name";

    // Paths in the checkpoint layer.
    public const string CheckpointDir = "checkpoint";
    public const string EngineDir = "sealpoint-engine";
    public const string MetadataDir = "sealpoint";
    public const string MemoryMapPath = "sealpoint/memory-map.json";
    public const string TagsDir = "sealpoint/pages";
    public const string TagsSuffix = ".tags";
    public const string ChunksDir = "sealpoint/chunks";

    /// <summary>Envelope annotation of the engine set: the checkpoint id it belongs to (authenticated with the set).</summary>
    public const string EngineForAnnotation = "io.sealpoint.engine-for";
    /// <summary>Suffix of a tar that carries one of the engine's sub-folders (e.g. volumes/) inside the flat engine set.</summary>
    public const string FolderTarSuffix = ".sealpoint-folder.tar";
}
