/*
 * main.c - flint: parse, then either build the VM and run it (`flint run`)
 * or, Firecracker style, serve the API from the start and build the VM when
 * InstanceStart (or --config-file) says so; report; exit with its status.
 */
#include "api.h"
#include "boot_phases.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "mmds.h"
#include "snapshot_ws.h"
#include "util.h"
#include "vmm.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0"
#endif

static void print_stats(struct vmm *vmm, const struct vm_config *cfg)
{
    if (cfg->stats || log_get_level() >= LOG_DEBUG)
        vmm_print_stats(vmm, STDERR_FILENO);
}

/* `flint run`: SIGINT, SIGTERM and SIGHUP end the VM the way a guest's
 * exit does (status 128 + N, as in the API mode), so the terminal is put
 * back and files are closed. With a raw terminal Ctrl-C is a byte for the
 * guest, not a SIGINT. With --snapshot-on-signal STATE,MEM, SIGUSR1 pauses
 * the VM, writes a Full snapshot and ends the VM (status 0, or 1 if the
 * snapshot failed). */
struct run_signals {
    struct vmm *vmm;
    int fd;
    struct signalfd_siginfo info;
    struct ev_handler ev;
};

static void snapshot_on_signal(struct vmm *vmm)
{
    const char *spec = vmm->cfg->snapshot_on_signal, *comma = strchr(spec, ',');
    char state[PATH_MAX], err[512];
    int rc;

    snprintf(state, sizeof(state), "%.*s", (int)(comma - spec), spec);
    rc = vmm_pause(vmm);
    if (rc)
        snprintf(err, sizeof(err), "cannot pause the VM: %s", strerror(-rc));
    else
        rc = snapshot_create(vmm, SNAPSHOT_FULL, state, comma + 1, err, sizeof(err));
    if (rc) {
        char why[600];
        snprintf(why, sizeof(why), "--snapshot-on-signal: %s", err);
        vmm_request_exit(vmm, FLINT_EXIT_GENERIC, why);
        return;
    }
    vmm_request_exit(vmm, FLINT_EXIT_OK, "snapshot written on SIGUSR1; VM ended");
}

static void on_run_signal(struct ev_handler *h, int res, uint32_t flags)
{
    struct run_signals *rs = container_of(h, struct run_signals, ev);
    int sig = res == (int)sizeof(rs->info) ? (int)rs->info.ssi_signo : SIGTERM;
    char why[64];

    (void)flags;
    if (sig == SIGUSR1) {
        snapshot_on_signal(rs->vmm);
        return;
    }
    snprintf(why, sizeof(why), "received signal %d", sig);
    vmm_request_exit(rs->vmm, 128 + sig, why);
}

/* Blocked before any vCPU thread exists, so they inherit the mask. */
static int run_watch_signals(struct run_signals *rs, const struct vm_config *cfg,
                             struct evloop *loop)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (cfg->snapshot_on_signal)
        sigaddset(&set, SIGUSR1);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL))
        return -EINVAL;
    rs->fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (rs->fd < 0)
        return -errno;
    rs->ev.fn = on_run_signal;
    return evloop_read(loop, &rs->ev, rs->fd, &rs->info, sizeof(rs->info));
}

static int build_vm(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop, bool *built)
{
    struct snapshot_load_req req = {.state_path = cfg->restore_state,
                                    .mem_path = cfg->restore_mem,
                                    .resume_vm = true,
                                    .prefetch = cfg->ws_prefetch};
    char err[768];
    int status;

    *built = true;
    if (!cfg->restore_state)
        return vmm_create(vmm, cfg, loop);
    status = snapshot_load(vmm, cfg, loop, &req, built, err, sizeof(err));
    if (status)
        log_error("--restore: %s", err);
    return status;
}

/* --record-working-set (snapshot_ws.h): the files are opened while the
 * VM is built and written when it has ended. */
static int record_ws_open(struct snapshot_ws_recorder *rec, const char *state)
{
    char err[512];

    if (snapshot_ws_record_open(rec, state, err, sizeof(err))) {
        log_error("--record-working-set: %s", err);
        return -EIO;
    }
    return 0;
}

static void record_ws_write(struct snapshot_ws_recorder *rec, const struct vmm *vmm,
                            const char *state)
{
    uint64_t pages;
    int rc = snapshot_ws_record_write(rec, vmm->mem.map, vmm->mem.size, &pages);

    if (rc)
        log_error("--record-working-set: %s.ws: %s", state, strerror(-rc));
    else
        log_info("--record-working-set: %llu pages in %s.ws", (unsigned long long)pages, state);
}

static int run(struct vm_config *cfg)
{
    struct run_signals rs = {.fd = -1};
    struct snapshot_ws_recorder rec;
    bool built = false;
    struct evloop loop;
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
    if (!cfg->kernel_path && !cfg->restore_state) {
        if (cli_default_kernel(kernel, sizeof(kernel), err, sizeof(err))) {
            log_error("%s", err);
            return FLINT_EXIT_BAD_CONFIG;
        }
        if (config_set_str(&cfg->kernel_path, kernel))
            return FLINT_EXIT_GENERIC;
    }
    status = evloop_init(&loop, VMM_RING_ENTRIES);
    if (status) {
        log_error("io_uring setup: %s", strerror(-status));
        return FLINT_EXIT_GENERIC;
    }
    rs.vmm = &vmm;
    status = run_watch_signals(&rs, cfg, &loop);
    if (status) {
        log_error("signal setup: %s", strerror(-status));
        evloop_fini(&loop);
        if (rs.fd >= 0)
            close(rs.fd);
        return FLINT_EXIT_GENERIC;
    }
    status = build_vm(&vmm, cfg, &loop, &built);
    if (status == 0 && cfg->ws_record && record_ws_open(&rec, cfg->restore_state))
        status = FLINT_EXIT_GENERIC;
    if (status == 0) {
        status = vmm_run(&vmm);
        print_stats(&vmm, cfg);
        if (cfg->ws_record)
            record_ws_write(&rec, &vmm, cfg->restore_state);
    }
    /* The ring first: it may hold buffers of the devices vmm_destroy frees. */
    evloop_fini(&loop);
    if (built)
        vmm_destroy(&vmm);
    if (rs.fd >= 0)
        close(rs.fd);
    return status;
}

/* ---- Firecracker style ---- */

/* One flint process serving the API: the loop exists from the start, the
 * VM once InstanceStart or --config-file builds it. */
struct process {
    struct vm_config *cfg;
    struct evloop loop;
    struct vmm vmm;
    bool vm_built; /* vmm_create was called: vmm_destroy at the end */
    bool vm_started;
    int sig_fd;
    struct signalfd_siginfo sig;
    struct ev_handler sig_ev;
    int signal_status; /* 128 + N after signal N with no VM running */
    struct api_ctl *ctl;
    struct metrics metrics;
    struct ev_handler metrics_ev; /* the periodic flush */
    struct mmds mmds;
};

/* One metrics line: the API's counters and the VM's. On the VMM thread. */
static int flush_metrics(void *opaque)
{
    struct process *p = opaque;
    json_t *counters = json_object(), *gauges = json_object();
    struct timespec now;

    if (p->metrics.fd < 0) {
        json_decref(counters);
        json_decref(gauges);
        return -ENODEV;
    }
    if (!counters || !gauges || api_add_metrics(p->ctl, counters, gauges) ||
        (p->vm_started &&
         (vmm_add_metrics(&p->vmm, counters) || boot_phases_add_metrics(&boot_phases, gauges)))) {
        json_decref(counters);
        json_decref(gauges);
        return -ENOMEM;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    return metrics_flush(&p->metrics, counters, gauges,
                         (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
}

static void on_metrics_timer(struct ev_handler *h, int res, uint32_t flags)
{
    struct process *p = container_of(h, struct process, metrics_ev);
    static struct log_ratelimit rl;
    int rc;

    (void)res;
    (void)flags;
    rc = flush_metrics(p);
    if (rc && rc != -ENODEV && log_ratelimit(&rl, 1))
        log_warn("metrics: %s",
                 rc == -EAGAIN ? "the destination is full: line dropped" : "cannot build the line");
    if (evloop_timeout(&p->loop, &p->metrics_ev, METRICS_PERIOD_NS))
        log_warn("metrics: the periodic flush could not be re-armed");
}

static int vm_start(void *opaque, char *err, size_t errlen)
{
    struct process *p = opaque;
    char cmdline[FLINT_CMDLINE_MAX];
    unsigned ndev = p->cfg->ndrives + p->cfg->nnets + (p->cfg->vsock.enabled ? 1 : 0);
    int rc;

    /* What can be refused before anything is built keeps the API going. */
    if (config_validate(p->cfg, err, errlen))
        return -EINVAL;
    if (ndev > VMM_MAX_VIRTIO) {
        snprintf(err, errlen, "%u devices exceed the %d virtio slots", ndev, VMM_MAX_VIRTIO);
        return -EINVAL;
    }
    if (vmm_build_cmdline(p->cfg, cmdline, sizeof(cmdline))) {
        snprintf(err, errlen,
                 "boot_args: with the device entries the command line exceeds %d "
                 "bytes",
                 FLINT_CMDLINE_MAX - 1);
        return -EINVAL;
    }
    /* Past here a failure leaves a half-built VM: the process ends. */
    log_clear_last_error();
    p->vm_built = true;
    rc = vmm_create(&p->vmm, p->cfg, &p->loop);
    if (!rc)
        rc = vmm_start(&p->vmm);
    if (rc) {
        snprintf(err, errlen, "%s", log_last_error()[0] ? log_last_error() : "cannot build the VM");
        return rc;
    }
    p->vm_started = true;
    if (p->metrics.fd >= 0) {
        p->metrics_ev.fn = on_metrics_timer;
        if (evloop_timeout(&p->loop, &p->metrics_ev, METRICS_PERIOD_NS))
            log_warn("metrics: the periodic flush could not be armed");
    }
    return 0;
}

static int vm_ctrl_alt_del(void *opaque)
{
    return vmm_send_ctrl_alt_del(&((struct process *)opaque)->vmm);
}

static int vm_pause(void *opaque)
{
    return vmm_pause(&((struct process *)opaque)->vmm);
}

static void vm_resume(void *opaque)
{
    vmm_resume(&((struct process *)opaque)->vmm);
}

static int vm_set_drive_rate_limiter(void *opaque, unsigned index,
                                     const struct rate_limiter_config *rl)
{
    return vmm_set_drive_rate_limiter(&((struct process *)opaque)->vmm, index, rl);
}

static int vm_set_net_rate_limiters(void *opaque, unsigned index,
                                    const struct rate_limiter_config *rx,
                                    const struct rate_limiter_config *tx)
{
    return vmm_set_net_rate_limiters(&((struct process *)opaque)->vmm, index, rx, tx);
}

static int vm_swap_drive(void *opaque, unsigned index, const char *path, char *err, size_t errlen)
{
    struct process *p = opaque;

    if (!p->vm_started || index >= p->vmm.nblks) {
        snprintf(err, errlen, "the drive is not running");
        return -ENODEV;
    }
    return virtio_blk_swap(p->vmm.blks[index], path, err, errlen);
}

static int vm_create_snapshot(void *opaque, enum snapshot_type type, const char *state_path,
                              const char *mem_path, char *err, size_t errlen)
{
    return snapshot_create(&((struct process *)opaque)->vmm, type, state_path, mem_path, err,
                           errlen);
}

/* The restored VM starts paused unless resume_vm: vCPU threads started
 * while a pause is requested go straight to holding. */
static int start_restored(struct vmm *vmm, bool resume)
{
    if (!resume)
        vmm_pause(vmm);
    return vmm_start(vmm);
}

static int vm_load_snapshot(void *opaque, const struct snapshot_load_req *req, char *err,
                            size_t errlen)
{
    struct process *p = opaque;
    int rc;

    rc = snapshot_load(&p->vmm, p->cfg, &p->loop, req, &p->vm_built, err, errlen);
    if (!rc && (rc = start_restored(&p->vmm, req->resume_vm)))
        snprintf(err, errlen, "cannot start the vCPUs");
    if (rc) {
        log_error("snapshot load: %s", err);
        return rc;
    }
    p->vm_started = true;
    if (p->metrics.fd >= 0) {
        p->metrics_ev.fn = on_metrics_timer;
        if (evloop_timeout(&p->loop, &p->metrics_ev, METRICS_PERIOD_NS))
            log_warn("metrics: the periodic flush could not be armed");
    }
    log_info("VM restored from %s (%s)", req->state_path, req->resume_vm ? "running" : "paused");
    return 0;
}

static const struct api_vm_ops vm_ops = {.start = vm_start,
                                         .ctrl_alt_del = vm_ctrl_alt_del,
                                         .pause = vm_pause,
                                         .resume = vm_resume,
                                         .flush_metrics = flush_metrics,
                                         .set_drive_rate_limiter = vm_set_drive_rate_limiter,
                                         .set_net_rate_limiters = vm_set_net_rate_limiters,
                                         .swap_drive = vm_swap_drive,
                                         .create_snapshot = vm_create_snapshot,
                                         .load_snapshot = vm_load_snapshot};

static void stop_loop(void *opaque)
{
    evloop_stop(&((struct process *)opaque)->loop);
}

/* SIGINT, SIGTERM, SIGHUP: end the VM (or the wait for one) cleanly, so
 * the API socket is removed. */
static void on_signal(struct ev_handler *h, int res, uint32_t flags)
{
    struct process *p = container_of(h, struct process, sig_ev);
    int status = 128 + (res == (int)sizeof(p->sig) ? (int)p->sig.ssi_signo : SIGTERM);
    char why[64];

    (void)flags;
    snprintf(why, sizeof(why), "received signal %d", status - 128);
    if (p->vm_started) {
        vmm_request_exit(&p->vmm, status, why);
    } else {
        log_info("%s", why);
        p->signal_status = status;
        evloop_stop(&p->loop);
    }
}

static int watch_signals(struct process *p)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Blocked here and so in the vCPU threads created later. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL))
        return -EINVAL;
    p->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (p->sig_fd < 0)
        return -errno;
    p->sig_ev.fn = on_signal;
    return evloop_read(&p->loop, &p->sig_ev, p->sig_fd, &p->sig, sizeof(p->sig));
}

static int serve_setup(struct process *p, struct api_ctl *ctl, struct api_server *srv, bool *srv_up,
                       const struct cli_serve *opts)
{
    const char *sock = opts->api_sock ? opts->api_sock : API_DEFAULT_SOCKET;
    char err[512];
    int rc;

    if (opts->log_path) {
        log_set_format(opts->show_level, opts->show_log_origin);
        if (log_set_path(opts->log_path, ctl->instance_id, err, sizeof(err))) {
            log_error("--log-path: %s", err);
            return FLINT_EXIT_GENERIC;
        }
    }
    if (opts->metrics_path && metrics_open(&p->metrics, opts->metrics_path, err, sizeof(err))) {
        log_error("--metrics-path: %s", err);
        return FLINT_EXIT_GENERIC;
    }
    rc = mmds_init(&p->mmds, opts->mmds_size_limit ? opts->mmds_size_limit
                             : opts->max_payload   ? opts->max_payload
                                                   : API_HTTP_MAX_BODY);
    if (rc) {
        log_error("MMDS setup: %s", strerror(-rc));
        return FLINT_EXIT_GENERIC;
    }
    p->cfg->mmds = &p->mmds;
    if (opts->metadata_path &&
        api_mmds_load_file(&p->mmds, opts->metadata_path, err, sizeof(err))) {
        log_error("%s", err);
        return FLINT_EXIT_BAD_CONFIG;
    }
    if ((rc = watch_signals(p))) {
        log_error("signal setup: %s", strerror(-rc));
        return FLINT_EXIT_GENERIC;
    }
    if (opts->config_file && api_load_config_file(ctl, opts->config_file, err, sizeof(err))) {
        log_error("%s", err);
        return FLINT_EXIT_BAD_CONFIG;
    }
    if (!opts->no_api) {
        if (api_server_init(srv, &p->loop, sock, ctl, err, sizeof(err))) {
            log_error("%s", err);
            return FLINT_EXIT_GENERIC;
        }
        *srv_up = true;
        if (opts->max_payload)
            srv->max_body = opts->max_payload;
        p->cfg->api_socket = true;
        srv->on_fatal = stop_loop;
        srv->fatal_opaque = p;
        log_info("API socket %s: listening", sock);
    }
    if (opts->config_file) {
        rc = vm_start(p, err, sizeof(err));
        if (rc) {
            /* vmm_create logged its own line already. */
            if (rc < 0)
                log_error("config file %s: %s", opts->config_file, err);
            return rc < 0 ? FLINT_EXIT_BAD_CONFIG : rc;
        }
        ctl->state = API_VM_RUNNING;
    }
    return 0;
}

static int serve(struct vm_config *cfg, const struct cli_serve *opts)
{
    static struct process p; /* large (struct vmm); one per process */
    struct api_ctl ctl = {
        .cfg = cfg,
        .instance_id = opts->id ? opts->id : API_DEFAULT_INSTANCE_ID,
        .vmm_version = FLINT_VERSION,
        .ops = &vm_ops,
        .opaque = &p,
        .metrics = &p.metrics,
    };
    struct api_server srv;
    bool srv_up = false;
    int status;

    log_set_level(cfg->level);
    log_set_thread_name("vmm");
    p.cfg = cfg;
    p.sig_fd = -1;
    p.ctl = &ctl;
    metrics_init(&p.metrics);
    status = evloop_init(&p.loop, VMM_RING_ENTRIES);
    if (status) {
        log_error("io_uring setup: %s", strerror(-status));
        return FLINT_EXIT_GENERIC;
    }
    status = serve_setup(&p, &ctl, &srv, &srv_up, opts);
    if (status == 0 && evloop_run(&p.loop)) {
        if (p.vm_started)
            vmm_request_exit(&p.vmm, FLINT_EXIT_UNEXPECTED, "event loop failed");
        else
            status = FLINT_EXIT_UNEXPECTED;
    }
    if (p.vm_started) {
        status = vmm_finish(&p.vmm);
        /* The last line: what happened since the last flush. */
        flush_metrics(&p);
        print_stats(&p.vmm, cfg);
    } else if (status == 0) {
        status = ctl.fatal_status ? ctl.fatal_status : p.signal_status;
    }
    /* The ring first: it may point into connection and device buffers. */
    evloop_fini(&p.loop);
    if (srv_up)
        api_server_close(&srv);
    if (p.vm_built)
        vmm_destroy(&p.vmm);
    if (p.sig_fd >= 0)
        close(p.sig_fd);
    metrics_close(&p.metrics);
    mmds_fini(&p.mmds);
    cfg->mmds = NULL;
    return status;
}

int main(int argc, char **argv)
{
    struct vm_config cfg;
    struct cli_serve serve_opts = {0};
    enum cli_action action;
    char err[512];
    int status;

    boot_phases_note_main(&boot_phases, vmm_process_start());
    /* A closed stdout or socket must be an error code, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    /* jansson seeds its hash tables from /dev/urandom on first use: do it
     * now, not after the seccomp filters (a snapshot taken on a signal
     * builds the first JSON of a `flint run` process). */
    json_object_seed(0);
    config_init(&cfg);
    if (cli_parse(argc, argv, &action, &cfg, &serve_opts, err, sizeof(err))) {
        log_error("%s", err);
        config_free(&cfg);
        cli_serve_free(&serve_opts);
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
    case CLI_SERVE:
        status = serve(&cfg, &serve_opts);
        break;
    default:
        status = run(&cfg);
        break;
    }
    config_free(&cfg);
    cli_serve_free(&serve_opts);
    return status;
}
