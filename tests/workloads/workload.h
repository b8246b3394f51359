/*
 * workload.h - pieces shared by the Sealpoint test workloads (secretholder, memhog, proctree).
 *
 * The counter protocol every workload follows, which tests rely on:
 *   - the counter starts at 1 and grows by one about every 100 ms;
 *   - each value is printed to stdout as one line and, when a COUNTER_FILE is given, written to it;
 *   - the counter file is opened once and kept open; each value is written at offset 0 as a
 *     fixed-width line ("%20llu\n", 21 bytes), so the file never shrinks or grows. Why: a reader
 *     never sees an empty or half-truncated file, and CRIU (which records the size of open regular
 *     files and checks it on restore) always finds the size it recorded, even if the process was
 *     dumped with --leave-running and kept counting;
 *   - SIGTERM or SIGINT ends the loop and the program exits 0.
 * After a checkpoint/restore the counter continues from the value in memory, not from 1: that is
 * how tests prove the process state survived.
 */
#ifndef SEALPOINT_WORKLOAD_H
#define SEALPOINT_WORKLOAD_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNTER_LINE_WIDTH 21 /* 20 digits + '\n' */

static volatile sig_atomic_t wl_stop;

static void wl_on_stop(int sig) { (void)sig; wl_stop = 1; }

static void wl_die(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* SIGTERM/SIGINT end the loop cleanly; without SA_RESTART so nanosleep returns early. */
static void wl_install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wl_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Returns -1 when no counter file was asked for ("" or "-" also mean none). */
static int wl_open_counter(const char *prog, const char *path)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        wl_die(prog, "cannot open counter file %s: %s", path, strerror(errno));
    return fd;
}

static void wl_publish(const char *prog, int fd, unsigned long long value)
{
    if (fd >= 0) {
        char line[COUNTER_LINE_WIDTH + 1];
        snprintf(line, sizeof line, "%20llu\n", value);
        if (pwrite(fd, line, COUNTER_LINE_WIDTH, 0) != COUNTER_LINE_WIDTH)
            wl_die(prog, "cannot write counter file: %s", strerror(errno));
    }
    printf("%llu\n", value);
    fflush(stdout);
}

static void wl_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* an interrupting signal just shortens one tick */
}

#endif
