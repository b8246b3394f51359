using Sealpoint.Core.Config;

namespace Sealpoint.Hook;

/// <summary>
/// poststop: wipes what is left of the container's staging (an operation that was killed midway). A folder holding
/// a dump whose sealing failed is kept — it may be the container's only state — and named on stderr.
/// </summary>
public static class PoststopHook
{
    public static int Run(HookState state, NodeConfig config)
    {
        var staging = new Staging(config.Staging);
        foreach (string kept in staging.WipeContainer(state.Id))
            Console.Error.WriteLine($"sealpoint-hook: kept {kept}: it holds the unsealed checkpoint of container {state.Id} (sealing failed). " +
                $"Fix: seal it with 'sealpoint-runc-core seal-pending {kept}', or remove it if that checkpoint is not needed");
        return 0;
    }
}
