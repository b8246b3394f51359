/*
 * proctree - a small tree of processes: one counting parent and N-1 sleeping children.
 *
 * Usage: proctree N [COUNTER_FILE]
 *
 * Forks N-1 children (N processes in total, 1 <= N <= 1000). Each child asks the kernel to kill
 * it when the parent dies (prctl PR_SET_PDEATHSIG), so no child outlives the tree, then sleeps in
 * pause(). The parent runs the counter loop of workload.h. On SIGTERM/SIGINT the parent kills and
 * reaps its children and exits 0. If a child dies unexpectedly the parent exits 4 (a tree that
 * lost a member after restore is a failure tests must see).
 *
 * Why: checkpoints of multi-process trees (pstree.img, one core/mm/pagemap image per process).
 * Build: gcc -O2 -static -o proctree proctree.c
 */
#include "workload.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static const char *prog = "proctree";

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s N [COUNTER_FILE]\n", prog);
        return 2;
    }
    char *end;
    long n = strtol(argv[1], &end, 10);
    if (*end != '\0' || n < 1 || n > 1000)
        wl_die(prog, "N must be 1..1000, got '%s'", argv[1]);

    wl_install_stop_handlers();
    pid_t parent = getpid();
    pid_t *children = calloc((size_t)n, sizeof *children);
    if (children == NULL)
        wl_die(prog, "out of memory");
    for (long i = 0; i < n - 1; i++) {
        pid_t pid = fork();
        if (pid < 0)
            wl_die(prog, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) /* parent died before prctl took effect */
                _exit(0);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            for (;;)
                pause();
        }
        children[i] = pid;
    }

    int fd = wl_open_counter(prog, argc > 2 ? argv[2] : NULL);
    unsigned long long counter = 0;
    int status = 0;
    while (!wl_stop) {
        pid_t dead = waitpid(-1, NULL, WNOHANG);
        if (dead > 0) {
            fprintf(stderr, "%s: child %d died unexpectedly\n", prog, (int)dead);
            status = 4;
            break;
        }
        wl_publish(prog, fd, ++counter);
        wl_sleep_ms(100);
    }
    for (long i = 0; i < n - 1; i++)
        kill(children[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0)
        ;
    return status;
}
