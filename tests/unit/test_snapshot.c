/* Unit tests: the snapshot state file (container, sections, hostile
 * files), the CPUID host check, the memory file (sparse Full, Diff over
 * Full, MAP_PRIVATE restore) and the API bodies. No KVM. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "api.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

/* A well-formed state file: one vCPU, 4 MiB of RAM, a device section. */
static void build_state(struct snap_writer *w, unsigned nvcpus)
{
    static struct vcpu_state vs;
    struct vm_state vm = {0};
    const char *json = "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":4}}";
    size_t m;

    memset(&vs, 0, sizeof(vs));
    vs.regs.rip = 0x1234;
    vs.nmsrs = 2;
    vs.msrs[0].index = 0x10;
    vs.msrs[1].index = 0xc0000080;
    vs.ncpuid = 1;
    vs.cpuid[0].function = 1;
    vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;

    snap_writer_init(w);
    snapshot_file_begin(w);
    m = snap_section_begin(w, SNAPSHOT_TAG_CONFIG);
    snap_put_bytes(w, json, strlen(json));
    snap_section_end(w, m);
    m = snap_section_begin(w, SNAPSHOT_TAG_MEM);
    snap_put_u64(w, 4 << 20);
    snap_put_u32(w, 1);
    snap_put_u64(w, 0);
    snap_put_u64(w, 4 << 20);
    snap_put_u64(w, 0);
    snap_section_end(w, m);
    m = snap_section_begin(w, SNAPSHOT_TAG_VM);
    vm_state_put(w, &vm);
    snap_section_end(w, m);
    for (unsigned i = 0; i < nvcpus; i++) {
        m = snap_section_begin(w, SNAPSHOT_TAG_VCPU);
        vcpu_state_put(w, &vs);
        snap_section_end(w, m);
    }
    m = snap_section_begin(w, SNAPSHOT_TAG_DEVICES);
    snap_put_u32(w, 0xdead);
    snap_section_end(w, m);
    cr_assert_eq(snapshot_file_finish(w), 0);
}

Test(snapshot, state_file_round_trip)
{
    struct snap_writer w;
    struct snapshot_image img;

    build_state(&w, 2);
    cr_assert_eq(snapshot_image_parse(w.buf, w.len, &img, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(img.nvcpus, 2);
    cr_assert_eq(img.vcpus[1].regs.rip, 0x1234);
    cr_assert_eq(img.vcpus[0].nmsrs, 2);
    cr_assert_eq(img.vcpus[0].msrs[1].index, 0xc0000080);
    cr_assert_eq(img.mem_size, 4 << 20);
    cr_assert_eq(img.devices.len, 4);
    cr_assert(!strncmp(img.config_json, "{\"machine-config\"", 17));
    snapshot_image_free(&img);
    snap_writer_free(&w);
}

static int parse_err(const uint8_t *buf, size_t len)
{
    struct snapshot_image img;
    int rc;

    err[0] = '\0';
    rc = snapshot_image_parse(buf, len, &img, err, sizeof(err));
    if (!rc)
        snapshot_image_free(&img);
    return rc;
}

Test(snapshot, wrong_magic_is_refused)
{
    struct snap_writer w;

    build_state(&w, 1);
    w.buf[0] = 'X';
    cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG);
    cr_assert(strstr(err, "not a flint snapshot"), "%s", err);
    snap_writer_free(&w);
}

Test(snapshot, other_version_is_refused_naming_it)
{
    struct snap_writer w;

    build_state(&w, 1);
    w.buf[8] = 7;
    cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG);
    cr_assert(strstr(err, "version 7") && strstr(err, "version 1"), "%s", err);
    snap_writer_free(&w);
}

Test(snapshot, every_flipped_bit_is_caught_by_the_checksum)
{
    struct snap_writer w;

    build_state(&w, 1);
    /* Past the header: a flip there is a magic, version or length error. */
    for (size_t i = SNAPSHOT_HEADER_LEN; i < w.len; i += 97) {
        w.buf[i] ^= 0x10;
        cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG, "byte %zu", i);
        cr_assert(strstr(err, "checksum"), "byte %zu: %s", i, err);
        w.buf[i] ^= 0x10;
    }
    cr_assert_eq(parse_err(w.buf, w.len), 0, "%s", err);
    snap_writer_free(&w);
}

Test(snapshot, truncated_file_is_refused)
{
    struct snap_writer w;

    build_state(&w, 1);
    for (size_t len = 0; len < w.len; len += len < 64 ? 1 : 1013) {
        cr_assert_eq(parse_err(w.buf, len), -EBADMSG, "length %zu", len);
        cr_assert(len < 8 || strstr(err, "truncated"), "length %zu: %s", len, err);
    }
    snap_writer_free(&w);
}

Test(snapshot, junk_after_the_checksum_is_refused)
{
    struct snap_writer w;

    build_state(&w, 1);
    snap_put_u8(&w, 0);
    cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG);
    cr_assert(strstr(err, "junk"), "%s", err);
    snap_writer_free(&w);
}

/* A payload that passes the checksum but is malformed inside. */
static void seal(struct snap_writer *w, void (*body)(struct snap_writer *))
{
    snap_writer_init(w);
    snapshot_file_begin(w);
    body(w);
    cr_assert_eq(snapshot_file_finish(w), 0);
}

static void no_vcpus(struct snap_writer *w)
{
    size_t m = snap_section_begin(w, SNAPSHOT_TAG_CONFIG);
    snap_put_bytes(w, "{}", 2);
    snap_section_end(w, m);
    m = snap_section_begin(w, SNAPSHOT_TAG_MEM);
    snap_put_u64(w, 4 << 20);
    snap_put_u32(w, 1);
    snap_put_u64(w, 0);
    snap_put_u64(w, 4 << 20);
    snap_put_u64(w, 0);
    snap_section_end(w, m);
    m = snap_section_begin(w, SNAPSHOT_TAG_VM);
    snap_put_u32(w, 1); /* far too short */
    snap_section_end(w, m);
}

static void bad_regions(struct snap_writer *w)
{
    size_t m = snap_section_begin(w, SNAPSHOT_TAG_CONFIG);
    snap_put_bytes(w, "{}", 2);
    snap_section_end(w, m);
    m = snap_section_begin(w, SNAPSHOT_TAG_MEM);
    snap_put_u64(w, 4 << 20);
    snap_put_u32(w, 9);
    snap_section_end(w, m);
}

Test(snapshot, malformed_sections_are_named)
{
    struct snap_writer w;

    seal(&w, no_vcpus);
    cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG);
    cr_assert(strstr(err, "malformed state"), "%s", err);
    snap_writer_free(&w);
    seal(&w, bad_regions);
    cr_assert_eq(parse_err(w.buf, w.len), -EBADMSG);
    cr_assert(strstr(err, "memory region count"), "%s", err);
    snap_writer_free(&w);
}

Test(snapshot, vcpu_counts_beyond_the_limits_are_refused)
{
    static struct vcpu_state vs;
    struct snap_writer w;
    struct snap_reader r;

    memset(&vs, 0, sizeof(vs));
    vs.ncpuid = 1;
    snap_writer_init(&w);
    vcpu_state_put(&w, &vs);
    /* nmsrs sits 8 bytes before the end of the fixed part: after tsc_khz. */
    size_t at = w.len - 4 - sizeof(vs.cpuid[0]) - 4;
    w.buf[at + 2] = 0x10; /* 0x100000 MSRs */
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vcpu_state_get(&r, &vs), -EBADMSG);
    cr_assert_str_eq(r.what, "vCPU MSR count");
    w.buf[at + 2] = 0;
    w.buf[w.len - sizeof(vs.cpuid[0]) - 4 + 1] = 0x10; /* 4097 CPUID entries */
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vcpu_state_get(&r, &vs), -EBADMSG);
    cr_assert_str_eq(r.what, "vCPU CPUID entry count");
    snap_writer_free(&w);
}

Test(snapshot, cpuid_features_the_host_lacks_are_refused)
{
    static struct vcpu_state s;
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[2];
    } host = {.h.nent = 2};

    memset(&s, 0, sizeof(s));
    host.e[0] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 0x1, .edx = 0xff};
    host.e[1] = (struct kvm_cpuid_entry2){.function = 7, .ebx = 0xf0};
    s.ncpuid = 2;
    /* The hypervisor bit is flint's own and never counts. */
    s.cpuid[0] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 0x1 | 1u << 31, .edx = 0x0f};
    s.cpuid[1] = (struct kvm_cpuid_entry2){.function = 7, .ebx = 0x30};
    cr_assert_eq(vcpu_state_check_cpuid(&s, &host.h, err, sizeof(err)), 0, "%s", err);
    s.cpuid[1].ebx = 0x130;
    cr_assert_eq(vcpu_state_check_cpuid(&s, &host.h, err, sizeof(err)), -ENOTSUP);
    cr_assert(strstr(err, "0x7.0 ebx") && strstr(err, "0x00000100"), "%s", err);
}

/* OSXSAVE and OSPKE mirror the guest's CR4 (a Linux guest sets both): a
 * snapshot of it restores on the host it was taken on, whose supported
 * CPUID never has them; the real features next to them still count. */
Test(snapshot, cpuid_bits_mirroring_cr4_do_not_count)
{
    static struct vcpu_state s;
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[2];
    } host = {.h.nent = 2};

    memset(&s, 0, sizeof(s));
    host.e[0] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 1u << 26}; /* XSAVE */
    host.e[1] = (struct kvm_cpuid_entry2){.function = 7, .ecx = 1u << 3};  /* PKU */
    s.ncpuid = 2;
    s.cpuid[0] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 1u << 26 | 1u << 27};
    s.cpuid[1] = (struct kvm_cpuid_entry2){.function = 7, .ecx = 1u << 3 | 1u << 4};
    cr_assert_eq(vcpu_state_check_cpuid(&s, &host.h, err, sizeof(err)), 0, "%s", err);
    s.cpuid[1].ecx |= 1u << 5; /* WAITPKG, which this host lacks */
    cr_assert_eq(vcpu_state_check_cpuid(&s, &host.h, err, sizeof(err)), -ENOTSUP);
    cr_assert(strstr(err, "0x7.0 ecx") && strstr(err, "0x00000020"), "%s", err);
}

/* ---- memory ---- */

static int tmpfile_fd(void)
{
    char path[] = "/tmp/flint-snap-test-XXXXXX";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

static uint64_t data_bytes(int fd, off_t size)
{
    uint64_t total = 0;
    off_t pos = 0;

    while (pos < size) {
        off_t d = lseek(fd, pos, SEEK_DATA), h;
        if (d < 0)
            break;
        h = lseek(fd, d, SEEK_HOLE);
        total += (uint64_t)(h - d);
        pos = h;
    }
    return total;
}

Test(snapshot, full_leaves_zero_pages_as_holes)
{
    struct guest_mem mem;
    uint8_t page[4096];
    int fd = tmpfile_fd();

    cr_assert_eq(guest_mem_create(&mem, 8 << 20), 0);
    memset(page, 0xa5, sizeof(page));
    cr_assert_eq(guest_mem_write(&mem, 0x3000, page, 4096), 0);
    cr_assert_eq(guest_mem_write(&mem, 0x500000, page, 100), 0);
    cr_assert_eq(snapshot_mem_write(&mem, fd, SNAPSHOT_FULL, NULL), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 8 << 20);
    /* Two pages of data (a file system may round up to its block size). */
    cr_assert_leq(data_bytes(fd, st.st_size), 2 * 65536, "%llu",
                  (unsigned long long)data_bytes(fd, st.st_size));
    uint8_t back[4096];
    cr_assert_eq(pread(fd, back, 4096, 0x3000), 4096);
    cr_assert_eq(memcmp(back, page, 4096), 0);
    cr_assert_eq(pread(fd, back, 4096, 0x4000), 4096);
    cr_assert_eq(back[0] | back[4095], 0);
    guest_mem_destroy(&mem);
    close(fd);
}

Test(snapshot, full_does_not_allocate_untouched_ram)
{
    struct guest_mem mem;
    struct stat st;
    uint8_t page[4096];
    int fd = tmpfile_fd();

    cr_assert_eq(guest_mem_create(&mem, 64 << 20), 0);
    memset(page, 1, sizeof(page));
    cr_assert_eq(guest_mem_write(&mem, 0x2000000, page, 4096), 0);
    cr_assert_eq(snapshot_mem_write(&mem, fd, SNAPSHOT_FULL, NULL), 0);
    cr_assert_eq(fstat(mem.fd, &st), 0);
    cr_assert_lt((uint64_t)st.st_blocks * 512, 1 << 20, "reading RAM allocated %lld bytes",
                 (long long)st.st_blocks * 512);
    uint8_t back[4096];
    cr_assert_eq(pread(fd, back, 4096, 0x2000000), 4096);
    cr_assert_eq(memcmp(back, page, 4096), 0);
    guest_mem_destroy(&mem);
    close(fd);
}

/* Copy the data ranges of a Diff file over a Full file. */
static void apply_diff(int diff, int full, off_t size)
{
    static uint8_t buf[1 << 16];
    off_t pos = 0;

    while (pos < size) {
        off_t d = lseek(diff, pos, SEEK_DATA), h;
        if (d < 0)
            break;
        h = lseek(diff, d, SEEK_HOLE);
        for (off_t o = d; o < h; o += (off_t)sizeof(buf)) {
            size_t n = h - o < (off_t)sizeof(buf) ? (size_t)(h - o) : sizeof(buf);
            cr_assert_eq(pread(diff, buf, n, o), (ssize_t)n);
            cr_assert_eq(pwrite(full, buf, n, o), (ssize_t)n);
        }
        pos = h;
    }
}

Test(snapshot, full_then_diff_reproduces_memory)
{
    struct guest_mem mem;
    uint64_t *dirty;
    uint8_t page[4096];
    int full = tmpfile_fd(), diff = tmpfile_fd();
    size_t words;

    cr_assert_eq(guest_mem_create(&mem, 4 << 20), 0);
    memset(page, 0x11, sizeof(page));
    for (gpa_t a = 0; a < (4 << 20); a += 0x10000)
        cr_assert_eq(guest_mem_write(&mem, a, page, 4096), 0);
    cr_assert_eq(snapshot_mem_write(&mem, full, SNAPSHOT_FULL, NULL), 0);

    cr_assert_eq(guest_mem_track_dirty(&mem), 0);
    memset(page, 0x22, sizeof(page));
    cr_assert_eq(guest_mem_write(&mem, 0x20000, page, 4096), 0); /* changed */
    cr_assert_eq(guest_mem_write(&mem, 0x21000, page, 10), 0);   /* new */
    memset(page, 0, sizeof(page));
    cr_assert_eq(guest_mem_write(&mem, 0x30000, page, 4096), 0); /* cleared */
    words = guest_mem_bitmap_bytes(mem.size) / 8;
    dirty = calloc(words, 8);
    guest_mem_take_dirty(&mem, dirty);
    cr_assert_eq(dirty[0x20000 / 4096 / 64] >> (0x20000 / 4096 % 64) & 1, 1);
    cr_assert_eq(snapshot_mem_write(&mem, diff, SNAPSHOT_DIFF, dirty), 0);
    /* Three pages, whatever the file system's block size rounds to. */
    cr_assert_leq(data_bytes(diff, 4 << 20), 3 * 65536);

    apply_diff(diff, full, 4 << 20);
    uint8_t *back = malloc(4 << 20);
    cr_assert_eq(pread(full, back, 4 << 20, 0), 4 << 20);
    cr_assert_eq(memcmp(back, mem.map, 4 << 20), 0, "Full + Diff differs from memory");
    free(back);
    free(dirty);
    guest_mem_destroy(&mem);
    close(full);
    close(diff);
}

Test(snapshot, diff_needs_a_bitmap)
{
    struct guest_mem mem;
    int fd = tmpfile_fd();

    cr_assert_eq(guest_mem_create(&mem, 4 << 20), 0);
    cr_assert_eq(snapshot_mem_write(&mem, fd, SNAPSHOT_DIFF, NULL), -EINVAL);
    guest_mem_destroy(&mem);
    close(fd);
}

Test(snapshot, restore_maps_the_file_privately)
{
    struct guest_mem mem, back;
    uint8_t page[4096], got[4096];
    int fd = tmpfile_fd();

    cr_assert_eq(guest_mem_create(&mem, 4 << 20), 0);
    memset(page, 0x5a, sizeof(page));
    cr_assert_eq(guest_mem_write(&mem, 0x7000, page, 4096), 0);
    cr_assert_eq(snapshot_mem_write(&mem, fd, SNAPSHOT_FULL, NULL), 0);
    cr_assert_eq(guest_mem_map_file(&back, dup(fd), 4 << 20), 0);
    cr_assert_eq(guest_mem_read(&back, 0x7000, got, 4096), 0);
    cr_assert_eq(memcmp(got, page, 4096), 0);
    memset(page, 0x77, sizeof(page));
    cr_assert_eq(guest_mem_write(&back, 0x7000, page, 4096), 0);
    cr_assert_eq(pread(fd, got, 4096, 0x7000), 4096);
    cr_assert_eq(got[0], 0x5a, "a restored VM's write reached the snapshot");
    cr_assert_eq(guest_mem_map_file(&back, dup(fd), 4097), -EINVAL);
    guest_mem_destroy(&back);
    guest_mem_destroy(&mem);
    close(fd);
}

/* ---- API bodies ---- */

static json_t *body(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);

    cr_assert_not_null(j, "%s", s);
    return j;
}

static int create_body(const char *s)
{
    enum snapshot_type t;
    const char *a, *b;
    json_t *j = body(s);
    int rc = api_parse_snapshot_create(j, &t, &a, &b, err, sizeof(err));

    json_decref(j);
    return rc;
}

Test(snapshot, create_body)
{
    cr_assert_eq(create_body("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"), 0, "%s", err);
    cr_assert_eq(
        create_body("{\"snapshot_type\":\"Diff\",\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"),
        0);
    cr_assert_eq(
        create_body("{\"snapshot_type\":\"Half\",\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"),
        -EINVAL);
    cr_assert(strstr(err, "Full or Diff"), "%s", err);
    cr_assert_eq(create_body("{\"snapshot_path\":\"s\"}"), -EINVAL);
    cr_assert(strstr(err, "mem_file_path"), "%s", err);
    cr_assert_eq(create_body("{\"snapshot_path\":\"s\",\"mem_file_path\":\"s\"}"), -EINVAL);
    cr_assert_eq(create_body("{\"snapshot_path\":1,\"mem_file_path\":\"m\"}"), -EINVAL);
    cr_assert_eq(create_body("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"x\":1}"), -EINVAL);
    cr_assert(strstr(err, "unknown field 'x'"), "%s", err);
}

static struct snapshot_load_req req;
static json_t *req_body; /* req's strings point into it */

static int load_body(const char *s)
{
    json_decref(req_body);
    req_body = body(s);
    return api_parse_snapshot_load(req_body, &req, err, sizeof(err));
}

Test(snapshot, load_body)
{
    cr_assert_eq(
        load_body("{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"File\","
                  "\"backend_path\":\"m\"},\"resume_vm\":true,\"track_dirty_pages\":true,"
                  "\"clock_realtime\":true,"
                  "\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":"
                  "\"tap9\"}],\"vsock_override\":{\"uds_path\":\"/tmp/v.sock\"},"
                  "\"drive_overrides\":[{\"drive_id\":\"root\",\"path_on_host\":\"/d\"}]}"),
        0, "%s", err);
    cr_assert(req.resume_vm && req.track_dirty_pages && req.clock_realtime);
    cr_assert_eq(req.nnets, 1);
    cr_assert_str_eq(req.nets[0].path, "tap9");
    cr_assert_eq(req.ndrives, 1);
    cr_assert_str_eq(req.drives[0].id, "root");
    cr_assert_str_eq(req.vsock_uds_path, "/tmp/v.sock");
    /* The deprecated alias. */
    cr_assert_eq(load_body("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"), 0, "%s", err);
    cr_assert_str_eq(req.mem_path, "m");
}

Test(snapshot, load_body_hostile)
{
    static const char *const bad[] = {
        "{}",
        "{\"snapshot_path\":\"s\"}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"mem_backend\":{\"backend_type\":"
        "\"File\",\"backend_path\":\"m\"}}",
        "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"Disk\",\"backend_path\":"
        "\"m\"}}",
        "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"File\"}}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"resume_vm\":\"yes\"}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":{}}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":[{\"iface_id\":"
        "\"a\"}]}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":[{\"iface_id\":"
        "\"a\",\"host_dev_name\":\"a-name-far-too-long-for-a-tap\"}]}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"drive_overrides\":[{\"drive_id\":"
        "\"a\",\"path_on_host\":\"x\"},{\"drive_id\":\"a\",\"path_on_host\":\"y\"}]}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"drive_overrides\":[{\"drive_id\":"
        "\"../x\",\"path_on_host\":\"x\"}]}",
        "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"vsock_override\":{\"path\":\"x\"}}",
        "{\"snapshot_path\":\"\",\"mem_file_path\":\"m\"}",
        "[1]",
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        cr_assert_eq(load_body(bad[i]), -EINVAL, "accepted: %s", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for %s", bad[i]);
    }
    cr_assert_eq(load_body("{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"Uffd\","
                           "\"backend_path\":\"/u\"}}"),
                 0, "%s", err);
    cr_assert_str_eq(req.uffd_path, "/u");
    cr_assert_null(req.mem_path);
}

/* ---- phases, through the router ---- */

static int loads;

static int stub_load(void *opaque, const struct snapshot_load_req *r, char *e, size_t n)
{
    (void)opaque;
    (void)r;
    (void)e;
    (void)n;
    loads++;
    return 0;
}

static int call(struct api_ctl *c, enum api_method m, const char *path, const char *b)
{
    struct api_response resp = {0};

    api_handle(c, m, path, b, b ? strlen(b) : 0, &resp);
    if (resp.body)
        snprintf(err, sizeof(err), "%s", resp.body);
    free(resp.body);
    return resp.status;
}

Test(snapshot, load_only_in_a_fresh_process)
{
    static const struct api_vm_ops ops = {.load_snapshot = stub_load};
    struct vm_config cfg;
    struct api_ctl c = {.cfg = &cfg, .ops = &ops};
    const char *load = "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}";

    config_init(&cfg);
    cr_assert_eq(
        call(&c, API_METHOD_PUT, "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":64}"), 204);
    cr_assert_eq(call(&c, API_METHOD_PUT, "/snapshot/load", load), 400);
    cr_assert(strstr(err, "fresh"), "%s", err);
    cr_assert_eq(loads, 0);

    struct api_ctl fresh = {.cfg = &cfg, .ops = &ops};
    cr_assert_eq(call(&fresh, API_METHOD_PUT, "/snapshot/load", load), 204, "%s", err);
    cr_assert_eq(loads, 1);
    cr_assert_eq(fresh.state, API_VM_PAUSED);
    config_free(&cfg);
}

Test(snapshot, create_only_while_paused)
{
    static const struct api_vm_ops ops = {.load_snapshot = stub_load};
    struct vm_config cfg;
    struct api_ctl c = {.cfg = &cfg, .ops = &ops};
    const char *create = "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}";

    config_init(&cfg);
    cr_assert_eq(call(&c, API_METHOD_PUT, "/snapshot/create", create), 400);
    c.state = API_VM_RUNNING;
    cr_assert_eq(call(&c, API_METHOD_PUT, "/snapshot/create", create), 400);
    cr_assert(strstr(err, "paused"), "%s", err);
    config_free(&cfg);
}
