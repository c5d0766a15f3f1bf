/* Unit tests: the seccomp allow-lists as tables, the BPF programs built from
 * them, and what they do once loaded: each behaviour check forks a child
 * that loads one filter, makes an allowed call, then a forbidden one, and
 * must end with status 148 and the SIGSYS line. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "seccomp.h"
#include "util.h"

#include <errno.h>
#include <linux/audit.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* The counts docs/SECURITY.md states; change both together. */
#define VMM_ALLOWED       20
#define VMM_VSOCK_ALLOWED 24
#define VMM_API_ALLOWED   22
#define VMM_ALL_ALLOWED   27 /* vsock, the API and snapshots */
#define VMM_SNAP_ALLOWED  23 /* --snapshot-on-signal: openat, ftruncate, pwrite64 */
#define VMM_TTY_ALLOWED   21 /* console input from a terminal */
#define VCPU_ALLOWED      15
#define ANY_FEATURE       (SECCOMP_FEAT_VSOCK | SECCOMP_FEAT_API | SECCOMP_FEAT_SNAPSHOT)

/* Never on any list: new programs, processes, files, privileges, other
 * processes' memory, new kernel objects. */
static const int forbidden_everywhere[] = {
    SYS_execve,
    SYS_execveat,
    SYS_fork,
    SYS_vfork,
    SYS_clone,
    SYS_clone3,
    SYS_open,
    SYS_openat2,
    SYS_creat,
    SYS_ptrace,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_kill,
    SYS_bpf,
    SYS_seccomp,
    SYS_prctl,
    SYS_setuid,
    SYS_setgid,
    SYS_mount,
    SYS_personality,
    SYS_memfd_create,
    SYS_io_uring_setup,
    SYS_io_uring_register,
    SYS_mknod,
    SYS_chmod,
    SYS_rename,
    SYS_symlink,
    SYS_link,
    SYS_truncate,
    SYS_pkey_mprotect,
    SYS_bind,
    SYS_listen,
    SYS_sendmsg,
    SYS_recvmsg,
    SYS_init_module,
    SYS_finit_module,
    SYS_kexec_load,
    SYS_userfaultfd,
    SYS_perf_event_open,
};

Test(seccomp, every_list_entry_is_one_distinct_system_call_per_kind)
{
    size_t n;
    const struct seccomp_allow *a = seccomp_allow_list(&n);

    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_geq(a[i].nr, 0, "%s: no system call number on this architecture", a[i].name);
        cr_assert_neq(a[i].kinds, 0, "%s allowed to no thread", a[i].name);
        cr_assert_eq(a[i].kinds & ~((1u << SECCOMP_THREAD_KINDS) - 1), 0, "%s", a[i].name);
        /* A call may have one entry per thread kind (ioctl: the vCPUs'
         * KVM requests, the VMM's terminal restore), never two for one. */
        for (size_t j = i + 1; j < n; j++)
            cr_assert(a[i].nr != a[j].nr || !(a[i].kinds & a[j].kinds),
                      "%s listed twice for one thread kind", a[i].name);
    }
}

Test(seccomp, allowed_counts_per_thread_kind)
{
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, 0), VMM_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK), VMM_VSOCK_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API), VMM_API_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, ANY_FEATURE), VMM_ALL_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, SECCOMP_FEAT_SNAPSHOT),
                 VMM_SNAP_ALLOWED);
    cr_assert_eq(
        seccomp_allowed_count(SECCOMP_THREAD_VMM, SECCOMP_FEAT_SNAPSHOT | SECCOMP_FEAT_WORKING_SET),
        VMM_SNAP_ALLOWED + 1); /* pread64 */
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, ANY_FEATURE, SYS_pread64));
    cr_assert(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_WORKING_SET, SYS_pread64));
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VMM, SECCOMP_FEAT_TTY), VMM_TTY_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VCPU, SECCOMP_FEAT_TTY), VCPU_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VCPU, SECCOMP_FEAT_API), VCPU_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VCPU, 0), VCPU_ALLOWED);
    cr_assert_eq(seccomp_allowed_count(SECCOMP_THREAD_VCPU, SECCOMP_FEAT_VSOCK), VCPU_ALLOWED);
}

Test(seccomp, dangerous_calls_are_on_no_list)
{
    for (size_t i = 0; i < ARRAY_SIZE(forbidden_everywhere); i++)
        for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++)
            cr_assert_not(seccomp_allows(k, ANY_FEATURE, forbidden_everywhere[i]),
                          "system call %d allowed to the %s thread", forbidden_everywhere[i],
                          seccomp_thread_name(k));
}

Test(seccomp, each_thread_gets_only_what_it_uses)
{
    /* Only vCPUs run KVM; only the VMM thread runs the ring, closes
     * descriptors and talks to sockets. */
    cr_assert(seccomp_allows(SECCOMP_THREAD_VCPU, 0, SYS_ioctl));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, ANY_FEATURE, SYS_ioctl));
    cr_assert(seccomp_allows(SECCOMP_THREAD_VMM, 0, SYS_io_uring_enter));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_io_uring_enter));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_close));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_socket));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_read));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_tgkill));
    /* Sockets and unlink only in VMs with vsock; its connect, accept, recv
     * and send go through io_uring, so they are on no list. */
    static const int vsock_only[] = {SYS_socket, SYS_shutdown, SYS_unlink};
    static const int via_ring[] = {SYS_connect, SYS_accept4, SYS_recvfrom, SYS_sendto};
    for (size_t i = 0; i < ARRAY_SIZE(via_ring); i++)
        cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, ANY_FEATURE, via_ring[i]), "%d",
                      via_ring[i]);
    for (size_t i = 0; i < ARRAY_SIZE(vsock_only); i++) {
        cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, 0, vsock_only[i]), "%d", vsock_only[i]);
        cr_assert(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK, vsock_only[i]), "%d",
                  vsock_only[i]);
    }
    /* The API needs only unlink (its socket, at exit) and openat (PATCH
     * /drives): accept, recv and send are io_uring operations. */
    cr_assert(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API, SYS_openat));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK, SYS_openat));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, 0, SYS_openat));
    cr_assert(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_SNAPSHOT, SYS_pwrite64));
    cr_assert_not(
        seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API | SECCOMP_FEAT_VSOCK, SYS_pwrite64));
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VCPU, ANY_FEATURE, SYS_openat));
    for (size_t i = 0; i < ARRAY_SIZE(vsock_only); i++)
        cr_assert_eq(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API, vsock_only[i]),
                     vsock_only[i] == SYS_unlink, "%d", vsock_only[i]);
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API, SYS_accept));
    /* Both must be able to report and exit from the SIGSYS handler. */
    for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++) {
        cr_assert(seccomp_allows(k, 0, SYS_write));
        cr_assert(seccomp_allows(k, 0, SYS_exit_group));
    }
}

static bool in_ioctl_list(enum seccomp_thread kind, unsigned long req)
{
    size_t n;
    const unsigned long *l = seccomp_ioctl_list(kind, &n);

    for (size_t i = 0; i < n; i++)
        if (l[i] == req)
            return true;
    return false;
}

Test(seccomp, ioctl_requests_per_thread)
{
    size_t n;

    seccomp_ioctl_list(SECCOMP_THREAD_VMM, &n);
    cr_assert_eq(n, 0, "the VMM thread makes no ioctl after boot");
    seccomp_ioctl_list(SECCOMP_THREAD_VCPU, &n);
    cr_assert_eq(n, 18);
    cr_assert(in_ioctl_list(SECCOMP_THREAD_VCPU, KVM_RUN));
    /* Snapshots read state on the vCPU threads; none is set after boot. */
    cr_assert(in_ioctl_list(SECCOMP_THREAD_VCPU, KVM_GET_MSRS));
    cr_assert(in_ioctl_list(SECCOMP_THREAD_VCPU, KVM_GET_DIRTY_LOG));
    cr_assert(in_ioctl_list(SECCOMP_THREAD_VCPU, TUNSETOFFLOAD));
    /* Setting up a VM again, or moving its memory, is not a vCPU's job. */
    static const unsigned long setup_only[] = {
        KVM_CREATE_VM,   KVM_CREATE_VCPU,     KVM_SET_USER_MEMORY_REGION,
        KVM_SET_REGS,    KVM_SET_SREGS,       KVM_SET_CPUID2,
        KVM_IRQFD,       KVM_IOEVENTFD,       KVM_SET_MSRS,
        TUNSETIFF,       KVM_IRQ_LINE, /* the serial's interrupt is an irqfd */
        KVM_SET_LAPIC,   KVM_SET_XSAVE,       KVM_SET_CLOCK,
        KVM_SET_IRQCHIP, KVM_SET_VCPU_EVENTS,
    };
    for (size_t i = 0; i < ARRAY_SIZE(setup_only); i++)
        cr_assert_not(in_ioctl_list(SECCOMP_THREAD_VCPU, setup_only[i]), "ioctl %#lx",
                      setup_only[i]);
}

Test(seccomp, programs_check_the_architecture_first)
{
    for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++) {
        struct seccomp_prog p;
        cr_assert_eq(seccomp_prog_build(k, ANY_FEATURE, &p), 0, "%s", seccomp_thread_name(k));
        cr_assert_not_null(p.insns);
        /* An arch check, one test per allowed call at least, the returns. */
        cr_assert_gt(p.len, seccomp_allowed_count(k, ANY_FEATURE) + 3, "%s: %u instructions",
                     seccomp_thread_name(k), p.len);
        cr_assert_leq(p.len, BPF_MAXINSNS);
        cr_assert_eq(p.insns[0].code, BPF_LD | BPF_W | BPF_ABS);
        cr_assert_eq(p.insns[0].k, offsetof(struct seccomp_data, arch));
        seccomp_prog_free(&p);
        cr_assert_null(p.insns);
    }
    struct seccomp_prog bad;
    cr_assert_eq(seccomp_prog_build(SECCOMP_THREAD_KINDS, 0, &bad), -EINVAL);
}

/* flint ships the filters compiled at build time: they must be exactly
 * what the lists compile to now, pid aside. */
Test(seccomp, shipped_programs_are_the_lists_compiled)
{
    for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++)
        for (unsigned f = 0; f < SECCOMP_FEATURE_SETS; f++) {
            const struct seccomp_bpf_prog *shipped = &seccomp_bpf_progs[k][f];
            struct seccomp_prog fresh;
            cr_assert_eq(seccomp_prog_compile(k, f, SECCOMP_PID_PLACEHOLDER, &fresh), 0);
            cr_assert_eq(fresh.len, shipped->len, "%s/%u: shipped %u, compiled %u instructions",
                         seccomp_thread_name(k), f, shipped->len, fresh.len);
            cr_assert_eq(memcmp(fresh.insns, shipped->insns, fresh.len * sizeof(*fresh.insns)), 0,
                         "%s/%u: the shipped program differs from the list", seccomp_thread_name(k),
                         f);
            seccomp_prog_free(&fresh);
        }
    cr_assert_eq(seccomp_bpf_arch, seccomp_rules_arch());
    cr_assert_eq(seccomp_bpf_arch, AUDIT_ARCH_X86_64);
}

Test(seccomp, the_pid_is_written_into_tgkill_checks_only)
{
    struct seccomp_prog vmm, vcpu;
    unsigned placeholders = 0, pids = 0;

    cr_assert_eq(seccomp_prog_build(SECCOMP_THREAD_VMM, 0, &vmm), 0);
    cr_assert_eq(seccomp_bpf_progs[SECCOMP_THREAD_VMM][0].pid_checks, 1);
    for (unsigned i = 0; i < vmm.len; i++) {
        placeholders += vmm.insns[i].k == SECCOMP_PID_PLACEHOLDER;
        pids += vmm.insns[i].code == (BPF_JMP | BPF_JEQ | BPF_K) &&
                vmm.insns[i].k == (uint32_t)getpid();
    }
    cr_assert_eq(placeholders, 0);
    cr_assert_geq(pids, 1);
    /* Everything else is the shipped program unchanged. */
    cr_assert_eq(vmm.len, seccomp_bpf_progs[SECCOMP_THREAD_VMM][0].len);
    cr_assert_eq(seccomp_prog_build(SECCOMP_THREAD_VCPU, 0, &vcpu), 0);
    cr_assert_eq(memcmp(vcpu.insns, seccomp_bpf_progs[SECCOMP_THREAD_VCPU][0].insns,
                        vcpu.len * sizeof(*vcpu.insns)),
                 0);
    seccomp_prog_free(&vmm);
    seccomp_prog_free(&vcpu);
    struct seccomp_prog bad;
    cr_assert_eq(seccomp_prog_build(SECCOMP_THREAD_VMM, SECCOMP_FEATURE_SETS, &bad), -EINVAL);
}

/* ---- loaded filters, in a child process ---- */

typedef void (*child_fn)(void);

struct child_result {
    int status; /* exit status, or 128 + signal */
    char err[512];
};

/* Run fn in a child that has the SIGSYS handler and its stderr on a pipe. */
static struct child_result run_child(child_fn fn)
{
    struct child_result r = {0};
    int p[2], st;
    ssize_t n, got = 0;

    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        if (seccomp_signals_init())
            _exit(90);
        fn();
        _exit(0);
    }
    close(p[1]);
    while ((n = read(p[0], r.err + got, sizeof(r.err) - 1 - (size_t)got)) > 0)
        got += n;
    close(p[0]);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

static void load_with(enum seccomp_thread kind, unsigned features, unsigned id)
{
    struct seccomp_prog p;

    if (seccomp_prog_build(kind, features, &p) || seccomp_thread_load(&p, kind, id))
        _exit(91);
}

static void load(enum seccomp_thread kind, unsigned id)
{
    load_with(kind, 0, id);
}

/* Exit 92 if an allowed call did not behave; the forbidden one that
 * follows must not return at all (93). */
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            _exit(92);                                                                             \
    } while (0)

static void expect_trapped(struct child_result r, const char *label, long nr)
{
    char needle[64];

    cr_assert_eq(r.status, FLINT_EXIT_BAD_SYSCALL, "status %d, stderr: %s", r.status, r.err);
    snprintf(needle, sizeof(needle), "forbidden system call %ld ", nr);
    cr_assert(strstr(r.err, needle), "stderr lacks '%s': %s", needle, r.err);
    snprintf(needle, sizeof(needle), "flint[%s] Error: seccomp:", label);
    cr_assert(strstr(r.err, needle), "stderr lacks '%s': %s", needle, r.err);
}

static void vcpu_ioctls(void)
{
    load(SECCOMP_THREAD_VCPU, 3);
    EXPECT(ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF);
    ioctl(-1, KVM_CREATE_VM, 0);
    _exit(93);
}

/* With a raw terminal, the VMM thread may restore stdin's settings
 * (TCSETS on fd 0) and nothing else. */
static void vmm_tty_restore(void)
{
    struct termios t = {0};

    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_TTY, 0);
    /* The child's stdin is no terminal: allowed, then refused by the tty layer. */
    EXPECT(ioctl(STDIN_FILENO, TCSETS, &t) < 0 && errno == ENOTTY);
    ioctl(STDIN_FILENO, TCGETS, &t);
    _exit(93);
}

static void vmm_tty_other_fd(void)
{
    struct termios t = {0};

    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_TTY, 0);
    ioctl(STDOUT_FILENO, TCSETS, &t);
    _exit(93);
}

Test(seccomp, vmm_restores_the_terminal_only)
{
    int saved = dup(STDIN_FILENO), null = open("/dev/null", O_RDONLY);

    cr_assert_geq(null, 0);
    dup2(null, STDIN_FILENO);
    struct child_result a = run_child(vmm_tty_restore), b = run_child(vmm_tty_other_fd);
    dup2(saved, STDIN_FILENO);
    close(saved);
    close(null);
    expect_trapped(a, "vmm", SYS_ioctl);
    expect_trapped(b, "vmm", SYS_ioctl);
    cr_assert_not(seccomp_allows(SECCOMP_THREAD_VMM, ANY_FEATURE, SYS_ioctl));
}

Test(seccomp, vcpu_may_run_but_not_create_a_vm)
{
    expect_trapped(run_child(vcpu_ioctls), "vcpu3", SYS_ioctl);
}

static void vcpu_exec_mapping(void)
{
    load(SECCOMP_THREAD_VCPU, 0);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(m != MAP_FAILED);
    EXPECT(mprotect(m, 4096, PROT_READ) == 0);
    mprotect(m, 4096, PROT_READ | PROT_EXEC);
    _exit(93);
}

Test(seccomp, no_executable_memory)
{
    expect_trapped(run_child(vcpu_exec_mapping), "vcpu0", SYS_mprotect);
}

static void vcpu_no_files(void)
{
    load(SECCOMP_THREAD_VCPU, 0);
    EXPECT(write(STDOUT_FILENO, "", 0) == 0);
    syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
    _exit(93);
}

Test(seccomp, vcpu_opens_nothing)
{
    expect_trapped(run_child(vcpu_no_files), "vcpu0", SYS_openat);
}

/* With the API, the VMM thread opens existing files read-only or
 * read-write (PATCH /drives), and the flag in `bad_flag` traps. */
static int bad_flag;

static void vmm_open_existing(void)
{
    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_API, 0);
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    EXPECT(fd >= 0);
    EXPECT(close(fd) == 0);
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    EXPECT(fd >= 0);
    EXPECT(close(fd) == 0);
    EXPECT(open("/nonexistent/flint", O_RDONLY) < 0 && errno == ENOENT);
    syscall(SYS_openat, AT_FDCWD, "/tmp", bad_flag, 0600);
    _exit(93);
}

Test(seccomp, vmm_with_api_opens_existing_files_only)
{
    static const int bad[] = {
        O_RDONLY | O_CREAT,
        O_RDWR | O_CREAT | O_EXCL,
        O_TMPFILE | O_RDWR,
        O_PATH,
        O_WRONLY,
        O_RDWR | O_TRUNC,
        O_RDONLY | O_NOFOLLOW | O_DIRECTORY,
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        bad_flag = bad[i];
        expect_trapped(run_child(vmm_open_existing), "vmm", SYS_openat);
    }
}

static void vmm_no_files_without_api(void)
{
    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK, 0);
    syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
    _exit(93);
}

Test(seccomp, vmm_without_api_opens_nothing)
{
    expect_trapped(run_child(vmm_no_files_without_api), "vmm", SYS_openat);
}

static void vmm_sockets(void)
{
    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK, 0);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    EXPECT(fd >= 0);
    EXPECT(close(fd) == 0);
    socket(AF_INET, SOCK_STREAM, 0);
    _exit(93);
}

Test(seccomp, vmm_makes_unix_sockets_only)
{
    expect_trapped(run_child(vmm_sockets), "vmm", SYS_socket);
}

static void vmm_datagram(void)
{
    load_with(SECCOMP_THREAD_VMM, SECCOMP_FEAT_VSOCK, 0);
    socket(AF_UNIX, SOCK_DGRAM, 0);
    _exit(93);
}

Test(seccomp, vmm_unix_sockets_are_streams)
{
    expect_trapped(run_child(vmm_datagram), "vmm", SYS_socket);
}

static void vmm_no_vsock(void)
{
    load(SECCOMP_THREAD_VMM, 0);
    socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    _exit(93);
}

Test(seccomp, vmm_without_vsock_makes_no_socket)
{
    expect_trapped(run_child(vmm_no_vsock), "vmm", SYS_socket);
}

static void vmm_signals(void)
{
    pid_t tid = (pid_t)syscall(SYS_gettid), parent = getppid();

    load(SECCOMP_THREAD_VMM, 0);
    EXPECT(syscall(SYS_tgkill, getpid(), tid, 0) == 0);
    syscall(SYS_tgkill, parent, parent, 0);
    _exit(93);
}

Test(seccomp, vmm_signals_only_its_own_threads)
{
    expect_trapped(run_child(vmm_signals), "vmm", SYS_tgkill);
}

static void vmm_exec(void)
{
    char *argv[] = {"/bin/true", NULL};

    load(SECCOMP_THREAD_VMM, 0);
    execve(argv[0], argv, NULL);
    _exit(93);
}

Test(seccomp, vmm_runs_no_program)
{
    expect_trapped(run_child(vmm_exec), "vmm", SYS_execve);
}

static void vmm_ring_setup(void)
{
    char buf[256];

    load(SECCOMP_THREAD_VMM, 0);
    syscall(SYS_io_uring_setup, 8, buf);
    _exit(93);
}

Test(seccomp, vmm_makes_no_new_ring)
{
    expect_trapped(run_child(vmm_ring_setup), "vmm", SYS_io_uring_setup);
}

/* A thread loads the vCPU filter; the process's other thread must keep
 * doing what that filter forbids (no TSYNC). */
static int loaded_pipe[2];
static int never;

static void *filtered_thread(void *arg)
{
    (void)arg;
    load(SECCOMP_THREAD_VCPU, 1);
    EXPECT(write(loaded_pipe[1], "x", 1) == 1);
    for (;;) /* futex is on the vCPU list; pause is not */
        syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static void other_thread_unfiltered(void)
{
    pthread_t t;
    char c;

    EXPECT(pipe(loaded_pipe) == 0);
    EXPECT(pthread_create(&t, NULL, filtered_thread, NULL) == 0);
    EXPECT(read(loaded_pipe[0], &c, 1) == 1);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT(fd >= 0);
    _exit(fd >= 0 ? 0 : 94);
}

Test(seccomp, a_filter_binds_only_the_thread_that_loads_it)
{
    struct child_result r = run_child(other_thread_unfiltered);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
}
