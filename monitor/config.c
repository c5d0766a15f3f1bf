/*
 * config.c - VM configuration defaults and validation.
 */
#include "config.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem_mib = CONFIG_DEFAULT_MEM_MIB;
    cfg->vcpus = 1;
    cfg->level = LOG_WARN;
}

int config_validate(const struct vm_config *cfg, char *err, size_t errlen)
{
    if (cfg->mem_mib < CONFIG_MIN_MEM_MIB || cfg->mem_mib > CONFIG_MAX_MEM_MIB) {
        snprintf(err, errlen, "mem: %llu MiB is out of range (%d to %llu)",
                 (unsigned long long)cfg->mem_mib, CONFIG_MIN_MEM_MIB,
                 (unsigned long long)CONFIG_MAX_MEM_MIB);
        return -EINVAL;
    }
    if (cfg->vcpus < 1 || cfg->vcpus > CONFIG_MAX_VCPUS) {
        snprintf(err, errlen, "vcpus: %u is out of range (1 to %d)", cfg->vcpus, CONFIG_MAX_VCPUS);
        return -EINVAL;
    }
    if (cfg->cmdline && strlen(cfg->cmdline) >= FLINT_CMDLINE_MAX) {
        snprintf(err, errlen, "cmdline: %zu bytes is longer than the limit of %d",
                 strlen(cfg->cmdline), FLINT_CMDLINE_MAX - 1);
        return -EINVAL;
    }
    return 0;
}

int config_set_str(char **field, const char *value)
{
    char *copy = strdup(value);

    if (!copy)
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

void config_free(struct vm_config *cfg)
{
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    config_init(cfg);
}
