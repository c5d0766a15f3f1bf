/*
 * snapshot.c - taking a snapshot of a paused VM, and giving a VM rebuilt
 * from one its saved KVM and device state.
 */
#define _GNU_SOURCE
#include "snapshot.h"
#include "api.h"
#include "log.h"
#include "snapshot_devices.h"
#include "util.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What each vCPU thread reads for the snapshot (vmm_on_held_vcpus). */
struct save_job {
    struct vmm *vmm;
    struct vcpu_state *vcpus;
    struct vm_state vm;
    uint64_t *dirty; /* NULL unless tracking */
    int rc[CONFIG_MAX_VCPUS];
    char err[CONFIG_MAX_VCPUS][160];
};

static void save_on_vcpu(struct vcpu *v, void *arg)
{
    struct save_job *job = arg;
    int rc = vcpu_state_save(v, &job->vcpus[v->id], job->err[v->id], sizeof(job->err[0]));

    /* The VM-wide ioctls go with vCPU 0: the VMM thread makes none. */
    if (!rc && v->id == 0)
        rc = vm_state_save(&job->vmm->kvm, &job->vm, job->err[0], sizeof(job->err[0]));
    if (!rc && v->id == 0 && job->dirty) {
        rc = kvm_get_dirty_log(&job->vmm->kvm, &job->vmm->mem, job->dirty);
        if (rc)
            snprintf(job->err[0], sizeof(job->err[0]), "KVM_GET_DIRTY_LOG: %s", strerror(-rc));
    }
    job->rc[v->id] = rc;
}

static void put_mem_layout(struct snap_writer *w, const struct guest_mem *mem)
{
    snap_put_u64(w, mem->size);
    snap_put_u32(w, mem->nregions);
    for (unsigned i = 0; i < mem->nregions; i++) {
        snap_put_u64(w, mem->regions[i].gpa);
        snap_put_u64(w, mem->regions[i].size);
        snap_put_u64(w, mem->regions[i].file_offset);
    }
}

static int build_state(struct vmm *vmm, struct save_job *job, struct snap_writer *w)
{
    char *json = api_vm_config_json(vmm->cfg);
    size_t mark;
    int rc;

    if (!json)
        return -ENOMEM;
    snapshot_file_begin(w);
    mark = snap_section_begin(w, SNAPSHOT_TAG_CONFIG);
    snap_put_bytes(w, json, strlen(json));
    snap_section_end(w, mark);
    free(json);
    mark = snap_section_begin(w, SNAPSHOT_TAG_MEM);
    put_mem_layout(w, &vmm->mem);
    snap_section_end(w, mark);
    mark = snap_section_begin(w, SNAPSHOT_TAG_VM);
    vm_state_put(w, &job->vm);
    snap_section_end(w, mark);
    for (unsigned i = 0; i < vmm->nvcpus; i++) {
        mark = snap_section_begin(w, SNAPSHOT_TAG_VCPU);
        vcpu_state_put(w, &job->vcpus[i]);
        snap_section_end(w, mark);
    }
    mark = snap_section_begin(w, SNAPSHOT_TAG_DEVICES);
    rc = vmm_devices_save(vmm, w);
    snap_section_end(w, mark);
    return rc ? rc : snapshot_file_finish(w);
}

/* Open for writing without O_TRUNC first: the path may be the file this
 * VM's memory is mapped from, which truncating would destroy. */
static int open_output(struct vmm *vmm, const char *path, const char *what, char *err,
                       size_t errlen)
{
    struct stat st, mine;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return -errno;
    }
    if (fstat(fd, &st) == 0 && vmm->mem.fd >= 0 && fstat(vmm->mem.fd, &mine) == 0 &&
        st.st_dev == mine.st_dev && st.st_ino == mine.st_ino) {
        close(fd);
        snprintf(err, errlen, "%s %s: this VM's memory is mapped from that file", what, path);
        return -EBUSY;
    }
    if (ftruncate(fd, 0) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        close(fd);
        return -errno;
    }
    return fd;
}

static int write_files(struct vmm *vmm, struct snap_writer *w, enum snapshot_type type,
                       const uint64_t *dirty, const char *state_path, const char *mem_path,
                       char *err, size_t errlen)
{
    int fd = open_output(vmm, mem_path, "mem_file_path", err, errlen), rc;

    if (fd < 0)
        return fd;
    rc = snapshot_mem_write(&vmm->mem, fd, type, dirty);
    close(fd);
    if (rc) {
        snprintf(err, errlen, "mem_file_path %s: writing: %s", mem_path, strerror(-rc));
        return rc;
    }
    fd = open_output(vmm, state_path, "snapshot_path", err, errlen);
    if (fd < 0)
        return fd;
    for (size_t off = 0; off < w->len;) {
        ssize_t n = pwrite(fd, w->buf + off, w->len - off, (off_t)off);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(err, errlen, "snapshot_path %s: writing: %s", state_path, strerror(-rc));
            break;
        }
        off += (size_t)n;
    }
    close(fd);
    return rc;
}

/* In-flight device I/O may still write guest memory and rings. */
static int drain_devices(struct vmm *vmm)
{
    for (unsigned round = 0; vmm_devices_busy(vmm); round++) {
        int rc = evloop_run_once(vmm->loop, true);
        if (rc < 0 || round > 100000)
            return rc < 0 ? rc : -ETIMEDOUT;
    }
    return 0;
}

int snapshot_create(struct vmm *vmm, enum snapshot_type type, const char *state_path,
                    const char *mem_path, char *err, size_t errlen)
{
    struct save_job *job = calloc(1, sizeof(*job));
    struct snap_writer w;
    int rc;

    if (type == SNAPSHOT_DIFF && !vmm->cfg->track_dirty_pages) {
        free(job);
        snprintf(err, errlen,
                 "a Diff snapshot needs dirty page tracking: set track_dirty_pages in "
                 "/machine-config (or /snapshot/load)");
        return -ENOTSUP;
    }
    snap_writer_init(&w);
    if (!job || !(job->vcpus = calloc(vmm->nvcpus, sizeof(*job->vcpus))) ||
        (vmm->cfg->track_dirty_pages &&
         !(job->dirty = calloc(1, guest_mem_bitmap_bytes(vmm->mem.size))))) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    job->vmm = vmm;
    if ((rc = drain_devices(vmm))) {
        snprintf(err, errlen, "devices did not finish their I/O: %s", strerror(-rc));
        goto out;
    }
    if ((rc = vmm_on_held_vcpus(vmm, save_on_vcpu, job))) {
        snprintf(err, errlen, "the VM is not paused");
        goto out;
    }
    for (unsigned i = 0; i < vmm->nvcpus && !rc; i++)
        if ((rc = job->rc[i]))
            snprintf(err, errlen, "%s", job->err[i]);
    if (rc)
        goto out;
    /* Both halves of the dirty set; taking them starts the next Diff. */
    if (job->dirty)
        guest_mem_take_dirty(&vmm->mem, job->dirty);
    if ((rc = build_state(vmm, job, &w))) {
        snprintf(err, errlen, "building the state: %s", strerror(-rc));
        goto out;
    }
    rc = write_files(vmm, &w, type, job->dirty, state_path, mem_path, err, errlen);
    if (!rc)
        log_info("snapshot (%s) written to %s and %s", type == SNAPSHOT_FULL ? "Full" : "Diff",
                 state_path, mem_path);
out:
    snap_writer_free(&w);
    if (job) {
        free(job->vcpus);
        free(job->dirty);
    }
    free(job);
    return rc;
}

static int check_layout(struct vmm *vmm, const struct snapshot_image *img, char *err, size_t errlen)
{
    bool same = img->mem_size == vmm->mem.size && img->nregions == vmm->mem.nregions;

    for (unsigned i = 0; same && i < img->nregions; i++)
        same = img->regions[i].gpa == vmm->mem.regions[i].gpa &&
               img->regions[i].size == vmm->mem.regions[i].size &&
               img->regions[i].file_offset == vmm->mem.regions[i].file_offset;
    if (!same) {
        snprintf(err, errlen, "the memory layout does not match the configuration's RAM");
        return -EBADMSG;
    }
    if (img->nvcpus != vmm->nvcpus) {
        snprintf(err, errlen, "the state has %u vCPUs, the configuration %u", img->nvcpus,
                 vmm->nvcpus);
        return -EBADMSG;
    }
    return 0;
}

int snapshot_restore_state(struct vmm *vmm, const struct snapshot_image *img,
                           const struct snapshot_load_opts *opts, char *err, size_t errlen)
{
    struct snap_reader devices = img->devices;
    int rc;

    if ((rc = check_layout(vmm, img, err, errlen)))
        return rc;
    for (unsigned i = 0; i < img->nvcpus; i++)
        if ((rc = vcpu_state_check_cpuid(&img->vcpus[i], vmm->kvm.cpuid, err, errlen)))
            return rc;
    if ((rc = vm_state_restore(&vmm->kvm, &img->vm, opts->clock_realtime, err, errlen)))
        return rc;
    for (unsigned i = 0; i < img->nvcpus; i++)
        if ((rc = vcpu_state_restore(&vmm->vcpus[i], &img->vcpus[i], err, errlen)))
            return rc;
    rc = vmm_devices_load(vmm, &devices);
    if (!rc)
        rc = snap_section_leave(&devices);
    if (rc)
        snprintf(err, errlen, "device state: %s",
                 devices.what ? devices.what : strerror(rc < 0 ? -rc : rc));
    return rc;
}
