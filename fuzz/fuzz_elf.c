/*
 * libFuzzer target: the kernel loaders (ELF, PVH or Linux 64-bit, and
 * bzImage), initrd placement and the boot information written for them.
 *
 * The input is a kernel image. Whatever it contains, the loader must not
 * crash, must not touch memory outside guest RAM (ASan watches), and when it
 * accepts an image, everything it reports must lie inside RAM.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static struct guest_mem mem;
static int image_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kernel_image img;
    struct initrd_placement rd;
    char err[LOADER_ERR_LEN];

    if (image_fd < 0) {
        if (guest_mem_create(&mem, 8 * MIB))
            abort();
        image_fd = memfd_create("fuzz-image", MFD_CLOEXEC);
        if (image_fd < 0)
            abort();
    }
    if (ftruncate(image_fd, 0) || pwrite(image_fd, data, size, 0) != (ssize_t)size)
        abort();

    if (kernel_load(&mem, image_fd, &img, err, sizeof(err)) != 0)
        return 0;
    if (img.load_start < FLINT_HIMEM_START || img.load_end > mem.size ||
        img.entry < img.load_start || img.entry >= img.load_end)
        abort();
    /* The image doubles as an initrd: it must land above the kernel. */
    if (initrd_load(&mem, image_fd, &img, &rd, err, sizeof(err)) == 0 &&
        (rd.addr < img.load_end || rd.addr + rd.size > guest_mem_low_end(&mem) ||
         rd.addr + rd.size > img.initrd_end_max))
        abort();
    struct boot_args args = {.cmdline = "console=ttyS0", .ncpus = 1 + size % 32};
    if (img.cmdline_max >= FLINT_CMDLINE_MAX ||
        boot_write_info(&mem, &img, &args, err, sizeof(err)) == -EFAULT)
        abort();
    return 0;
}
