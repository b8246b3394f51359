using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Runtime;

// sealpoint-runc-core: started by the sealpoint-runc launcher for `checkpoint` and `restore` (every other runc
// command never reaches .NET), or directly for `seal-pending` (recovery after a failed seal).
RuncArguments? parsed = null;
// Before anything holds a key or plaintext: out of swap and core dumps (MemoryProtection says why).
var protection = MemoryProtection.Apply();
try
{
    if (args.Length > 0 && args[0] == "seal-pending")
    {
        var pendingConfig = NodeConfig.Load();
        Protect(pendingConfig, null);
        return SealPendingCommand.Run(args[1..], pendingConfig);
    }
    parsed = RuncArguments.Parse(args);
    var config = NodeConfig.Load();
    Protect(config, parsed);
    return parsed.Command switch
    {
        "checkpoint" => CheckpointCommand.Run(parsed, config),
        "restore" => RestoreCommand.Run(parsed, config),
        _ => new RealRunc(config).Exec(args), // not ours (called directly): runc does it
    };
}
catch (SealpointException e)
{
    RuncLog.Error(parsed, e.Describe());
    return e.ExitCode;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    RuncLog.Error(parsed, $"{e.Message}. Fix: check the paths and permissions named");
    return (int)ErrorKind.Io;
}

// The node config may ask to lock memory even without swap; either way a protection gap is logged with its fix.
void Protect(NodeConfig config, RuncArguments? arguments)
{
    var outcome = config.LockMemoryAlways ? MemoryProtection.Apply(always: true) : protection;
    if (outcome.Warning is { } warning) RuncLog.Warning(arguments, warning);
}
