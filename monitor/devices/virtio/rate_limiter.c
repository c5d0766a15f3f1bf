/*
 * rate_limiter.c - token buckets in integer arithmetic (rate_limiter.h).
 *
 * Refill: `elapsed * size / refill_ns` tokens, with the remainder kept in
 * `partial` so no fraction of a token is ever lost or made up. Products of
 * two 64-bit values are computed in 128 bits; the refill time is capped at
 * UINT64_MAX ns (584 years) so every intermediate value fits.
 */
#include "rate_limiter.h"

#include <errno.h>
#include <time.h>

typedef unsigned __int128 u128;

#define NS_PER_MS 1000000ull

static uint64_t refill_ns(const struct token_bucket *b)
{
    if (b->refill_time_ms > UINT64_MAX / NS_PER_MS)
        return UINT64_MAX;
    return b->refill_time_ms * NS_PER_MS;
}

bool token_bucket_enabled(const struct token_bucket *b)
{
    return b->size != 0 && b->refill_time_ms != 0;
}

void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *c, uint64_t now_ns)
{
    *b = (struct token_bucket){
        .size = c->size,
        .refill_time_ms = c->refill_time_ms,
        .one_time_burst = c->one_time_burst,
        .budget = c->size,
        .last_ns = now_ns,
    };
}

static void refill(struct token_bucket *b, uint64_t now_ns)
{
    uint64_t elapsed, rns = refill_ns(b), room;
    u128 acc, tokens;

    if (now_ns <= b->last_ns)
        return; /* a clock that does not move forward refills nothing */
    elapsed = now_ns - b->last_ns;
    b->last_ns = now_ns;
    if (b->budget == b->size && b->debt == 0) {
        b->partial = 0;
        return;
    }
    /* < (2^64 - 1)^2 + 2^64: fits in 128 bits. */
    acc = (u128)elapsed * b->size + b->partial;
    tokens = acc / rns;
    b->partial = (uint64_t)(acc % rns);
    if (tokens >= b->debt) {
        tokens -= b->debt;
        b->debt = 0;
    } else {
        b->debt -= (uint64_t)tokens;
        return;
    }
    room = b->size - b->budget;
    if (tokens >= room) {
        b->budget = b->size;
        b->partial = 0; /* a full bucket holds no fraction either */
    } else {
        b->budget += (uint64_t)tokens;
    }
}

/* After refill: whether n tokens can be taken now. */
static bool can_take(const struct token_bucket *b, uint64_t n)
{
    if (!token_bucket_enabled(b) || n == 0)
        return true;
    if (b->debt)
        return false;
    return (u128)n <= (u128)b->one_time_burst + b->budget || n > b->size;
}

/* Take n tokens: the one-time burst first, then the budget, and whatever
 * is left as debt (over-consumption, or a charge after the fact), which
 * the refill pays back before anything else goes through. */
static void take(struct token_bucket *b, uint64_t n)
{
    uint64_t rest;

    if (!token_bucket_enabled(b) || n == 0)
        return;
    if (n <= b->one_time_burst) {
        b->one_time_burst -= n;
        return;
    }
    rest = n - b->one_time_burst;
    b->one_time_burst = 0;
    if (rest <= b->budget) {
        b->budget -= rest;
        return;
    }
    rest -= b->budget;
    b->budget = 0;
    b->debt = rest > UINT64_MAX - b->debt ? UINT64_MAX : b->debt + rest;
}

bool token_bucket_consume(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    if (!token_bucket_enabled(b))
        return true;
    refill(b, now_ns);
    if (!can_take(b, n))
        return false;
    take(b, n);
    return true;
}

uint64_t token_bucket_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    uint64_t rns = refill_ns(b);
    u128 need, prod, t;

    if (!token_bucket_enabled(b))
        return 0;
    refill(b, now_ns);
    if (can_take(b, n))
        return 0;
    /* Blocked by a debt (budget and burst are 0 then) or by a shortfall. */
    if (n > b->size)
        need = b->debt;
    else
        need = (u128)b->debt + n - b->one_time_burst - b->budget;
    if (need > ~(u128)0 / rns)
        return UINT64_MAX;
    prod = need * rns; /* >= rns > partial, as need >= 1 */
    t = (prod - b->partial + b->size - 1) / b->size;
    return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *c,
                       uint64_t now_ns)
{
    token_bucket_init(&rl->bandwidth, &c->bandwidth, now_ns);
    token_bucket_init(&rl->ops, &c->ops, now_ns);
}

void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *c,
                         uint64_t now_ns)
{
    rate_limiter_init(rl, c, now_ns);
}

bool rate_limiter_enabled(const struct rate_limiter *rl)
{
    return token_bucket_enabled(&rl->bandwidth) || token_bucket_enabled(&rl->ops);
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns)
{
    if (token_bucket_enabled(&rl->bandwidth))
        refill(&rl->bandwidth, now_ns);
    if (token_bucket_enabled(&rl->ops))
        refill(&rl->ops, now_ns);
    if (!can_take(&rl->bandwidth, bytes) || !can_take(&rl->ops, ops))
        return false;
    take(&rl->bandwidth, bytes);
    take(&rl->ops, ops);
    return true;
}

static void charge(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    if (!token_bucket_enabled(b) || n == 0)
        return;
    refill(b, now_ns);
    take(b, n);
}

void rate_limiter_charge(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns)
{
    charge(&rl->bandwidth, bytes, now_ns);
    charge(&rl->ops, ops, now_ns);
}

uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t ops, uint64_t bytes,
                              uint64_t now_ns)
{
    uint64_t a = token_bucket_wait_ns(&rl->bandwidth, bytes, now_ns);
    uint64_t b = token_bucket_wait_ns(&rl->ops, ops, now_ns);
    return a > b ? a : b;
}

/* ---- snapshots ---- */

#define SNAP_TAG_BUCKET SNAP_TAG('T', 'B', 'K', 'T')

static void bucket_save(const struct token_bucket *b, struct snap_writer *w)
{
    size_t mark = snap_section_begin(w, SNAP_TAG_BUCKET);

    snap_put_u64(w, b->size);
    snap_put_u64(w, b->refill_time_ms);
    snap_put_u64(w, b->one_time_burst);
    snap_put_u64(w, b->budget);
    snap_put_u64(w, b->debt);
    snap_put_u64(w, b->partial);
    snap_section_end(w, mark);
}

static int bucket_load(struct token_bucket *out, struct snap_reader *r, uint64_t now_ns)
{
    struct snap_reader sec;
    struct token_bucket b = {.last_ns = now_ns};

    if (snap_section_enter(r, SNAP_TAG_BUCKET, &sec, "rate limiter bucket section"))
        return -EBADMSG;
    b.size = snap_get_u64(&sec);
    b.refill_time_ms = snap_get_u64(&sec);
    b.one_time_burst = snap_get_u64(&sec);
    b.budget = snap_get_u64(&sec);
    b.debt = snap_get_u64(&sec);
    b.partial = snap_get_u64(&sec);
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    /* The invariants refill() relies on: budget <= size, partial < one
     * token's worth (refill_ns), no debt or fraction in an unlimited bucket. */
    if (b.budget > b.size)
        snap_fail(r, "rate limiter bucket holds more tokens than its size");
    else if (token_bucket_enabled(&b) && b.partial >= refill_ns(&b))
        snap_fail(r, "rate limiter bucket's token fraction is a whole token or more");
    else if (!token_bucket_enabled(&b) && (b.debt || b.partial))
        snap_fail(r, "unlimited rate limiter bucket carries a debt");
    if (snap_error(r))
        return -EBADMSG;
    *out = b;
    return 0;
}

void rate_limiter_save(const struct rate_limiter *rl, struct snap_writer *w)
{
    bucket_save(&rl->bandwidth, w);
    bucket_save(&rl->ops, w);
}

int rate_limiter_load(struct rate_limiter *rl, struct snap_reader *r, uint64_t now_ns)
{
    struct rate_limiter n;

    if (bucket_load(&n.bandwidth, r, now_ns) || bucket_load(&n.ops, r, now_ns))
        return -EBADMSG;
    *rl = n;
    return 0;
}

uint64_t rate_limiter_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- a queue behind a rate limiter ---- */

static void on_gate_cancelled(struct ev_handler *h, int res, uint32_t flags)
{
    (void)h;
    (void)res;
    (void)flags; /* the timer's own completion does the work */
}

void rl_gate_init(struct rl_gate *g, struct evloop *loop, const struct rate_limiter_config *c,
                  void (*fired)(struct ev_handler *h, int res, uint32_t flags), void *owner)
{
    *g = (struct rl_gate){.loop = loop, .owner = owner};
    g->ev.fn = fired;
    g->cancel_ev.fn = on_gate_cancelled;
    rate_limiter_init(&g->rl, c, rate_limiter_now_ns());
}

bool rl_gate_close(struct rl_gate *g, uint64_t ops, uint64_t bytes, uint64_t now_ns)
{
    uint64_t wait = rate_limiter_wait_ns(&g->rl, ops, bytes, now_ns);

    g->closed = true;
    if (g->armed)
        return true; /* its completion checks again */
    if (evloop_timeout(g->loop, &g->ev, wait ? wait : 1) == 0) {
        g->armed = true;
        return true;
    }
    g->closed = false;
    return false;
}

bool rl_gate_fired(struct rl_gate *g)
{
    bool was_closed = g->closed;

    g->armed = g->cancelling = false;
    g->closed = false;
    return was_closed;
}

static void gate_cancel(struct rl_gate *g)
{
    if (g->armed && !g->cancelling && evloop_cancel(g->loop, &g->cancel_ev, &g->ev) == 0)
        g->cancelling = true;
}

void rl_gate_update(struct rl_gate *g, const struct rate_limiter_config *c)
{
    rate_limiter_update(&g->rl, c, rate_limiter_now_ns());
    gate_cancel(g);
}

void rl_gate_reset(struct rl_gate *g)
{
    g->closed = false;
    g->stale = g->armed;
}

void rl_gate_flush(struct rl_gate *g)
{
    if (g->stale) {
        g->stale = false;
        gate_cancel(g);
    }
}
