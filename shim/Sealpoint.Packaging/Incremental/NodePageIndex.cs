using Sealpoint.Core;
using Sealpoint.Core.Format;

namespace Sealpoint.Packaging.Incremental;

/// <summary>
/// Records the keyed page hashes of a checkpoint sealed on this node (docs/registry.md, "Incremental"), so that a
/// later pack of the same lineage uploads only changed memory. Best effort: when the node state cannot be used, the
/// checkpoint is sealed all the same and a warning says that its next push will upload memory in full.
/// </summary>
public sealed class NodePageIndex : IDisposable
{
    private readonly NodeState _state;
    private readonly Action<string> _warn;

    private NodePageIndex(NodeState state, PageHashRecorder recorder, Action<string> warn)
    {
        _state = state;
        Recorder = recorder;
        _warn = warn;
    }

    /// <summary>Give this to <see cref="Core.Checkpoint.SealOptions.PageObserver"/>.</summary>
    public PageHashRecorder Recorder { get; }

    public static NodePageIndex? TryStart(Action<string> warn, NodeState? state = null)
    {
        state ??= NodeState.FromEnvironment();
        try { return new NodePageIndex(state, PageHashRecorder.ForNode(state), warn); }
        catch (Exception e) when (e is SealpointException or IOException or UnauthorizedAccessException)
        {
            warn($"keyed page hashes are not recorded ({Describe(e)}); the next push of this lineage uploads its memory in full");
            return null;
        }
    }

    public void Save(Envelope envelope)
    {
        try { Recorder.Save(_state, envelope); }
        catch (Exception e) when (e is SealpointException or IOException or UnauthorizedAccessException)
        {
            _warn($"keyed page hashes of checkpoint {envelope.CheckpointId} were not saved ({Describe(e)}); its next push uploads memory in full");
        }
    }

    private static string Describe(Exception e) => e is SealpointException s ? s.Describe() : e.Message;

    public void Dispose() => Recorder.Dispose();
}
