/*
 * seccomp.c - the per-thread filters as flint ships them (BPF compiled at
 * build time by seccomp_gen from seccomp_rules.c's lists), made ready for
 * this process and loaded by each thread with seccomp(2).
 *
 * Compiling the lists with libseccomp at every start cost system calls
 * and time before the first KVM_RUN (docs/PERFORMANCE.md); the programs
 * only depend on the architecture, the thread kind, the VM's features and
 * flint's own pid (tgkill), which is a placeholder in the shipped program
 * patched here.
 */
#define _GNU_SOURCE
#include "seccomp.h"
#include "util.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The architecture flint's own system calls are made in: what the shipped
 * filters must admit (and SIGSYS reports compare with). */
#if defined(__x86_64__) && !defined(__ILP32__)
#define FLINT_AUDIT_ARCH AUDIT_ARCH_X86_64
#else
#error "seccomp: no AUDIT_ARCH for this architecture"
#endif

bool seccomp_available(void)
{
#ifdef FLINT_SANITIZED
    return false;
#else
    return true;
#endif
}

const char *seccomp_thread_name(enum seccomp_thread kind)
{
    return kind == SECCOMP_THREAD_VMM ? "vmm" : kind == SECCOMP_THREAD_VCPU ? "vcpu" : "?";
}

/* The shipped program starts by loading seccomp_data.arch and trapping
 * anything but the architecture it was compiled for: that must be
 * flint's own, or the filter would trap every call (or, worse, read
 * system call numbers of another table). */
static bool prog_checks_own_arch(const struct sock_filter *insns, unsigned len)
{
    return len > 2 && insns[0].code == (BPF_LD | BPF_W | BPF_ABS) &&
           insns[0].k == offsetof(struct seccomp_data, arch) &&
           insns[1].code == (BPF_JMP | BPF_JEQ | BPF_K) && insns[1].k == FLINT_AUDIT_ARCH &&
           seccomp_bpf_arch == FLINT_AUDIT_ARCH;
}

int seccomp_prog_build(enum seccomp_thread kind, unsigned features, struct seccomp_prog *out)
{
    const struct seccomp_bpf_prog *shipped;
    unsigned patched = 0;

    memset(out, 0, sizeof(*out));
    if (kind >= SECCOMP_THREAD_KINDS || features >= SECCOMP_FEATURE_SETS)
        return -EINVAL;
    shipped = &seccomp_bpf_progs[kind][features];
    if (!prog_checks_own_arch(shipped->insns, shipped->len))
        return -ENOEXEC;
    out->insns = malloc(shipped->len * sizeof(*out->insns));
    if (!out->insns)
        return -ENOMEM;
    memcpy(out->insns, shipped->insns, shipped->len * sizeof(*out->insns));
    out->len = shipped->len;
    /* tgkill's pid: compared as the low 32 bits of argument 0. */
    for (unsigned i = 0; i < out->len; i++)
        if (out->insns[i].code == (BPF_JMP | BPF_JEQ | BPF_K) &&
            out->insns[i].k == SECCOMP_PID_PLACEHOLDER) {
            out->insns[i].k = (uint32_t)getpid();
            patched++;
        }
    if (patched != shipped->pid_checks) {
        seccomp_prog_free(out);
        return -ENOEXEC;
    }
    return 0;
}

void seccomp_prog_free(struct seccomp_prog *prog)
{
    free(prog->insns);
    prog->insns = NULL;
    prog->len = 0;
}

/* ---- loading and reporting ---- */

/* "vcpu12" or "vmm": what the SIGSYS line calls this thread. */
static __thread char thread_label[16] = "main";
static __thread const char *thread_kind = "main";

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at < cap)
        buf[at++] = digits[--n];
    return at;
}

/* Async-signal-safe: no stdio, no locks, no allocation; write and
 * exit_group are on every list. */
static void on_sigsys(int sig, siginfo_t *info, void *ucontext)
{
    char line[192];
    size_t n = 0, cap = sizeof(line) - 1;
    int nr = info->si_syscall;

    (void)sig;
    (void)ucontext;
    n = put_str(line, n, cap, "flint[");
    n = put_str(line, n, cap, thread_label);
    n = put_str(line, n, cap, "] Error: seccomp: forbidden system call ");
    n = put_uint(line, n, cap, (unsigned long)(unsigned)nr);
    if (info->si_arch != FLINT_AUDIT_ARCH) {
        n = put_str(line, n, cap, " (audit arch ");
        n = put_uint(line, n, cap, info->si_arch);
        n = put_str(line, n, cap, ")");
    }
    n = put_str(line, n, cap, " on a ");
    n = put_str(line, n, cap, thread_kind);
    n = put_str(line, n, cap, " thread; exiting with 148 (see docs/SECURITY.md)");
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nothing left to tell anyone. */
    }
    /* Not _exit(): sanitizer runtimes wrap it with exit-time work (leak
     * checks) that makes more system calls. */
    syscall(SYS_exit_group, FLINT_EXIT_BAD_SYSCALL);
}

int seccomp_signals_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    /* No other signal may run its handler on top of the report. */
    sigfillset(&sa.sa_mask);
    return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

int seccomp_thread_load(const struct seccomp_prog *prog, enum seccomp_thread kind, unsigned id)
{
    struct sock_fprog fprog = {.len = prog->len, .filter = prog->insns};
    size_t n;

    if (!prog->insns || kind >= SECCOMP_THREAD_KINDS)
        return -EINVAL;
    thread_kind = seccomp_thread_name(kind);
    n = put_str(thread_label, 0, sizeof(thread_label) - 1, thread_kind);
    if (kind == SECCOMP_THREAD_VCPU)
        n = put_uint(thread_label, n, sizeof(thread_label) - 1, id);
    thread_label[n] = '\0';
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    /* Flags 0: this thread only; threads it creates later inherit it. */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
        return -errno;
    if (seccomp_test_hook)
        seccomp_test_hook(kind, id);
    return 0;
}
