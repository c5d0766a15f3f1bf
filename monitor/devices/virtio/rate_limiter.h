/*
 * rate_limiter.h - Firecracker-compatible token buckets for device I/O.
 *
 * A rate limiter has two buckets: bandwidth (tokens are bytes) and ops
 * (tokens are requests or frames). A bucket holds up to `size` tokens and
 * refills continuously, `size` tokens per `refill_time_ms`; it starts full.
 * `one_time_burst` is an extra budget spent first and never refilled. A
 * bucket with size 0 or refill time 0 does not limit.
 *
 * A request bigger than the bucket can ever hold still goes through: it
 * takes what the bucket has and leaves a debt, which the refill pays back
 * before anything else is let through (so the long-run rate holds and
 * nothing waits forever).
 *
 * The state is plain data (no pointers), for snapshots. Nothing here reads
 * a clock: every call takes the current time in nanoseconds (any monotonic
 * origin), so tests drive a fake clock.
 */
#ifndef FLINT_RATE_LIMITER_H
#define FLINT_RATE_LIMITER_H

#include "config.h"
#include "evloop.h"
#include "snap_io.h"

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
    uint64_t size, refill_time_ms; /* either 0: no limit */
    uint64_t one_time_burst;       /* what is left of it */
    uint64_t budget;               /* 0..size tokens */
    uint64_t debt;                 /* tokens over-consumed; refills pay it first */
    uint64_t partial;              /* a fraction of a token, in units of 1/refill_ns */
    uint64_t last_ns;              /* time of the last refill */
};

struct rate_limiter {
    struct token_bucket bandwidth, ops;
};

/* A bucket as configured, full, with its one-time burst, at time now. */
void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *c,
                       uint64_t now_ns);
bool token_bucket_enabled(const struct token_bucket *b);
/* Take n tokens. True when taken (possibly into debt when n > size); false,
 * with nothing taken, when the bucket must refill first. */
bool token_bucket_consume(struct token_bucket *b, uint64_t n, uint64_t now_ns);
/* Nanoseconds until token_bucket_consume(b, n) would succeed: 0 if now.
 * Saturates at UINT64_MAX. */
uint64_t token_bucket_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns);

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *c,
                       uint64_t now_ns);
/* Replace the configuration (PATCH): as in Firecracker, each bucket starts
 * over, full and with its new one-time burst. */
void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *c,
                         uint64_t now_ns);
bool rate_limiter_enabled(const struct rate_limiter *rl);
/* Take one request of `ops` ops and `bytes` bytes from both buckets, or
 * from neither. True when taken. */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns);
/* Take ops and bytes whatever the buckets hold, into debt if need be:
 * for a cost known only afterwards (a received frame's length). */
void rate_limiter_charge(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns);
/* Nanoseconds until rate_limiter_consume(rl, ops, bytes) would succeed. */
uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t ops, uint64_t bytes,
                              uint64_t now_ns);

/* Snapshots: a rate limiter's buckets (limits, tokens left, one-time
 * burst left, debt and the fraction of a token). The time of the last
 * refill is a CLOCK_MONOTONIC reading of this process, meaningless in
 * another, so it is not stored: a loaded bucket starts its refill clock at
 * `now_ns`, as if the snapshot had been taken then. Load checks every
 * value (tokens within the bucket's size, fraction below one token) and
 * fails with -EBADMSG and r->what naming it, leaving rl unchanged. */
void rate_limiter_save(const struct rate_limiter *rl, struct snap_writer *w);
int rate_limiter_load(struct rate_limiter *rl, struct snap_reader *r, uint64_t now_ns);

/* CLOCK_MONOTONIC in nanoseconds, for the devices. */
uint64_t rate_limiter_now_ns(void);

/*
 * A device queue behind a rate limiter: the buckets, and the one timer
 * that reopens the queue once they have refilled (no busy-waiting). The
 * device calls every function below with its own lock held; its timer
 * handler (`fired`, given to rl_gate_init) takes that lock, calls
 * rl_gate_fired and, if that says so, resumes the queue. Only the VMM
 * thread may arm or cancel the timer: a reset on a vCPU thread marks the
 * gate stale, and the VMM thread's next rl_gate_flush cancels it.
 */
struct rl_gate {
    struct rate_limiter rl;
    bool closed;     /* the queue waits for the timer */
    bool armed;      /* the timer is in the ring */
    bool cancelling; /* its cancellation is in the ring */
    bool stale;      /* a reset asked for the cancellation */
    struct evloop *loop;
    struct ev_handler ev, cancel_ev;
    void *owner; /* for the device's timer handler */
};

void rl_gate_init(struct rl_gate *g, struct evloop *loop, const struct rate_limiter_config *c,
                  void (*fired)(struct ev_handler *h, int res, uint32_t flags), void *owner);
/* The buckets lack ops and bytes: close the queue until they are there.
 * False if the timer could not be armed (the queue stays open; the next
 * notification or completion tries again). */
bool rl_gate_close(struct rl_gate *g, uint64_t ops, uint64_t bytes, uint64_t now_ns);
/* In the timer's handler: true when the queue was closed and is open
 * again, to be resumed now. */
bool rl_gate_fired(struct rl_gate *g);
/* New limits (PATCH): the buckets start over, and a closed queue reopens
 * at once through the timer's cancellation. VMM thread. */
void rl_gate_update(struct rl_gate *g, const struct rate_limiter_config *c);
/* Device reset, any thread: open the queue; the timer is cancelled later. */
void rl_gate_reset(struct rl_gate *g);
/* VMM thread: cancel the timer a reset left behind. */
void rl_gate_flush(struct rl_gate *g);

#endif /* FLINT_RATE_LIMITER_H */
