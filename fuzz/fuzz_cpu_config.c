/*
 * libFuzzer target: custom CPU templates (PUT /cpu-config, a config
 * file's cpu-config), the JSON a user hands flint.
 *
 * The input is the template's text. Whatever it is, the parser either
 * refuses it with a message or returns a template within cpu_template.h's
 * limits whose masks and values agree (no value bit outside its mask);
 * such a template is then applied to a small CPUID table, which must stay
 * within the room it has. ASan and UBSan watch every access and leak.
 */
#include "api_cpu_config.h"
#include "cpu_template.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROOM 16

static void check(const struct cpu_template *t)
{
    if (t->nleaves > CPU_TEMPLATE_MAX_LEAVES || t->nmsrs > CPU_TEMPLATE_MAX_MSRS ||
        t->ncaps > CPU_TEMPLATE_MAX_CAPS)
        abort();
    for (unsigned i = 0; i < t->nleaves; i++) {
        if (t->leaves[i].flags > 1)
            abort();
        for (unsigned r = 0; r < CPUID_NREGS; r++)
            if (t->leaves[i].regs[r].value & ~t->leaves[i].regs[r].mask)
                abort();
        for (unsigned j = 0; j < i; j++)
            if (t->leaves[j].leaf == t->leaves[i].leaf &&
                t->leaves[j].subleaf == t->leaves[i].subleaf)
                abort();
    }
    for (unsigned i = 0; i < t->nmsrs; i++)
        if (t->msrs[i].value & ~t->msrs[i].mask)
            abort();
}

static void apply(const struct cpu_template *t)
{
    /* struct kvm_cpuid2 ends in a flexible array: give it room in a union. */
    union {
        struct kvm_cpuid2 hdr;
        uint8_t bytes[sizeof(struct kvm_cpuid2) + ROOM * sizeof(struct kvm_cpuid_entry2)];
    } b;

    memset(&b, 0, sizeof(b));
    b.hdr.nent = 4;
    for (unsigned i = 0; i < 4; i++)
        b.hdr.entries[i] = (struct kvm_cpuid_entry2){.function = i, .eax = ~0u, .edx = ~0u};
    int rc = cpu_template_apply_cpuid(t, &b.hdr, ROOM);
    if (b.hdr.nent > ROOM || (rc && rc != -E2BIG))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cpu_template *t = NULL;
    char err[256];

    err[0] = '\0';
    if (cpu_config_parse((const char *)data, size, &t, err, sizeof(err))) {
        if (t || !err[0])
            abort();
        return 0;
    }
    check(t);
    apply(t);
    cpu_template_free(t);
    return 0;
}
