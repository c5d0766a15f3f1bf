/*
 * test_hooks.c - linked into flint-test, the end-to-end tests' build of
 * flint, and never into flint itself: makes a thread break its seccomp
 * filter on request.
 *
 * FLINT_TEST_SECCOMP_TRIGGER=vmm or =vcpu: right after loading its filter,
 * the VMM thread or vCPU 0 calls socket(AF_INET, SOCK_STREAM, 0), which no
 * list allows (the VMM thread's allows AF_UNIX streams only).
 */
#define _GNU_SOURCE
#include "seccomp.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

void seccomp_test_hook(enum seccomp_thread kind, unsigned id)
{
    const char *which = getenv("FLINT_TEST_SECCOMP_TRIGGER");

    if (which && id == 0 && strcmp(which, seccomp_thread_name(kind)) == 0)
        syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}
