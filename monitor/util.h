/*
 * util.h - small helpers shared by every monitor subsystem.
 */
#ifndef FLINT_UTIL_H
#define FLINT_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* Overflow-checked "a + b": returns true and stores the sum when it fits. */
static inline bool add_ok_u64(uint64_t a, uint64_t b, uint64_t *sum)
{
    return !__builtin_add_overflow(a, b, sum);
}

/* True when [a, a + alen) and [b, b + blen) share a byte; no overflow assumed
 * by the caller, ranges that wrap are treated as reaching the top. */
static inline bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    uint64_t aend, bend;
    if (alen == 0 || blen == 0)
        return false;
    if (!add_ok_u64(a, alen, &aend))
        aend = UINT64_MAX;
    if (!add_ok_u64(b, blen, &bend))
        bend = UINT64_MAX;
    return a < bend && b < aend;
}

/* Write one line saying what is wrong with an input into err and return
 * -EINVAL: the shape of every refusal of a user's configuration or body. */
static inline int fail_einval(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int fail_einval(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Process exit codes (Firecracker's where it defines one; docs/CLI.md). */
enum flint_exit_code {
    FLINT_EXIT_OK = 0,
    FLINT_EXIT_GENERIC = 1,
    FLINT_EXIT_UNEXPECTED = 2,
    FLINT_EXIT_GUEST_CRASH = 3, /* triple fault, dead halt, KVM internal error */
    FLINT_EXIT_BAD_SYSCALL = 148,
    FLINT_EXIT_SIGBUS = 149,
    FLINT_EXIT_SIGSEGV = 150,
    FLINT_EXIT_BAD_CONFIG = 152,
    FLINT_EXIT_ARG_PARSING = 153,
};

#endif /* FLINT_UTIL_H */
