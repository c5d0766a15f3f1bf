/*
 * jailer.h - flint-jailer: builds a jail for one flint process and execs flint
 * inside it, with Firecracker's jailer flags and sequence (docs/SECURITY.md,
 * "The jailer"). The whole face of jailer/:
 *
 *   args.c       the command line, parsed and validated without touching the
 *                system (unit tested)
 *   exec_file.c  the check that the exec file can run in an empty jail
 *   undo.c       the record of what this run created, removed on failure
 *   cgroup.c     the cgroup v2 steps
 *   jailer.c     main: the sequence
 */
#ifndef FLINT_JAILER_H
#define FLINT_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit codes: 0 once flint is exec'd (or, with --daemonize or --new-pid-ns,
 * once it is started); otherwise one line "flint-jailer: <step>: <path>:
 * <problem>" on stderr and one of these. */
#define JAILER_EXIT_SETUP 1   /* a step of the sequence failed */
#define JAILER_EXIT_ARGS  153 /* bad command line (flint's code for the same) */

#define JAIL_ID_MAX             64 /* --id: 1-64 letters, digits or '-' */
#define JAIL_NAME_MAX           64 /* the exec file's name, a path component in the jail */
#define JAIL_DEFAULT_BASE       "/srv/jailer"
#define JAIL_DEFAULT_NOFILE     2048 /* RLIMIT_NOFILE unless --resource-limit no-file= */
#define JAIL_MAX_CGROUP_SETTING 32
#define JAIL_CGROUP_VALUE_MAX   256

/* One --cgroup FILE=VALUE. */
struct jail_cgroup_setting {
    char *file;  /* "<controller>.<name>", e.g. "memory.max" */
    char *value; /* written as is, e.g. "268435456" or "200000 100000" */
};

/* The command line. Strings point into argv unless noted. */
struct jail_args {
    const char *id;
    const char *exec_file;
    const char *exec_name; /* the exec file's last path component */
    uid_t uid;
    gid_t gid;
    const char *chroot_base; /* absolute, no trailing '/'; default JAIL_DEFAULT_BASE */
    char *chroot_base_buf;   /* owned: chroot_base without trailing slashes */
    const char *netns;       /* NULL: stay in the current network namespace */
    bool daemonize;
    bool new_pid_ns;
    struct jail_cgroup_setting cgroups[JAIL_MAX_CGROUP_SETTING]; /* owned strings */
    unsigned ncgroups;
    const char *parent_cgroup; /* NULL: exec_name */
    bool parent_cgroup_given;
    uint64_t nofile; /* RLIMIT_NOFILE */
    uint64_t fsize;  /* RLIMIT_FSIZE, when has_fsize */
    bool has_fsize;
    char *const *extra; /* after "--": flint's arguments (not NULL-terminated) */
    int nextra;
    bool help;
    bool version;
};

/* Parse argv (argv[0] is the program). Returns 0, or -EINVAL with one line
 * "<flag>: <problem>" in err (exit JAILER_EXIT_ARGS). The required flags
 * (--id, --exec-file, --uid, --gid) must be there unless --help or
 * --version is. Free with jail_args_free() either way. */
int jail_args_parse(int argc, char *const argv[], struct jail_args *a, char *err, size_t errlen);

/* Free what jail_args_parse() allocated; *a is zeroed. */
void jail_args_free(struct jail_args *a);

/* True for a jail id: 1-64 letters, digits or '-'. */
bool jail_valid_id(const char *id);

/* The usage text. */
const char *jail_usage(void);

/* Check that the open file fd can be exec'd in a jail that holds nothing
 * else: a regular file, an ELF executable (ET_EXEC or ET_DYN) with no
 * PT_INTERP (statically linked). Every header field is checked before use.
 * Returns 0, or -ENOEXEC with the problem in why. */
int jail_check_exec_file(int fd, char *why, size_t whylen);

/*
 * The undo record: what this run created, so that a failure removes it
 * and nothing that was there before. Entries are names relative to a
 * directory fd opened before the jail's mount namespace, so removal works
 * before and after pivot_root. Removal runs in reverse order.
 */
enum undo_kind {
    UNDO_FILE,   /* unlink; absent is fine */
    UNDO_DIR,    /* rmdir */
    UNDO_CGROUP, /* rmdir, retried while dying processes leave it */
};

#define UNDO_MAX 32

struct undo_entry {
    int dirfd;   /* one of undo.fds */
    char *name;  /* owned, relative to dirfd */
    char *shown; /* owned, for messages: the host path */
    enum undo_kind kind;
};

struct undo {
    struct undo_entry e[UNDO_MAX];
    unsigned n;
    int fds[UNDO_MAX]; /* directory fds the entries use, closed by undo_release */
    unsigned nfds;
    int cgroup_back_fd; /* the cgroup.procs this process came from, or -1 */
    char *unmount;      /* a bind mount to detach before removing, or NULL */
};

void undo_init(struct undo *u);

/* Keep fd (a directory, O_CLOEXEC) until undo_release(). Returns fd, or -1
 * when the table is full (fd is then closed). */
int undo_keep_fd(struct undo *u, int fd);

/* Record that name (relative to dirfd) was created; shown is its host path.
 * -ENOMEM / -ENOSPC when it cannot be recorded (the caller removes it). */
int undo_add(struct undo *u, int dirfd, const char *name, const char *shown, enum undo_kind kind);

/* Forget the newest entry (the caller removed it itself). */
void undo_pop(struct undo *u);

/* Remove everything recorded, newest first: first move this process back to
 * its old cgroup, detach the recorded bind mount. Best effort: each thing
 * that cannot be removed gets a line "flint-jailer: cleanup: <path>: ...". */
void undo_run(struct undo *u);

/* Close the kept fds and free the entries (success: nothing is removed). */
void undo_release(struct undo *u);

/* One error: "<step>: <path>: <problem>". */
struct jail_err {
    char text[4096 + 512];
};

/* Fill e; returns -1 for `return jail_errf(...)`. */
int jail_errf(struct jail_err *e, const char *step, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set up the cgroup v2 part of the sequence for this process: find the
 * cgroup2 mount, enable the controllers the settings name in each
 * cgroup.subtree_control from the mount down to the parent cgroup (creating
 * missing ones), create <parent>/<id>, write the settings and move this
 * process in. With no --cgroup but a --parent-cgroup, move into the parent.
 * With neither, do nothing. Everything created goes into u. 0 or -1 with e. */
int jail_cgroup_setup(const struct jail_args *a, struct undo *u, struct jail_err *e);

#endif /* FLINT_JAILER_H */
