using System.Diagnostics;
using Sealpoint.Core;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Runtime;

/// <summary>
/// A restore whose memory pages are decrypted while runc and CRIU start. CRIU reads every metadata image before its
/// pre-restore action and opens page images only after it, in the restored tasks (criu/cr-restore.c); runc hands its
/// environment to `criu swrk`, which reads the configuration file CRIU_CONFIG_FILE names and runs that file's action
/// scripts after notifying runc. So runc starts as soon as the metadata is in staging, and a <see cref="CriuActionGate"/>
/// holds CRIU at pre-restore until every page image is decrypted and verified: a damaged page fails that step, and CRIU
/// stops before any task exists. Page images appear under their names only once verified, so a CRIU that went past
/// the gate without it would find no page image, never a partial one.
/// </summary>
internal static class PreRestoreGate
{
    public const string CriuConfigVariable = "CRIU_CONFIG_FILE";
    private const string ConfigName = "criu-pre-restore.conf";

    /// <summary>
    /// Not for lazy pages (CRIU then reads pages through a page server), nor when CRIU_CONFIG_FILE is already set for
    /// runc: CRIU reads one such file, and the engine's own stays in force.
    /// </summary>
    public static bool Applies(RuncArguments args) =>
        !args.IsSet("lazy-pages") && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(CriuConfigVariable));

    /// <summary>
    /// Runs runc (<paramref name="runRunc"/>, given the environment to add) while <paramref name="pages"/> are decrypted
    /// into staging, with the gate's files in <paramref name="directory"/>. Returns runc's exit status; throws what failed
    /// the pages, after runc has returned.
    /// </summary>
    public static int Run(PendingPages pages, string directory, PhaseTimer timer, Func<IReadOnlyDictionary<string, string>?, int> runRunc)
    {
        using var gate = CriuActionGate.Create(directory, CriuActionGate.PreRestore);
        string config = Path.Combine(directory, ConfigName);
        if (!gate.TryWriteConfigurationFile(config))
        {
            pages.Decrypt(CancellationToken.None);
            timer.Mark("verify and decrypt the pages (no pre-restore gate: staging is noexec or its path has spaces)");
            return runRunc(null);
        }

        Exception? failure = null;
        TimeSpan decrypted = default;
        bool criuWaited = false;
        var clock = Stopwatch.StartNew();
        using var cancel = new CancellationTokenSource();
        var decrypting = new Thread(() =>
        {
            try
            {
                pages.Decrypt(cancel.Token);
                decrypted = clock.Elapsed;
                criuWaited = gate.WaitReached(0);
                gate.Proceed();
            }
            catch (Exception e)
            {
                failure = e;
                try { gate.Fail(); }
                catch (SealpointException) { } // CRIU then fails the step when this process ends
            }
        }) { Name = "decrypt-pages", IsBackground = true };
        decrypting.Start();
        int exit;
        try { exit = runRunc(new Dictionary<string, string> { [CriuConfigVariable] = config }); }
        finally
        {
            // runc ended (or could not start) before the pages were needed: they are not.
            cancel.Cancel();
            decrypting.Join();
        }
        if (failure is OperationCanceledException) return exit;
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
        // The "reached" message stays in its FIFO (nobody reads it): whether CRIU ran the gate at all can be told afterwards.
        static string YesNo(bool b) => b ? "yes" : "no";
        timer.Mark($"runc restore (pages verified and decrypted beside it in {decrypted.TotalMilliseconds:F0} ms; " +
                   $"CRIU reached the pre-restore gate: {YesNo(gate.WaitReached(0))}, before the pages were ready: {YesNo(criuWaited)})");
        return exit;
    }
}
