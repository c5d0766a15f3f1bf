/*
 * seccomp.h - per-thread system call allow-lists (seccomp BPF, built with
 * libseccomp). docs/SECURITY.md lists them and says why each is there.
 *
 * Each thread kind gets its own filter. Anything not on its list traps:
 * the SIGSYS handler writes one line naming the thread and the system call
 * number and ends flint with status 148 (FLINT_EXIT_BAD_SYSCALL).
 *
 * The lists (seccomp_rules.c) are compiled to BPF at build time by
 * seccomp_gen, which links libseccomp; flint ships the programs as arrays
 * (seccomp_bpf_progs) and only copies one and writes its pid into it.
 *
 * Use: seccomp_prog_build() for every kind and seccomp_signals_init() on
 * the main thread while it may still allocate and open files; then each
 * thread calls seccomp_thread_load() for its own kind before it touches
 * guest-controlled data. A filter applies to the calling thread and to the
 * threads it creates later (never to existing ones), so the VMM thread
 * starts every vCPU thread before it loads its own filter.
 */
#ifndef FLINT_SECCOMP_H
#define FLINT_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum seccomp_thread {
    SECCOMP_THREAD_VMM,  /* the main thread: event loop, devices' I/O, exit */
    SECCOMP_THREAD_VCPU, /* KVM_RUN and exit dispatch to the buses */
    SECCOMP_THREAD_KINDS,
};

/* A filter as the kernel takes it. */
struct seccomp_prog {
    struct sock_filter *insns;
    unsigned short len;
};

/* Argument conditions some allow-list entries carry. */
enum seccomp_arg_check {
    SECCOMP_ARGS_ANY,        /* the system call with any arguments */
    SECCOMP_ARGS_IOCTL,      /* request number in the thread kind's ioctl list */
    SECCOMP_ARGS_NO_EXEC,    /* mmap / mprotect: prot without PROT_EXEC */
    SECCOMP_ARGS_UNIX_SOCK,  /* socket(AF_UNIX, SOCK_STREAM[|CLOEXEC|NONBLOCK], 0) */
    SECCOMP_ARGS_OWN_PID,    /* tgkill(flint's own pid, ...): only its own threads */
    SECCOMP_ARGS_EMPTY_PATH, /* newfstatat(fd, "", buf, AT_EMPTY_PATH): fstat */
    SECCOMP_ARGS_SETFL_ZERO, /* fcntl(fd, F_SETFL, 0): back to blocking */
    /* openat(_, _, O_RDONLY or O_RDWR, optionally | O_CLOEXEC): no O_CREAT,
     * O_TMPFILE, O_PATH, O_TRUNC, ... */
    SECCOMP_ARGS_OPEN_EXISTING,
    /* OPEN_EXISTING, or openat(_, _, O_WRONLY | O_CREAT | O_CLOEXEC
     * exactly, _): a snapshot's files, never truncated by the open itself. */
    SECCOMP_ARGS_OPEN_FILES,
    /* ioctl(STDIN_FILENO, TCSETS): put the terminal back as it was. */
    SECCOMP_ARGS_TTY_RESTORE,
};

/* Devices whose system calls are on a list only when the VM has them. */
enum seccomp_feature {
    SECCOMP_FEAT_VSOCK = 1u << 0, /* Unix sockets connected, accepted, removed */
    /* The API socket: served by io_uring, removed at exit; PATCH /drives
     * opens an existing image. */
    SECCOMP_FEAT_API = 1u << 1,
    /* Snapshots can be taken (the API, or --snapshot-on-signal): the state
     * and memory files are created and written. */
    SECCOMP_FEAT_SNAPSHOT = 1u << 2,
    /* flint run --record-working-set: /proc/self/pagemap is read when the
     * VM has ended (snapshot_ws.h); with SNAPSHOT to write STATE.ws. */
    SECCOMP_FEAT_WORKING_SET = 1u << 3,
    /* Console input from a terminal in raw mode (term_raw.h): its
     * settings are restored at exit. */
    SECCOMP_FEAT_TTY = 1u << 4,
};

/* Every combination of enum seccomp_feature bits: one shipped program each. */
#define SECCOMP_FEATURE_SETS 32

/* Stands for flint's pid in a shipped program (tgkill's check): above any
 * pid Linux hands out (pid_max is at most 2^22), and the generator checks
 * that no other comparison in a program uses it. */
#define SECCOMP_PID_PLACEHOLDER 0x7ffe5eedu

/* A program as the build compiled it: pid_checks comparisons with
 * SECCOMP_PID_PLACEHOLDER to patch. */
struct seccomp_bpf_prog {
    const struct sock_filter *insns;
    unsigned short len;
    unsigned pid_checks;
};

/* Generated (seccomp_gen): every thread kind's program for every feature
 * set, and the AUDIT_ARCH_* they were compiled for. */
extern const struct seccomp_bpf_prog seccomp_bpf_progs[SECCOMP_THREAD_KINDS][SECCOMP_FEATURE_SETS];
extern const uint32_t seccomp_bpf_arch;

/* One allow-list entry: the system call `nr` is allowed to the thread
 * kinds in the `kinds` bit mask (1 << enum seccomp_thread) when `args`
 * holds, and only in VMs with one of the `feature` bits if that is not 0. */
struct seccomp_allow {
    int nr;
    const char *name;
    unsigned kinds;
    enum seccomp_arg_check args;
    unsigned feature;
};

/* The allow-list, every kind's entries together: *count entries. */
const struct seccomp_allow *seccomp_allow_list(size_t *count);

/* ioctl request numbers allowed to `kind`: *count entries (0: no ioctl). */
const unsigned long *seccomp_ioctl_list(enum seccomp_thread kind, size_t *count);

/* Number of distinct system calls `kind` may make (with some arguments) in
 * a VM with `features` (enum seccomp_feature bits). */
unsigned seccomp_allowed_count(enum seccomp_thread kind, unsigned features);

/* True when system call `nr` is on `kind`'s list (with some arguments) in
 * a VM with `features`. */
bool seccomp_allows(enum seccomp_thread kind, unsigned features, int nr);

/* False in sanitizer builds (meson -Db_sanitize=...): their runtimes make
 * system calls no list has (sigaltstack at thread exit, sched_yield, and
 * for a report /proc/self/maps, ptrace, a symbolizer), and a sanitizer
 * report must never turn into a SIGSYS. flint then runs without filters. */
bool seccomp_available(void);

/* "vmm", "vcpu". */
const char *seccomp_thread_name(enum seccomp_thread kind);

/* `kind`'s filter (default action: trap) for this process and a VM with
 * `features`: a copy of the shipped program with flint's pid written in.
 * Returns 0, -EINVAL (no such kind or features), -ENOEXEC when the shipped
 * program was built for another architecture or does not have the pid
 * checks it should, or -ENOMEM; release it with seccomp_prog_free. */
int seccomp_prog_build(enum seccomp_thread kind, unsigned features, struct seccomp_prog *out);
void seccomp_prog_free(struct seccomp_prog *prog);

/* seccomp_rules.c, with libseccomp (the generator and the unit tests, not
 * flint): compile `kind`'s list for `features` with `own_pid` in tgkill's
 * check, and name the architecture it compiles for (AUDIT_ARCH_*).
 * Returns 0 or -errno. */
int seccomp_prog_compile(enum seccomp_thread kind, unsigned features, uint32_t own_pid,
                         struct seccomp_prog *out);
uint32_t seccomp_rules_arch(void);

/* Install the SIGSYS handler (process-wide) that reports a trapped system
 * call and exits with 148. Returns 0 or -errno. */
int seccomp_signals_init(void);

/* Load `prog` into the calling thread only (no TSYNC), after setting
 * no_new_privs, which it needs without CAP_SYS_ADMIN. `kind` and `id`
 * name the thread in the SIGSYS line ("vcpu1", "vmm"). Returns 0 or
 * -errno. */
int seccomp_thread_load(const struct seccomp_prog *prog, enum seccomp_thread kind, unsigned id);

/* Test builds only (flint-test, monitor/test_hooks.c): called by every
 * thread right after it loaded its filter. A weak symbol that is NULL in
 * flint, which has no such code. */
void seccomp_test_hook(enum seccomp_thread kind, unsigned id) __attribute__((weak));

#endif /* FLINT_SECCOMP_H */
