/*
 * main.c - flint: parse, build the VM, run it, report, exit with its status.
 */
#include "cli.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "vmm.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0"
#endif

static int run(struct vm_config *cfg)
{
    struct vmm vmm;
    char err[512];
    char kernel[PATH_MAX];
    int status;

    log_set_level(cfg->level);
    log_set_vm_id(cfg->vm_id);
    if (config_validate(cfg, err, sizeof(err))) {
        log_error("%s", err);
        return FLINT_EXIT_BAD_CONFIG;
    }
    if (!cfg->kernel_path) {
        if (cli_default_kernel(kernel, sizeof(kernel), err, sizeof(err))) {
            log_error("%s", err);
            return FLINT_EXIT_BAD_CONFIG;
        }
        if (config_set_str(&cfg->kernel_path, kernel))
            return FLINT_EXIT_GENERIC;
    }
    status = vmm_create(&vmm, cfg);
    if (status == 0) {
        status = vmm_run(&vmm);
        if (cfg->stats || log_get_level() >= LOG_DEBUG)
            vmm_print_stats(&vmm, STDERR_FILENO);
    }
    vmm_destroy(&vmm);
    return status;
}

int main(int argc, char **argv)
{
    struct vm_config cfg;
    enum cli_action action;
    char err[512];
    int status;

    /* A closed stdout or socket must be an error code, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    config_init(&cfg);
    if (cli_parse(argc, argv, &action, &cfg, err, sizeof(err))) {
        log_error("%s", err);
        config_free(&cfg);
        return FLINT_EXIT_ARG_PARSING;
    }
    switch (action) {
    case CLI_HELP:
        cli_usage(stdout);
        status = FLINT_EXIT_OK;
        break;
    case CLI_VERSION:
        printf("flint v%s\n", FLINT_VERSION);
        status = FLINT_EXIT_OK;
        break;
    default:
        status = run(&cfg);
        break;
    }
    config_free(&cfg);
    return status;
}
