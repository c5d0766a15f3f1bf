/*
 * uffd_handler - an example page-fault handler for the Uffd memory
 * backend of PUT /snapshot/load (Firecracker's protocol, so it serves
 * Firecracker too): it serves every page the guest touches from a
 * snapshot's memory file.
 *
 *   uffd_handler SOCKET MEM_FILE
 *
 * Listens on the Unix socket SOCKET and prints "uffd_handler: listening";
 * takes one connection, whose one message is the JSON array of guest
 * regions [{"base_host_virt_addr", "size", "offset", ...}] with the
 * userfaultfd attached (SCM_RIGHTS); then answers each missing-page fault
 * with UFFDIO_COPY of that page of MEM_FILE. Ends (status 0, printing how
 * many pages it served) when the VMM closes the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE        4096ull
#define MAX_REGIONS 16

struct region {
    uint64_t base, size, offset;
};

static int die(const char *what)
{
    fprintf(stderr, "uffd_handler: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The number after "key": in the object starting at p (the VMM's JSON). */
static uint64_t field(const char *obj, const char *end, const char *key)
{
    char pat[64];
    const char *k;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    k = strstr(obj, pat);
    if (!k || (end && k > end)) {
        fprintf(stderr, "uffd_handler: region without %s\n", key);
        exit(1);
    }
    return strtoull(k + strlen(pat), NULL, 10);
}

static unsigned parse_regions(const char *json, struct region *r)
{
    unsigned n = 0;

    for (const char *p = strchr(json, '{'); p && n < MAX_REGIONS; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        r[n].base = field(p, end, "base_host_virt_addr");
        r[n].size = field(p, end, "size");
        r[n].offset = field(p, end, "offset");
        n++;
    }
    return n;
}

static int accept_vmm(const char *path, char *json, size_t len, int *uffd)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = json, .iov_len = len - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), conn;
    ssize_t n;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    unlink(path);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0)
        die(path);
    printf("uffd_handler: listening\n");
    fflush(stdout);
    if ((conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) < 0)
        die("accept");
    close(ls);
    unlink(path);
    n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (n <= 0 || !c || c->cmsg_type != SCM_RIGHTS)
        die("no userfaultfd in the message");
    json[n] = '\0';
    memcpy(uffd, CMSG_DATA(c), sizeof(int));
    return conn;
}

static int serve(int uffd, const struct region *r, unsigned nr, const uint8_t *file,
                 uint64_t file_size)
{
    struct uffd_msg msg;

    if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
        return errno == EAGAIN ? 0 : -1;
    if (msg.event != UFFD_EVENT_PAGEFAULT)
        return 0;
    uint64_t addr = msg.arg.pagefault.address & ~(PAGE - 1);
    for (unsigned i = 0; i < nr; i++) {
        if (addr < r[i].base || addr - r[i].base >= r[i].size)
            continue;
        uint64_t off = r[i].offset + (addr - r[i].base);
        if (off + PAGE <= file_size) {
            struct uffdio_copy cp = {.dst = addr, .src = (uintptr_t)(file + off), .len = PAGE};
            if (ioctl(uffd, UFFDIO_COPY, &cp) < 0 && errno != EEXIST)
                return -1;
        } else {
            struct uffdio_zeropage z = {.range = {.start = addr, .len = PAGE}};
            if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST)
                return -1;
        }
        return 1;
    }
    fprintf(stderr, "uffd_handler: fault at 0x%llx outside every region\n",
            (unsigned long long)addr);
    return -1;
}

int main(int argc, char **argv)
{
    struct region r[MAX_REGIONS];
    char json[4096];
    struct stat st;
    unsigned long long served = 0;
    int uffd, conn, fd;

    if (argc != 3) {
        fprintf(stderr, "usage: uffd_handler SOCKET MEM_FILE\n");
        return 2;
    }
    if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
        die(argv[2]);
    const uint8_t *file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED)
        die("mmap");
    conn = accept_vmm(argv[1], json, sizeof(json), &uffd);
    unsigned nr = parse_regions(json, r);
    if (!nr) {
        fprintf(stderr, "uffd_handler: no regions in '%s'\n", json);
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = uffd, .events = POLLIN}, {.fd = conn, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            die("poll");
        if (p[0].revents & POLLIN) {
            int rc = serve(uffd, r, nr, file, (uint64_t)st.st_size);
            if (rc < 0)
                die("serving a fault");
            served += (unsigned long long)rc;
        }
        if (p[1].revents) { /* the VMM is gone */
            printf("uffd_handler: served %llu pages\n", served);
            return 0;
        }
    }
}
