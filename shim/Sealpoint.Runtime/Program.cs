using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Runtime;

// sealpoint-runc-core: started by the sealpoint-runc launcher for `checkpoint` and `restore` (every other runc
// command never reaches .NET), or directly for `seal-pending` (recovery after a failed seal).
RuncArguments? parsed = null;
try
{
    if (args.Length > 0 && args[0] == "seal-pending")
    {
        var pendingConfig = NodeConfig.Load();
        Prepare(pendingConfig, null);
        return SealPendingCommand.Run(args[1..], pendingConfig);
    }
    parsed = RuncArguments.Parse(args);
    var config = NodeConfig.Load();
    Prepare(config, parsed);
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
    RuncLog.Error(parsed, SealpointException.WithFix(e.Message, "check the paths and permissions named"));
    return (int)ErrorKind.Io;
}

// Once the node config is read (it may ask to lock even without swap; neither it nor the arguments use cryptography)
// and before anything uses cryptography or holds a key or plaintext: the private OpenSSL, if installed (OpenSslLibrary
// says why), and out of swap and core dumps (MemoryProtection says why). Each gap is logged with its fix, into runc's
// log once the arguments name it.
static void Prepare(NodeConfig config, RuncArguments? arguments)
{
    if (OpenSslLibrary.Select().Warning is { } opensslWarning) RuncLog.Warning(arguments, opensslWarning);
    if (MemoryProtection.Apply(config.LockMemoryAlways).Warning is { } warning) RuncLog.Warning(arguments, warning);
}
