/*
 * fake_vm.h - a VM that does nothing, behind the control API's
 * api_vm_ops, so the API can be driven without KVM: by the server's unit
 * tests (tests/unit/test_api_server.c) and the API fuzz target
 * (fuzz/fuzz_api.c). InstanceStart answers fake_vm_start_rc, with "fake VM
 * refused" in err when it is not 0; every other call succeeds, drive swaps
 * and rate-limiter changes included, so the post-boot routes run to the
 * end. Header-only: each user gets its own copy.
 */
#ifndef FLINT_TESTS_FAKE_VM_H
#define FLINT_TESTS_FAKE_VM_H

#include "api.h"

#include <stdio.h>

static int fake_vm_start_rc;

static int fake_vm_start(void *opaque, char *err, size_t errlen)
{
    (void)opaque;
    if (fake_vm_start_rc)
        snprintf(err, errlen, "fake VM refused");
    return fake_vm_start_rc;
}

static int fake_vm_ok(void *opaque)
{
    (void)opaque;
    return 0;
}

static void fake_vm_resume(void *opaque)
{
    (void)opaque;
}

static int fake_vm_swap_drive(void *opaque, unsigned index, const char *path, char *err,
                              size_t errlen)
{
    (void)opaque;
    (void)index;
    (void)path;
    (void)err;
    (void)errlen;
    return 0;
}

static int fake_vm_set_drive_rl(void *opaque, unsigned index, const struct rate_limiter_config *rl)
{
    (void)opaque;
    (void)index;
    (void)rl;
    return 0;
}

static int fake_vm_set_net_rl(void *opaque, unsigned index, const struct rate_limiter_config *rx,
                              const struct rate_limiter_config *tx)
{
    (void)opaque;
    (void)index;
    (void)rx;
    (void)tx;
    return 0;
}

static const struct api_vm_ops fake_vm_ops = {
    .start = fake_vm_start,
    .ctrl_alt_del = fake_vm_ok,
    .pause = fake_vm_ok,
    .resume = fake_vm_resume,
    .flush_metrics = NULL, /* FlushMetrics then says there is no destination */
    .set_drive_rate_limiter = fake_vm_set_drive_rl,
    .set_net_rate_limiters = fake_vm_set_net_rl,
    .swap_drive = fake_vm_swap_drive,
};

#endif /* FLINT_TESTS_FAKE_VM_H */
