/*
 * seccomp_rules.c - the per-thread allow-lists, and their compilation to
 * BPF with libseccomp. Only the build runs the compiler (seccomp_gen.c
 * writes its output into flint as arrays) and the unit tests, which check
 * that what flint ships is what the lists compile to today; flint itself
 * does not link libseccomp.
 *
 * The lists come from tracing flint (strace -f) through every end-to-end
 * test: hello, SMP, virtio-blk and virtio-net guests, hostile drivers,
 * --stats and --level Debug. What runs before a thread's filter (loading
 * the kernel, opening drives and taps, creating KVM objects, starting
 * threads) is not on its list. io_uring operations are invisible to
 * seccomp: the VMM thread's disk and network I/O is io_uring_enter.
 *
 * This file includes libseccomp's <seccomp.h>, whose name this directory's
 * own seccomp.h shares: meson builds it without the monitor directory on
 * the include path, and the quoted includes below find this directory's
 * headers through the including file's own directory.
 */
#define _GNU_SOURCE
#include "seccomp.h"
#include "util.h"

#include <seccomp.h> /* libseccomp */

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/ioctl.h> /* TCSETS */
#include <sys/stat.h>
#include <unistd.h>

#define VMM  (1u << SECCOMP_THREAD_VMM)
#define VCPU (1u << SECCOMP_THREAD_VCPU)
#define ALL  (VMM | VCPU)

#define ALLOW(sys, kinds, args)                                                                    \
    {                                                                                              \
        SCMP_SYS(sys), #sys, kinds, args, 0                                                        \
    }
#define ALLOW_WITH(sys, kinds, args, feat)                                                         \
    {                                                                                              \
        SCMP_SYS(sys), #sys, kinds, args, feat                                                     \
    }
#define VSOCK    SECCOMP_FEAT_VSOCK
#define API      SECCOMP_FEAT_API
#define SNAPSHOT SECCOMP_FEAT_SNAPSHOT
#define TTY      SECCOMP_FEAT_TTY

/* docs/SECURITY.md explains each entry; keep the two in step. */
static const struct seccomp_allow allow_list[] = {
    /* The hot paths; seccomp_prog_compile has the filter test them first. */
    ALLOW(ioctl, VCPU, SECCOMP_ARGS_IOCTL),
    ALLOW(io_uring_enter, VMM, SECCOMP_ARGS_ANY),
    /* Console and log lines, eventfd kicks (irqfd, ioeventfd forwarding,
     * exit requests), vsock socket data. */
    ALLOW(write, ALL, SECCOMP_ARGS_ANY),
    /* Locks, condition waits and thread joins. */
    ALLOW(futex, ALL, SECCOMP_ARGS_ANY),
    /* vDSO fallbacks and the watchdog's per-thread CPU clocks. */
    ALLOW(clock_gettime, ALL, SECCOMP_ARGS_ANY),
    /* Signals: the vCPU kick handler returns; pthread_kill and thread
     * exit mask signals; interrupted calls restart. */
    ALLOW(rt_sigreturn, ALL, SECCOMP_ARGS_ANY),
    ALLOW(rt_sigprocmask, ALL, SECCOMP_ARGS_ANY),
    ALLOW(restart_syscall, ALL, SECCOMP_ARGS_ANY),
    ALLOW(getpid, VMM, SECCOMP_ARGS_ANY),
    ALLOW(tgkill, VMM, SECCOMP_ARGS_OWN_PID),
    /* malloc and free, and thread exit (madvise of the stack). Nothing may
     * become executable. */
    ALLOW(brk, ALL, SECCOMP_ARGS_ANY),
    ALLOW(mmap, ALL, SECCOMP_ARGS_NO_EXEC),
    ALLOW(mprotect, ALL, SECCOMP_ARGS_NO_EXEC),
    ALLOW(mremap, ALL, SECCOMP_ARGS_ANY),
    ALLOW(munmap, ALL, SECCOMP_ARGS_ANY),
    ALLOW(madvise, ALL, SECCOMP_ARGS_ANY),
    /* Tearing down: descriptors, ring, memory. --stats prints with
     * dprintf, which asks fstat and lseek about stderr. */
    ALLOW(close, VMM, SECCOMP_ARGS_ANY),
    ALLOW(newfstatat, VMM, SECCOMP_ARGS_EMPTY_PATH),
    ALLOW(lseek, VMM, SECCOMP_ARGS_ANY),
    /* --stats reports the process's peak resident memory. */
    ALLOW(getrusage, VMM, SECCOMP_ARGS_ANY),
    ALLOW(exit, VCPU, SECCOMP_ARGS_ANY),
    ALLOW(exit_group, ALL, SECCOMP_ARGS_ANY),
    /* vsock (virtio_vsock.h), only in VMs that have it: Unix stream
     * sockets to and from the host side, made and accepted after boot;
     * the listening socket's path is removed at exit. */
    ALLOW_WITH(socket, VMM, SECCOMP_ARGS_UNIX_SOCK, VSOCK),
    ALLOW_WITH(shutdown, VMM, SECCOMP_ARGS_ANY, VSOCK),
    ALLOW_WITH(fcntl, VMM, SECCOMP_ARGS_SETFL_ZERO, VSOCK),
    /* vsock's listening socket, and the API socket (whose connections
     * are all io_uring operations), are removed at exit. */
    ALLOW_WITH(unlink, VMM, SECCOMP_ARGS_ANY, VSOCK | API),
    /* PATCH /drives opens the new image (virtio_blk_swap): an existing
     * file, read-only or read-write, nothing created or truncated.
     * PUT /snapshot/create (or --snapshot-on-signal) writes the state and
     * memory files: created (O_WRONLY | O_CREAT), emptied with ftruncate
     * after checking the memory file is not this VM's own, sized, written
     * at offsets. */
    ALLOW_WITH(openat, VMM, SECCOMP_ARGS_OPEN_FILES, API | SNAPSHOT),
    ALLOW_WITH(ftruncate, VMM, SECCOMP_ARGS_ANY, SNAPSHOT),
    ALLOW_WITH(pwrite64, VMM, SECCOMP_ARGS_ANY, SNAPSHOT),
    /* flint run --record-working-set reads /proc/self/pagemap, opened
     * before the VM ran, when it has ended (snapshot_ws.h). */
    ALLOW_WITH(pread64, VMM, SECCOMP_ARGS_ANY, SECCOMP_FEAT_WORKING_SET),
    /* Console input from a terminal: flint put it in raw mode before the
     * filter and puts it back at exit (term_raw.h), on this thread. */
    ALLOW_WITH(ioctl, VMM, SECCOMP_ARGS_TTY_RESTORE, TTY),
};

/* The VMM thread makes no KVM ioctl after boot: interrupts go through
 * irqfds (write), queue notifications through ioeventfds (io_uring reads).
 * Its one ioctl restores a raw terminal (SECCOMP_ARGS_TTY_RESTORE). */
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN,
    KVM_GET_REGS,     /* crash messages, the halt watchdog's RFLAGS.IF */
    KVM_GET_MP_STATE, /* the halt watchdog */
    TUNSETOFFLOAD,    /* virtio-net activate / reset (register writes) */
    /* Snapshots: each held vCPU thread reads its own state, vCPU 0 the
     * VM's too (snapshot.c); reads only, nothing is set after boot. */
    KVM_GET_SREGS,
    KVM_GET_XSAVE,
    KVM_GET_XCRS,
    KVM_GET_DEBUGREGS,
    KVM_GET_LAPIC,
    KVM_GET_TSC_KHZ,
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_MSRS,
    KVM_GET_CPUID2,
    KVM_GET_VCPU_EVENTS,
    KVM_GET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_GET_CLOCK,
    KVM_GET_DIRTY_LOG,
};

const struct seccomp_allow *seccomp_allow_list(size_t *count)
{
    *count = ARRAY_SIZE(allow_list);
    return allow_list;
}

const unsigned long *seccomp_ioctl_list(enum seccomp_thread kind, size_t *count)
{
    *count = kind == SECCOMP_THREAD_VCPU ? ARRAY_SIZE(vcpu_ioctls) : 0;
    return vcpu_ioctls;
}

static bool applies(const struct seccomp_allow *a, enum seccomp_thread kind, unsigned features)
{
    return (a->kinds & (1u << kind)) && (!a->feature || (a->feature & features));
}

bool seccomp_allows(enum seccomp_thread kind, unsigned features, int nr)
{
    for (size_t i = 0; i < ARRAY_SIZE(allow_list); i++)
        if (allow_list[i].nr == nr && applies(&allow_list[i], kind, features))
            return true;
    return false;
}

unsigned seccomp_allowed_count(enum seccomp_thread kind, unsigned features)
{
    unsigned n = 0;

    /* One entry per system call: a plain count is a count of calls. */
    for (size_t i = 0; i < ARRAY_SIZE(allow_list); i++)
        n += applies(&allow_list[i], kind, features);
    return n;
}

/* ---- building ---- */

static int add_rule(scmp_filter_ctx ctx, const struct seccomp_allow *a, enum seccomp_thread kind,
                    uint32_t own_pid)
{
    size_t nioctls;
    const unsigned long *ioctls;
    int rc = 0;

    switch (a->args) {
    case SECCOMP_ARGS_ANY:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 0);
    case SECCOMP_ARGS_IOCTL:
        /* The kernel reads the request as 32 bits; comparing all 64 is
         * stricter (junk in the upper half traps), never looser. */
        ioctls = seccomp_ioctl_list(kind, &nioctls);
        for (size_t i = 0; i < nioctls && !rc; i++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 1,
                                  SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)ioctls[i]));
        return rc;
    case SECCOMP_ARGS_NO_EXEC:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 1,
                                SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    case SECCOMP_ARGS_UNIX_SOCK:
        return seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, a->nr, 3, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
            SCMP_A1(SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)(SOCK_CLOEXEC | SOCK_NONBLOCK), SOCK_STREAM),
            SCMP_A2(SCMP_CMP_EQ, 0));
    case SECCOMP_ARGS_OWN_PID:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 1,
                                SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)own_pid));
    case SECCOMP_ARGS_EMPTY_PATH:
        /* The path is not visible to the filter: a non-empty one would be
         * looked up, but only for its metadata; no file is opened. */
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 1, SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH));
    case SECCOMP_ARGS_OPEN_EXISTING:
        /* Every flag bit but O_RDWR and O_CLOEXEC must be clear: that also
         * refuses O_WRONLY, O_CREAT, O_TMPFILE, O_PATH, O_TRUNC. */
        return seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, a->nr, 1,
            SCMP_A2(SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)(O_RDWR | O_CLOEXEC) & 0xffffffffu, 0));
    case SECCOMP_ARGS_OPEN_FILES:
        /* As OPEN_EXISTING, or flags exactly O_WRONLY | O_CREAT | O_CLOEXEC. */
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, a->nr, 1,
            SCMP_A2(SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)(O_RDWR | O_CLOEXEC) & 0xffffffffu, 0));
        return rc ? rc
                  : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu,
                                             (scmp_datum_t)(O_WRONLY | O_CREAT | O_CLOEXEC)));
    case SECCOMP_ARGS_TTY_RESTORE:
        /* tcsetattr(TCSANOW) is this one request; TCGETS is not needed. */
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 2, SCMP_A0(SCMP_CMP_EQ, STDIN_FILENO),
                                SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCSETS));
    case SECCOMP_ARGS_SETFL_ZERO:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 2, SCMP_A1(SCMP_CMP_EQ, F_SETFL),
                                SCMP_A2(SCMP_CMP_EQ, 0));
    }
    return -EINVAL;
}

/* libseccomp writes the program to a file descriptor; read it back. */
static int export_prog(scmp_filter_ctx ctx, struct seccomp_prog *out)
{
    struct stat st;
    int fd = memfd_create("flint-seccomp", MFD_CLOEXEC);
    int rc;

    if (fd < 0)
        return -errno;
    rc = seccomp_export_bpf(ctx, fd);
    if (!rc && fstat(fd, &st) < 0)
        rc = -errno;
    if (!rc && (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) ||
                st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS))
        rc = -E2BIG;
    if (!rc && !(out->insns = malloc((size_t)st.st_size)))
        rc = -ENOMEM;
    if (!rc && pread(fd, out->insns, (size_t)st.st_size, 0) != st.st_size)
        rc = -EIO;
    if (!rc)
        out->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
    close(fd);
    return rc;
}

int seccomp_prog_compile(enum seccomp_thread kind, unsigned features, uint32_t own_pid,
                         struct seccomp_prog *out)
{
    scmp_filter_ctx ctx;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (kind >= SECCOMP_THREAD_KINDS || features >= SECCOMP_FEATURE_SETS)
        return -EINVAL;
    ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return -ENOMEM;
    /* Another architecture's (or x32's) system call numbers mean something
     * else: trap them too, so they are reported the same way. Per-thread
     * filters: no TSYNC (seccomp_thread_load loads without it as well). */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
    if (!rc)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0);
    for (size_t i = 0; i < ARRAY_SIZE(allow_list) && !rc; i++)
        if (applies(&allow_list[i], kind, features))
            rc = add_rule(ctx, &allow_list[i], kind, own_pid);
    /* Test the hot calls first: KVM_RUN on vCPUs, io_uring on the VMM. */
    if (!rc)
        rc = seccomp_syscall_priority(
            ctx, kind == SECCOMP_THREAD_VCPU ? SCMP_SYS(ioctl) : SCMP_SYS(io_uring_enter), 255);
    if (!rc)
        rc = export_prog(ctx, out);
    seccomp_release(ctx);
    if (rc) {
        free(out->insns);
        out->insns = NULL;
        out->len = 0;
    }
    return rc;
}

uint32_t seccomp_rules_arch(void)
{
    return seccomp_arch_native();
}
