/*
 * snapshot_ws.h - a snapshot's working set: the guest pages a restored VM
 * touched between its restore and its end, kept next to the state file as
 * STATE.ws, and brought in before the vCPUs of a later restore run (the
 * REAP and FaaSnap idea: most of a restored VM's slowdown is page faults
 * on its first run). docs/ARCHITECTURE.md, "Snapshots".
 *
 * The file, little-endian: a 32-byte header (magic "FLNTWSET", a 32-bit
 * format version, the 32-bit number of runs, the 64-bit size of the
 * memory file it was recorded on, 64 reserved bits, zero), the runs as
 * pairs of 64-bit (first page, number of pages) in memory-file order,
 * sorted, disjoint and inside the memory file, and the CRC-64/XZ of all
 * that. The file is untrusted input: every field is checked.
 */
#ifndef FLINT_SNAPSHOT_WS_H
#define FLINT_SNAPSHOT_WS_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_WS_MAGIC      "FLNTWSET"
#define SNAPSHOT_WS_VERSION    1u
#define SNAPSHOT_WS_HEADER_LEN 32u
#define SNAPSHOT_WS_RUN_LEN    16u
/* One run per two pages of the largest guest (GUEST_MEM_MAX_BYTES) is
 * far beyond any real working set; the bound keeps a hostile count from
 * sizing an allocation. */
#define SNAPSHOT_WS_MAX_RUNS (1u << 22)
#define SNAPSHOT_WS_MAX_FILE                                                                       \
    (SNAPSHOT_WS_HEADER_LEN + (uint64_t)SNAPSHOT_WS_MAX_RUNS * SNAPSHOT_WS_RUN_LEN + 8)

struct snapshot_ws_run {
    uint64_t first;  /* page index in the memory file */
    uint64_t npages; /* at least 1 */
};

struct snapshot_ws {
    uint64_t mem_size; /* bytes of the memory file */
    uint32_t nruns;
    struct snapshot_ws_run *runs; /* malloc'ed */
};

/* Encode ws into a malloc'ed buffer. 0 or -ENOMEM / -EINVAL (more than
 * SNAPSHOT_WS_MAX_RUNS runs). */
int snapshot_ws_encode(const struct snapshot_ws *ws, void **buf, size_t *len);

/* Decode and check a working-set file recorded on a memory file of
 * `mem_size` bytes. Returns 0, or -EBADMSG / -ENOMEM with one line in err
 * naming what is wrong; on error nothing is left to free. */
int snapshot_ws_parse(const void *buf, size_t len, uint64_t mem_size, struct snapshot_ws *ws,
                      char *err, size_t errlen);

void snapshot_ws_free(struct snapshot_ws *ws);

/* The pages of the `size`-byte mapping at `map` (page-aligned) that this
 * process has mapped, read from /proc/self/pagemap (`pagemap_fd`): for a
 * MAP_PRIVATE file mapping nothing reads up front, so present means the
 * guest (or a device for it) touched the page. 0 or -errno. */
int snapshot_ws_from_pagemap(int pagemap_fd, const void *map, uint64_t size,
                             struct snapshot_ws *ws);

/* Map every page of ws into `map` (the memory file's MAP_PRIVATE mapping)
 * before the vCPUs run: one MADV_POPULATE_READ per run, which maps the
 * page-cache pages read-only and copies nothing, so clones still share
 * them. Falls back to MADV_WILLNEED (read-ahead only) on kernels before
 * 5.14. 0 or -errno. */
int snapshot_ws_prefetch(void *map, const struct snapshot_ws *ws);

/* The working-set file of a state file: "STATE.ws". 0 or -ENAMETOOLONG. */
int snapshot_ws_path(const char *state_path, char *out, size_t outlen);

/* Read STATE.ws (snapshot_ws_path), check it against the `size`-byte
 * memory file mapped at `map` and prefetch it. 0 or -errno with one line
 * in err naming the file and what is wrong (-EBADMSG: refused). */
int snapshot_ws_prefetch_file(const char *state_path, void *map, uint64_t size, char *err,
                              size_t errlen);

/* Recording a working set: the files are opened before the VM runs (its
 * seccomp filters allow no open then), written when it has ended. */
struct snapshot_ws_recorder {
    int pagemap_fd, out_fd;
};

/* Open /proc/self/pagemap and create STATE.ws. 0 or -errno with one line
 * in err; nothing is left open on error. */
int snapshot_ws_record_open(struct snapshot_ws_recorder *r, const char *state_path, char *err,
                            size_t errlen);

/* Write the pages present in the mapping now to STATE.ws (replacing what
 * it held), count them in *pages, close both files. 0 or -errno. */
int snapshot_ws_record_write(struct snapshot_ws_recorder *r, const void *map, uint64_t size,
                             uint64_t *pages);

#endif
