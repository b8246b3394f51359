/*
 * secretholder - a process that keeps a secret in its heap and counts.
 *
 * Usage: secretholder SECRET [COUNTER_FILE]
 *
 * Copies SECRET into a heap buffer, then overwrites the argv copy with 'x' so the heap buffer is
 * the only copy in the process's memory (argv lives on the stack and would be dumped too). Then it
 * loops forever: every ~100 ms it re-reads the heap copy (volatile, so it stays resident and is
 * really read), checks it is unchanged, increments a counter, writes the counter to COUNTER_FILE
 * (see workload.h for the file format) and prints it to stdout.
 *
 * Why: a checkpoint of this process must contain the secret (CRIU dumps the heap), so tests can
 * show that an unencrypted dump leaks it and an encrypted one does not; after restore the counter
 * continues from where it was, which proves the memory state survived.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 2 on usage or I/O errors, 3 if the secret in memory changed
 * (a corrupted restore).
 * Build: gcc -O2 -static -o secretholder secretholder.c
 */
#include "workload.h"

static const char *prog = "secretholder";

static unsigned long checksum(const volatile char *p, size_t n)
{
    unsigned long h = 1469598103934665603UL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211UL;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s SECRET [COUNTER_FILE]\n", prog);
        return 2;
    }
    size_t len = strlen(argv[1]);
    volatile char *secret = malloc(len + 1);
    if (secret == NULL)
        wl_die(prog, "out of memory");
    for (size_t i = 0; i <= len; i++)
        secret[i] = argv[1][i];
    memset(argv[1], 'x', len); /* leave the heap copy as the only one */

    const unsigned long expected = checksum(secret, len);
    int fd = wl_open_counter(prog, argc > 2 ? argv[2] : NULL);
    wl_install_stop_handlers();

    unsigned long long counter = 0;
    while (!wl_stop) {
        if (checksum(secret, len) != expected) {
            fprintf(stderr, "%s: the secret in memory changed\n", prog);
            return 3;
        }
        wl_publish(prog, fd, ++counter);
        wl_sleep_ms(100);
    }
    return 0;
}
