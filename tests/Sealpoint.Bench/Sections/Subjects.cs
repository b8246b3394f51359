using Sealpoint.Bench.Running;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>What a suite workload runs: memhog MIB or proctree N.</summary>
public sealed record WorkloadSpec(string Kind, int Size)
{
    public string Name => $"{Kind}-{Size}";
    public bool IsTree => Kind == "proctree";
    public int MemoryMiB => IsTree ? 0 : Size;
    public TimeSpan StartTimeout => TimeSpan.FromSeconds(30 + MemoryMiB / 50.0);
    public const string Secret = "sealpoint-bench-secret";

    /// <summary>argv inside the busybox rootfs (the workloads are in /bin there).</summary>
    public IReadOnlyList<string> ContainerArgs(string counter) => IsTree
        ? ["/bin/proctree", Size.ToString(), counter]
        : ["/bin/memhog", Size.ToString(), Secret, counter];
}

/// <summary>The running workload a family checkpoints and restores again and again.</summary>
public abstract class Subject : IDisposable
{
    protected Subject(WorkloadSpec spec) => Spec = spec;
    public WorkloadSpec Spec { get; }
    public abstract bool IsRunning { get; }
    /// <summary>After a checkpoint stopped it: what a restore needs (pids reaped) before it can start.</summary>
    public abstract void AfterCheckpoint();
    /// <summary>After a restore: proof it runs again (the counter moves on).</summary>
    public abstract void AfterRestore();
    /// <summary>memhog: every page intact (exits 3 otherwise). Throws if the check failed.</summary>
    public abstract void VerifyMemory();
    public abstract void Dispose();
}

/// <summary>A plain process tree (setsid, no terminal) for `criu dump -t PID`.</summary>
public sealed class ProcessSubject : Subject
{
    private IReadOnlyList<int> _tree = [];

    private ProcessSubject(WorkloadSpec spec, Workload workload) : base(spec) => Workload = workload;
    public Workload Workload { get; }
    public int Pid => Workload.Pid;

    public static ProcessSubject Start(WorkloadSpec spec, string dir) => new(spec, spec.IsTree
        ? Workload.StartProcTree(spec.Size, dir)
        : Workload.StartMemHog(spec.Size, WorkloadSpec.Secret, dir));

    public override bool IsRunning => Workload.IsAlive;

    /// <summary>Remembers the tree before a dump, so AfterCheckpoint knows which pids to wait for.</summary>
    public void BeforeCheckpoint() => _tree = Pids.Tree(Pid);

    public override void AfterCheckpoint() => Pids.WaitReaped(_tree.Append(Pid), TimeSpan.FromSeconds(60));
    public override void AfterRestore() => Workload.WaitForProgress(1, TimeSpan.FromSeconds(60));
    public override void VerifyMemory() => Workload.VerifyMemory();
    public override void Dispose() => Workload.Kill();
}

/// <summary>A runc container from the busybox rootfs running the workload, with a private runc --root.</summary>
public sealed class ContainerSubject : Subject
{
    public const string Counter = "/tmp/counter";

    private ContainerSubject(WorkloadSpec spec, RuncBundle bundle) : base(spec) => Bundle = bundle;
    public RuncBundle Bundle { get; }

    public static ContainerSubject Start(WorkloadSpec spec)
    {
        var bundle = RuncBundle.Create(spec.ContainerArgs(Counter), new RuncBundleOptions { InShm = true });
        try
        {
            bundle.Run();
            bundle.WaitForCounter(Counter, 1, spec.StartTimeout);
            return new ContainerSubject(spec, bundle);
        }
        catch
        {
            bundle.Dispose();
            throw;
        }
    }

    public override bool IsRunning => Bundle.Status() == "running";

    public override void AfterCheckpoint()
    {
        // runc checkpoint stops the container and removes its state; a leftover (stopped) one would block the restore.
        if (Bundle.Status() is { } status && status != "running") Bundle.Delete();
    }

    public override void AfterRestore()
    {
        Bundle.WaitForStatus("running", TimeSpan.FromSeconds(60));
        long now = Bundle.TryReadCounter(Counter) ?? 0;
        Bundle.WaitForCounter(Counter, now + 1, TimeSpan.FromSeconds(60));
    }

    public override void VerifyMemory()
    {
        int pid = Bundle.Pid();
        long before = Bundle.TryReadCounter(Counter) ?? 0;
        if (!NativeSignal.Send(pid, NativeSignal.SIGUSR2)) throw new InvalidOperationException("memhog container is not running");
        Poll.Until(() => (Bundle.TryReadCounter(Counter) ?? 0) >= before + 2 || Bundle.Status() != "running", TimeSpan.FromSeconds(120),
            () => "memhog in the container to verify its memory");
        if (Bundle.Status() != "running") throw new InvalidOperationException($"memhog in the container found its memory changed and exited{Bundle.OutputTail()}");
    }

    public override void Dispose() => Bundle.Dispose();
}

