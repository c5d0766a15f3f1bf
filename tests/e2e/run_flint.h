/*
 * run_flint.h - spawn flint with arguments, capture its output, bound its time.
 * Shared by the end-to-end tests.
 */
#ifndef FLINT_TEST_RUN_FLINT_H
#define FLINT_TEST_RUN_FLINT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* How long the live_* helpers wait for a line or an exit: the nested
 * sandbox is slow. */
#define LIVE_TIMEOUT_S 240.0

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

/* Run `flint_bin run ARGS...` (args NULL-terminated, at most 37). */
struct flint_result flint_run_args(const char *flint_bin, double timeout_s, char *const args[]);

/* Fail the test unless r exited with status (printing its output). */
void check_status(const struct flint_result *r, int status);

/* Fail the test unless s contains needle. */
void check_has(const char *s, const char *needle);

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

/* A flint (or jailer) that keeps running while the test talks to it and
 * looks at it. The helpers fail the Criterion test on a broken pipe or
 * spawn, and after LIVE_TIMEOUT_S. */
struct live {
    pid_t pid;
    int fd[2]; /* stdout, stderr; -1 at EOF */
    char out[65536], err[65536];
    size_t len[2];
    int status; /* once finished */
    bool done;
};

/* Start argv (argv[0] a path) with stdin from /dev/null. The child is
 * killed when the test process dies, so a failed assertion leaves no flint
 * (and no socket) behind. */
void live_start(struct live *l, char *const argv[]);

/* live_start with stdin_fd as the child's stdin (a pipe's read end, a
 * pty's slave: then the child is a session leader with that terminal as
 * its controlling one, in the foreground). The caller keeps stdin_fd. */
void live_start_stdin(struct live *l, char *const argv[], int stdin_fd);

/* Read what is there, waiting up to ms; false once both pipes are closed.
 * Output beyond the buffers is read and dropped. */
bool live_pump(struct live *l, int ms);

/* Pump until stdout contains needle; fails the test after the deadline. */
void live_wait_for(struct live *l, const char *needle);

/* Wait for the exit (SIGKILL after the deadline); the exit status, or 128
 * + the signal. Calling it again returns the same status. */
int live_finish(struct live *l);

/* The exact console output of the consoletext guest (guests/consoletext.c),
 * malloc'd: the byte-for-byte reference for both console paths. */
char *console_text_expected(void);

#endif
