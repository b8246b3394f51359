/*
 * memhog - a process with a large, resident, random memory image that hides a secret and counts.
 *
 * Usage: memhog MIB SECRET [COUNTER_FILE [PERCENT]]
 *
 * Maps MIB MiB of anonymous memory and fills every page with pseudo-random data (xorshift64*,
 * seeded from getrandom), so every page is resident and does not compress or deduplicate. SECRET
 * is embedded at the start, the middle, the end and at a few pseudo-random places of that area,
 * and a copy is kept on the heap (the argv copy is overwritten). Then it runs the counter loop of
 * workload.h (COUNTER_FILE may be "" or "-" for none).
 *
 * Signals, handled in the loop (so the work is done before the next counter value is published:
 * a test that sends a signal and waits for the counter to advance by 2 knows it has happened):
 *   SIGUSR1  re-randomize PERCENT % of the pages (default 5; a contiguous run of pages at a random
 *            start, wrapping), then re-embed the secret; prints "modified N pages". For incremental
 *            checkpoint tests and benchmarks.
 *   SIGUSR2  verify the whole area against the per-page checksums kept since the last change;
 *            prints "verify ok N pages", or exits 3 on a mismatch. For checking a restore
 *            brought back every page intact.
 *   SIGTERM/SIGINT  exit 0.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 2 on usage/resource errors, 3 on corrupted memory.
 * Build: gcc -O2 -static -o memhog memhog.c
 */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>

#define PAGE 4096UL

static const char *prog = "memhog";
static volatile sig_atomic_t want_modify, want_verify;
static void on_usr1(int s) { (void)s; want_modify = 1; }
static void on_usr2(int s) { (void)s; want_verify = 1; }

static uint64_t rng_state;
static inline uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t page_hash(const uint64_t *w)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < PAGE / 8; i++)
        h = (h ^ w[i]) * 0x100000001b3ULL;
    return h;
}

static unsigned char *area;
static size_t area_pages;
static uint64_t *hashes;
static const char *secret;
static size_t secret_len;
static size_t secret_at[8];
static size_t n_secret_at;

static void fill_pages(size_t first, size_t count)
{
    for (size_t p = first; p < first + count; p++) {
        uint64_t *w = (uint64_t *)(area + (p % area_pages) * PAGE);
        for (size_t i = 0; i < PAGE / 8; i++)
            w[i] = rng();
    }
}

static void embed_secret(void)
{
    for (size_t i = 0; i < n_secret_at; i++)
        memcpy(area + secret_at[i], secret, secret_len);
}

static void rehash_all(void)
{
    for (size_t p = 0; p < area_pages; p++)
        hashes[p] = page_hash((const uint64_t *)(area + p * PAGE));
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s MIB SECRET [COUNTER_FILE [PERCENT]]\n", prog);
        return 2;
    }
    char *end;
    unsigned long mib = strtoul(argv[1], &end, 10);
    if (*end != '\0' || mib == 0 || mib > 1024UL * 1024)
        wl_die(prog, "MIB must be a positive number of MiB, got '%s'", argv[1]);
    unsigned long percent = 5;
    if (argc > 4) {
        percent = strtoul(argv[4], &end, 10);
        if (*end != '\0' || percent > 100)
            wl_die(prog, "PERCENT must be 0..100, got '%s'", argv[4]);
    }
    secret_len = strlen(argv[2]);
    if (secret_len == 0 || secret_len > PAGE)
        wl_die(prog, "SECRET must be 1..%lu bytes", PAGE);
    char *heap_secret = malloc(secret_len + 1);
    if (heap_secret == NULL)
        wl_die(prog, "out of memory");
    memcpy(heap_secret, argv[2], secret_len + 1);
    memset(argv[2], 'x', secret_len);
    secret = heap_secret;

    area_pages = mib * 1024 * 1024 / PAGE;
    area = mmap(NULL, area_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        wl_die(prog, "cannot map %lu MiB: %s", mib, strerror(errno));
    hashes = calloc(area_pages, sizeof *hashes);
    if (hashes == NULL)
        wl_die(prog, "out of memory for page checksums");

    if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || rng_state == 0)
        rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    fill_pages(0, area_pages);

    size_t size = area_pages * PAGE;
    secret_at[n_secret_at++] = 0;
    secret_at[n_secret_at++] = size / 2;
    secret_at[n_secret_at++] = size - secret_len;
    for (int i = 0; i < 5; i++) /* a few places not on page boundaries */
        secret_at[n_secret_at++] = (rng() % (size - secret_len - 1)) | 1;
    embed_secret();
    rehash_all();

    int fd = wl_open_counter(prog, argc > 3 ? argv[3] : NULL);
    wl_install_stop_handlers();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);

    unsigned long long counter = 0;
    while (!wl_stop) {
        if (want_modify) {
            want_modify = 0;
            size_t count = (area_pages * percent + 99) / 100;
            fill_pages(rng() % area_pages, count);
            embed_secret();
            rehash_all();
            printf("modified %zu pages\n", count);
        }
        if (want_verify) {
            want_verify = 0;
            for (size_t p = 0; p < area_pages; p++)
                if (page_hash((const uint64_t *)(area + p * PAGE)) != hashes[p]) {
                    printf("verify FAILED at page %zu\n", p);
                    fflush(stdout);
                    return 3;
                }
            printf("verify ok %zu pages\n", area_pages);
        }
        for (size_t i = 0; i < n_secret_at; i++)
            if (memcmp(area + secret_at[i], secret, secret_len) != 0) {
                fprintf(stderr, "%s: embedded secret %zu changed\n", prog, i);
                return 3;
            }
        wl_publish(prog, fd, ++counter);
        wl_sleep_ms(100);
    }
    return 0;
}
