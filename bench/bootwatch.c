/*
 * bootwatch: time a VMM from process start to a line its guest prints, and
 * count the VM's exits by kind up to that moment from KVM's debugfs.
 *
 *   bootwatch MARKER OUTFILE CMD [ARGS...]
 *
 * Starts CMD with stdout and stderr on a pipe, copies everything to
 * OUTFILE, and when MARKER first appears prints
 *
 *   boot_us N
 *   kvm <stat> N          (one line per file in /sys/kernel/debug/kvm/<pid>-*)
 *
 *   rss_kib N             (CMD's resident memory then, VmRSS)
 *
 * then waits for CMD and prints "exit_us N", "maxrss_kib N" (its peak
 * resident memory) and "status N". Used by
 * bench/boot.sh for flint and QEMU alike, so both are measured the same
 * way. debugfs must be mounted (boot.sh mounts it); without it the kvm lines
 * are missing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define KVM_DEBUGFS "/sys/kernel/debug/kvm"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000ll + ts.tv_nsec / 1000;
}

/* Print every counter of the VM that process `pid` created. */
static void print_kvm_stats(pid_t pid)
{
    char prefix[32], path[600], value[64];
    struct dirent *d, *f;
    DIR *top = opendir(KVM_DEBUGFS), *vm;

    if (!top) {
        printf("kvm-stats unavailable (%s: %s)\n", KVM_DEBUGFS, strerror(errno));
        return;
    }
    snprintf(prefix, sizeof(prefix), "%d-", (int)pid);
    while ((d = readdir(top))) {
        if (strncmp(d->d_name, prefix, strlen(prefix)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", KVM_DEBUGFS, d->d_name);
        if (!(vm = opendir(path)))
            continue;
        while ((f = readdir(vm))) {
            int fd;
            ssize_t n;
            snprintf(path, sizeof(path), "%s/%s/%s", KVM_DEBUGFS, d->d_name, f->d_name);
            if (f->d_name[0] == '.' || (fd = open(path, O_RDONLY)) < 0)
                continue;
            n = read(fd, value, sizeof(value) - 1);
            close(fd);
            if (n > 0 && value[0] >= '0' && value[0] <= '9') {
                value[n] = '\0';
                printf("kvm %s %s", f->d_name, value);
            }
        }
        closedir(vm);
    }
    closedir(top);
}

/* VmRSS of `pid` from /proc/<pid>/status. */
static void print_rss(pid_t pid)
{
    char path[64], line[256];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        long kib;
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            printf("rss_kib %ld\n", kib);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    posix_spawn_file_actions_t fa;
    int pipefd[2], status;
    char buf[65536], tail[4096] = "";
    size_t tail_len = 0;
    bool seen = false;
    long long t0;
    pid_t pid;
    FILE *out;

    if (argc < 4) {
        fprintf(stderr, "usage: bootwatch MARKER OUTFILE CMD [ARGS...]\n");
        return 2;
    }
    out = fopen(argv[2], "w");
    if (!out || pipe2(pipefd, O_CLOEXEC)) {
        perror("bootwatch");
        return 1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    t0 = now_us();
    if (posix_spawnp(&pid, argv[3], &fa, NULL, argv + 3, environ)) {
        perror("bootwatch: spawn");
        return 1;
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, out);
        if (seen)
            continue;
        /* Search the new bytes with enough of the old ones in front to
         * catch a marker split across reads. */
        for (ssize_t i = 0; i < n; i++) {
            if (tail_len == sizeof(tail) - 1) {
                memmove(tail, tail + sizeof(tail) / 2, tail_len - sizeof(tail) / 2);
                tail_len -= sizeof(tail) / 2;
            }
            tail[tail_len++] = buf[i];
            tail[tail_len] = '\0';
            if (buf[i] == argv[1][strlen(argv[1]) - 1] && strstr(tail, argv[1])) {
                long long t = now_us();
                seen = true;
                printf("boot_us %lld\n", t - t0);
                print_kvm_stats(pid);
                print_rss(pid);
                fflush(stdout);
                break;
            }
        }
    }
    struct rusage ru = {0};
    wait4(pid, &status, 0, &ru);
    printf("exit_us %lld\n", now_us() - t0);
    printf("maxrss_kib %ld\n", ru.ru_maxrss);
    printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (!seen)
        printf("marker not seen\n");
    fclose(out);
    return seen ? 0 : 1;
}
