/*
 * End-to-end tests: real Linux guests. The kernel is the one
 * tools/build-kernel builds (its directory in $FLINT_LINUX_KERNEL_DIR,
 * which tools/test sets); the initramfs is busybox-static plus flint's
 * init (tools/initramfs/init) and the static vsock helper
 * (tests/e2e/linux/vsock_guest.c). init runs flint.cmd="..." from the
 * command line, prints "flint-init: command exited with status N" and
 * reboots, so flint exits 0.
 *
 * Covered: vmlinux (PVH and, with the note hidden, the 64-bit entry) and
 * bzImage boot to init; nproc equals --vcpus; smt gives two threads per
 * core; an ext4 root on virtio-blk
 * written by the guest and read back on the host; ping and HTTP both ways
 * over a tap; vsock both ways with checked bytes; reboot and panic end
 * flint with 0; the boot timer; a drive's image swapped under the guest
 * (PATCH /drives) with the kernel noticing the new size; images or sizes
 * flint must refuse; the control API driven with curl as
 * Firecracker's getting-started guide does; and a snapshot taken after
 * init, restored in a new process on another tap (network_overrides),
 * that then pings, writes its ext4 root and talks over vsock.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The nested sandbox is 50-200x slower than hardware: a boot there takes
 * tens of seconds. */
#define LINUX_TIMEOUT_S 120.0
#define WAIT_S          180.0 /* host side: for the guest to answer */
/* flint's default command line (config.h CONFIG_DEFAULT_CMDLINE) */
#define CMDLINE_BASE     "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd"
#define INIT_OK          "flint-init: command exited with status 0"
#define HOST_IP          "10.0.1.1"
#define GUEST_IP         "10.0.1.2"
#define TAP              "flintl0"
#define VSOCK_GUEST_PORT 5000
#define VSOCK_HOST_PORT  6000
#define VSOCK_BYTES      (1u << 20)

extern char **environ;

/* ---- the kernel, the initramfs and running flint ---- */

static char *kernel(const char *name)
{
    const char *dir = getenv("FLINT_LINUX_KERNEL_DIR");
    char *path;

    cr_assert(dir && *dir,
              "FLINT_LINUX_KERNEL_DIR is not set: build the guest kernel with tools/build-kernel "
              "and set it to the directory printed last (tools/test does both)");
    cr_assert_geq(asprintf(&path, "%s/%s", dir, name), 0);
    cr_assert_eq(access(path, R_OK), 0, "%s: %s (run tools/build-kernel)", path, strerror(errno));
    return path;
}

static const char *initramfs(void)
{
    cr_assert_eq(access(LINUX_INITRAMFS, R_OK), 0,
                 "%s is missing: install busybox-static (tools/install-deps) and rebuild",
                 LINUX_INITRAMFS);
    return LINUX_INITRAMFS;
}

/*
 * Run flint with the arguments after "run", NULL-terminated.
 *
 * One known problem is retried once, loudly: in the nested sandbox, about
 * one Linux boot in thirty stops for good with every vCPU halted inside
 * KVM_RUN (kvm_vcpu_block) and flint's VMM thread idle in io_uring_enter,
 * always during the serial and i8042 probes, as if an interrupt the
 * guest waits for never arrives. QEMU microvm booting the same kernel in
 * the same sandbox did not show it in the few boots tried, so it is not
 * proven to be the sandbox's; it is not understood either (README, "Known
 * problems"). A second hang fails the test.
 */
static struct flint_result flint_run(const char *first, ...)
{
    char *argv[40];
    int n = 0;
    va_list ap;

    argv[n++] = FLINT_BIN;
    argv[n++] = "run";
    argv[n++] = (char *)first;
    va_start(ap, first);
    while (n < 39 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    struct flint_result r = run_cmd(argv, LINUX_TIMEOUT_S);
    if (r.timed_out) {
        size_t len = strlen(r.out);
        cr_log_warn("KNOWN HANG: the guest stopped; running it once more. Its console "
                    "ended with:\n%s\nflint's threads:\n%s",
                    r.out + (len > 600 ? len - 600 : 0), r.err);
        fprintf(stderr, "test_linux: KNOWN HANG in a Linux boot; retried once\n");
        flint_result_free(&r);
        r = run_cmd(argv, LINUX_TIMEOUT_S);
    }
    return r;
}

/* The default command line plus `extra`. */
static char *cmdline(const char *fmt, ...)
{
    char *extra, *line;
    va_list ap;

    va_start(ap, fmt);
    cr_assert_geq(vasprintf(&extra, fmt, ap), 0);
    va_end(ap);
    cr_assert_geq(asprintf(&line, "%s %s", CMDLINE_BASE, extra), 0);
    free(extra);
    return line;
}

static void expect_in(const char *haystack, const char *needle, const char *which)
{
    cr_assert(strstr(haystack, needle) != NULL, "%s lacks '%s':\n%s", which, needle, haystack);
}

/* flint exited 0 after init ran its command successfully and rebooted. */
static void expect_clean_run(const struct flint_result *r)
{
    cr_assert_not(r->timed_out, "flint did not finish in %.0f s\nstdout:\n%s\nstderr:\n%s",
                  LINUX_TIMEOUT_S, r->out, r->err);
    cr_assert_eq(r->status, 0, "exit status %d\nstdout:\n%s\nstderr:\n%s", r->status, r->out,
                 r->err);
    expect_in(r->out, INIT_OK, "guest console");
    expect_in(r->out, "reboot: Restarting system", "guest console");
}

/* Run `sh -c script` on the host; returns its exit status. */
static int host_sh(const char *fmt, ...)
{
    char *script;
    va_list ap;

    va_start(ap, fmt);
    cr_assert_geq(vasprintf(&script, fmt, ap), 0);
    va_end(ap);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct flint_result r = run_cmd(argv, 120);
    if (r.status != 0)
        cr_log_warn("host command failed (%d): %s\n%s%s", r.status, script, r.out, r.err);
    int status = r.timed_out ? -1 : r.status;
    flint_result_free(&r);
    free(script);
    return status;
}

/* `s` with '"' and '\\' escaped for a JSON string (static buffer). */
static const char *json_escaped(const char *s)
{
    static char buf[2048];
    size_t o = 0;

    for (; *s && o + 3 < sizeof(buf); s++) {
        if (*s == '"' || *s == '\\')
            buf[o++] = '\\';
        buf[o++] = *s;
    }
    buf[o] = '\0';
    return buf;
}

static char *temp_path(const char *what)
{
    char *path;
    cr_assert_geq(asprintf(&path, "/tmp/flint-linux-%s-%d", what, getpid()), 0);
    return path;
}

/* The bzImage tests unpack its payload (bzimage_direct.c) into a cache:
 * one private to this run, never the host's /var/cache/flint. Workers are
 * forked from this process; only it removes the directory. */
static char kernel_cache_dir[64];
static pid_t kernel_cache_owner;

static void remove_kernel_cache(void)
{
    char cmd[128];

    if (getpid() != kernel_cache_owner || !kernel_cache_dir[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kernel_cache_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_linux: cannot remove %s\n", kernel_cache_dir);
}

__attribute__((constructor)) static void private_kernel_cache(void)
{
    if (getenv("FLINT_KERNEL_CACHE"))
        return;
    snprintf(kernel_cache_dir, sizeof(kernel_cache_dir), "/tmp/flint-linux-kcache-XXXXXX");
    if (!mkdtemp(kernel_cache_dir)) {
        kernel_cache_dir[0] = '\0';
        return;
    }
    kernel_cache_owner = getpid();
    setenv("FLINT_KERNEL_CACHE", kernel_cache_dir, 1);
    atexit(remove_kernel_cache);
}

/* ---- booting ---- */

Test(linux_boot, vmlinux_boots_through_pvh_to_init)
{
    char *k = kernel("vmlinux");
    char *cl = cmdline("flint.cmd=\"echo hello from $(uname -s) $(uname -r)\"");
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, NULL);
    expect_clean_run(&r);
    expect_in(r.out, "hello from Linux 6.1", "guest console");
    cr_assert_eq(r.err[0], '\0', "flint logged something on a clean boot:\n%s", r.err);
    flint_result_free(&r);
    free(cl);
    free(k);
}

/* The bzImage as it is: its own decompressor runs in the guest. */
Test(linux_boot, bzimage_boots_to_init)
{
    char *k = kernel("bzImage");
    char *cl = cmdline("flint.cmd=\"echo hello from the bzImage\"");
    struct flint_result r = flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl,
                                      "--level", "Debug", "--no-kernel-unpack", NULL);
    expect_clean_run(&r);
    expect_in(r.out, "hello from the bzImage", "guest console");
    expect_in(r.err, "Linux 64-bit entry 0x100200", "flint's debug log");
    flint_result_free(&r);
    free(cl);
    free(k);
}

/* By default flint unpacks the payload on the host and boots the ELF
 * inside; the second boot finds it in the cache. */
Test(linux_boot, bzimage_boots_through_its_unpacked_payload_and_the_cache)
{
    char *k = kernel("bzImage"), dir[] = "/tmp/flint-linux-unpack-XXXXXX";
    char *cl = cmdline("flint.cmd=\"echo hello from the unpacked bzImage\"");
    const char *saved = getenv("FLINT_KERNEL_CACHE");
    char *old = saved ? strdup(saved) : NULL;

    cr_assert_not_null(mkdtemp(dir));
    setenv("FLINT_KERNEL_CACHE", dir, 1);
    for (int boot = 0; boot < 2; boot++) {
        struct flint_result r = flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl,
                                          "--level", "Debug", NULL);
        expect_clean_run(&r);
        expect_in(r.out, "hello from the unpacked bzImage", "guest console");
        expect_in(r.err, "booting the unpacked ELF vmlinux", "flint's log");
        expect_in(r.err, boot == 0 ? "gzip payload" : "cache hit", "flint's log");
        expect_in(r.err, "PVH entry", "flint's debug log");
        flint_result_free(&r);
    }
    host_sh("rm -rf %s", dir);
    if (old)
        setenv("FLINT_KERNEL_CACHE", old, 1);
    free(old);
}

/* Firecracker's huge_pages "Transparent": anonymous memory with
 * MADV_HUGEPAGE, on 2 vCPUs and a size that is not a whole number of huge
 * pages. */
Test(linux_boot, bzimage_boots_on_transparent_huge_pages)
{
    char *k = kernel("bzImage");
    char *cl = cmdline("flint.cmd=\"echo thp-ok cpus $(nproc)\"");
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, "--vcpus", "2", "--mem",
                  "255", "--huge-pages", "transparent", "--stats", NULL);
    expect_clean_run(&r);
    expect_in(r.out, "thp-ok cpus 2", "guest console");
    expect_in(r.err, "memory: 255 MiB (huge pages: Transparent)", "--stats");
    flint_result_free(&r);
    free(cl);
    free(k);
}

/* Copy vmlinux with its PVH note's type changed, so flint must enter it
 * through the Linux 64-bit boot protocol at e_entry. */
static char *vmlinux_without_pvh_note(void)
{
    char *src = kernel("vmlinux"), *dst = temp_path("nonote");
    int in = open(src, O_RDONLY), out;
    struct stat st;
    uint8_t *img;
    unsigned hidden = 0;

    cr_assert_geq(in, 0);
    cr_assert_eq(fstat(in, &st), 0);
    img = malloc((size_t)st.st_size);
    cr_assert_eq(pread(in, img, (size_t)st.st_size, 0), st.st_size);
    close(in);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr *ph = (Elf64_Phdr *)(img + eh->e_phoff + i * sizeof(Elf64_Phdr));
        if (ph->p_type != PT_NOTE)
            continue;
        for (uint64_t pos = 0; pos + sizeof(Elf64_Nhdr) <= ph->p_filesz;) {
            Elf64_Nhdr *nh = (Elf64_Nhdr *)(img + ph->p_offset + pos);
            if (nh->n_namesz == 4 && !memcmp(nh + 1, "Xen", 4) && nh->n_type == 18) {
                nh->n_type = 0x7ff0;
                hidden++;
            }
            pos += sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
        }
    }
    cr_assert_eq(hidden, 1, "vmlinux should carry exactly one PVH entry note");
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_eq(write(out, img, (size_t)st.st_size), st.st_size);
    close(out);
    free(img);
    free(src);
    return dst;
}

Test(linux_boot, vmlinux_without_pvh_note_boots_through_the_64bit_entry)
{
    char *k = vmlinux_without_pvh_note();
    char *cl = cmdline("flint.cmd=\"echo 64-bit entry ok\"");
    struct flint_result r = flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl,
                                      "--level", "Debug", NULL);
    expect_clean_run(&r);
    expect_in(r.out, "64-bit entry ok", "guest console");
    expect_in(r.err, "Linux 64-bit entry", "flint's debug log");
    flint_result_free(&r);
    unlink(k);
    free(cl);
    free(k);
}

/* nproc and the online mask match --vcpus, and the topology Linux built
 * from CPUID is one package of single-thread cores. */
static void nproc_is(const char *vcpus)
{
    char *k = kernel("vmlinux");
    char *cl =
        cmdline("flint.cmd=\"cd /sys/devices/system/cpu; echo nproc=$(nproc) online=$(cat "
                "online) packages=$(cat cpu*/topology/physical_package_id | sort -u | wc "
                "-l) last_siblings=$(cat cpu$(($(nproc)-1))/topology/thread_siblings_list)\"");
    char want[128];
    unsigned n = (unsigned)atoi(vcpus);
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, "--vcpus", vcpus, NULL);
    expect_clean_run(&r);
    if (n == 1)
        snprintf(want, sizeof(want), "nproc=1 online=0 packages=1 last_siblings=0");
    else
        snprintf(want, sizeof(want), "nproc=%u online=0-%u packages=1 last_siblings=%u", n, n - 1,
                 n - 1);
    expect_in(r.out, want, "guest console");
    flint_result_free(&r);
    free(cl);
    free(k);
}

Test(linux_smp, nproc_is_1)
{
    nproc_is("1");
}

Test(linux_smp, nproc_is_2)
{
    nproc_is("2");
}

Test(linux_smp, nproc_is_4)
{
    nproc_is("4");
}

Test(linux_boot, guest_panic_ends_flint_with_zero)
{
    char *k = kernel("vmlinux");
    char *cl = cmdline("rdinit=/bin/false");
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, NULL);
    cr_assert_not(r.timed_out, "flint did not finish\n%s\n%s", r.out, r.err);
    cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
    expect_in(r.out, "Kernel panic - not syncing: Attempted to kill init", "guest console");
    expect_in(r.out, "Rebooting in 1 seconds", "guest console");
    flint_result_free(&r);
    free(cl);
    free(k);
}

Test(linux_boot, boot_timer_logs_guest_boot_time)
{
    char *k = kernel("vmlinux");
    char *cl = cmdline("flint.cmd=true");
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, "--boot-timer", NULL);
    expect_clean_run(&r);
    expect_in(r.err, "Guest-boot-time = ", "flint's log");
    expect_in(r.err, " CPU ms", "flint's log");
    cr_assert_eq(count_lines(r.err), 1, "one boot-time line:\n%s", r.err);
    flint_result_free(&r);

    /* Without --boot-timer there is no device and no line. */
    r = flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, NULL);
    expect_clean_run(&r);
    cr_assert_null(strstr(r.err, "Guest-boot-time"), "%s", r.err);
    flint_result_free(&r);
    free(cl);
    free(k);
}

/* ---- ext4 root on virtio-blk ---- */

/* A 64 MiB ext4 image at img holding the initramfs's tree (unpacked in
 * tree): a root file system whose /init is flint's. */
static void make_root_ext4(const char *tree, const char *img)
{
    cr_assert_eq(host_sh("rm -rf %s && mkdir -p %s && cd %s && gzip -dc %s | cpio -id --quiet",
                         tree, tree, tree, initramfs()),
                 0);
    cr_assert_eq(host_sh("PATH=$PATH:/sbin:/usr/sbin; rm -f %s && truncate -s 64M %s && "
                         "mkfs.ext4 -q -F -L flintroot -d %s %s",
                         img, img, tree, img),
                 0, "mkfs.ext4 -d failed (e2fsprogs installed?)");
}

/* What debugfs finds in file inside the ext4 image img. */
static void expect_in_image(const char *img, const char *file, const char *text)
{
    char *argv[] = {"/bin/sh", "-c", NULL, NULL};
    char *script;

    cr_assert_geq(
        asprintf(&script, "PATH=$PATH:/sbin:/usr/sbin; debugfs -R 'cat %s' %s", file, img), 0);
    argv[2] = script;
    struct flint_result r = run_cmd(argv, 60);
    cr_assert_eq(r.status, 0, "debugfs: %s%s", r.out, r.err);
    expect_in(r.out, text, "debugfs cat");
    flint_result_free(&r);
    free(script);
}

Test(linux_blk, ext4_root_written_by_the_guest_is_read_on_the_host)
{
    char *k = kernel("bzImage");
    char *tree = temp_path("rootfs"), *img = temp_path("root.ext4");
    make_root_ext4(tree, img);
    char *cl = cmdline("root=/dev/vda rw init=/init flint.cmd=\"grep ' / ' /proc/mounts; "
                       "echo written-by-the-guest > /hello.txt; sync\"");
    char drive[256];
    snprintf(drive, sizeof(drive), "%s,id=rootfs", img);
    struct flint_result r = flint_run("--kernel", k, "--drive", drive, "--cmdline", cl, NULL);
    expect_clean_run(&r);
    expect_in(r.out, "/dev/root / ext4 rw", "guest console");
    flint_result_free(&r);
    expect_in_image(img, "/hello.txt", "written-by-the-guest");
    host_sh("rm -rf %s %s", tree, img);
    free(cl);
    free(tree);
    free(img);
    free(k);
}

/* ---- the control API, driven with curl as Firecracker's getting-started
 * guide drives Firecracker ---- */

/* $1 flint, $2 socket, $3 kernel, $4 root image, $5 scratch directory
 * holding boot.json. Prints "flint exited N" last. */
static const char getting_started_sh[] =
    "set -u\n"
    "F=$1 S=$2 K=$3 ROOT=$4 D=$5\n"
    "rm -f \"$S\"\n"
    "\"$F\" --api-sock \"$S\" >\"$D/console\" 2>\"$D/stderr\" & FL=$!\n"
    "i=0; while [ ! -S \"$S\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n"
    "call() { # METHOD PATH [BODY]: prints 'METHOD PATH -> CODE BODY'\n"
    "  if [ $# -eq 3 ]; then\n"
    "    code=$(curl -sS --unix-socket \"$S\" -o \"$D/resp\" -w '%{http_code}' -X \"$1\" \\\n"
    "      \"http://localhost$2\" -H 'Accept: application/json' \\\n"
    "      -H 'Content-Type: application/json' -d \"$3\")\n"
    "  else\n"
    "    code=$(curl -sS --unix-socket \"$S\" -o \"$D/resp\" -w '%{http_code}' -X \"$1\" \\\n"
    "      \"http://localhost$2\" -H 'Accept: application/json')\n"
    "  fi\n"
    "  echo \"$1 $2 -> $code $(cat \"$D/resp\")\"\n"
    "}\n"
    "call PUT /logger \"{\\\"log_path\\\": \\\"$D/flint.log\\\", \\\"level\\\": \\\"Debug\\\", "
    "\\\"show_level\\\": true, \\\"show_log_origin\\\": true}\"\n"
    "call PUT /boot-source \"$(cat \"$D/boot.json\")\"\n"
    "call PUT /drives/rootfs \"{\\\"drive_id\\\": \\\"rootfs\\\", \\\"path_on_host\\\": "
    "\\\"$ROOT\\\", \\\"is_root_device\\\": true, \\\"is_read_only\\\": false}\"\n"
    "call PUT /machine-config '{\"vcpu_count\": 2, \"mem_size_mib\": 256}'\n"
    "call PUT /actions '{\"action_type\": \"InstanceStart\"}'\n"
    "call GET /\n"
    "call PATCH /vm '{\"state\": \"Paused\"}'\n"
    "call GET /\n"
    "call PATCH /vm '{\"state\": \"Resumed\"}'\n"
    "call GET /vm/config\n"
    "wait $FL; echo \"flint exited $?\"\n";

Test(linux_api, firecracker_getting_started_with_curl)
{
    char *k = kernel("vmlinux");
    char *tree = temp_path("api-rootfs"), *img = temp_path("api-root.ext4");
    char *dir = temp_path("api-dir"), *sock, *path;
    FILE *f;

    make_root_ext4(tree, img);
    cr_assert_eq(host_sh("rm -rf %s && mkdir -p %s", dir, dir), 0);
    cr_assert_geq(asprintf(&sock, "%s/firecracker.socket", dir), 0);
    /* Firecracker's guide's boot_args, plus flint's init and its command. */
    cr_assert_geq(asprintf(&path, "%s/boot.json", dir), 0);
    cr_assert_not_null(f = fopen(path, "w"));
    fprintf(f,
            "{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 "
            "pci=off init=/init flint.cmd=\\\"echo written-through-the-api > /api.txt; sync\\\"\"}",
            k);
    fclose(f);
    free(path);
    char *argv[] = {"/bin/sh", "-c", (char *)getting_started_sh, "sh", FLINT_BIN, sock, k, img,
                    dir,       NULL};
    struct flint_result r = run_cmd(argv, LINUX_TIMEOUT_S);
    cr_assert_not(r.timed_out, "timed out\n%s%s", r.out, r.err);
    cr_log_info("%s", r.out);
    expect_in(r.out, "PUT /logger -> 204", "curl");
    expect_in(r.out, "PUT /boot-source -> 204", "curl");
    expect_in(r.out, "PUT /drives/rootfs -> 204", "curl");
    expect_in(r.out, "PUT /machine-config -> 204", "curl");
    expect_in(r.out, "PUT /actions -> 204", "curl");
    expect_in(r.out, "\"state\":\"Paused\"", "GET / while paused");
    expect_in(r.out, "PATCH /vm -> 204", "curl");
    expect_in(r.out, "\"is_root_device\":true", "GET /vm/config");
    expect_in(r.out, "flint exited 0", "the script");

    char *console;
    cr_assert_geq(asprintf(&console, "%s/console", dir), 0);
    char *cat[] = {"/bin/cat", console, NULL};
    struct flint_result c = run_cmd(cat, 10);
    expect_in(c.out, INIT_OK, "guest console");
    expect_in(c.out, "root=/dev/vda rw", "guest console (flint adds the root device)");
    flint_result_free(&c);
    expect_in_image(img, "/api.txt", "written-through-the-api");
    flint_result_free(&r);
    host_sh("rm -rf %s %s %s", tree, img, dir);
    free(console);
    free(sock);
    free(dir);
    free(tree);
    free(img);
    free(k);
}

/* ---- networking: ping and HTTP both ways over a tap ---- */

static const char *busybox_path(void)
{
    static const char *const paths[] = {"/usr/bin/busybox", "/bin/busybox", NULL};
    for (const char *const *p = paths; *p; p++)
        if (access(*p, X_OK) == 0)
            return *p;
    cr_assert_fail("busybox is missing: install busybox-static (tools/install-deps)");
    return NULL;
}

static void netns_with_tap(void)
{
    cr_assert_eq(access("/dev/net/tun", R_OK | W_OK), 0, "/dev/net/tun: %s", strerror(errno));
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s (needs root)",
                 strerror(errno));
    cr_assert_eq(host_sh("PATH=$PATH:/sbin:/usr/sbin; ip link set lo up && "
                         "ip tuntap add dev " TAP " mode tap && "
                         "ip addr add " HOST_IP "/24 dev " TAP " && ip link set " TAP " up"),
                 0, "setting up the tap (iproute2 installed?)");
}

/* The md5 the guest printed for `file` ("<md5>  <file>"), or "". */
static void guest_md5(const char *out, const char *file, char md5[33])
{
    const char *p = out;
    md5[0] = '\0';
    while ((p = strstr(p, file))) {
        if (p - out >= 34 && p[-1] == ' ' && p[-2] == ' ') {
            memcpy(md5, p - 34, 32);
            md5[32] = '\0';
        }
        p++;
    }
}

static void host_md5(const char *file, char md5[33])
{
    char *argv[] = {"/bin/sh", "-c", NULL, NULL};
    char *script;
    cr_assert_geq(asprintf(&script, "md5sum %s", file), 0);
    argv[2] = script;
    struct flint_result r = run_cmd(argv, 60);
    cr_assert_eq(r.status, 0, "md5sum %s: %s", file, r.err);
    memcpy(md5, r.out, 32);
    md5[32] = '\0';
    flint_result_free(&r);
    free(script);
}

struct net_host {
    char *dir;
    pid_t httpd;
    volatile bool flint_done;
    bool pinged, fetched;
    char why[256];
};

static void *net_host_side(void *arg)
{
    struct net_host *h = arg;
    const char *bb = busybox_path();
    double end = now_s() + WAIT_S;
    char url[128], dst[256];

    while (!h->flint_done && now_s() < end) {
        char *ping[] = {(char *)bb, "ping", "-c", "1", "-W", "2", GUEST_IP, NULL};
        struct flint_result r = run_cmd(ping, 30);
        h->pinged = r.status == 0;
        flint_result_free(&r);
        if (h->pinged)
            break;
    }
    if (!h->pinged) {
        snprintf(h->why, sizeof(h->why), "the guest never answered a ping");
        return NULL;
    }
    snprintf(url, sizeof(url), "http://%s:8080/guest.bin", GUEST_IP);
    snprintf(dst, sizeof(dst), "%s/from-guest.bin", h->dir);
    while (!h->flint_done && now_s() < end) {
        char *wget[] = {(char *)bb, "wget", "-q", "-O", dst, url, NULL};
        struct flint_result r = run_cmd(wget, 60);
        h->fetched = r.status == 0;
        flint_result_free(&r);
        if (h->fetched)
            break;
        usleep(500000);
    }
    if (!h->fetched) {
        snprintf(h->why, sizeof(h->why), "could not fetch %s", url);
        return NULL;
    }
    /* Now serve host.bin; the guest fetches it, prints its md5 and reboots. */
    char *httpd[] = {(char *)bb, "httpd", "-f", "-p", HOST_IP ":8000", "-h", h->dir, NULL};
    if (posix_spawn(&h->httpd, bb, NULL, NULL, httpd, environ) != 0)
        snprintf(h->why, sizeof(h->why), "cannot start busybox httpd");
    return NULL;
}

Test(linux_net, ping_and_http_both_ways_over_a_tap)
{
    struct net_host h = {.httpd = 0};
    pthread_t th;
    char *k = kernel("vmlinux");
    char host_file[256], g_md5[33], h_md5[33];

    netns_with_tap();
    h.dir = temp_path("net");
    cr_assert_eq(host_sh("rm -rf %s && mkdir -p %s && head -c 1048576 /dev/urandom > "
                         "%s/host.bin",
                         h.dir, h.dir, h.dir),
                 0);
    char *cl =
        cmdline("flint.ip=" GUEST_IP "/24 flint.cmd=\"mkdir -p /srv && "
                "dd if=/dev/urandom of=/srv/guest.bin bs=1024 count=1024 2>/dev/null && "
                "md5sum /srv/guest.bin && httpd -p 8080 -h /srv && i=0; "
                "until timeout 30 wget -q -O /tmp/host.bin http://" HOST_IP ":8000/host.bin; do "
                "i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 1; done; md5sum /tmp/host.bin\"");
    cr_assert_eq(pthread_create(&th, NULL, net_host_side, &h), 0);
    struct flint_result r = flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl,
                                      "--net", TAP ",mac=06:00:00:00:01:02", NULL);
    h.flint_done = true;
    pthread_join(th, NULL);
    if (h.httpd > 0) {
        kill(h.httpd, SIGTERM);
        waitpid(h.httpd, NULL, 0);
    }
    cr_assert(h.pinged && h.fetched, "host side: %s\nstdout:\n%s\nstderr:\n%s", h.why, r.out,
              r.err);
    expect_clean_run(&r);

    snprintf(host_file, sizeof(host_file), "%s/from-guest.bin", h.dir);
    host_md5(host_file, h_md5);
    guest_md5(r.out, "/srv/guest.bin", g_md5);
    cr_assert_str_eq(g_md5, h_md5, "guest -> host file differs");
    snprintf(host_file, sizeof(host_file), "%s/host.bin", h.dir);
    host_md5(host_file, h_md5);
    guest_md5(r.out, "/tmp/host.bin", g_md5);
    cr_assert_str_eq(g_md5, h_md5, "host -> guest file differs");
    flint_result_free(&r);
    host_sh("rm -rf %s", h.dir);
    free(h.dir);
    free(cl);
    free(k);
}

/* An interface's mtu (PUT /network-interfaces "mtu", here from a config
 * file) reaches the guest through VIRTIO_NET_F_MTU, and jumbo frames up to
 * it pass both ways: an 8000-byte ping cannot be fragmented on a 9000 MTU
 * path. */
Test(linux_net, interface_mtu_reaches_the_guest_and_jumbo_frames_pass, .timeout = 600)
{
    char *k = kernel("vmlinux"), *cfgp = temp_path("mtu.json");

    netns_with_tap();
    cr_assert_eq(host_sh("PATH=$PATH:/sbin:/usr/sbin; ip link set " TAP " mtu 9000"), 0);
    char *cl = cmdline("flint.ip=" GUEST_IP "/24 flint.cmd=\"echo mtu=$(cat "
                       "/sys/class/net/eth0/mtu); ping -c 1 -W 30 -s 8000 " HOST_IP
                       " >/dev/null && echo jumbo-ok\"");
    FILE *f = fopen(cfgp, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
            "\"boot_args\": \"%s\"},\n"
            " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP "\", "
            "\"guest_mac\": \"06:00:00:00:01:02\", \"mtu\": 9000}]}\n",
            k, initramfs(), json_escaped(cl));
    fclose(f);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfgp, NULL};
    struct flint_result r = run_cmd(argv, LINUX_TIMEOUT_S);
    expect_clean_run(&r);
    expect_in(r.out, "mtu=9000", "guest console");
    expect_in(r.out, "jumbo-ok", "guest console");
    flint_result_free(&r);
    unlink(cfgp);
    free(cfgp);
    free(cl);
    free(k);
}

/* ---- vsock: both directions through the hybrid Unix-socket scheme ---- */

static uint8_t host_pattern(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

struct vsock_host {
    char uds[64];
    volatile bool flint_done;
    bool echoed_guest; /* guest -> host connection echoed to EOF */
    bool host_conn_ok; /* host -> guest bytes came back intact */
    unsigned long long host_got;
    char why[256];
};

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Guest-initiated: CID 2 port P reaches the Unix socket <uds>_P. Echo one
 * connection to its end. */
static void *vsock_listener(void *arg)
{
    struct vsock_host *h = arg;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int ls, c;
    uint8_t buf[65536];

    snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", h->uds, VSOCK_HOST_PORT);
    ls = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(a.sun_path);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1)) {
        snprintf(h->why, sizeof(h->why), "listen on %s: %s", a.sun_path, strerror(errno));
        return NULL;
    }
    struct pollfd p = {.fd = ls, .events = POLLIN};
    double end = now_s() + WAIT_S;
    while (!h->flint_done && now_s() < end && poll(&p, 1, 500) == 0)
        ;
    if (!(p.revents & POLLIN)) {
        close(ls);
        return NULL;
    }
    c = accept(ls, NULL, NULL);
    for (;;) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) {
            h->echoed_guest = n == 0;
            break;
        }
        if (!write_all(c, buf, (size_t)n))
            break;
    }
    close(c);
    close(ls);
    unlink(a.sun_path);
    return NULL;
}

/* One try at a host-initiated connection: CONNECT, then OK. -1 if the
 * guest is not listening yet. */
static int vsock_connect(struct vsock_host *h, unsigned port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char line[64];
    size_t got = 0;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", h->uds);
    if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
        close(s);
        return -1;
    }
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (!write_all(s, (const uint8_t *)line, (size_t)n)) {
        close(s);
        return -1;
    }
    while (got < sizeof(line) - 1) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 30000) <= 0 || read(s, line + got, 1) != 1) {
            close(s);
            return -1;
        }
        if (line[got++] == '\n')
            break;
    }
    line[got] = '\0';
    if (strncmp(line, "OK ", 3)) {
        close(s);
        return -1;
    }
    return s;
}

static void *vsock_client(void *arg)
{
    struct vsock_host *h = arg;
    double end = now_s() + WAIT_S;
    uint64_t sent = 0, got = 0;
    uint8_t out[16384], in[65536];
    int s = -1;

    while (!h->flint_done && now_s() < end && (s = vsock_connect(h, VSOCK_GUEST_PORT)) < 0)
        usleep(500000);
    if (s < 0) {
        snprintf(h->why, sizeof(h->why), "the guest never accepted on port %u", VSOCK_GUEST_PORT);
        return NULL;
    }
    while (got < VSOCK_BYTES && now_s() < end) {
        struct pollfd p = {.fd = s, .events = POLLIN | (sent < VSOCK_BYTES ? POLLOUT : 0)};
        if (poll(&p, 1, 1000) < 0)
            break;
        if (p.revents & POLLIN) {
            ssize_t n = read(s, in, sizeof(in));
            if (n <= 0)
                break;
            for (ssize_t i = 0; i < n; i++, got++) {
                if (in[i] != host_pattern(got)) {
                    snprintf(h->why, sizeof(h->why), "byte %llu came back wrong",
                             (unsigned long long)got);
                    close(s);
                    return NULL;
                }
            }
        }
        if ((p.revents & POLLOUT) && sent < VSOCK_BYTES) {
            size_t len = VSOCK_BYTES - sent < sizeof(out) ? VSOCK_BYTES - sent : sizeof(out);
            for (size_t i = 0; i < len; i++)
                out[i] = host_pattern(sent + i);
            ssize_t n = write(s, out, len);
            if (n < 0)
                break;
            sent += (uint64_t)n;
            if (sent == VSOCK_BYTES)
                shutdown(s, SHUT_WR);
        }
    }
    h->host_got = got;
    h->host_conn_ok = got == VSOCK_BYTES;
    if (!h->host_conn_ok && !h->why[0])
        snprintf(h->why, sizeof(h->why), "host connection: %llu of %u bytes came back",
                 (unsigned long long)got, VSOCK_BYTES);
    close(s);
    return NULL;
}

Test(linux_vsock, data_both_ways_through_the_hybrid_sockets)
{
    struct vsock_host h = {.flint_done = false};
    pthread_t lt, ct;
    char *k = kernel("vmlinux"), vsock[160];

    snprintf(h.uds, sizeof(h.uds), "/tmp/flint-linux-vsock-%d.sock", getpid());
    unlink(h.uds);
    char *cl = cmdline("flint.cmd=\"vsock-guest echo %u & p=$!; vsock-guest send 2 %u %u && "
                       "wait $p\"",
                       VSOCK_GUEST_PORT, VSOCK_HOST_PORT, VSOCK_BYTES);
    snprintf(vsock, sizeof(vsock), "3,%s", h.uds);
    cr_assert_eq(pthread_create(&lt, NULL, vsock_listener, &h), 0);
    cr_assert_eq(pthread_create(&ct, NULL, vsock_client, &h), 0);
    struct flint_result r =
        flint_run("--kernel", k, "--initrd", initramfs(), "--cmdline", cl, "--vsock", vsock, NULL);
    h.flint_done = true;
    pthread_join(ct, NULL);
    pthread_join(lt, NULL);
    unlink(h.uds);
    cr_assert(h.host_conn_ok, "host -> guest: %s\nstdout:\n%s\nstderr:\n%s", h.why, r.out, r.err);
    cr_assert(h.echoed_guest, "guest -> host: no echo to EOF (%s)\nstdout:\n%s", h.why, r.out);
    expect_clean_run(&r);
    expect_in(r.out, "all came back intact", "guest console");
    expect_in(r.out, "vsock-guest: echoed 1048576 bytes on port 5000", "guest console");
    flint_result_free(&r);
    free(cl);
    free(k);
}

/* ---- what flint must refuse: exit 152 with one line ---- */

static void expect_refusal(const struct flint_result *r, const char *needle)
{
    cr_assert_not(r->timed_out);
    cr_assert_eq(r->status, 152, "status %d\nstdout:\n%s\nstderr:\n%s", r->status, r->out, r->err);
    cr_assert_eq(count_lines(r->err), 1, "expected one line:\n%s", r->err);
    expect_in(r->err, needle, "stderr");
    cr_assert_eq(r->out[0], '\0', "the guest must not have run: %s", r->out);
}

Test(linux_config, truncated_bzimage_is_refused)
{
    char *k = kernel("bzImage"), *cut = temp_path("cut-bzImage");
    cr_assert_eq(host_sh("head -c 1000000 %s > %s", k, cut), 0);
    struct flint_result r = flint_run("--kernel", cut, NULL);
    expect_refusal(&r, "truncated");
    flint_result_free(&r);
    unlink(cut);
    free(cut);
    free(k);
}

/* A payload that does not decompress is a bad kernel, like any other. */
Test(linux_config, bzimage_with_a_corrupt_payload_is_refused)
{
    char *k = kernel("bzImage"), *bad = temp_path("bad-payload");
    /* Garble 256 bytes 64 KiB into the payload (setup_sects at 0x1f1,
     * payload_offset at 0x248). */
    cr_assert_eq(host_sh("cp %s %s && off=$(( ($(od -An -tu1 -j497 -N1 %s) + 1) * 512 + "
                         "$(od -An -tu4 -j584 -N4 %s) + 65536 )) && "
                         "head -c 256 /dev/zero | tr '\\0' 'Z' | "
                         "dd of=%s bs=1 seek=$off conv=notrunc status=none",
                         k, bad, k, k, bad),
                 0);
    struct flint_result r = flint_run("--kernel", bad, NULL);
    expect_refusal(&r, "gzip");
    expect_in(r.err, bad, "stderr");
    flint_result_free(&r);
    unlink(bad);
    free(bad);
    free(k);
}

Test(linux_config, kernel_larger_than_ram_is_refused)
{
    char *bz = kernel("bzImage"), *vm = kernel("vmlinux");
    struct flint_result r = flint_run("--kernel", bz, "--mem", "16", NULL);
    expect_refusal(&r, "give the VM more memory");
    flint_result_free(&r);
    r = flint_run("--kernel", vm, "--mem", "16", NULL);
    expect_refusal(&r, "does not fit in guest RAM");
    flint_result_free(&r);
    free(bz);
    free(vm);
}

Test(linux_config, initrd_overlapping_the_kernel_is_refused)
{
    char *k = kernel("bzImage"), *rd = temp_path("big-initrd");
    /* 64 MiB of RAM, 56 MiB of initrd: it would have to start at 8 MiB,
     * inside the kernel's decompression buffer at 16 MiB and up. */
    cr_assert_eq(host_sh("rm -f %s && truncate -s 56M %s", rd, rd), 0);
    struct flint_result r = flint_run("--kernel", k, "--initrd", rd, "--mem", "64", NULL);
    expect_refusal(&r, "does not fit between the kernel");
    flint_result_free(&r);
    unlink(rd);
    free(rd);
    free(k);
}

/* ---- PATCH /drives: Linux notices the new image ---- */

/* One HTTP request on the API socket; the status code, or -1. */
static int api_call(const char *sock, const char *method, const char *path, const char *body,
                    char *answer, size_t cap)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char req[2048];
    size_t have = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;

    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s", method,
                     path, strlen(body), body);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    answer[0] = '\0';
    for (double end = now_s() + 60; now_s() < end && have + 1 < cap;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, answer + have, cap - 1 - have, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
        answer[have] = '\0';
        char *hdr_end = strstr(answer, "\r\n\r\n"), *cl = strcasestr(answer, "Content-Length:");
        if (hdr_end && (!cl || strlen(hdr_end + 4) >= (size_t)atol(cl + 15)))
            break;
    }
    close(fd);
    if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    return status;
}

/* machine-config smt true with 4 vCPUs, from a config file as a client's
 * PUT /machine-config would give it: Linux counts 4 CPUs in 2 cores of 2
 * threads, vCPUs 0-1 and 2-3 (cpuid_x86_64.c, mptable_x86_64.c). */
Test(linux_smp, smt_gives_two_threads_per_core, .timeout = 600)
{
    char *k = kernel("vmlinux"), *cfgp = temp_path("smt.json");
    char *cl = cmdline("flint.cmd=\"cd /sys/devices/system/cpu; echo nproc=$(nproc) "
                       "sib0=$(cat cpu0/topology/thread_siblings_list) "
                       "sib3=$(cat cpu3/topology/thread_siblings_list) "
                       "cores=$(cat cpu*/topology/core_id | sort -u | wc -l)\"");
    FILE *f = fopen(cfgp, "w");

    cr_assert_not_null(f);
    fprintf(f,
            "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
            "\"boot_args\": \"%s\"},\n"
            " \"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 128, \"smt\": true}}\n",
            k, initramfs(), json_escaped(cl));
    fclose(f);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfgp, NULL};
    struct flint_result r = run_cmd(argv, LINUX_TIMEOUT_S);
    expect_clean_run(&r);
    expect_in(r.out, "nproc=4 sib0=0-1 sib3=2-3 cores=2", "guest console");
    flint_result_free(&r);
    unlink(cfgp);
    free(cfgp);
    free(cl);
    free(k);
}

static void image_of(const char *path, size_t mib, char c)
{
    char sector[512];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(ftruncate(fd, (off_t)(mib << 20)), 0);
    memset(sector, c, sizeof(sector));
    cr_assert_eq(pwrite(fd, sector, sizeof(sector), 0), (ssize_t)sizeof(sector));
    close(fd);
}

Test(linux_blk, patch_drive_gives_the_guest_the_new_size_and_data, .timeout = 600)
{
    char *k = kernel("bzImage");
    char *a = temp_path("swap-a.img"), *b = temp_path("swap-b.img"), *cfgp = temp_path("swap.json");
    char *sock = temp_path("swap.sock");
    char answer[4096], body[512];

    image_of(a, 1, 'A');
    image_of(b, 3, 'B');
    unlink(sock);
    /* Size and first bytes before; then wait for the size to change, drop
     * the block device's cache and read again. */
    char *cl =
        cmdline("flint.cmd=\"echo size-before $(cat /sys/block/vda/size) $(head -c 4 /dev/vda); "
                "echo swap-ready-$((6*7)); i=0; while [ $(cat /sys/block/vda/size) = 2048 ] && [ "
                "$i -lt 600 ]; "
                "do sleep 1; i=$((i+1)); done; blockdev --flushbufs /dev/vda; "
                "echo size-after $(cat /sys/block/vda/size) $(head -c 4 /dev/vda)\"");
    /* The command line holds double quotes: JSON wants them escaped. */
    char json_cl[2048];
    size_t o = 0;
    for (const char *c = cl; *c && o + 3 < sizeof(json_cl); c++) {
        if (*c == '"' || *c == '\\')
            json_cl[o++] = '\\';
        json_cl[o++] = *c;
    }
    json_cl[o] = '\0';
    FILE *f = fopen(cfgp, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
            "\"boot_args\": \"%s\"},\n"
            " \"drives\": [{\"drive_id\": \"disk\", \"path_on_host\": \"%s\", "
            "\"is_root_device\": false}],\n"
            " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}\n",
            k, initramfs(), json_cl, a);
    fclose(f);
    char *argv[] = {FLINT_BIN, "--api-sock", sock, "--config-file", cfgp, NULL};
    static struct live l; /* 128 KiB of buffers */
    live_start(&l, argv);
    live_wait_for(&l, "swap-ready-42");
    /* A refused one first: the guest must not see it. */
    cr_assert_eq(api_call(sock, "PATCH", "/drives/disk",
                          "{\"drive_id\": \"disk\", \"path_on_host\": \"/nonexistent\"}", answer,
                          sizeof(answer)),
                 400, "%s", answer);
    snprintf(body, sizeof(body), "{\"drive_id\": \"disk\", \"path_on_host\": \"%s\"}", b);
    cr_assert_eq(api_call(sock, "PATCH", "/drives/disk", body, answer, sizeof(answer)), 204,
                 "%s\nstderr:\n%s", answer, l.err);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    const char *out = l.out;
    expect_in(out, INIT_OK, "guest console");
    expect_in(out, "size-before 2048 AAAA", "guest console");
    expect_in(out, "[vda] new size: 6144 512-byte logical blocks", "guest console");
    expect_in(out, "size-after 6144 BBBB", "guest console");
    unlink(a);
    unlink(b);
    unlink(cfgp);
    free(a);
    free(b);
    free(cfgp);
    free(sock);
    free(cl);
    free(k);
}

/* ---- snapshots: restore in a new process, then use every device ---- */

#define SNAP_TAP_A "flints0" /* no host address: the guest's pings go unanswered */
#define SNAP_TAP_B "flints1" /* HOST_IP: the restored guest's pings are answered */

static void snap_taps(void)
{
    cr_assert_eq(access("/dev/net/tun", R_OK | W_OK), 0, "/dev/net/tun: %s", strerror(errno));
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s (needs root)",
                 strerror(errno));
    cr_assert_eq(host_sh("PATH=$PATH:/sbin:/usr/sbin; ip link set lo up && "
                         "ip tuntap add dev " SNAP_TAP_A " mode tap && ip link set " SNAP_TAP_A
                         " up && ip tuntap add dev " SNAP_TAP_B " mode tap && "
                         "ip addr add " HOST_IP "/24 dev " SNAP_TAP_B " && ip link set " SNAP_TAP_B
                         " up"),
                 0, "setting up the taps (iproute2 installed?)");
}

/* Send one API request, retrying while the socket is not there yet. */
static void snap_api(struct live *l, const char *sock, const char *method, const char *path,
                     const char *body)
{
    char answer[4096];
    int st;
    double end = now_s() + 60;

    while ((st = api_call(sock, method, path, body, answer, sizeof(answer))) < 0 && now_s() < end)
        live_pump(l, 50);
    cr_assert_eq(st, 204, "%s %s: %s\nstdout:\n%s\nstderr:\n%s", method, path, answer, l->out,
                 l->err);
}

/* Booted to init, whose command waits for a ping to be answered (only the
 * tap the restore points eth0 at has the host's address); paused,
 * snapshotted and killed. A new process restores it with
 * network_overrides and vsock_override; the guest's command then pings
 * the host, writes the ext4 root (read back with debugfs) and talks over
 * vsock, and init reboots, ending flint with 0. */
Test(linux_snapshot, restore_in_a_new_process_with_network_override, .timeout = 900)
{
    char *k = kernel("vmlinux"), *tree = temp_path("snaproot"), *img = temp_path("snap.ext4");
    char *cfgp = temp_path("snap.json"), *sock = temp_path("snap-api.sock");
    char *sock2 = temp_path("snap-load.sock"), *state = temp_path("snap.state");
    char *mem = temp_path("snap.mem"), uds_a[64], body[1024];
    struct vsock_host h = {.flint_done = false};
    static struct live l; /* 128 KiB of buffers */
    pthread_t lt;

    snap_taps();
    make_root_ext4(tree, img);
    snprintf(uds_a, sizeof(uds_a), "/tmp/flint-linux-snapa-%d.sock", getpid());
    snprintf(h.uds, sizeof(h.uds), "/tmp/flint-linux-snapb-%d.sock", getpid());
    unlink(sock);
    unlink(sock2);
    char *cl = cmdline("root=/dev/vda rw init=/init flint.ip=" GUEST_IP "/24 flint.cmd=\"echo "
                       "snap-ready-$((6*7)); until ping -c 1 -W 1 " HOST_IP " >/dev/null; do :; "
                       "done; echo pinged-$((6*7)); echo written-after-restore > /snap.txt; "
                       "sync; vsock-guest send 2 %u 65536\"",
                       VSOCK_HOST_PORT);
    FILE *f = fopen(cfgp, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"%s\"},\n"
            " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
            "\"is_root_device\": true, \"is_read_only\": false}],\n"
            " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"" SNAP_TAP_A
            "\", \"guest_mac\": \"06:00:00:00:01:02\"}],\n"
            " \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"%s\"},\n"
            " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}\n",
            k, json_escaped(cl), img, uds_a);
    fclose(f);

    char *argv[] = {FLINT_BIN, "--api-sock", sock, "--config-file", cfgp, NULL};
    live_start(&l, argv);
    live_wait_for(&l, "snap-ready-42");
    snap_api(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    snprintf(body, sizeof(body),
             "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
             state, mem);
    snap_api(&l, sock, "PUT", "/snapshot/create", body);
    cr_assert_null(strstr(l.out, "pinged-42"), "a ping was answered before the restore");
    kill(l.pid, SIGKILL);
    live_finish(&l);

    cr_assert_eq(pthread_create(&lt, NULL, vsock_listener, &h), 0);
    char *argv2[] = {FLINT_BIN, "--api-sock", sock2, NULL};
    live_start(&l, argv2);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true, \"network_overrides\": "
             "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"" SNAP_TAP_B "\"}], "
             "\"vsock_override\": {\"uds_path\": \"%s\"}}",
             state, mem, h.uds);
    snap_api(&l, sock2, "PUT", "/snapshot/load", body);
    int status = live_finish(&l);
    h.flint_done = true;
    pthread_join(lt, NULL);
    cr_assert_eq(status, 0, "restored: status %d\nstdout:\n%s\nstderr:\n%s", status, l.out, l.err);
    cr_assert_null(strstr(l.out, "snap-ready-42"), "the guest booted afresh:\n%s", l.out);
    expect_in(l.out, "pinged-42", "guest console");
    expect_in(l.out, "vsock-guest: sent 65536 bytes to 2:6000, all came back intact",
              "guest console");
    expect_in(l.out, INIT_OK, "guest console");
    cr_assert(h.echoed_guest, "guest -> host: no echo to EOF (%s)\nstdout:\n%s", h.why, l.out);
    expect_in_image(img, "/snap.txt", "written-after-restore");
    host_sh("rm -rf %s %s %s %s %s", tree, img, cfgp, state, mem);
    unlink(sock);
    unlink(sock2);
    free(k);
    free(tree);
    free(img);
    free(cfgp);
    free(sock);
    free(sock2);
    free(state);
    free(mem);
    free(cl);
}
