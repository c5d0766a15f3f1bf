/*
 * vmm.h - one virtual machine: its KVM fds, RAM, buses, devices and vCPUs,
 * and the VMM thread that runs the event loop and decides when it ends.
 *
 * Life cycle: vmm_create() loads everything and fails with an exit code and
 * one message before any vCPU runs; vmm_run() starts the vCPUs, runs the
 * event loop until the guest or a fault ends the VM, stops every vCPU and
 * returns the exit status; vmm_destroy() frees it all.
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
    struct i8042 i8042;
    struct pvexit pvexit;
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

    struct evloop loop;
    bool loop_ready;
    int exit_efd; /* written by vmm_request_exit */
    uint64_t exit_efd_buf;
    struct ev_handler exit_ev;
    struct ev_handler watchdog_ev;
    unsigned dead_rounds;

    pthread_mutex_t exit_lock;
    int stopping; /* atomic: vCPUs leave their loops when set */
    int exit_status;
    char exit_reason[256];

    struct timespec t_first_run; /* set by vCPU 0 before its first KVM_RUN */
    int first_run_recorded;      /* atomic */
};

/* Build the VM described by cfg: RAM, kernel, initrd, boot info, KVM VM,
 * devices, vCPUs, seccomp filters. On failure returns a process exit code (152 for a bad
 * kernel/initrd/size, 1 for host problems) after printing one line. */
int vmm_create(struct vmm *vmm, struct vm_config *cfg);

/* Run the VM to its end and return flint's exit status. The calling (VMM)
 * thread runs under its seccomp filter from the moment the vCPUs are
 * started, and so does the rest of the process's life: vmm_print_stats,
 * vmm_destroy and exit need nothing more. */
int vmm_run(struct vmm *vmm);

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
/* Print per-device counters. */
void vmm_print_virtio_stats(struct vmm *vmm, int fd);
/* Close what vmm_create_drives / vmm_attach_virtio opened. */
void vmm_destroy_virtio(struct vmm *vmm);

/* Monotonic time at process start (recorded before main). */
struct timespec vmm_process_start(void);

#endif /* FLINT_VMM_H */
