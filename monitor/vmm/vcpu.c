/*
 * vcpu.c - vCPU threads and exit dispatch (Documentation/virt/kvm/api.rst,
 * "The kvm_run structure").
 */
#define _GNU_SOURCE
#include "vcpu.h"
#include "boot_phases.h"
#include "log.h"
#include "util.h"
#include "vmm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static __thread struct kvm_run *tls_run;

static const char *const exit_kind_names[VCPU_EXIT_KINDS] = {
    [VCPU_EXIT_IO_IN] = "io-in",
    [VCPU_EXIT_IO_OUT] = "io-out",
    [VCPU_EXIT_MMIO_READ] = "mmio-read",
    [VCPU_EXIT_MMIO_WRITE] = "mmio-write",
    [VCPU_EXIT_INTR] = "intr",
    [VCPU_EXIT_HLT] = "hlt",
    [VCPU_EXIT_SHUTDOWN] = "shutdown",
    [VCPU_EXIT_SYSTEM_EVENT] = "system-event",
    [VCPU_EXIT_FAIL_ENTRY] = "fail-entry",
    [VCPU_EXIT_INTERNAL_ERROR] = "internal-error",
    [VCPU_EXIT_OTHER] = "other",
};

const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind)
{
    return kind < VCPU_EXIT_KINDS ? exit_kind_names[kind] : "?";
}

static int sig_kick(void)
{
    return SIGRTMIN;
}

static void kick_handler(int sig)
{
    (void)sig;
    /* KVM_RUN returns -EINTR at once if the signal came just before it. */
    if (tls_run)
        tls_run->immediate_exit = 1;
}

int vcpu_signals_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig_kick(), &sa, NULL) < 0 ? -errno : 0;
}

int vcpu_create(struct vcpu *v, struct vmm *vmm, unsigned id, unsigned nvcpus, char *err,
                size_t errlen)
{
    memset(v, 0, sizeof(*v));
    v->id = id;
    v->vmm = vmm;
    v->fd = ioctl(vmm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0) {
        snprintf(err, errlen, "vcpu%u: KVM_CREATE_VCPU: %s", id, strerror(errno));
        return -errno;
    }
    v->run_size = (size_t)vmm->kvm.vcpu_mmap_size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        snprintf(err, errlen, "vcpu%u: mmap kvm_run: %s", id, strerror(errno));
        return -errno;
    }
    return vcpu_arch_init(v, nvcpus, err, errlen);
}

int vcpu_set_pvh_entry(struct vcpu *v, gpa_t entry, gpa_t start_info)
{
    return vcpu_arch_set_pvh_entry(v, entry, start_info);
}

int vcpu_set_linux64_entry(struct vcpu *v, gpa_t entry, gpa_t boot_params)
{
    return vcpu_arch_set_linux64_entry(v, entry, boot_params);
}

static void crash_msg(struct vcpu *v, const char *what, bool with_rip)
{
    char why[256];

    if (with_rip)
        snprintf(why, sizeof(why), "vcpu%u: %s at rip 0x%llx", v->id, what,
                 (unsigned long long)vcpu_arch_rip(v));
    else
        snprintf(why, sizeof(why), "vcpu%u: %s", v->id, what);
    vmm_request_exit(v->vmm, FLINT_EXIT_GUEST_CRASH, why);
}

static void crash(struct vcpu *v, const char *what)
{
    crash_msg(v, what, true);
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned size = run->io.size;
    uint64_t bytes = (uint64_t)size * run->io.count;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;

    v->exits[out ? VCPU_EXIT_IO_OUT : VCPU_EXIT_IO_IN]++;
    /* KVM fills these, but a bad offset would make us write past the page. */
    if (size == 0 || size > 4 || run->io.data_offset >= v->run_size ||
        bytes > v->run_size - run->io.data_offset) {
        crash(v, "malformed KVM_EXIT_IO");
        return;
    }
    for (uint32_t i = 0; i < run->io.count; i++)
        bus_access(&v->vmm->pio, run->io.port, data + (size_t)i * size, size, out);
}

static void handle_mmio(struct vcpu *v)
{
    struct kvm_run *run = v->run;

    v->exits[run->mmio.is_write ? VCPU_EXIT_MMIO_WRITE : VCPU_EXIT_MMIO_READ]++;
    if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
        crash(v, "malformed KVM_EXIT_MMIO");
        return;
    }
    bus_access(&v->vmm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
               run->mmio.is_write);
}

static void handle_system_event(struct vcpu *v)
{
    v->exits[VCPU_EXIT_SYSTEM_EVENT]++;
    switch (v->run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        vmm_request_exit(v->vmm, FLINT_EXIT_OK, "guest powered off");
        break;
    case KVM_SYSTEM_EVENT_RESET:
        vmm_request_exit(v->vmm, FLINT_EXIT_OK, "guest requested a reset");
        break;
    default:
        crash(v, "guest crash (KVM_SYSTEM_EVENT_CRASH)");
        break;
    }
}

static void handle_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    char what[128];

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(v);
        break;
    case KVM_EXIT_MMIO:
        handle_mmio(v);
        break;
    case KVM_EXIT_INTR:
        v->exits[VCPU_EXIT_INTR]++;
        break;
    case KVM_EXIT_HLT:
        v->exits[VCPU_EXIT_HLT]++;
        crash(v, "guest halted (KVM_EXIT_HLT)");
        break;
    case KVM_EXIT_SHUTDOWN:
        v->exits[VCPU_EXIT_SHUTDOWN]++;
        /* No rip: on AMD, KVM has already reset the vCPU when it reports this. */
        crash_msg(v, "guest triple fault (KVM_EXIT_SHUTDOWN)", false);
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        handle_system_event(v);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        v->exits[VCPU_EXIT_FAIL_ENTRY]++;
        snprintf(what, sizeof(what), "VM entry failed (KVM_EXIT_FAIL_ENTRY, reason 0x%llx)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        crash(v, what);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        v->exits[VCPU_EXIT_INTERNAL_ERROR]++;
        snprintf(what, sizeof(what), "KVM internal error (suberror %u)", run->internal.suberror);
        crash(v, what);
        break;
    default:
        v->exits[VCPU_EXIT_OTHER]++;
        snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
        crash(v, what);
        break;
    }
}

static void record_first_run(struct vcpu *v)
{
    struct vmm *vmm = v->vmm;
    int expected = 0;

    if (__atomic_compare_exchange_n(&vmm->first_run_recorded, &expected, 1, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
        clock_gettime(CLOCK_MONOTONIC, &vmm->t_first_run);
        boot_phase_end(&boot_phases, BOOT_PHASE_FIRST_RUN);
        boot_phase_begin(&boot_phases, BOOT_PHASE_FIRST_CONSOLE);
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%u", v->id);
    log_set_thread_name(name);
    pthread_setname_np(pthread_self(), name);
    /* Before the first KVM_RUN: from there on the guest drives this thread. */
    if (v->vmm->seccomp[SECCOMP_THREAD_VCPU].insns) {
        int rc =
            seccomp_thread_load(&v->vmm->seccomp[SECCOMP_THREAD_VCPU], SECCOMP_THREAD_VCPU, v->id);
        if (rc) {
            char why[128];
            snprintf(why, sizeof(why), "vcpu%u: seccomp: loading the filter: %s", v->id,
                     strerror(-rc));
            log_error("%s", why);
            vmm_request_exit(v->vmm, FLINT_EXIT_GENERIC, why);
            return NULL;
        }
    }
    tls_run = v->run;
    if (v->id == 0)
        record_first_run(v);

    while (!vmm_stopping(v->vmm)) {
        if (vmm_paused(v->vmm)) {
            /* An I/O or MMIO exit is complete only once KVM_RUN is entered
             * again (api.rst, "The kvm_run structure"): enter it with
             * immediate_exit so a snapshot taken while held sees finished
             * instructions, and no further one runs. */
            v->run->immediate_exit = 1;
            if (ioctl(v->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN)
                log_warn("vcpu%u: completing the last exit: %s", v->id, strerror(errno));
            v->run->immediate_exit = 0;
            vmm_pause_point(v->vmm, v);
            continue;
        }
        if (__atomic_exchange_n(&v->check_activity, 0, __ATOMIC_SEQ_CST))
            __atomic_store_n(&v->activity, vcpu_arch_activity(v), __ATOMIC_SEQ_CST);
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                v->run->immediate_exit = 0;
                v->exits[VCPU_EXIT_INTR]++;
                continue;
            }
            char why[128];
            snprintf(why, sizeof(why), "vcpu%u: KVM_RUN failed: %s", v->id, strerror(errno));
            vmm_request_exit(v->vmm, FLINT_EXIT_UNEXPECTED, why);
            break;
        }
        handle_exit(v);
    }
    tls_run = NULL;
    return NULL;
}

int vcpu_start(struct vcpu *v)
{
    int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);

    if (rc)
        return -rc;
    v->thread_started = true;
    return 0;
}

uint64_t vcpu_thread_cpu_ns(struct vcpu *v)
{
    clockid_t clk;
    struct timespec ts;

    if (!v->thread_started || pthread_getcpuclockid(v->thread, &clk) || clock_gettime(clk, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vcpu_kick(struct vcpu *v)
{
    if (v->thread_started)
        pthread_kill(v->thread, sig_kick());
}

void vcpu_join(struct vcpu *v)
{
    if (v->thread_started)
        pthread_join(v->thread, NULL);
    v->thread_started = false;
}

void vcpu_destroy(struct vcpu *v)
{
    if (v->run)
        munmap(v->run, v->run_size);
    if (v->fd >= 0)
        close(v->fd);
    v->run = NULL;
    v->fd = -1;
}
