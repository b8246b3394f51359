/*
 * sealpoint-runc: the runc-compatible entry point engines are pointed at.
 *
 * Engines call their runtime often (state, exec, kill, ...), and a .NET program needs ~25 ms to start
 * while runc needs ~3 ms. So this small C program only finds the sub-command and then replaces itself
 * (execv) with:
 *   - the real runc, with the identical argument vector, for everything except checkpoint/restore
 *     (and for `checkpoint --help` / `restore -h` probes): stdio, inherited fds, console socket,
 *     signals and exit status are then runc's own;
 *   - sealpoint-runc-core (the managed program, in the same directory as this program) for
 *     checkpoint and restore.
 *
 * The real runc is: $SEALPOINT_RUNC, else `runc = "..."` in the [runtime] table of the node config
 * ($SEALPOINT_CONFIG, else /etc/sealpoint/config.toml), else /usr/sbin/runc, else /usr/bin/runc.
 * No dependencies beyond libc; no allocation on the pass-through path beyond a few stack buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/sealpoint/config.toml"
#define CORE_NAME "sealpoint-runc-core"
#define CONFIG_MAX (256 * 1024)

static const char *log_path;   /* runc's --log, so errors also reach containerd's log.json */
static const char *log_format; /* "json" or "text" (runc's default) */

/* runc's global flags that take a value (urfave/cli string flags); all others are booleans. */
static int global_takes_value(const char *name, size_t len)
{
    static const char *const names[] = {"root", "log", "log-format", "criu", "rootless"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return 1;
    return 0;
}

static int is_help_or_version(const char *name, size_t len)
{
    return (len == 1 && (name[0] == 'h' || name[0] == 'v')) || (len == 4 && memcmp(name, "help", 4) == 0) ||
           (len == 7 && memcmp(name, "version", 7) == 0);
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
}

/* One line to stderr, and one entry in runc's log file in runc's own format (logrus text or JSON). */
static void fail(int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sealpoint-runc: %s\n", msg);
    if (log_path && *log_path) {
        int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (f) {
            char stamp[64];
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
            if (log_format && strcmp(log_format, "json") == 0) {
                fputs("{\"level\":\"error\",\"msg\":\"", f);
                json_escape(f, msg);
                fprintf(f, "\",\"time\":\"%s\"}\n", stamp);
            } else {
                fprintf(f, "time=\"%s\" level=error msg=\"", stamp);
                json_escape(f, msg); /* logrus quotes with Go %q: the same escapes for this text */
                fputs("\"\n", f);
            }
            fclose(f);
        } else if (fd >= 0) {
            close(fd);
        }
    }
    exit(code);
}

/*
 * Finds `runc = "..."` in the [runtime] table. Deliberately tiny: the managed NodeConfig parser is the
 * strict one and rejects a runc value this one could read differently (escapes, relative paths).
 * Returns 1 and fills out when found, 0 when the file or the key is absent.
 */
static int runc_from_config(const char *path, char *out, size_t outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        fail(3, "cannot read the node config %s: %s. Fix: make it readable by this user, or set SEALPOINT_CONFIG", path,
             strerror(errno));
    }
    static char buf[CONFIG_MAX + 1];
    size_t len = 0;
    ssize_t n;
    while (len < CONFIG_MAX && (n = read(fd, buf + len, CONFIG_MAX - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            close(fd);
            fail(3, "cannot read the node config %s: %s. Fix: check the file", path, strerror(errno));
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';

    int in_runtime = 0, lineno = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        while (*line == ' ' || *line == '\t') line++;
        if (*line == '[') {
            char *end = strchr(line, ']');
            if (!end) continue; /* the strict parser reports it */
            char *name = line + 1;
            while (*name == ' ' || *name == '\t') name++;
            char *name_end = end;
            while (name_end > name && (name_end[-1] == ' ' || name_end[-1] == '\t')) name_end--;
            in_runtime = (name_end - name == 7 && memcmp(name, "runtime", 7) == 0);
            continue;
        }
        if (!in_runtime || strncmp(line, "runc", 4) != 0) continue;
        char *p = line + 4;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != '=') continue; /* e.g. a key named runc_something */
        p++;
        while (*p == ' ' || *p == '\t') p++;
        char quote = *p;
        if (quote != '"' && quote != '\'')
            fail(3, "%s line %d: runc must be a quoted string. Fix: write runc = \"/usr/sbin/runc\"", path, lineno);
        char *value = ++p;
        char *close_quote = strchr(value, quote);
        if (!close_quote)
            fail(3, "%s line %d: the runc value has no closing quote. Fix: write runc = \"/usr/sbin/runc\"", path, lineno);
        *close_quote = '\0';
        if (quote == '"' && strchr(value, '\\'))
            fail(3, "%s line %d: the runc path contains an escape sequence. Fix: give a plain absolute path", path, lineno);
        if (value[0] != '/')
            fail(3, "%s line %d: runc = \"%s\" is not an absolute path. Fix: give the real runc's absolute path", path,
                 lineno, value);
        if (strlen(value) >= outlen) fail(3, "%s line %d: the runc path is too long", path, lineno);
        strcpy(out, value);
        return 1;
    }
    return 0;
}

static const char *find_runc(char *buf, size_t len)
{
    const char *env = getenv("SEALPOINT_RUNC");
    if (env && *env) {
        if (env[0] != '/')
            fail(3, "SEALPOINT_RUNC=%s is not an absolute path. Fix: give the real runc's absolute path", env);
        return env;
    }
    const char *config = getenv("SEALPOINT_CONFIG");
    if (!config || !*config) config = DEFAULT_CONFIG;
    if (runc_from_config(config, buf, len)) return buf;
    if (access("/usr/sbin/runc", X_OK) == 0) return "/usr/sbin/runc";
    if (access("/usr/bin/runc", X_OK) == 0) return "/usr/bin/runc";
    fail(127, "the real runc was not found (not in %s, /usr/sbin/runc or /usr/bin/runc). Fix: install runc, or set "
              "runc = \"/path/to/runc\" in the [runtime] table of %s",
         config, config);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *command = NULL;
    int command_index = argc, help = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) { command = argv[i + 1]; command_index = i + 1; }
            break;
        }
        if (a[0] != '-' || a[1] == '\0') { command = a; command_index = i; break; }
        const char *name = a + 1 + (a[1] == '-'); /* Go flags: -flag and --flag are the same */
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (is_help_or_version(name, name_len)) help = 1;
        if (global_takes_value(name, name_len)) {
            if (name_len == 3 && memcmp(name, "log", 3) == 0) log_path = value;
            else if (name_len == 10 && memcmp(name, "log-format", 10) == 0) log_format = value;
            if (!eq) i++;
        }
    }

    int sealpoint = !help && command && (strcmp(command, "checkpoint") == 0 || strcmp(command, "restore") == 0);
    if (sealpoint) {
        /* `checkpoint --help` is podman's and CRI-O's support probe: runc answers it. */
        for (int i = command_index + 1; i < argc; i++) {
            const char *a = argv[i];
            if (strcmp(a, "-h") == 0 || strcmp(a, "--h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0) {
                sealpoint = 0;
                break;
            }
        }
    }

    char self[PATH_MAX];
    ssize_t self_len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (self_len < 0) fail(1, "cannot resolve /proc/self/exe: %s. Fix: mount /proc", strerror(errno));
    self[self_len] = '\0';

    if (sealpoint) {
        char core[PATH_MAX];
        char *slash = strrchr(self, '/');
        size_t dir_len = (size_t)(slash - self);
        if (dir_len + 1 + sizeof CORE_NAME > sizeof core) fail(1, "install path too long");
        memcpy(core, self, dir_len);
        memcpy(core + dir_len, "/" CORE_NAME, sizeof CORE_NAME + 1);
        argv[0] = core;
        execv(core, argv);
        fail(127, "cannot run %s: %s. Fix: install sealpoint-runc-core next to sealpoint-runc (packaging/install.sh)", core,
             strerror(errno));
    }

    char runc_buf[PATH_MAX];
    const char *runc = find_runc(runc_buf, sizeof runc_buf);
    /* A config pointing back at this program would exec itself forever. */
    char resolved[PATH_MAX];
    if (realpath(runc, resolved) && strcmp(resolved, self) == 0)
        fail(3, "the configured runc %s is sealpoint-runc itself. Fix: point it at the real runc (e.g. /usr/sbin/runc)", runc);
    argv[0] = (char *)runc;
    execv(runc, argv);
    fail(127, "cannot run the real runc %s: %s. Fix: install runc, or correct the runc path in the node config", runc,
         strerror(errno));
    return 127;
}
