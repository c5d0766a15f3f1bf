/*
 * config.c - VM configuration defaults and validation.
 */
#include "config.h"

#include <flint-abi.h>

#include <ctype.h>
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
    for (unsigned i = 0; i < cfg->ndrives; i++) {
        free(cfg->drives[i].path);
        free(cfg->drives[i].id);
    }
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    config_init(cfg);
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_')
            return false;
    return true;
}

int config_add_drive(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    struct drive_config d = {0};
    char *copy, *tok, *save = NULL;
    int rc = -EINVAL;

    if (cfg->ndrives == CONFIG_MAX_DRIVES) {
        snprintf(err, errlen, "--drive: at most %d drives", CONFIG_MAX_DRIVES);
        return -ENOSPC;
    }
    copy = strdup(spec);
    if (!copy)
        return -ENOMEM;
    tok = strtok_r(copy, ",", &save);
    if (!tok || spec[0] == ',') {
        snprintf(err, errlen, "--drive: missing image path in '%s'", spec);
        goto out;
    }
    d.path = strdup(tok);
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strcmp(tok, "ro")) {
            d.read_only = true;
        } else if (!strncmp(tok, "id=", 3) && valid_id(tok + 3)) {
            free(d.id);
            d.id = strdup(tok + 3);
        } else if (!strncmp(tok, "id=", 3)) {
            snprintf(err, errlen, "--drive: id '%s' must be 1-64 letters, digits or '_'", tok + 3);
            goto out;
        } else {
            snprintf(err, errlen, "--drive: unknown option '%s' (expected ro or id=NAME)", tok);
            goto out;
        }
    }
    if (!d.id) {
        char name[16];
        snprintf(name, sizeof(name), "blk%u", cfg->ndrives);
        d.id = strdup(name);
    }
    for (unsigned i = 0; i < cfg->ndrives; i++) {
        if (!strcmp(cfg->drives[i].id, d.id)) {
            snprintf(err, errlen, "--drive: id '%s' is used twice", d.id);
            goto out;
        }
    }
    if (!d.path || !d.id) {
        rc = -ENOMEM;
        goto out;
    }
    cfg->drives[cfg->ndrives++] = d;
    d = (struct drive_config){0};
    rc = 0;
out:
    free(d.path);
    free(d.id);
    free(copy);
    return rc;
}
