/*
 * config.h - what a VM is made of, however it was described: the `flint
 * run` command line, the API (api.h) or a --config-file. The range checks
 * are shared, so all three accept and refuse the same values.
 */
#ifndef FLINT_CONFIG_H
#define FLINT_CONFIG_H

#include "cpu_template.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_MEM_MIB 128
#define CONFIG_MIN_MEM_MIB     2
#define CONFIG_MAX_MEM_MIB     (1024ull * 1024) /* 1 TiB */
#define CONFIG_MAX_VCPUS       32
/* Firecracker's defaults for Linux guests, with the serial console on:
 * reboot=k resets through the i8042 (flint then exits 0), panic=1 reboots
 * a second after a panic, pci=off skips probing a bus flint does not have,
 * and the i8042 options keep Linux's driver from probing what flint's
 * i8042 leaves out. */
#define CONFIG_DEFAULT_CMDLINE                                                                     \
    "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd"

struct mmds;

#define CONFIG_MAX_DRIVES  16
#define CONFIG_MAX_NETS    8
#define CONFIG_NET_MTU_MIN 68    /* RFC 791: every IPv4 host takes 68-byte datagrams */
#define CONFIG_NET_MTU_MAX 65535 /* virtio 1.2 §5.1.4: mtu is 16 bits */
#define CONFIG_ID_MAX      64    /* drive / interface ids: 1-64 of [A-Za-z0-9_] */
#define CONFIG_VM_ID_MAX   64    /* --id: 1-64 of [A-Za-z0-9-], as the jailer's */
/* vsock: CIDs 0-2 are reserved (hypervisor, local, host); u32 -1 is ANY. */
#define CONFIG_VSOCK_MIN_CID 3u
#define CONFIG_VSOCK_MAX_CID 0xfffffffeu

/* A token bucket (rate_limiter.h): size 0 or refill_time_ms 0 is no limit;
 * all three 0 is "not set" (null in the API). */
struct token_bucket_config {
    uint64_t size, one_time_burst, refill_time_ms;
};

/* Bandwidth in bytes, ops in requests (drives) or frames (interfaces). */
struct rate_limiter_config {
    struct token_bucket_config bandwidth, ops;
};

struct drive_config {
    char *path;
    char *id; /* NULL: "blk<index>" */
    bool read_only;
    /* The API's drive fields. The root device is drives[0] (/dev/vda):
     * the command line gets root=/dev/vda (or root=PARTUUID=...) rw|ro. */
    bool root_device;
    char *partuuid;       /* NULL: none */
    bool cache_writeback; /* cache_type Writeback; flint honours flushes either way */
    bool io_engine_sync;  /* io_engine Sync; flint always uses io_uring */
    struct rate_limiter_config rate_limiter;
};

struct net_config {
    char *tap; /* host tap device name (IFNAMSIZ - 1 bytes at most) */
    char *id;  /* NULL: "net<index>" */
    uint8_t mac[6];
    bool has_mac; /* false: the device makes up a locally administered one */
    /* The MTU offered to the guest (VIRTIO_NET_F_MTU), 68-65535; 0: not
     * set, the device offers 1500. The tap's own MTU is the host's to set. */
    uint16_t mtu;
    struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
};

struct vsock_config {
    bool enabled;
    uint32_t guest_cid;
    char *uds_path; /* host-side Unix socket; guest-initiated: <uds_path>_<port> */
};

/* Guest memory backing: Firecracker's machine-config huge_pages, whose
 * names config_huge_pages_names holds in this order (guest_mem.h). */
enum config_huge_pages {
    CONFIG_HUGE_PAGES_NONE,        /* "None": a memfd of 4 KiB pages */
    CONFIG_HUGE_PAGES_2M,          /* "2M": a memfd of 2 MiB hugetlb pages */
    CONFIG_HUGE_PAGES_TRANSPARENT, /* "Transparent": anonymous, MADV_HUGEPAGE */
};
extern const char *const config_huge_pages_names[]; /* NULL-terminated */

/* Where flint puts guest memory when nothing says otherwise. */
#define CONFIG_DEFAULT_HUGE_PAGES CONFIG_HUGE_PAGES_NONE

struct vm_config {
    char *vm_id;       /* --id (the jailer passes its own); NULL: none. Log lines only */
    char *kernel_path; /* NULL: the built-in guest-shim hello image */
    char *initrd_path; /* optional */
    char *cmdline;     /* NULL: CONFIG_DEFAULT_CMDLINE */
    uint64_t mem_mib;
    unsigned vcpus;
    bool smt;                          /* two threads per core (x86_64): vcpus is then 1 or even */
    bool track_dirty_pages;            /* KVM dirty log + device writes, for Diff snapshots */
    enum config_huge_pages huge_pages; /* guest memory backing (huge_pages, --huge-pages) */
    /* machine-config cpu_template, or CUSTOM after PUT /cpu-config (the
     * later of the two wins, as in Firecracker); custom_cpu is that one. */
    enum cpu_template_id cpu_template;
    struct cpu_template *custom_cpu;
    bool stats;
    bool seccomp;    /* per-thread system call filters (seccomp.h); off: --no-seccomp */
    bool api_socket; /* the VMM thread serves the API socket (seccomp.h: SECCOMP_FEAT_API) */
    bool boot_timer; /* the boot-timer device at FLINT_BOOT_TIMER_ADDR (boot_timer.h) */
    /* flint run --snapshot-on-signal STATE,MEM: SIGUSR1 writes a Full
     * snapshot there and ends the VM. NULL: off. */
    char *snapshot_on_signal;
    /* flint run --restore STATE --mem-file MEM: start from a snapshot. */
    char *restore_state, *restore_mem;

    /* A bzImage decompresses itself in the guest (--no-kernel-unpack). */
    bool no_kernel_unpack;
    /* A bzImage is unpacked in memory, without the cache (--no-kernel-cache). */
    bool no_kernel_cache;

    /* --record-working-set: write STATE.ws when the restored VM ends;
     * --prefetch: bring STATE.ws's pages in before the vCPUs run
     * (snapshot_ws.h). */
    bool ws_record, ws_prefetch;
    enum log_level level;
    struct drive_config drives[CONFIG_MAX_DRIVES];
    unsigned ndrives;
    struct net_config nets[CONFIG_MAX_NETS];
    unsigned nnets;
    struct vsock_config vsock;
    struct mmds *mmds; /* the process's metadata service (mmds.h); NULL: none */
    /* The serial console (serial_input.h): output to this file (PUT
     * /serial's serial_out_path; NULL: stdout), input from stdin unless
     * --no-console-input. */
    char *serial_out_path;
    bool console_input;
};

/* Defaults: 128 MiB, 1 vCPU, log level Warning, seccomp filters and
 * console input on. */
void config_init(struct vm_config *cfg);

/* Range checks that do not touch the file system. Returns 0 or -EINVAL with
 * one line naming the field in err. */
int config_validate(const struct vm_config *cfg, char *err, size_t errlen);

/* Free the strings; the struct returns to its defaults. */
void config_free(struct vm_config *cfg);

/* Parse a --drive value "PATH[,ro][,id=NAME]" and append it. Returns 0 or
 * -EINVAL / -ENOSPC with one line in err. */
int config_add_drive(struct vm_config *cfg, const char *spec, char *err, size_t errlen);

/* Parse a --net value "TAP[,mac=XX:XX:XX:XX:XX:XX][,id=NAME]" and append
 * it. Returns 0 or -EINVAL / -ENOSPC with one line in err. */
int config_add_net(struct vm_config *cfg, const char *spec, char *err, size_t errlen);

/* Parse a --vsock value "CID,PATH" (CID 3 to 2^32 - 2). Returns 0 or
 * -EINVAL with one line in err. */
int config_set_vsock(struct vm_config *cfg, const char *spec, char *err, size_t errlen);

/* One field's range check, with `field` naming it in the message ("mem" on
 * the command line, "mem_size_mib" in the API). Each returns 0 or -EINVAL
 * with one line in err. */
int config_check_mem_mib(uint64_t mib, const char *field, char *err, size_t errlen);

/* With 2 MiB huge pages, memory must be a whole number of them. */
int config_check_huge_pages(uint64_t mib, enum config_huge_pages huge_pages, const char *field,
                            char *err, size_t errlen);
int config_check_vcpus(uint64_t n, const char *field, char *err, size_t errlen);
/* smt (two threads per core) needs 1 or an even number of vCPUs, as
 * Firecracker's machine-config rule on x86_64. */
int config_check_smt(uint64_t vcpus, bool smt, const char *field, char *err, size_t errlen);
int config_check_cmdline(const char *cmdline, const char *field, char *err, size_t errlen);
/* A host network interface name: 1 to 15 bytes, no '/'. */
int config_check_tap_name(const char *name, const char *field, char *err, size_t errlen);
/* A vsock guest CID: 3 to 2^32 - 2. */
int config_check_vsock_cid(uint64_t cid, const char *field, char *err, size_t errlen);
/* A vsock Unix socket path, with room for the "_<port>" suffix. */
int config_check_vsock_path(const char *path, const char *field, char *err, size_t errlen);

/* Index of the drive / network interface with this id, or -1. */
int config_find_drive(const struct vm_config *cfg, const char *id);
int config_find_net(const struct vm_config *cfg, const char *id);

/* Free one drive's or interface's strings. */
void config_drive_free(struct drive_config *d);
void config_net_free(struct net_config *n);

/* Parse "XX:XX:XX:XX:XX:XX" (hex, either case). 0 or -EINVAL. Multicast
 * addresses (bit 0 of the first byte) are refused. */
int config_parse_mac(const char *s, uint8_t mac[6]);

/* True for a 1-64 character id of letters, digits and '_'. */
bool config_valid_id(const char *id);

/* True for a VM id (--id): 1-64 letters, digits or '-'. */
bool config_valid_vm_id(const char *id);

/* Set a string field, replacing (and freeing) the old value. 0 or -ENOMEM. */
int config_set_str(char **field, const char *value);

#endif /* FLINT_CONFIG_H */
