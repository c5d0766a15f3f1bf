/*
 * vmm.c - building, running and ending one VM.
 */
#define _GNU_SOURCE
#include "vmm.h"
#include "boot_phases.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

static struct timespec process_start;

__attribute__((constructor)) static void note_process_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &process_start);
}

struct timespec vmm_process_start(void)
{
    return process_start;
}

static int setup_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int setup_fail(int code, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_error("%s", line);
    return code;
}

static int open_input(const char *what, const char *path, int *fd)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return setup_fail(FLINT_EXIT_BAD_CONFIG, "%s %s: %s", what, path, strerror(errno));
    return 0;
}

/* Tell the guest's init where to mark its boot (tools/initramfs/init). */
static int append_boot_timer(char *cmdline, size_t len)
{
    size_t n = strlen(cmdline);
    int k = snprintf(cmdline + n, len - n, " flint.boot_timer=0x%llx",
                     (unsigned long long)FLINT_BOOT_TIMER_ADDR);
    return k < 0 || (size_t)k >= len - n ? -E2BIG : 0;
}

static const enum guest_mem_pages mem_pages[] = {
    [CONFIG_HUGE_PAGES_NONE] = GUEST_MEM_PAGES_4K,
    [CONFIG_HUGE_PAGES_2M] = GUEST_MEM_PAGES_2M,
    [CONFIG_HUGE_PAGES_TRANSPARENT] = GUEST_MEM_PAGES_THP,
};

/* The kernel, a bzImage unpacked on the host unless the user said not to
 * (bzimage_direct.c), with its cache when there is one. */
static int load_kernel(struct vmm *vmm, int fd, struct kernel_image *img, char *err, size_t errlen)
{
    struct vm_config *cfg = vmm->cfg;
    char note[KERNEL_NOTE_LEN];
    struct kernel_load_opts opts = {.unpack_bzimage = !cfg->no_kernel_unpack,
                                    .cache_default = !cfg->no_kernel_cache,
                                    .cache_max = KERNEL_CACHE_MAX_SIZE};
    int rc;

    rc = kernel_load_with(&vmm->mem, fd, &opts, img, note, sizeof(note), err, errlen);
    if (!rc && note[0] && img->unpacked)
        log_info("kernel %s: %s", cfg->kernel_path, note);
    else if (!rc && note[0])
        log_warn("kernel %s: %s", cfg->kernel_path, note);
    return rc;
}

/* RAM, kernel, initrd and boot information: everything the guest sees at
 * its first instruction. Needs no KVM, so a bad image fails before any VM
 * exists. */
static int load_guest(struct vmm *vmm, struct kernel_image *img)
{
    struct vm_config *cfg = vmm->cfg;
    struct initrd_placement initrd;
    char cmdline[FLINT_CMDLINE_MAX];
    struct boot_args boot = {.cmdline = cmdline, .ncpus = cfg->vcpus};
    char err[LOADER_ERR_LEN];
    int fd, rc;

    if (vmm_build_cmdline(cfg, cmdline, sizeof(cmdline)) ||
        (cfg->boot_timer && append_boot_timer(cmdline, sizeof(cmdline))))
        return setup_fail(FLINT_EXIT_BAD_CONFIG,
                          "cmdline: with the device entries it exceeds %d bytes",
                          FLINT_CMDLINE_MAX - 1);

    boot_phase_begin(&boot_phases, BOOT_PHASE_GUEST_MEM);
    rc = guest_mem_create_pages(&vmm->mem, cfg->mem_mib * MIB, mem_pages[cfg->huge_pages]);
    if (rc == -ENOMEM && cfg->huge_pages == CONFIG_HUGE_PAGES_2M)
        return setup_fail(FLINT_EXIT_GENERIC,
                          "huge pages: the host cannot reserve %llu free 2 MiB huge pages for "
                          "%llu MiB of guest memory (see vm.nr_hugepages)",
                          (unsigned long long)cfg->mem_mib / 2, (unsigned long long)cfg->mem_mib);
    if (rc)
        return setup_fail(rc == -EINVAL ? FLINT_EXIT_BAD_CONFIG : FLINT_EXIT_GENERIC,
                          "cannot allocate %llu MiB of guest memory: %s",
                          (unsigned long long)cfg->mem_mib, strerror(-rc));
    boot_phase_end(&boot_phases, BOOT_PHASE_GUEST_MEM);
    boot_phase_begin(&boot_phases, BOOT_PHASE_KERNEL_LOAD);
    if ((rc = open_input("kernel", cfg->kernel_path, &fd)))
        return rc;
    rc = load_kernel(vmm, fd, img, err, sizeof(err));
    close(fd);
    if (rc)
        return setup_fail(FLINT_EXIT_BAD_CONFIG, "kernel %s: %s", cfg->kernel_path, err);

    if (cfg->initrd_path) {
        if ((rc = open_input("initrd", cfg->initrd_path, &fd)))
            return rc;
        rc = initrd_load(&vmm->mem, fd, img, &initrd, err, sizeof(err));
        close(fd);
        if (rc)
            return setup_fail(FLINT_EXIT_BAD_CONFIG, "initrd %s: %s", cfg->initrd_path, err);
        boot.initrd = &initrd;
    }
    if (boot_write_info(&vmm->mem, img, &boot, err, sizeof(err)))
        return setup_fail(FLINT_EXIT_BAD_CONFIG, "boot information: %s", err);
    boot_phase_end(&boot_phases, BOOT_PHASE_KERNEL_LOAD);
    log_debug("kernel %s: %s entry 0x%llx, [0x%llx, 0x%llx)", cfg->kernel_path,
              img->protocol == BOOT_PVH ? "PVH" : "Linux 64-bit", (unsigned long long)img->entry,
              (unsigned long long)img->load_start, (unsigned long long)img->load_end);
    return 0;
}

/* Through irqfds rather than KVM_IRQ_LINE: console input and Ctrl-Alt-Del
 * come from the VMM thread, whose seccomp list has no KVM ioctl. An irqfd
 * without a resample fd pulses the line (KVM sets it, then clears it), as
 * the 16550's edge on an ISA line needs. */
static void irq_com1(void *opaque)
{
    struct vmm *vmm = opaque;
    uint64_t one = 1;

    __atomic_fetch_add(&vmm->com1_irqs, 1, __ATOMIC_RELAXED);
    if (write(vmm->com1_irq_fd, &one, sizeof(one)) < 0)
        log_warn("serial: cannot raise IRQ 4: %s", strerror(errno));
}

static void irq_kbd(void *opaque)
{
    struct vmm *vmm = opaque;
    uint64_t one = 1;

    if (write(vmm->kbd_irq_fd, &one, sizeof(one)) < 0)
        log_warn("i8042: cannot raise IRQ 1: %s", strerror(errno));
}

static void device_exit(void *opaque, int status, const char *why)
{
    vmm_request_exit(opaque, status, why);
}

/* PUT /serial's serial_out_path: a file (created, appended to) or a named
 * pipe. Opened without blocking (a pipe with no reader fails rather than
 * hang), then written blocking, as stdout is. */
static int open_serial_out(struct vmm *vmm)
{
    const char *path = vmm->cfg->serial_out_path;
    int fd;

    if (!path)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0)
        return setup_fail(FLINT_EXIT_BAD_CONFIG, "serial_out_path %s: %s", path,
                          errno == ENXIO ? "a named pipe with no reader" : strerror(errno));
    vmm->serial_out_fd = fd;
    if (fcntl(fd, F_SETFL, O_APPEND) < 0)
        return setup_fail(FLINT_EXIT_GENERIC, "serial_out_path %s: %s", path, strerror(errno));
    return 0;
}

static int setup_serial(struct vmm *vmm)
{
    int rc = open_serial_out(vmm);

    if (rc)
        return rc;
    serial_init(&vmm->serial, vmm->serial_out_fd >= 0 ? vmm->serial_out_fd : STDOUT_FILENO,
                irq_com1, vmm);
    rc = serial_input_init(&vmm->console_in, &vmm->serial,
                           vmm->cfg->console_input ? STDIN_FILENO : -1);
    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "console input: %s", strerror(-rc));
    return 0;
}

static int setup_devices(struct vmm *vmm)
{
    int rc;

    bus_init(&vmm->pio, "pio");
    bus_init(&vmm->mmio, "mmio");
    if ((rc = setup_serial(vmm)))
        return rc;
    i8042_init(&vmm->i8042, device_exit, vmm, irq_kbd, vmm);
    vmm->pvexit = (struct pvexit){.on_exit = device_exit, .exit_opaque = vmm};
    pvconsole_init(&vmm->pvconsole, &vmm->mem, &vmm->serial);

    rc = bus_register(&vmm->pio, FLINT_PORT_COM1, SERIAL_REG_COUNT, &serial_bus_ops, &vmm->serial);
    if (!rc && vmm->cfg->boot_timer) {
        boot_timer_init(&vmm->boot_timer, process_start, 0);
        rc = bus_register(&vmm->mmio, FLINT_BOOT_TIMER_ADDR, BOOT_TIMER_MMIO_SIZE, &boot_timer_ops,
                          &vmm->boot_timer);
    }
    if (!rc)
        rc = i8042_register(&vmm->i8042, &vmm->pio);
    if (!rc)
        rc = bus_register(&vmm->pio, FLINT_PORT_EXIT, 4, &pvexit_ops, &vmm->pvexit);
    if (!rc)
        rc = bus_register(&vmm->pio, FLINT_PORT_PVCONSOLE, 4, &pvconsole_ops, &vmm->pvconsole);
    if (rc)
        return setup_fail(FLINT_EXIT_UNEXPECTED, "device setup: %s", strerror(-rc));
    return 0;
}

/* The filters are built now, while allocating and opening files is still
 * allowed; the threads load them in vmm_run. */
static int build_seccomp(struct vmm *vmm)
{
    unsigned features =
        (vmm->cfg->vsock.enabled ? SECCOMP_FEAT_VSOCK : 0) |
        (vmm->cfg->api_socket ? SECCOMP_FEAT_API | SECCOMP_FEAT_SNAPSHOT : 0) |
        (vmm->cfg->snapshot_on_signal ? SECCOMP_FEAT_SNAPSHOT : 0) |
        (vmm->cfg->ws_record ? SECCOMP_FEAT_SNAPSHOT | SECCOMP_FEAT_WORKING_SET : 0) |
        (serial_input_tty(&vmm->console_in) ? SECCOMP_FEAT_TTY : 0);
    int rc;

    if (!vmm->cfg->seccomp) {
        log_warn("seccomp filters are off (--no-seccomp): for debugging only");
        return 0;
    }
    if (!seccomp_available()) {
        log_info("seccomp filters are off in sanitizer builds (docs/SECURITY.md)");
        return 0;
    }
    for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++) {
        rc = seccomp_prog_build(k, features, &vmm->seccomp[k]);
        if (rc)
            return setup_fail(FLINT_EXIT_GENERIC, "seccomp: building the %s thread's filter: %s",
                              seccomp_thread_name(k), strerror(-rc));
    }
    rc = seccomp_signals_init();
    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "seccomp: SIGSYS handler: %s", strerror(-rc));
    return 0;
}

static int setup_kvm(struct vmm *vmm, const struct kernel_image *img)
{
    char err[256];
    int rc;

    boot_phase_begin(&boot_phases, BOOT_PHASE_CREATE_VM);
    if (kvm_open(&vmm->kvm, "/dev/kvm", err, sizeof(err)) ||
        kvm_create_vm(&vmm->kvm, err, sizeof(err)))
        return setup_fail(FLINT_EXIT_GENERIC, "%s", err);
    /* A Diff snapshot needs the pages KVM and the devices wrote. */
    vmm->kvm.log_dirty = vmm->cfg->track_dirty_pages;
    if (vmm->cfg->track_dirty_pages && guest_mem_track_dirty(&vmm->mem))
        return setup_fail(FLINT_EXIT_GENERIC, "dirty page tracking: out of memory");
    if (kvm_map_guest_mem(&vmm->kvm, &vmm->mem, err, sizeof(err)))
        return setup_fail(FLINT_EXIT_GENERIC, "%s", err);
    boot_phase_end(&boot_phases, BOOT_PHASE_CREATE_VM);
    rc = kvm_irqfd(&vmm->kvm, vmm->kbd_irq_fd, 1);
    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "KVM_IRQFD for the i8042: %s", strerror(-rc));
    rc = kvm_irqfd(&vmm->kvm, vmm->com1_irq_fd, FLINT_GSI_COM1);
    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "KVM_IRQFD for the serial: %s", strerror(-rc));
    if ((int)vmm->cfg->vcpus > vmm->kvm.max_vcpus)
        return setup_fail(FLINT_EXIT_BAD_CONFIG, "vcpus: %u exceeds this host's KVM limit of %d",
                          vmm->cfg->vcpus, vmm->kvm.max_vcpus);
    boot_phase_begin(&boot_phases, BOOT_PHASE_VCPUS);
    for (unsigned i = 0; i < vmm->cfg->vcpus; i++) {
        rc = vcpu_create(&vmm->vcpus[i], vmm, i, vmm->cfg->vcpus, err, sizeof(err));
        vmm->nvcpus = i + 1;
        if (rc)
            return setup_fail(FLINT_EXIT_GENERIC, "%s", err);
    }
    if (!img) /* a restore: the snapshot has every vCPU's state */
        return 0;
    /* Only the boot CPU gets the entry state; the others wait for INIT/SIPI
     * in KVM (KVM_MP_STATE_UNINITIALIZED), as on hardware. */
    if (img->protocol == BOOT_LINUX64)
        rc = vcpu_set_linux64_entry(&vmm->vcpus[0], img->entry, FLINT_ZERO_PAGE_ADDR);
    else
        rc = vcpu_set_pvh_entry(&vmm->vcpus[0], img->entry, FLINT_PVH_INFO_ADDR);
    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "vcpu0: setting the entry state: %s", strerror(-rc));
    boot_phase_end(&boot_phases, BOOT_PHASE_VCPUS);
    return 0;
}

static void init_pause(struct vmm *vmm)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&vmm->pause_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&vmm->pause_cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* RAM for a restore: the snapshot's memory file, mapped as it is. */
static int map_snapshot_mem(struct vmm *vmm, int mem_fd)
{
    int rc = mem_fd >= 0 ? guest_mem_map_file(&vmm->mem, mem_fd, vmm->cfg->mem_mib * MIB)
                         : guest_mem_map_anon(&vmm->mem, vmm->cfg->mem_mib * MIB);

    if (rc)
        return setup_fail(FLINT_EXIT_GENERIC, "cannot map the memory file: %s", strerror(-rc));
    return 0;
}

/* A cold boot from the kernel, or a restore (RAM from mem_fd, or
 * anonymous with mem_fd -1). */
static int create(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop, bool restore,
                  int mem_fd)
{
    struct kernel_image img;
    int rc;

    boot_phase_end(&boot_phases, BOOT_PHASE_CONFIG);
    memset(vmm, 0, sizeof(*vmm));
    vmm->cfg = cfg;
    vmm->loop = loop;
    vmm->kvm.sys_fd = vmm->kvm.vm_fd = -1;
    vmm->mem.fd = -1;
    vmm->exit_efd = vmm->kbd_irq_fd = vmm->com1_irq_fd = vmm->serial_out_fd = -1;
    vmm->console_in.fd = vmm->console_in.ready_fd = -1;
    pthread_mutex_init(&vmm->exit_lock, NULL);
    init_pause(vmm);

    vmm->exit_efd = eventfd(0, EFD_CLOEXEC);
    vmm->kbd_irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vmm->com1_irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vmm->exit_efd < 0 || vmm->kbd_irq_fd < 0 || vmm->com1_irq_fd < 0)
        return setup_fail(FLINT_EXIT_GENERIC, "eventfd: %s", strerror(errno));
    if ((rc = restore ? map_snapshot_mem(vmm, mem_fd) : load_guest(vmm, &img)))
        return rc;
    if ((rc = vmm_create_devices(vmm)))
        return rc;
    if ((rc = setup_devices(vmm)))
        return rc;
    if ((rc = setup_kvm(vmm, restore ? NULL : &img)))
        return rc;
    if ((rc = vmm_attach_virtio(vmm)))
        return rc;
    /* Preparing the filters only: each thread's load is part of the
     * first_kvm_run phase (the VMM thread's comes after it starts the
     * vCPU threads). */
    boot_phase_begin(&boot_phases, BOOT_PHASE_SECCOMP);
    rc = build_seccomp(vmm);
    boot_phase_end(&boot_phases, BOOT_PHASE_SECCOMP);
    return rc;
}

int vmm_create(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop)
{
    return create(vmm, cfg, loop, false, -1);
}

int vmm_create_restored(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop, int mem_fd)
{
    return create(vmm, cfg, loop, true, mem_fd);
}

bool vmm_stopping(struct vmm *vmm)
{
    return __atomic_load_n(&vmm->stopping, __ATOMIC_SEQ_CST);
}

void vmm_request_exit(struct vmm *vmm, int status, const char *why)
{
    uint64_t one = 1;
    bool first;

    pthread_mutex_lock(&vmm->exit_lock);
    first = !vmm->stopping;
    if (first) {
        vmm->exit_status = status;
        snprintf(vmm->exit_reason, sizeof(vmm->exit_reason), "%s", why);
        __atomic_store_n(&vmm->stopping, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&vmm->exit_lock);
    if (!first)
        return;
    boot_phase_end(&boot_phases, BOOT_PHASE_GUEST_EXIT);
    if (status == FLINT_EXIT_GUEST_CRASH || status == FLINT_EXIT_UNEXPECTED)
        log_error("%s", why);
    else
        log_info("%s", why);
    if (write(vmm->exit_efd, &one, sizeof(one)) < 0)
        log_error("cannot wake the VMM thread: %s", strerror(errno));
}

static void on_exit_request(struct ev_handler *h, int res, uint32_t flags)
{
    struct vmm *vmm = container_of(h, struct vmm, exit_ev);

    (void)res;
    (void)flags;
    evloop_stop(vmm->loop);
}

/* Every tick, look at what the vCPUs reported for the previous tick, then ask
 * them again. Two ticks in a row with every started vCPU halted with
 * interrupts off means nothing can ever run again: end the VM. */
static void on_watchdog(struct ev_handler *h, int res, uint32_t flags)
{
    struct vmm *vmm = container_of(h, struct vmm, watchdog_ev);
    unsigned halted = 0, parked = 0;

    (void)res;
    (void)flags;
    /* Held vCPUs answer no questions and a paused guest cannot be dead. */
    if (vmm_paused(vmm)) {
        vmm->dead_rounds = 0;
        goto rearm;
    }
    for (unsigned i = 0; i < vmm->nvcpus; i++) {
        int a = __atomic_load_n(&vmm->vcpus[i].activity, __ATOMIC_SEQ_CST);
        halted += a == VCPU_HALTED_IRQS_OFF;
        parked += a == VCPU_PARKED;
    }
    if (halted && halted + parked == vmm->nvcpus)
        vmm->dead_rounds++;
    else
        vmm->dead_rounds = 0;
    if (vmm->dead_rounds >= 2) {
        char why[128];
        snprintf(why, sizeof(why),
                 "guest halted with interrupts disabled on every running vCPU (%u halted, %u "
                 "never started); it can never continue",
                 halted, parked);
        vmm_request_exit(vmm, FLINT_EXIT_GUEST_CRASH, why);
        return;
    }
    for (unsigned i = 0; i < vmm->nvcpus; i++) {
        struct vcpu *v = &vmm->vcpus[i];
        uint64_t cpu = vcpu_thread_cpu_ns(v);
        /* A vCPU that used CPU since the last tick is not halted: leave it
         * alone rather than force an exit in the middle of its work. */
        if (cpu - v->watchdog_cpu_ns > VMM_WATCHDOG_BUSY_NS) {
            v->watchdog_cpu_ns = cpu;
            __atomic_store_n(&v->activity, VCPU_ACTIVE, __ATOMIC_SEQ_CST);
            continue;
        }
        v->watchdog_cpu_ns = cpu;
        __atomic_store_n(&v->check_activity, 1, __ATOMIC_SEQ_CST);
        vcpu_kick(v);
    }
rearm:
    if (evloop_timeout(vmm->loop, &vmm->watchdog_ev, VMM_WATCHDOG_NS))
        log_warn("halt watchdog could not be re-armed");
}

static void stop_vcpus(struct vmm *vmm)
{
    __atomic_store_n(&vmm->stopping, 1, __ATOMIC_SEQ_CST);
    /* Wake held vCPUs: they see `stopping` and leave. */
    pthread_mutex_lock(&vmm->pause_lock);
    pthread_cond_broadcast(&vmm->pause_cond);
    pthread_mutex_unlock(&vmm->pause_lock);
    for (unsigned i = 0; i < vmm->nvcpus; i++)
        vcpu_kick(&vmm->vcpus[i]);
    for (unsigned i = 0; i < vmm->nvcpus; i++)
        vcpu_join(&vmm->vcpus[i]);
}

int vmm_start(struct vmm *vmm)
{
    int rc;

    log_set_thread_name("vmm");
    boot_phase_begin(&boot_phases, BOOT_PHASE_FIRST_RUN);
    if ((rc = vcpu_signals_init()))
        return setup_fail(FLINT_EXIT_GENERIC, "signal setup: %s", strerror(-rc));
    vmm->exit_ev.fn = on_exit_request;
    vmm->watchdog_ev.fn = on_watchdog;
    if (evloop_read(vmm->loop, &vmm->exit_ev, vmm->exit_efd, &vmm->exit_efd_buf,
                    sizeof(vmm->exit_efd_buf)) ||
        evloop_timeout(vmm->loop, &vmm->watchdog_ev, VMM_WATCHDOG_NS))
        return setup_fail(FLINT_EXIT_GENERIC, "event loop: cannot queue initial events");
    if ((rc = serial_input_start(&vmm->console_in, vmm->loop)))
        log_warn("console input: cannot start: %s; the guest gets none", strerror(-rc));

    for (unsigned i = 0; i < vmm->nvcpus; i++) {
        rc = vcpu_start(&vmm->vcpus[i]);
        if (rc) {
            vmm_request_exit(vmm, FLINT_EXIT_GENERIC, "cannot start a vCPU thread");
            break;
        }
    }
    /* A filter binds the thread that loads it and the threads it creates
     * afterwards. Every vCPU thread exists now, so none inherits this one
     * (each loads its own before its first KVM_RUN), and this thread needs
     * no clone. Guest-controlled data (virtqueues, device completions)
     * reaches this thread only in the event loop, after this. */
    if (vmm->seccomp[SECCOMP_THREAD_VMM].insns &&
        (rc = seccomp_thread_load(&vmm->seccomp[SECCOMP_THREAD_VMM], SECCOMP_THREAD_VMM, 0))) {
        char why[128];
        snprintf(why, sizeof(why), "seccomp: loading the VMM thread's filter: %s", strerror(-rc));
        log_error("%s", why);
        vmm_request_exit(vmm, FLINT_EXIT_GENERIC, why);
    }
    return 0;
}

int vmm_finish(struct vmm *vmm)
{
    stop_vcpus(vmm);
    return vmm->exit_status;
}

int vmm_run(struct vmm *vmm)
{
    int rc = vmm_start(vmm);

    if (rc)
        return rc;
    /* A pending exit request (a failed vCPU or filter) stops it at once. */
    if (evloop_run(vmm->loop))
        vmm_request_exit(vmm, FLINT_EXIT_UNEXPECTED, "event loop failed");
    return vmm_finish(vmm);
}

bool vmm_paused(struct vmm *vmm)
{
    return __atomic_load_n(&vmm->pause_requested, __ATOMIC_SEQ_CST);
}

void vmm_pause_point(struct vmm *vmm, struct vcpu *v)
{
    pthread_mutex_lock(&vmm->pause_lock);
    vmm->vcpus_held++;
    pthread_cond_broadcast(&vmm->pause_cond);
    while (vmm_paused(vmm) && !vmm_stopping(vmm)) {
        if (v->job_gen != vmm->vcpu_job_gen) {
            void (*job)(struct vcpu *, void *) = vmm->vcpu_job;
            void *arg = vmm->vcpu_job_arg;
            v->job_gen = vmm->vcpu_job_gen;
            pthread_mutex_unlock(&vmm->pause_lock);
            job(v, arg);
            pthread_mutex_lock(&vmm->pause_lock);
            vmm->vcpu_jobs_done++;
            pthread_cond_broadcast(&vmm->pause_cond);
            continue;
        }
        pthread_cond_wait(&vmm->pause_cond, &vmm->pause_lock);
    }
    vmm->vcpus_held--;
    pthread_mutex_unlock(&vmm->pause_lock);
}

static unsigned started_vcpus(struct vmm *vmm)
{
    unsigned n = 0;

    for (unsigned i = 0; i < vmm->nvcpus; i++)
        n += vmm->vcpus[i].thread_started;
    return n;
}

int vmm_pause(struct vmm *vmm)
{
    unsigned want = started_vcpus(vmm);
    bool all = false;

    if (vmm_paused(vmm))
        return 0;
    __atomic_store_n(&vmm->pause_requested, 1, __ATOMIC_SEQ_CST);
    /* Kick every 10 ms: a kick that lands while a vCPU is busy in a device
     * is seen at its next KVM_RUN through immediate_exit anyway. */
    for (unsigned round = 0; round < 200 && !all && !vmm_stopping(vmm); round++) {
        struct timespec deadline;

        for (unsigned i = 0; i < vmm->nvcpus; i++)
            vcpu_kick(&vmm->vcpus[i]);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += 10 * 1000 * 1000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&vmm->pause_lock);
        while (vmm->vcpus_held < want &&
               pthread_cond_timedwait(&vmm->pause_cond, &vmm->pause_lock, &deadline) == 0) {
        }
        all = vmm->vcpus_held >= want;
        pthread_mutex_unlock(&vmm->pause_lock);
    }
    if (!all) {
        vmm_resume(vmm);
        /* A VM on its way out has vCPUs that leave rather than wait. */
        return vmm_stopping(vmm) ? -ESHUTDOWN : -ETIMEDOUT;
    }
    /* Devices start no new I/O while paused (a snapshot needs guest
     * memory to stand still once what is in flight has finished). */
    vmm_quiesce_virtio(vmm, true);
    log_info("VM paused");
    return 0;
}

int vmm_on_held_vcpus(struct vmm *vmm, void (*job)(struct vcpu *v, void *arg), void *arg)
{
    unsigned want = started_vcpus(vmm);

    if (!vmm_paused(vmm))
        return -EINVAL;
    pthread_mutex_lock(&vmm->pause_lock);
    vmm->vcpu_job = job;
    vmm->vcpu_job_arg = arg;
    vmm->vcpu_jobs_done = 0;
    vmm->vcpu_job_gen++;
    pthread_cond_broadcast(&vmm->pause_cond);
    /* Every started vCPU is held or on its way there (a restored VM's
     * threads start with the pause already requested) and runs the job
     * once it is: a vCPU runs each job it has not run yet. */
    while (vmm->vcpu_jobs_done < want && !vmm_stopping(vmm))
        pthread_cond_wait(&vmm->pause_cond, &vmm->pause_lock);
    pthread_mutex_unlock(&vmm->pause_lock);
    return vmm->vcpu_jobs_done >= want ? 0 : -ESHUTDOWN;
}

void vmm_resume(struct vmm *vmm)
{
    vmm_quiesce_virtio(vmm, false);
    pthread_mutex_lock(&vmm->pause_lock);
    __atomic_store_n(&vmm->pause_requested, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&vmm->pause_cond);
    pthread_mutex_unlock(&vmm->pause_lock);
}

int vmm_send_ctrl_alt_del(struct vmm *vmm)
{
    /* Set 2: left Ctrl, left Alt, Delete (an extended key). */
    static const uint8_t keys[] = {0x14, 0x11, 0xe0, 0x71};

    return i8042_push_keys(&vmm->i8042, keys, sizeof(keys));
}

static long long ts_diff_us(struct timespec a, struct timespec b)
{
    return (b.tv_sec - a.tv_sec) * 1000000ll + (b.tv_nsec - a.tv_nsec) / 1000;
}

static void print_bus(int fd, struct bus *bus)
{
    for (unsigned i = 0; i < bus->nranges; i++) {
        struct bus_range *r = &bus->ranges[i];
        if (r->accesses)
            dprintf(fd, "  %s 0x%llx %-12s %llu\n", bus->name, (unsigned long long)r->base,
                    r->ops->name, (unsigned long long)r->accesses);
    }
    if (bus->unhandled)
        dprintf(fd, "  %s unhandled         %llu\n", bus->name, (unsigned long long)bus->unhandled);
}

void vmm_print_stats(struct vmm *vmm, int fd)
{
    uint64_t total[VCPU_EXIT_KINDS] = {0}, sum = 0;
    char phases[1024];
    struct rusage ru;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    for (unsigned i = 0; i < vmm->nvcpus; i++)
        for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
            total[k] += vmm->vcpus[i].exits[k];
    dprintf(fd, "flint stats:\n");
    dprintf(fd, "  vcpus: %u, memory: %llu MiB (huge pages: %s)\n", vmm->nvcpus,
            (unsigned long long)(vmm->mem.size / MIB),
            config_huge_pages_names[vmm->cfg->huge_pages]);
    /* Peak, not current: the guest's pages stay resident until exit. */
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        dprintf(fd, "  peak resident memory: %ld KiB\n", ru.ru_maxrss);
    if (vmm->first_run_recorded)
        dprintf(fd, "  process start -> first KVM_RUN: %lld us\n",
                ts_diff_us(process_start, vmm->t_first_run));
    dprintf(fd, "  process start -> exit: %lld us\n", ts_diff_us(process_start, now));
    if (boot_phases_format(&boot_phases, phases, sizeof(phases)) > 0)
        dprintf(fd, "  boot phases (from process start):\n%s", phases);
    for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
        sum += total[k];
    dprintf(fd, "  vm exits: %llu\n", (unsigned long long)sum);
    for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
        if (total[k])
            dprintf(fd, "    %-16s %llu\n", vcpu_exit_kind_name(k), (unsigned long long)total[k]);
    dprintf(fd, "  device accesses:\n");
    print_bus(fd, &vmm->pio);
    print_bus(fd, &vmm->mmio);
    if (vmm->console_in.fd >= 0)
        dprintf(fd, "  console input: %llu bytes to the guest, %llu serial interrupts\n",
                (unsigned long long)vmm->console_in.bytes,
                (unsigned long long)__atomic_load_n(&vmm->com1_irqs, __ATOMIC_RELAXED));
    if (vmm->console_in.fd >= 0)
        dprintf(
            fd,
            "  serial: IER 0x%02x FCR 0x%02x LCR 0x%02x MCR 0x%02x, %u bytes unread, input %d\n",
            vmm->serial.regs.ier, vmm->serial.regs.fcr, vmm->serial.regs.lcr, vmm->serial.regs.mcr,
            vmm->serial.regs.rx_count, (int)vmm->console_in.state);
    vmm_print_virtio_stats(vmm, fd);
}

void vmm_destroy(struct vmm *vmm)
{
    for (unsigned k = 0; k < SECCOMP_THREAD_KINDS; k++)
        seccomp_prog_free(&vmm->seccomp[k]);
    for (unsigned i = 0; i < vmm->nvcpus; i++)
        vcpu_destroy(&vmm->vcpus[i]);
    /* The caller tore down the ring already: it may have held buffers of
     * the devices below. */
    vmm_destroy_virtio(vmm);
    if (vmm->exit_efd >= 0)
        close(vmm->exit_efd);
    if (vmm->kbd_irq_fd >= 0)
        close(vmm->kbd_irq_fd);
    if (vmm->com1_irq_fd >= 0)
        close(vmm->com1_irq_fd);
    /* The terminal back as it was, on error exits as on normal ones. */
    serial_input_fini(&vmm->console_in);
    if (vmm->serial_out_fd >= 0)
        close(vmm->serial_out_fd);
    kvm_close(&vmm->kvm);
    guest_mem_destroy(&vmm->mem);
}
