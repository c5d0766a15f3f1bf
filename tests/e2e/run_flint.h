/*
 * run_flint.h - spawn flint with arguments, capture its output, bound its time.
 * Shared by the end-to-end tests.
 */
#ifndef FLINT_TEST_RUN_FLINT_H
#define FLINT_TEST_RUN_FLINT_H

#include <stdbool.h>
#include <stddef.h>

struct flint_result {
    int status;     /* exit status, or 128 + signal */
    bool timed_out; /* killed after the deadline */
    double seconds; /* wall time */
    char *out;      /* stdout, NUL-terminated */
    char *err;      /* stderr, NUL-terminated */
};

/* Run `argv` (argv[0] is the program path, NULL-terminated) for at most
 * `timeout_s` seconds. Never fails: problems show up in the result. */
struct flint_result run_cmd(char *const argv[], double timeout_s);

/* Free the captured output. */
void flint_result_free(struct flint_result *r);

/* Count the lines of s. */
unsigned count_lines(const char *s);

#endif
