/*
 * cli.h - the command line: `flint run [options]` boots one VM at once;
 * `flint [--api-sock PATH] [--config-file FILE] ...` acts like Firecracker
 * (an API socket, a config file, or both); `--help`, `--version`.
 */
#ifndef FLINT_CLI_H
#define FLINT_CLI_H

#include "config.h"

#include <stddef.h>
#include <stdio.h>

/* What the command line asks for. */
enum cli_action {
    CLI_RUN,   /* flint run ... */
    CLI_SERVE, /* Firecracker style: the API socket and/or a config file */
    CLI_HELP,
    CLI_VERSION,
};

/* The Firecracker-style options (CLI_SERVE). */
struct cli_serve {
    char *api_sock;    /* NULL: API_DEFAULT_SOCKET, unless no_api */
    char *id;          /* NULL: API_DEFAULT_INSTANCE_ID */
    char *config_file; /* NULL: none; the API configures the VM */
    bool no_api;
    char *log_path; /* NULL: log to stderr in flint's format */
    bool show_level, show_log_origin;
    char *metrics_path;     /* NULL: no metrics */
    size_t max_payload;     /* 0: API_HTTP_MAX_BODY; --http-api-max-payload-size */
    size_t mmds_size_limit; /* 0: max_payload's value (Firecracker's default) */
    char *metadata_path;    /* --metadata: JSON put into the MMDS at start */
};

/* Parse argv (argv[0] is the program). On success returns 0 and sets
 * *action, filling cfg for CLI_RUN and CLI_SERVE, and serve for CLI_SERVE.
 * On a bad argument returns -EINVAL with one line in err naming the option
 * and the problem (exit code 153). */
int cli_parse(int argc, char *const argv[], enum cli_action *action, struct vm_config *cfg,
              struct cli_serve *serve, char *err, size_t errlen);

/* Free serve's strings. */
void cli_serve_free(struct cli_serve *serve);

/* Parse a decimal number in [min, max]: no sign, no suffix, no junk. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Print the usage text. */
void cli_usage(FILE *out);

/* Find the built-in hello image: next to the executable, in the install
 * data directory, then in the build tree. Returns 0 and fills buf, or
 * -ENOENT with the places tried in err. */
int cli_default_kernel(char *buf, size_t len, char *err, size_t errlen);

#endif /* FLINT_CLI_H */
