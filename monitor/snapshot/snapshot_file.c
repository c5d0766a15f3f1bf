/*
 * snapshot_file.c - the state file's container (header, payload, CRC) and
 * the decoding of its sections. All of it runs before anything of a VM
 * exists, so a bad file is refused with nothing half-restored.
 */
#include "snapshot.h"
#include "config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void snapshot_file_begin(struct snap_writer *w)
{
    snap_put_bytes(w, SNAPSHOT_MAGIC, 8);
    snap_put_u32(w, SNAPSHOT_VERSION);
    snap_put_u32(w, 0);
    snap_put_u64(w, 0); /* the payload length, filled in by finish */
}

int snapshot_file_finish(struct snap_writer *w)
{
    if (w->err)
        return w->err;
    put_le64(w->buf + 16, w->len - SNAPSHOT_HEADER_LEN);
    snap_put_u64(w, snap_crc64(0, w->buf, w->len));
    return w->err;
}

int snapshot_file_open(const void *buf, size_t len, struct snap_reader *payload, char *err,
                       size_t errlen)
{
    const uint8_t *p = buf;
    uint32_t version;
    uint64_t plen;

    if (len < 8 || memcmp(p, SNAPSHOT_MAGIC, 8))
        return bad(err, errlen, "not a flint snapshot state file (no %s magic)", SNAPSHOT_MAGIC);
    if (len < SNAPSHOT_HEADER_LEN + SNAPSHOT_CRC_LEN)
        return bad(err, errlen, "truncated: %zu bytes, shorter than a header", len);
    version = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    if (version != SNAPSHOT_VERSION)
        return bad(err, errlen, "format version %u, but this flint reads only version %u snapshots",
                   version, SNAPSHOT_VERSION);
    plen = le64(p + 16);
    if (plen > len - SNAPSHOT_HEADER_LEN - SNAPSHOT_CRC_LEN)
        return bad(err, errlen, "truncated: the header says %llu payload bytes, the file has %zu",
                   (unsigned long long)plen, len - SNAPSHOT_HEADER_LEN - SNAPSHOT_CRC_LEN);
    if (plen < len - SNAPSHOT_HEADER_LEN - SNAPSHOT_CRC_LEN)
        return bad(err, errlen, "%zu bytes of junk after the checksum",
                   (size_t)(len - SNAPSHOT_HEADER_LEN - SNAPSHOT_CRC_LEN - plen));
    if (snap_crc64(0, p, SNAPSHOT_HEADER_LEN + plen) != le64(p + SNAPSHOT_HEADER_LEN + plen))
        return bad(err, errlen, "checksum mismatch: the file is corrupted");
    snap_reader_init(payload, p + SNAPSHOT_HEADER_LEN, (size_t)plen);
    return 0;
}

static int parse_mem(struct snap_reader *r, struct snapshot_image *img)
{
    uint64_t total = 0, file_end = 0;

    img->mem_size = snap_get_u64(r);
    img->nregions = snap_get_u32(r);
    if (snap_error(r) || img->nregions == 0 || img->nregions > GUEST_MEM_MAX_REGIONS) {
        snap_fail(r, "memory region count");
        return snap_error(r);
    }
    for (unsigned i = 0; i < img->nregions; i++) {
        struct guest_region *g = &img->regions[i];
        g->gpa = snap_get_u64(r);
        g->size = snap_get_u64(r);
        g->file_offset = snap_get_u64(r);
        /* Regions back to back in the file, page-aligned, in order. */
        if (!snap_error(r) &&
            (g->file_offset != file_end || g->size == 0 || g->size % SNAPSHOT_PAGE ||
             g->gpa % SNAPSHOT_PAGE || g->size > GUEST_MEM_MAX_BYTES))
            snap_fail(r, "memory region");
        file_end += g->size;
        total += g->size;
    }
    if (!snap_error(r) &&
        (total != img->mem_size || total < GUEST_MEM_MIN_BYTES || total > GUEST_MEM_MAX_BYTES))
        snap_fail(r, "memory size");
    return snap_error(r);
}

/* Error messages name the innermost part that failed. */
static int leave_into(struct snap_reader *r, struct snap_reader *sec)
{
    if (snap_section_leave(sec)) {
        snap_fail(r, sec->what ? sec->what : "section");
        return -EBADMSG;
    }
    return 0;
}

static int parse_vcpus(struct snap_reader *r, struct snapshot_image *img)
{
    img->vcpus = calloc(CONFIG_MAX_VCPUS, sizeof(*img->vcpus));
    if (!img->vcpus)
        return -ENOMEM;
    while (snap_peek_tag(r) == SNAPSHOT_TAG_VCPU) {
        struct snap_reader sec;
        if (img->nvcpus == CONFIG_MAX_VCPUS) {
            snap_fail(r, "vCPU count (more than flint supports)");
            return -EBADMSG;
        }
        if (snap_section_enter(r, SNAPSHOT_TAG_VCPU, &sec, "vCPU state"))
            return -EBADMSG;
        vcpu_state_get(&sec, &img->vcpus[img->nvcpus]);
        if (leave_into(r, &sec))
            return -EBADMSG;
        img->nvcpus++;
    }
    if (img->nvcpus == 0) {
        snap_fail(r, "vCPU state (none)");
        return -EBADMSG;
    }
    return 0;
}

static int parse_payload(struct snap_reader *r, struct snapshot_image *img)
{
    struct snap_reader sec;
    int rc;

    if (snap_section_enter(r, SNAPSHOT_TAG_CONFIG, &sec, "configuration"))
        return -EBADMSG;
    img->config_json = (const char *)sec.p;
    img->config_len = sec.len;
    if (img->config_len == 0 || memchr(sec.p, 0, sec.len)) {
        snap_fail(r, "configuration");
        return -EBADMSG;
    }
    if (snap_section_enter(r, SNAPSHOT_TAG_MEM, &sec, "memory layout"))
        return -EBADMSG;
    parse_mem(&sec, img);
    if (leave_into(r, &sec))
        return -EBADMSG;
    if (snap_section_enter(r, SNAPSHOT_TAG_VM, &sec, "VM state"))
        return -EBADMSG;
    vm_state_get(&sec, &img->vm);
    if (leave_into(r, &sec))
        return -EBADMSG;
    if ((rc = parse_vcpus(r, img)))
        return rc;
    if (snap_section_enter(r, SNAPSHOT_TAG_DEVICES, &img->devices, "device state"))
        return -EBADMSG;
    if (r->off != r->len) {
        snap_fail(r, "payload (bytes after the device state)");
        return -EBADMSG;
    }
    return 0;
}

int snapshot_image_parse(const void *buf, size_t len, struct snapshot_image *img, char *err,
                         size_t errlen)
{
    struct snap_reader r;
    int rc;

    memset(img, 0, sizeof(*img));
    if ((rc = snapshot_file_open(buf, len, &r, err, errlen)))
        return rc;
    rc = parse_payload(&r, img);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory decoding the state file");
    else if (rc)
        snprintf(err, errlen, "malformed state: %s", r.what ? r.what : "?");
    if (rc)
        snapshot_image_free(img);
    return rc;
}

void snapshot_image_free(struct snapshot_image *img)
{
    free(img->vcpus);
    memset(img, 0, sizeof(*img));
}

int snapshot_file_read(const char *path, void **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SNAPSHOT_MAX_FILE) {
        rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        snprintf(err, errlen, "%s: %s", path,
                 rc == -EFBIG ? "too large for a state file" : "not a regular file");
    } else if (!(*buf = malloc((size_t)st.st_size + 1))) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
    } else {
        ssize_t n = pread(fd, *buf, (size_t)st.st_size, 0);
        if (n != st.st_size) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(err, errlen, "%s: read failed", path);
        }
        *len = (size_t)st.st_size;
    }
    if (fd >= 0)
        close(fd);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}
