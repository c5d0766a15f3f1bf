/*
 * snapshot.h - saving a paused VM to a state file and a memory file, and
 * building the same VM from them in a fresh process (docs/ARCHITECTURE.md,
 * "Snapshots").
 *
 * The state file: a 24-byte header (magic "FLNTSNAP", a 32-bit format
 * version, 32 reserved bits, the 64-bit payload length), the payload as
 * snap_io sections, and the CRC-64/XZ of header and payload. The payload's
 * sections, in order: CONF (the VM configuration as GET /vm/config's JSON),
 * MEM (the RAM layout), VMST (irqchip, PIT, kvmclock), one VCPU per vCPU,
 * DEVS (every device, snapshot_devices.h).
 *
 * The memory file: the guest's RAM regions back to back in guest-physical
 * order (the MMIO gap not stored), zero pages left as holes.
 */
#ifndef FLINT_SNAPSHOT_H
#define FLINT_SNAPSHOT_H

#include "config.h"
#include "evloop.h"
#include "guest_mem.h"
#include "snap_io.h"
#include "vcpu_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAGIC      "FLNTSNAP"
#define SNAPSHOT_VERSION    1u
#define SNAPSHOT_HEADER_LEN 24u
#define SNAPSHOT_CRC_LEN    8u
/* A state file is KiBs per vCPU plus the devices: anything larger is not
 * one of ours. */
#define SNAPSHOT_MAX_FILE (64ull << 20)
#define SNAPSHOT_PAGE     4096u

#define SNAPSHOT_TAG_CONFIG  SNAP_TAG('C', 'O', 'N', 'F')
#define SNAPSHOT_TAG_MEM     SNAP_TAG('M', 'E', 'M', ' ')
#define SNAPSHOT_TAG_VM      SNAP_TAG('V', 'M', 'S', 'T')
#define SNAPSHOT_TAG_VCPU    SNAP_TAG('V', 'C', 'P', 'U')
#define SNAPSHOT_TAG_DEVICES SNAP_TAG('D', 'E', 'V', 'S')

/* ---- the container (snapshot_file.c) ---- */

/* Start a state file in w: the header, with the length left to fill. */
void snapshot_file_begin(struct snap_writer *w);
/* Fill in the payload length and append the CRC. 0 or w's error. */
int snapshot_file_finish(struct snap_writer *w);
/* Check a whole state file (magic, version, length, CRC) and bound
 * `payload` to its payload. Returns 0 or -EBADMSG with one line in err
 * saying which check failed. */
int snapshot_file_open(const void *buf, size_t len, struct snap_reader *payload, char *err,
                       size_t errlen);

/* A state file, decoded and checked (pointers into the file's buffer). */
struct snapshot_image {
    const char *config_json; /* not NUL-terminated */
    size_t config_len;
    uint64_t mem_size;
    unsigned nregions;
    struct guest_region regions[GUEST_MEM_MAX_REGIONS]; /* host NULL */
    struct vm_state vm;
    unsigned nvcpus;
    struct vcpu_state *vcpus; /* malloc'ed */
    struct snap_reader devices;
};

/* Decode a state file. Returns 0, or -EBADMSG / -ENOMEM with one line in
 * err naming what is wrong; on error nothing is left to free. */
int snapshot_image_parse(const void *buf, size_t len, struct snapshot_image *img, char *err,
                         size_t errlen);
void snapshot_image_free(struct snapshot_image *img);

/* Read a whole state file into a malloc'ed buffer. 0 or -errno (-EFBIG
 * beyond SNAPSHOT_MAX_FILE) with one line in err. */
int snapshot_file_read(const char *path, void **buf, size_t *len, char *err, size_t errlen);

/* ---- memory (snapshot_mem.c) ---- */

enum snapshot_type {
    SNAPSHOT_FULL,
    SNAPSHOT_DIFF,
};

/* Write guest RAM to the memory file `fd`: Full sizes the file to RAM and
 * writes every non-zero page at its offset (zero pages stay holes); Diff
 * writes only the pages set in `dirty` (one bit per 4 KiB page, in file
 * order), leaving the rest of the file as it is. Returns 0 or -errno. */
int snapshot_mem_write(const struct guest_mem *mem, int fd, enum snapshot_type type,
                       const uint64_t *dirty);

/* ---- the Uffd backend (snapshot_uffd.c) ---- */

/* Register mem's regions (anonymous, guest_mem_map_anon) with a new
 * userfaultfd and hand it to the page-fault handler listening on the Unix
 * socket `path`, with the JSON region list (Firecracker's protocol).
 * Returns 0 or -errno with one line in err. */
int snapshot_uffd_connect(const struct guest_mem *mem, const char *path, char *err, size_t errlen);

/* ---- create and restore (snapshot.c) ---- */

struct vmm;

/* PUT /snapshot/create on a paused VM: drain device I/O, read every vCPU's
 * and the VM's KVM state, write the state file and the memory file.
 * Returns 0 or -errno with one line in err; -ENOTSUP for a Diff on a VM
 * that does not track dirty pages. */
int snapshot_create(struct vmm *vmm, enum snapshot_type type, const char *state_path,
                    const char *mem_path, char *err, size_t errlen);

/* What PUT /snapshot/load asks beyond the file's configuration. */
struct snapshot_load_opts {
    const char *mem_path;
    bool clock_realtime;
};

/* A new backend for the device with this id (drive_overrides,
 * network_overrides). */
struct snapshot_override {
    const char *id;
    const char *path; /* path_on_host, host_dev_name */
};

/* PUT /snapshot/load (or flint run --restore). */
struct snapshot_load_req {
    const char *state_path;
    const char *mem_path;  /* mem_backend File's backend_path, or NULL */
    const char *uffd_path; /* mem_backend Uffd's backend_path, or NULL */
    bool track_dirty_pages, resume_vm, clock_realtime;
    struct snapshot_override drives[CONFIG_MAX_DRIVES];
    unsigned ndrives;
    struct snapshot_override nets[CONFIG_MAX_NETS];
    unsigned nnets;
    const char *vsock_uds_path; /* vsock_override; NULL: the saved one */
    bool prefetch;              /* map STATE.ws's pages first (snapshot_ws.h) */
};

/* Restore in a fresh process: read and check the state file, open the
 * memory file (refused if smaller than the guest's RAM), fill cfg (at its
 * defaults) from the saved configuration with the overrides, build the VM
 * (vmm_create_restored) and give it the saved state. The vCPUs are not
 * started. Returns 0 or a process exit code (152 for a bad file or
 * override, 1 for host problems) with one line in err; then end the
 * process, as Firecracker does. *built says whether vmm_create_restored
 * ran (then vmm_destroy the VM, whatever the result). */
int snapshot_load(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop,
                  const struct snapshot_load_req *req, bool *built, char *err, size_t errlen);

/* Give a VM built by vmm_create_restored the saved KVM and device state.
 * Returns 0 or -errno with one line in err. */
int snapshot_restore_state(struct vmm *vmm, const struct snapshot_image *img,
                           const struct snapshot_load_opts *opts, char *err, size_t errlen);

#endif /* FLINT_SNAPSHOT_H */
