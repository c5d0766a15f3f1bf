/*
 * config.h - what a VM is made of, however it was described (the `flint
 * run` command line today; the API and config file share it later).
 */
#ifndef FLINT_CONFIG_H
#define FLINT_CONFIG_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_MEM_MIB 128
#define CONFIG_MIN_MEM_MIB     2
#define CONFIG_MAX_MEM_MIB     (1024ull * 1024) /* 1 TiB */
#define CONFIG_MAX_VCPUS       32
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

#define CONFIG_MAX_DRIVES 16

struct drive_config {
    char *path;
    char *id; /* NULL: "blk<index>" */
    bool read_only;
};

struct vm_config {
    char *kernel_path; /* NULL: the built-in guest-shim hello image */
    char *initrd_path; /* optional */
    char *cmdline;     /* NULL: CONFIG_DEFAULT_CMDLINE */
    uint64_t mem_mib;
    unsigned vcpus;
    bool stats;
    enum log_level level;
    struct drive_config drives[CONFIG_MAX_DRIVES];
    unsigned ndrives;
};

/* Defaults: 128 MiB, 1 vCPU, log level Warning. */
void config_init(struct vm_config *cfg);

/* Range checks that do not touch the file system. Returns 0 or -EINVAL with
 * one line naming the field in err. */
int config_validate(const struct vm_config *cfg, char *err, size_t errlen);

/* Free the strings; the struct returns to its defaults. */
void config_free(struct vm_config *cfg);

/* Parse a --drive value "PATH[,ro][,id=NAME]" and append it. Returns 0 or
 * -EINVAL / -ENOSPC with one line in err. */
int config_add_drive(struct vm_config *cfg, const char *spec, char *err, size_t errlen);

/* Set a string field, replacing (and freeing) the old value. 0 or -ENOMEM. */
int config_set_str(char **field, const char *value);

#endif /* FLINT_CONFIG_H */
