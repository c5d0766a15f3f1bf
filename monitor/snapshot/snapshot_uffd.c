/*
 * snapshot_uffd.c - the Uffd memory backend: guest RAM is anonymous and
 * registered with a userfaultfd, which goes to a page-fault handler
 * process over a Unix socket, in Firecracker's protocol (so handlers
 * written for Firecracker serve flint unchanged): one message holding the
 * JSON array of regions
 *   [{"base_host_virt_addr": A, "size": S, "offset": O, "page_size": 4096,
 *     "page_size_kib": 4}, ...]
 * (offset: where the region starts in the memory file) and the
 * userfaultfd as SCM_RIGHTS.
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int uffd_create(const struct guest_mem *mem, char *err, size_t errlen)
{
    struct uffdio_api api = {.api = UFFD_API};
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
        snprintf(err, errlen, "userfaultfd: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (unsigned i = 0; i < mem->nregions; i++) {
        struct uffdio_register reg = {
            .range = {.start = (uintptr_t)mem->regions[i].host, .len = mem->regions[i].size},
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
            snprintf(err, errlen, "UFFDIO_REGISTER: %s", strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int regions_json(const struct guest_mem *mem, char *buf, size_t len)
{
    size_t n = 0;

    n += (size_t)snprintf(buf + n, len - n, "[");
    for (unsigned i = 0; i < mem->nregions && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n,
                              "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,"
                              "\"page_size\":%u,\"page_size_kib\":%u}",
                              i ? "," : "", (unsigned long long)(uintptr_t)mem->regions[i].host,
                              (unsigned long long)mem->regions[i].size,
                              (unsigned long long)mem->regions[i].file_offset, SNAPSHOT_PAGE,
                              SNAPSHOT_PAGE / 1024);
    if (n < len)
        n += (size_t)snprintf(buf + n, len - n, "]");
    return n < len ? (int)n : -1;
}

static int send_fd(int sock, const char *msg, size_t len, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

int snapshot_uffd_connect(const struct guest_mem *mem, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char json[1024];
    int uffd, sock, n = regions_json(mem, json, sizeof(json));

    if (n < 0 || strlen(path) >= sizeof(a.sun_path)) {
        snprintf(err, errlen, "backend_path %s: too long for a Unix socket", path);
        return -EINVAL;
    }
    if ((uffd = uffd_create(mem, err, errlen)) < 0)
        return -EIO;
    memcpy(a.sun_path, path, strlen(path) + 1);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        send_fd(sock, json, (size_t)n, uffd) < 0) {
        snprintf(err, errlen, "backend_path %s: %s", path, strerror(errno));
        if (sock >= 0)
            close(sock);
        close(uffd);
        return -EIO;
    }
    /* The handler holds the userfaultfd now. The socket stays open for
     * the life of the process: the handler sees it close when flint ends. */
    close(uffd);
    return 0;
}
