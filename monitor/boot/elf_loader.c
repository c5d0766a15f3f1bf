/*
 * elf_loader.c - ELF64 kernel loader (ELF-64 Object File Format 1.5): PVH
 * kernels (Xen PVH boot ABI, docs/misc/pvh.pandoc in Xen) and Linux
 * vmlinux images without the PVH note (Linux 64-bit boot protocol).
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Notes are a few hundred bytes; refuse to read megabytes for them. */
#define NOTE_MAX_BYTES (64 * 1024)

static int check_ehdr(const Elf64_Ehdr *eh, uint64_t fsize, char *err, size_t errlen)
{
    uint64_t ph_bytes, ph_end;

    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return loader_fail(err, errlen, -ENOEXEC, "not an ELF image (bad magic)");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        return loader_fail(err, errlen, -ENOEXEC, "not a 64-bit ELF image");
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return loader_fail(err, errlen, -ENOEXEC, "not a little-endian ELF image");
    if (eh->e_machine != EM_X86_64)
        return loader_fail(err, errlen, -ENOEXEC, "ELF machine %u is not x86_64", eh->e_machine);
    if (eh->e_type != ET_EXEC)
        return loader_fail(err, errlen, -ENOEXEC, "ELF type %u is not an executable", eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return loader_fail(err, errlen, -ENOEXEC, "bad program header size %u", eh->e_phentsize);
    if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
        return loader_fail(err, errlen, -ENOEXEC, "%u program headers (expected 1 to %d)",
                           eh->e_phnum, ELF_MAX_PHDRS);
    ph_bytes = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
    if (!add_ok_u64(eh->e_phoff, ph_bytes, &ph_end) || ph_end > fsize)
        return loader_fail(err, errlen, -ENOEXEC, "program headers lie beyond the end of the file");
    return 0;
}

/* Walk the notes of one PT_NOTE segment looking for the PVH entry. */
static int find_pvh_note(int fd, const Elf64_Phdr *ph, uint64_t fsize, uint64_t *entry, char *err,
                         size_t errlen)
{
    uint8_t buf[NOTE_MAX_BYTES];
    uint64_t end, pos = 0, len = ph->p_filesz;
    int rc;

    if (!add_ok_u64(ph->p_offset, len, &end) || end > fsize)
        return loader_fail(err, errlen, -ENOEXEC, "note segment lies beyond the end of the file");
    if (len > sizeof(buf))
        len = sizeof(buf);
    rc = loader_read(fd, buf, len, ph->p_offset);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read note segment: %s", strerror(-rc));

    while (len - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        uint64_t name_len, desc_len;

        memcpy(&nh, buf + pos, sizeof(nh));
        pos += sizeof(nh);
        name_len = ALIGN_UP((uint64_t)nh.n_namesz, 4);
        desc_len = ALIGN_UP((uint64_t)nh.n_descsz, 4);
        if (name_len > len - pos || desc_len > len - pos - name_len)
            return loader_fail(err, errlen, -ENOEXEC, "truncated ELF note");
        if (nh.n_namesz == 4 && memcmp(buf + pos, "Xen", 4) == 0 &&
            nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
            const uint8_t *desc = buf + pos + name_len;
            /* Linux emits the entry as a pointer-sized value, others as 32 bits. */
            if (nh.n_descsz == 4) {
                uint32_t v;
                memcpy(&v, desc, 4);
                *entry = v;
            } else if (nh.n_descsz == 8) {
                memcpy(entry, desc, 8);
                if (*entry > UINT32_MAX)
                    return loader_fail(err, errlen, -ENOEXEC, "PVH entry 0x%llx is above 4 GiB",
                                       (unsigned long long)*entry);
            } else {
                return loader_fail(err, errlen, -ENOEXEC,
                                   "PVH entry note has %u bytes (expected 4 or 8)", nh.n_descsz);
            }
            return 1;
        }
        pos += name_len + desc_len;
    }
    return 0;
}

static int check_load(const struct guest_mem *mem, const Elf64_Phdr *phs, unsigned idx,
                      uint64_t fsize, char *err, size_t errlen)
{
    const Elf64_Phdr *ph = &phs[idx];
    uint64_t file_end, mem_end;

    if (ph->p_filesz > ph->p_memsz)
        return loader_fail(err, errlen, -ENOEXEC,
                           "segment %u has more file bytes than memory bytes", idx);
    if (!add_ok_u64(ph->p_offset, ph->p_filesz, &file_end) || file_end > fsize)
        return loader_fail(err, errlen, -ENOEXEC,
                           "segment %u lies beyond the end of the file (truncated image?)", idx);
    if (!add_ok_u64(ph->p_paddr, ph->p_memsz, &mem_end))
        return loader_fail(err, errlen, -ENOEXEC, "segment %u wraps around the address space", idx);
    if (ph->p_paddr < FLINT_HIMEM_START)
        return loader_fail(err, errlen, -ENOEXEC,
                           "segment %u at 0x%llx overlaps the boot area below 1 MiB", idx,
                           (unsigned long long)ph->p_paddr);
    if (!guest_mem_slice(mem, ph->p_paddr, ph->p_memsz))
        return loader_fail(err, errlen, -ENOMEM,
                           "segment %u [0x%llx, 0x%llx) does not fit in guest RAM (%llu MiB)", idx,
                           (unsigned long long)ph->p_paddr, (unsigned long long)mem_end,
                           (unsigned long long)(mem->size / MIB));
    for (unsigned j = 0; j < idx; j++) {
        if (phs[j].p_type == PT_LOAD &&
            ranges_overlap(phs[j].p_paddr, phs[j].p_memsz, ph->p_paddr, ph->p_memsz))
            return loader_fail(err, errlen, -ENOEXEC, "segments %u and %u overlap", j, idx);
    }
    return 0;
}

int elf_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
             size_t errlen)
{
    Elf64_Ehdr eh;
    Elf64_Phdr phs[ELF_MAX_PHDRS];
    struct stat st;
    uint64_t entry = 0;
    bool have_entry = false, entry_inside = false;
    unsigned nload = 0;
    int rc;

    if (fstat(fd, &st) < 0)
        return loader_fail(err, errlen, -errno, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return loader_fail(err, errlen, -EINVAL, "not a regular file");
    if ((uint64_t)st.st_size < sizeof(eh))
        return loader_fail(err, errlen, -ENOEXEC, "too small to be an ELF image (%lld bytes)",
                           (long long)st.st_size);
    rc = loader_read(fd, &eh, sizeof(eh), 0);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read ELF header: %s", strerror(-rc));
    rc = check_ehdr(&eh, (uint64_t)st.st_size, err, errlen);
    if (rc)
        return rc;
    rc = loader_read(fd, phs, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read program headers: %s", strerror(-rc));

    memset(img, 0, sizeof(*img));
    /* Pass 1: validate everything; nothing is written to guest memory. */
    img->load_start = UINT64_MAX;
    img->load_end = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        const Elf64_Phdr *ph = &phs[i];
        if (ph->p_type == PT_NOTE && !have_entry) {
            rc = find_pvh_note(fd, ph, (uint64_t)st.st_size, &entry, err, errlen);
            if (rc < 0)
                return rc;
            have_entry = rc == 1;
        } else if (ph->p_type == PT_LOAD && ph->p_memsz) {
            rc = check_load(mem, phs, i, (uint64_t)st.st_size, err, errlen);
            if (rc)
                return rc;
            nload++;
            if (ph->p_paddr < img->load_start)
                img->load_start = ph->p_paddr;
            if (ph->p_paddr + ph->p_memsz > img->load_end)
                img->load_end = ph->p_paddr + ph->p_memsz;
        }
    }
    if (!nload)
        return loader_fail(err, errlen, -ENOEXEC, "no loadable segments");
    /* Without the note, a vmlinux starts at startup_64 through the Linux
     * 64-bit boot protocol; its e_entry is that physical address. */
    if (!have_entry)
        entry = eh.e_entry;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        const Elf64_Phdr *ph = &phs[i];
        if (ph->p_type == PT_LOAD && entry >= ph->p_paddr && entry - ph->p_paddr < ph->p_memsz)
            entry_inside = true;
    }
    if (!entry_inside)
        return loader_fail(err, errlen, -ENOEXEC, "%s 0x%llx is outside every loaded segment",
                           have_entry ? "PVH entry" : "entry point (no PVH note: e_entry)",
                           (unsigned long long)entry);

    /* Pass 2: copy. The image was validated, so only I/O errors remain. */
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        const Elf64_Phdr *ph = &phs[i];
        uint8_t *dst;
        if (ph->p_type != PT_LOAD || !ph->p_memsz)
            continue;
        dst = guest_mem_slice(mem, ph->p_paddr, ph->p_memsz);
        rc = loader_read(fd, dst, ph->p_filesz, ph->p_offset);
        if (rc)
            return loader_fail(err, errlen, rc, "cannot read segment %u: %s", i, strerror(-rc));
        memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
    img->entry = entry;
    img->protocol = have_entry ? BOOT_PVH : BOOT_LINUX64;
    img->initrd_end_max = FLINT_MMIO_GAP_START;
    img->cmdline_max = FLINT_CMDLINE_MAX - 1;
    img->has_setup_header = false;
    return 0;
}
