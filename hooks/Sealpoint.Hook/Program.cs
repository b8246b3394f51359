using Sealpoint.Core;
using Sealpoint.Core.Config;
using Sealpoint.Core.Crypto;
using Sealpoint.Hook;

// sealpoint-hook STAGE: the OCI hook of hooks.d/*.json. The container state arrives on stdin.
//   createRuntime: the container's sealing policy is checked and its recipients loaded, so a container whose
//                  checkpoints could not be sealed fails at creation, not at its first checkpoint.
//   poststop:      leftover staging of the stopped container is wiped (never a dump kept for recovery).
string stage = args.Length == 1 ? args[0] : "";
try
{
    // Before the first use of cryptography (certificates): the same OpenSSL as the runtime's (OpenSslLibrary says why).
    if (OpenSslLibrary.Select().Warning is { } opensslWarning) Console.Error.WriteLine($"sealpoint-hook: warning: {opensslWarning}");
    if (stage is not ("createRuntime" or "prestart" or "poststop"))
        throw new SealpointException(ErrorKind.Usage, $"unknown hook stage '{NodeConfig.Printable(string.Join(' ', args))}'",
            "run it as 'sealpoint-hook createRuntime' or 'sealpoint-hook poststop' (see hooks/hooks.d)");
    var state = HookState.Read(Console.OpenStandardInput());
    var config = NodeConfig.Load();
    return stage == "poststop" ? PoststopHook.Run(state, config) : CreateHook.Run(state, config);
}
catch (SealpointException e)
{
    Console.Error.WriteLine($"sealpoint-hook: {e.Describe()}");
    return e.ExitCode;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"sealpoint-hook: {SealpointException.WithFix(e.Message, "check the paths and permissions named")}");
    return (int)ErrorKind.Io;
}
