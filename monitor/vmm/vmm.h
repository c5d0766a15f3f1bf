/*
 * vmm.h - one virtual machine: its KVM fds, RAM, buses, devices and vCPUs,
 * and the VMM thread that runs the event loop and decides when it ends.
 *
 * Life cycle: the caller owns the event loop (it may serve the API socket
 * long before a VM exists). vmm_create() loads everything and fails with an
 * exit code and one message before any vCPU runs; vmm_start() starts the
 * vCPUs, after which the loop stops when the guest or a fault ends the VM;
 * vmm_finish() then stops every vCPU and returns the exit status.
 * vmm_run() is the three in a row for `flint run`. vmm_destroy() frees it
 * all, once the caller has torn down the ring (evloop_fini), which may
 * still point into device buffers.
 */
#ifndef FLINT_VMM_H
#define FLINT_VMM_H

#include "boot_timer.h"
#include "bus.h"
#include "config.h"
#include "evloop.h"
#include "guest_mem.h"
#include "kvm.h"
#include "legacy.h"
#include "seccomp.h"
#include "serial.h"
#include "serial_input.h"
#include "vcpu.h"
#include "virtio.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "virtio_vsock.h"

#include <flint-abi.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* How often the watchdog samples vCPUs for a halt with interrupts off. */
#define VMM_WATCHDOG_NS (250ull * 1000 * 1000)
/* CPU time per tick above which a vCPU counts as busy (not sampled). */
#define VMM_WATCHDOG_BUSY_NS (2ull * 1000 * 1000)

/* io_uring submission slots: room for a full queue of block requests. */
#define VMM_RING_ENTRIES 512

/* virtio-mmio slots: 4 KiB windows from FLINT_VIRTIO_MMIO_BASE, one GSI each. */
#define VMM_MAX_VIRTIO (FLINT_VIRTIO_LAST_GSI - FLINT_VIRTIO_FIRST_GSI + 1)

struct virtio_slot;

/* One queue's ioeventfd, read by the event loop. */
struct virtio_notify {
    struct ev_handler ev;
    struct virtio_slot *slot;
    unsigned q;
    int fd;
    uint64_t buf;
};

/* A virtio device wired into the VM: transport, bus window, irqfd and
 * ioeventfds. */
struct virtio_slot {
    struct vmm *vmm;
    struct virtio_mmio t;
    int irq_fd;
    struct virtio_notify notify[VIRTIO_MAX_QUEUES];
};

struct vmm {
    struct vm_config *cfg;
    struct kvm kvm;
    struct guest_mem mem;
    struct bus pio;
    struct bus mmio;

    struct serial serial;
    struct serial_input console_in; /* stdin to the serial (serial_input.h) */
    int serial_out_fd;              /* cfg->serial_out_path, or -1: stdout */
    struct i8042 i8042;
    struct pvexit pvexit;
    struct pvconsole pvconsole;
    struct boot_timer boot_timer; /* on the bus only with cfg->boot_timer */

    struct virtio_blk *blks[CONFIG_MAX_DRIVES];
    unsigned nblks;
    struct virtio_net *nets[CONFIG_MAX_NETS];
    unsigned nnets;
    struct virtio_vsock *vsock;
    struct virtio_slot virtio[VMM_MAX_VIRTIO];
    unsigned nvirtio;

    unsigned nvcpus;
    struct vcpu vcpus[CONFIG_MAX_VCPUS];

    /* Built by vmm_create (unless --no-seccomp or a sanitizer build: then
     * insns is NULL); each thread loads its own kind's. */
    struct seccomp_prog seccomp[SECCOMP_THREAD_KINDS];

    struct evloop *loop; /* the caller's */
    int exit_efd;        /* written by vmm_request_exit */
    uint64_t exit_efd_buf;
    struct ev_handler exit_ev;
    struct ev_handler watchdog_ev;
    unsigned dead_rounds;

    int kbd_irq_fd;     /* irqfd for GSI 1: the i8042 from any thread */
    int com1_irq_fd;    /* irqfd for GSI 4: the serial from any thread */
    uint64_t com1_irqs; /* atomic: pulses on it (--stats) */

    /* PATCH /vm: while pause_requested, vCPU threads wait outside KVM_RUN. */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond; /* CLOCK_MONOTONIC */
    int pause_requested;       /* atomic */
    unsigned vcpus_held;       /* under pause_lock */
    /* vmm_on_held_vcpus: a job each held vCPU thread runs for itself. */
    void (*vcpu_job)(struct vcpu *v, void *arg);
    void *vcpu_job_arg;
    unsigned vcpu_job_gen, vcpu_jobs_done; /* under pause_lock */

    pthread_mutex_t exit_lock;
    int stopping; /* atomic: vCPUs leave their loops when set */
    int exit_status;
    char exit_reason[256];

    struct timespec t_first_run; /* set by vCPU 0 before its first KVM_RUN */
    int first_run_recorded;      /* atomic */
};

/* Build the VM described by cfg on the caller's event loop: RAM, kernel,
 * initrd, boot info, KVM VM, devices, vCPUs, seccomp filters. On failure
 * returns a process exit code (152 for a bad kernel/initrd/size, 1 for
 * host problems) after printing one line; the loop may then hold
 * submissions into the half-built VM, so end the process. */
int vmm_create(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop);

/* On the VMM thread (the loop's): start the vCPUs and load this thread's
 * seccomp filter, which binds it from here on, for the rest of the
 * process's life (vmm_finish, vmm_print_stats, vmm_destroy and exit need
 * nothing more). Returns 0, after which the loop stops when the VM ends
 * (a failure to start a vCPU or load the filter ends it that way too), or
 * an exit code when nothing could be started. */
int vmm_start(struct vmm *vmm);

/* After the loop stopped: stop and join every vCPU; flint's exit status. */
int vmm_finish(struct vmm *vmm);

/* vmm_start, evloop_run, vmm_finish: run the VM to its end and return
 * flint's exit status. */
int vmm_run(struct vmm *vmm);

/* Hold every vCPU outside KVM_RUN (PATCH /vm Paused). Waits until each
 * started vCPU thread is held; returns 0, or -ETIMEDOUT (nothing changed)
 * when one does not get there within 2 s, -ESHUTDOWN when the VM is
 * ending. Call on the VMM thread. */
int vmm_pause(struct vmm *vmm);

/* Let held vCPUs run again (PATCH /vm Resumed). */
void vmm_resume(struct vmm *vmm);

/* True between vmm_pause and vmm_resume. */
bool vmm_paused(struct vmm *vmm);

/* vCPU threads: wait here while a pause is requested (vcpu.c calls it
 * between KVM_RUNs, with no exit left for KVM to complete), running the
 * jobs vmm_on_held_vcpus hands out. */
void vmm_pause_point(struct vmm *vmm, struct vcpu *v);

/* While paused, on the VMM thread: have every held vCPU thread run
 * job(vcpu, arg) and wait until all have. vCPU ioctls run on the vCPU's
 * own thread (its seccomp filter allows the state ioctls; the VMM
 * thread's allows none). Returns 0, or -EINVAL when not paused. */
int vmm_on_held_vcpus(struct vmm *vmm, void (*job)(struct vcpu *v, void *arg), void *arg);

/* vmm_create for a snapshot restore: the same VM (configuration, devices,
 * KVM VM and vCPUs) with RAM mapped from the memory file `mem_fd` (taken),
 * or anonymous RAM for a userfaultfd handler to fill when mem_fd is -1,
 * instead of a kernel loaded into fresh RAM, and no entry state set. The
 * caller gives it the saved state before vmm_start. Same failures as
 * vmm_create. */
int vmm_create_restored(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop, int mem_fd);

/* Press Ctrl-Alt-Del on the i8042 keyboard (set-2 scancodes 0x14, 0x11,
 * 0xe0 0x71, as Firecracker). Returns 0 or -ENOSPC when the guest has not
 * read what is queued. */
int vmm_send_ctrl_alt_del(struct vmm *vmm);

/* Ask the VMM to end the VM with `status`. The first request wins; safe
 * from any thread. `why` is logged (at error level for a crash). */
void vmm_request_exit(struct vmm *vmm, int status, const char *why);

/* True once an exit was requested. */
bool vmm_stopping(struct vmm *vmm);

/* Print VM exits by kind and boot timings to `fd`. */
void vmm_print_stats(struct vmm *vmm, int fd);

void vmm_destroy(struct vmm *vmm);

/* virtio plumbing (vmm_virtio.c). */
/* The command line the guest gets: the configured one plus one
 * virtio_mmio.device= entry per device. Returns 0 or -E2BIG. */
int vmm_build_cmdline(const struct vm_config *cfg, char *buf, size_t len);
/* Open every device's backend (drive images, taps, the vsock socket)
 * before KVM exists. Returns 0 or an exit code (152 naming the file). */
int vmm_create_devices(struct vmm *vmm);
/* Wire every device into KVM, the MMIO bus and the event loop. */
int vmm_attach_virtio(struct vmm *vmm);
/* PATCH /vm: while paused (on), every virtio device starts no new I/O and
 * gives back buffers it holds, so once what is in flight has finished
 * (vmm_devices_busy) nothing writes guest memory; off restarts them and
 * they pick up what the guest posted meanwhile (virtio_mmio_quiesce). VMM
 * thread. */
void vmm_quiesce_virtio(struct vmm *vmm, bool on);
/* Print per-device counters. */
void vmm_print_virtio_stats(struct vmm *vmm, int fd);
/* Add the VM's metrics counters to a metrics line's object (metrics.h):
 * block_<id>, net_<id>, vsock, and vcpu exits by kind. On the VMM thread.
 * Returns 0 or -ENOMEM. */
struct json_t;
int vmm_add_metrics(struct vmm *vmm, struct json_t *obj);
/* PATCH /drives, PATCH /network-interfaces: new rate limiters for the
 * running device of drive / interface `index`. On the VMM thread. Returns
 * 0 or -ENODEV (no such device). */
int vmm_set_drive_rate_limiter(struct vmm *vmm, unsigned index,
                               const struct rate_limiter_config *rl);
int vmm_set_net_rate_limiters(struct vmm *vmm, unsigned index, const struct rate_limiter_config *rx,
                              const struct rate_limiter_config *tx);
/* Close what vmm_create_drives / vmm_attach_virtio opened. */
void vmm_destroy_virtio(struct vmm *vmm);

/* Monotonic time at process start (recorded before main). */
struct timespec vmm_process_start(void);

#endif /* FLINT_VMM_H */
