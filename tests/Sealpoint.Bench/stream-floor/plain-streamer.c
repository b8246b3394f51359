// A plaintext image streamer for `criu restore --stream`: it answers CRIU's requests from image files loaded into
// memory before CRIU starts, with no checks and no decryption. It measures what CRIU's streaming protocol itself costs
// on a restore (run.sh), the floor under `sealpoint restore`. A measuring tool, not part of Sealpoint.
//
// Protocol (CRIU's images/img-streamer.proto, as Core/Streaming/StreamerProtocol.cs reads it): CRIU connects to
// DIR/streamer-serve.sock; per image it sends a 4-byte little-endian length and img_streamer_request_entry
// { string filename = 1 }, reads img_streamer_reply_entry { bool exists = 1 }, and when the image exists passes the
// write end of a pipe (SCM_RIGHTS), from which it then reads the image to its end.
//
//   plain-streamer IMAGES WORK      (prints "ready" once WORK/streamer-serve.sock listens; serves one connection)
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct image { char name[256]; char *data; size_t size; };
static struct image *images;
static size_t image_count;

static void die(const char *what) { fprintf(stderr, "plain-streamer: %s: %s\n", what, strerror(errno)); exit(1); }

static int read_full(int fd, void *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static void load(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) die(dir);
    size_t capacity = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_type != DT_REG || strlen(e->d_name) >= sizeof images->name) continue;
        if (image_count == capacity && !(images = realloc(images, (capacity = capacity ? 2 * capacity : 1024) * sizeof *images))) die("realloc");
        int fd = openat(dirfd(d), e->d_name, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st)) die(e->d_name);
        struct image *im = &images[image_count++];
        strcpy(im->name, e->d_name);
        im->size = (size_t)st.st_size;
        // Larger images could not be written whole before CRIU reads them, and this loop serves one image at a time.
        if (im->size > (1 << 20)) { fprintf(stderr, "plain-streamer: %s is over 1 MiB; this floor is for trees of small images\n", e->d_name); exit(2); }
        if (!(im->data = malloc(im->size + 1)) || read_full(fd, im->data, im->size)) die(e->d_name);
        close(fd);
    }
    closedir(d);
}

static const struct image *find(const char *name) {
    for (size_t i = 0; i < image_count; i++) if (!strcmp(images[i].name, name)) return &images[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: plain-streamer IMAGES WORK\n"); return 2; }
    load(argv[1]);
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/streamer-serve.sock", argv[2]) >= (int)sizeof addr.sun_path) { errno = ENAMETOOLONG; die(argv[2]); }
    unlink(addr.sun_path);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1)) die("listen");
    printf("ready\n");
    fflush(stdout);
    int criu = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (criu < 0) die("accept");
    unsigned served = 0, missing = 0;
    for (;;) {
        uint32_t length;
        unsigned char request[1024];
        if (read_full(criu, &length, 4)) break; // CRIU closed the connection: the restore is over
        if (length < 2 || length > sizeof request || read_full(criu, request, length)) { fprintf(stderr, "plain-streamer: bad request\n"); return 1; }
        // Field 1, length-delimited; file names are shorter than 128 bytes, so the length is one varint byte.
        if (request[0] != 0x0A || request[1] >= 0x80 || request[1] + 2u > length) { fprintf(stderr, "plain-streamer: unexpected request encoding\n"); return 1; }
        char name[256];
        memcpy(name, request + 2, request[1]);
        name[request[1]] = 0;
        const struct image *im = find(name);
        unsigned char reply[6] = { 2, 0, 0, 0, 0x08, im != NULL };
        if (write(criu, reply, sizeof reply) != sizeof reply) die("reply");
        if (!im) { missing++; continue; }
        char control[CMSG_SPACE(sizeof(int))], byte;
        struct iovec iov = { &byte, 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        struct cmsghdr *cmsg;
        int pipe_fd;
        if (recvmsg(criu, &msg, MSG_CMSG_CLOEXEC) <= 0 || !(cmsg = CMSG_FIRSTHDR(&msg)) || cmsg->cmsg_type != SCM_RIGHTS) die("receiving the pipe");
        memcpy(&pipe_fd, CMSG_DATA(cmsg), sizeof pipe_fd);
        // Images up to 1 MiB fit the pipe whole, so this write never waits for CRIU (as Sealpoint's small images).
        fcntl(pipe_fd, F_SETPIPE_SZ, 1 << 20);
        for (size_t off = 0; off < im->size;) {
            ssize_t w = write(pipe_fd, im->data + off, im->size - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) die(name);
            off += (size_t)w;
        }
        close(pipe_fd);
        served++;
    }
    fprintf(stderr, "plain-streamer: %u images served, %u answered missing\n", served, missing);
    return 0;
}
