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
#include <sys/un.h>

void config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem_mib = CONFIG_DEFAULT_MEM_MIB;
    cfg->vcpus = 1;
    cfg->level = LOG_WARN;
    cfg->seccomp = true;
    cfg->huge_pages = CONFIG_DEFAULT_HUGE_PAGES;
    cfg->console_input = true;
}

int config_check_mem_mib(uint64_t mib, const char *field, char *err, size_t errlen)
{
    if (mib < CONFIG_MIN_MEM_MIB || mib > CONFIG_MAX_MEM_MIB) {
        snprintf(err, errlen, "%s: %llu MiB is out of range (%d to %llu)", field,
                 (unsigned long long)mib, CONFIG_MIN_MEM_MIB,
                 (unsigned long long)CONFIG_MAX_MEM_MIB);
        return -EINVAL;
    }
    return 0;
}

const char *const config_huge_pages_names[] = {"None", "2M", "Transparent", NULL};

int config_check_huge_pages(uint64_t mib, enum config_huge_pages huge_pages, const char *field,
                            char *err, size_t errlen)
{
    /* Transparent huge pages take any size: a tail short of 2 MiB gets
     * 4 KiB pages. */
    if (huge_pages == CONFIG_HUGE_PAGES_2M && mib % 2) {
        snprintf(err, errlen, "%s: %llu MiB is not a multiple of the 2 MiB huge page size", field,
                 (unsigned long long)mib);
        return -EINVAL;
    }
    return 0;
}

int config_check_vcpus(uint64_t n, const char *field, char *err, size_t errlen)
{
    if (n < 1 || n > CONFIG_MAX_VCPUS) {
        snprintf(err, errlen, "%s: %llu is out of range (1 to %d)", field, (unsigned long long)n,
                 CONFIG_MAX_VCPUS);
        return -EINVAL;
    }
    return 0;
}

int config_check_smt(uint64_t vcpus, bool smt, const char *field, char *err, size_t errlen)
{
    if (smt && vcpus != 1 && vcpus % 2) {
        snprintf(err, errlen,
                 "%s: with smt true the vCPU count must be 1 or even (two threads per core), "
                 "not %llu",
                 field, (unsigned long long)vcpus);
        return -EINVAL;
    }
    return 0;
}

int config_check_cmdline(const char *cmdline, const char *field, char *err, size_t errlen)
{
    if (cmdline && strlen(cmdline) >= FLINT_CMDLINE_MAX) {
        snprintf(err, errlen, "%s: %zu bytes is longer than the limit of %d", field,
                 strlen(cmdline), FLINT_CMDLINE_MAX - 1);
        return -EINVAL;
    }
    return 0;
}

int config_check_tap_name(const char *name, const char *field, char *err, size_t errlen)
{
    if (!name[0] || strlen(name) >= 16 || strchr(name, '/')) {
        snprintf(err, errlen, "%s: '%s' is not a valid interface name (1-15 bytes, no '/')", field,
                 name);
        return -EINVAL;
    }
    return 0;
}

int config_check_vsock_cid(uint64_t cid, const char *field, char *err, size_t errlen)
{
    if (cid < CONFIG_VSOCK_MIN_CID || cid > CONFIG_VSOCK_MAX_CID) {
        snprintf(err, errlen, "%s: %llu is out of range (%u to %u)", field, (unsigned long long)cid,
                 CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID);
        return -EINVAL;
    }
    return 0;
}

int config_check_vsock_path(const char *path, const char *field, char *err, size_t errlen)
{
    /* Room for the "_<port>" suffix of guest-initiated connections. */
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 12;

    if (!path[0]) {
        snprintf(err, errlen, "%s: missing Unix socket path", field);
        return -EINVAL;
    }
    if (strlen(path) > max) {
        snprintf(err, errlen, "%s: socket path '%s' is too long (at most %zu bytes)", field, path,
                 max);
        return -EINVAL;
    }
    return 0;
}

int config_validate(const struct vm_config *cfg, char *err, size_t errlen)
{
    if (config_check_mem_mib(cfg->mem_mib, "mem", err, errlen) ||
        config_check_huge_pages(cfg->mem_mib, cfg->huge_pages, "mem", err, errlen) ||
        config_check_vcpus(cfg->vcpus, "vcpus", err, errlen) ||
        config_check_smt(cfg->vcpus, cfg->smt, "vcpus", err, errlen) ||
        config_check_cmdline(cfg->cmdline, "cmdline", err, errlen))
        return -EINVAL;
    return 0;
}

int config_find_drive(const struct vm_config *cfg, const char *id)
{
    for (unsigned i = 0; i < cfg->ndrives; i++)
        if (cfg->drives[i].id && !strcmp(cfg->drives[i].id, id))
            return (int)i;
    return -1;
}

int config_find_net(const struct vm_config *cfg, const char *id)
{
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].id && !strcmp(cfg->nets[i].id, id))
            return (int)i;
    return -1;
}

void config_drive_free(struct drive_config *d)
{
    free(d->path);
    free(d->id);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

void config_net_free(struct net_config *n)
{
    free(n->tap);
    free(n->id);
    memset(n, 0, sizeof(*n));
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
    for (unsigned i = 0; i < cfg->ndrives; i++)
        config_drive_free(&cfg->drives[i]);
    for (unsigned i = 0; i < cfg->nnets; i++)
        config_net_free(&cfg->nets[i]);
    free(cfg->vsock.uds_path);
    free(cfg->vm_id);
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    free(cfg->snapshot_on_signal);
    free(cfg->restore_state);
    free(cfg->restore_mem);
    cpu_template_free(cfg->custom_cpu);
    free(cfg->serial_out_path);
    config_init(cfg);
}

bool config_valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > CONFIG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_')
            return false;
    return true;
}

bool config_valid_vm_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > CONFIG_VM_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-')
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
        } else if (!strncmp(tok, "id=", 3) && config_valid_id(tok + 3)) {
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

int config_parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = *s++;
            if (!isxdigit((unsigned char)c))
                return -EINVAL;
            v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        if (*s != (i == 5 ? '\0' : ':'))
            return -EINVAL;
        s++;
        mac[i] = (uint8_t)v;
    }
    return (mac[0] & 1) ? -EINVAL : 0;
}

int config_add_net(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    struct net_config n = {0};
    char *copy, *tok, *save = NULL;
    int rc = -EINVAL;

    if (cfg->nnets == CONFIG_MAX_NETS) {
        snprintf(err, errlen, "--net: at most %d network interfaces", CONFIG_MAX_NETS);
        return -ENOSPC;
    }
    copy = strdup(spec);
    if (!copy)
        return -ENOMEM;
    tok = strtok_r(copy, ",", &save);
    if (!tok || spec[0] == ',') {
        snprintf(err, errlen, "--net: missing tap device name in '%s'", spec);
        goto out;
    }
    if (config_check_tap_name(tok, "--net", err, errlen))
        goto out;
    n.tap = strdup(tok);
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "mac=", 4)) {
            if (config_parse_mac(tok + 4, n.mac)) {
                snprintf(err, errlen,
                         "--net: mac '%s' must be six hex bytes XX:XX:XX:XX:XX:XX, not multicast",
                         tok + 4);
                goto out;
            }
            n.has_mac = true;
        } else if (!strncmp(tok, "id=", 3)) {
            if (!config_valid_id(tok + 3)) {
                snprintf(err, errlen, "--net: id '%s' must be 1-64 letters, digits or '_'",
                         tok + 3);
                goto out;
            }
            free(n.id);
            n.id = strdup(tok + 3);
        } else {
            snprintf(err, errlen, "--net: unknown option '%s' (expected mac=MAC or id=NAME)", tok);
            goto out;
        }
    }
    if (!n.id) {
        char name[16];
        snprintf(name, sizeof(name), "net%u", cfg->nnets);
        n.id = strdup(name);
    }
    if (!n.tap || !n.id) {
        rc = -ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        if (!strcmp(cfg->nets[i].id, n.id)) {
            snprintf(err, errlen, "--net: id '%s' is used twice", n.id);
            goto out;
        }
        if (!strcmp(cfg->nets[i].tap, n.tap)) {
            snprintf(err, errlen, "--net: tap '%s' is used twice", n.tap);
            goto out;
        }
    }
    cfg->nets[cfg->nnets++] = n;
    n = (struct net_config){0};
    rc = 0;
out:
    free(n.tap);
    free(n.id);
    free(copy);
    return rc;
}

int config_set_vsock(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    const char *comma = strchr(spec, ',');
    unsigned long long cid;
    char *end;

    if (cfg->vsock.enabled) {
        snprintf(err, errlen, "--vsock: only one vsock device per VM");
        return -EINVAL;
    }
    errno = 0;
    cid = strtoull(spec, &end, 10);
    if (!comma || end != comma || spec[0] < '0' || spec[0] > '9' || errno ||
        cid < CONFIG_VSOCK_MIN_CID || cid > CONFIG_VSOCK_MAX_CID) {
        snprintf(err, errlen, "--vsock: expected CID,PATH with CID from %u to %u, got '%s'",
                 CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID, spec);
        return -EINVAL;
    }
    if (!comma[1]) {
        snprintf(err, errlen, "--vsock: missing Unix socket path after the CID");
        return -EINVAL;
    }
    if (config_check_vsock_path(comma + 1, "--vsock", err, errlen))
        return -EINVAL;
    if (config_set_str(&cfg->vsock.uds_path, comma + 1))
        return -ENOMEM;
    cfg->vsock.guest_cid = (uint32_t)cid;
    cfg->vsock.enabled = true;
    return 0;
}
