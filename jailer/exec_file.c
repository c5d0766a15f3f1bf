/*
 * exec_file.c - can this file run in a jail that holds nothing else? The
 * jail has no dynamic loader and no libraries (like Firecracker's, which
 * wants a static binary), so a PT_INTERP is refused here, with a message,
 * rather than as an ENOENT from execve after the jail is built.
 */
#include "jailer.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PHDRS 256 /* more than any real executable; bounds the walk */

static int no(char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "%s", what);
    return -ENOEXEC;
}

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = pread(fd, buf, len, (off_t)off);
    return n >= 0 && (size_t)n == len;
}

int jail_check_exec_file(int fd, char *why, size_t whylen)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    struct stat st;

    if (fstat(fd, &st))
        return no(why, whylen, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return no(why, whylen, "not a regular file");
    if (!read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG))
        return no(why, whylen, "not an ELF executable");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return no(why, whylen, "not an x86_64 ELF executable");
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        return no(why, whylen, "an ELF file but not an executable");
    if (eh.e_phentsize != sizeof(ph) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS ||
        eh.e_phoff > (uint64_t)st.st_size)
        return no(why, whylen, "malformed ELF program headers");
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (!read_at(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph)))
            return no(why, whylen, "truncated ELF program headers");
        if (ph.p_type == PT_INTERP)
            return no(why, whylen,
                      "dynamically linked (it needs a loader and libraries the jail does not "
                      "have): use a static build, e.g. build/jailer/flint");
    }
    return 0;
}
