/* Unit tests: token-bucket arithmetic on a fake clock (rate_limiter.h). */
#include <criterion/criterion.h>

#include "rate_limiter.h"

#define MS 1000000ull
#define S  1000000000ull

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms, uint64_t now)
{
    struct token_bucket b;
    struct token_bucket_config c = {
        .size = size, .one_time_burst = burst, .refill_time_ms = refill_ms};
    token_bucket_init(&b, &c, now);
    return b;
}

Test(rate_limiter, starts_full_and_refuses_beyond_size)
{
    struct token_bucket b = bucket(1000, 0, 1000, 0);

    cr_assert(token_bucket_enabled(&b));
    cr_assert(token_bucket_consume(&b, 600, 0));
    cr_assert(token_bucket_consume(&b, 400, 0));
    cr_assert_not(token_bucket_consume(&b, 1, 0));
    cr_assert_eq(b.budget, 0);
    /* 1 token per ms: the next one is 1 ms away. */
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 0), 1 * MS);
    cr_assert_eq(token_bucket_wait_ns(&b, 500, 0), 500 * MS);
}

Test(rate_limiter, refills_continuously_without_losing_fractions)
{
    struct token_bucket b = bucket(3, 0, 1000, 0); /* a token every 333.3 ms */

    cr_assert(token_bucket_consume(&b, 3, 0));
    cr_assert_not(token_bucket_consume(&b, 1, 333 * MS));
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 333 * MS), 333334);
    cr_assert(token_bucket_consume(&b, 1, 333334 * 1000));
    /* Many small steps add up to exactly what one big step gives. */
    for (uint64_t t = 333334 * 1000; t <= 1000 * MS; t += 7 * MS + 3)
        (void)token_bucket_consume(&b, 0, t);
    cr_assert(token_bucket_consume(&b, 2, 1000 * MS));
    cr_assert_not(token_bucket_consume(&b, 1, 1000 * MS));
    /* A long pause fills the bucket, never more. */
    cr_assert(token_bucket_consume(&b, 0, 100 * S));
    cr_assert_eq(b.budget, 3);
    cr_assert_eq(b.partial, 0);
}

Test(rate_limiter, wait_is_exact)
{
    struct token_bucket b = bucket(1 << 20, 0, 1000, 5 * S); /* 1 MiB/s */

    cr_assert(token_bucket_consume(&b, 1 << 20, 5 * S));
    uint64_t w = token_bucket_wait_ns(&b, 4096, 5 * S);
    cr_assert_not(token_bucket_consume(&b, 4096, 5 * S + w - 1));
    cr_assert(token_bucket_consume(&b, 4096, 5 * S + w));
}

Test(rate_limiter, one_time_burst_is_spent_first_and_not_refilled)
{
    struct token_bucket b = bucket(100, 250, 1000, 0);

    cr_assert(token_bucket_consume(&b, 200, 0));
    cr_assert_eq(b.one_time_burst, 50);
    cr_assert_eq(b.budget, 100);
    cr_assert(token_bucket_consume(&b, 120, 0)); /* 50 from the burst, 70 from the budget */
    cr_assert_eq(b.one_time_burst, 0);
    cr_assert_eq(b.budget, 30);
    cr_assert(token_bucket_consume(&b, 0, 10 * S));
    cr_assert_eq(b.one_time_burst, 0);
    cr_assert_eq(b.budget, 100);
    /* Burst plus budget can pay for more than size without any debt. */
    b = bucket(100, 250, 1000, 0);
    cr_assert(token_bucket_consume(&b, 350, 0));
    cr_assert_eq(b.debt, 0);
    cr_assert_not(token_bucket_consume(&b, 1, 0));
}

Test(rate_limiter, failed_consume_takes_nothing)
{
    struct token_bucket b = bucket(100, 10, 1000, 0);

    cr_assert(token_bucket_consume(&b, 100, 0));
    cr_assert_eq(b.one_time_burst, 0);
    b = bucket(100, 10, 1000, 0);
    cr_assert(token_bucket_consume(&b, 60, 0)); /* 10 burst + 50 budget */
    cr_assert_not(token_bucket_consume(&b, 60, 0));
    cr_assert_eq(b.budget, 50);
}

Test(rate_limiter, over_consumption_goes_through_then_waits)
{
    struct token_bucket b = bucket(1000, 0, 1000, 0);

    cr_assert(token_bucket_consume(&b, 400, 0));
    /* 2500 > size: takes the 600 left and owes 1900 (1.9 s). */
    cr_assert(token_bucket_consume(&b, 2500, 0));
    cr_assert_eq(b.debt, 1900);
    cr_assert_not(token_bucket_consume(&b, 1, 0));
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 0), 1901 * MS);
    cr_assert_eq(token_bucket_wait_ns(&b, 5000, 0), 1900 * MS);
    cr_assert_not(token_bucket_consume(&b, 1, 1900 * MS));
    cr_assert(token_bucket_consume(&b, 1, 1901 * MS));
    /* Another big one is allowed as soon as the debt is paid. */
    cr_assert(token_bucket_consume(&b, 0, 3 * S));
    cr_assert(token_bucket_consume(&b, 5000, 3 * S));
    cr_assert_eq(b.debt, 5000 - 1000);
}

Test(rate_limiter, disabled_buckets_do_not_limit)
{
    struct token_bucket b = bucket(0, 5, 1000, 0);

    cr_assert_not(token_bucket_enabled(&b));
    cr_assert(token_bucket_consume(&b, UINT64_MAX, 0));
    cr_assert_eq(token_bucket_wait_ns(&b, UINT64_MAX, 0), 0);
    b = bucket(1000, 0, 0, 0);
    cr_assert_not(token_bucket_enabled(&b));
    for (int i = 0; i < 10; i++)
        cr_assert(token_bucket_consume(&b, 1000, 0));

    struct rate_limiter rl;
    struct rate_limiter_config none = {0};
    rate_limiter_init(&rl, &none, 0);
    cr_assert_not(rate_limiter_enabled(&rl));
    cr_assert(rate_limiter_consume(&rl, 1, UINT64_MAX, 0));
}

Test(rate_limiter, hostile_values_do_not_overflow)
{
    /* UINT64_MAX tokens per ms. */
    struct token_bucket b = bucket(UINT64_MAX, UINT64_MAX, 1, 0);

    cr_assert(token_bucket_consume(&b, UINT64_MAX, 0));
    cr_assert(token_bucket_consume(&b, UINT64_MAX, 0));
    cr_assert_not(token_bucket_consume(&b, 1, 0));
    cr_assert_eq(token_bucket_wait_ns(&b, UINT64_MAX, 0), 1 * MS);
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 0), 1);
    cr_assert(token_bucket_consume(&b, UINT64_MAX, UINT64_MAX));
    cr_assert(token_bucket_consume(&b, 0, UINT64_MAX));

    /* A refill time beyond what fits in ns, one token: a saturated wait. */
    b = bucket(1, 0, UINT64_MAX, 0);
    cr_assert(token_bucket_consume(&b, 1, 0));
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 0), UINT64_MAX);
    cr_assert_not(token_bucket_consume(&b, 1, UINT64_MAX - 1));
    cr_assert(token_bucket_consume(&b, 1, UINT64_MAX));

    /* Huge debt on a tiny bucket: the wait saturates, nothing wraps. */
    b = bucket(1, 0, 1000, 0);
    cr_assert(token_bucket_consume(&b, UINT64_MAX, 0));
    cr_assert_eq(b.debt, UINT64_MAX - 1);
    cr_assert_eq(token_bucket_wait_ns(&b, 1, 0), UINT64_MAX);
    cr_assert_eq(token_bucket_wait_ns(&b, 2, 0), UINT64_MAX);
    /* Time going backwards refills nothing and breaks nothing. */
    b = bucket(10, 0, 1000, 5 * S);
    cr_assert(token_bucket_consume(&b, 10, 5 * S));
    cr_assert_not(token_bucket_consume(&b, 1, 1 * S));
    cr_assert(token_bucket_consume(&b, 1, 5 * S + 100 * MS));
}

Test(rate_limiter, both_buckets_or_neither)
{
    struct rate_limiter rl;
    struct rate_limiter_config c = {
        .bandwidth = {.size = 1000, .refill_time_ms = 1000},
        .ops = {.size = 2, .refill_time_ms = 100},
    };

    rate_limiter_init(&rl, &c, 0);
    cr_assert(rate_limiter_enabled(&rl));
    cr_assert(rate_limiter_consume(&rl, 1, 400, 0));
    cr_assert(rate_limiter_consume(&rl, 1, 400, 0));
    /* Out of ops, bandwidth left: nothing is taken from bandwidth. */
    cr_assert_not(rate_limiter_consume(&rl, 1, 100, 0));
    cr_assert_eq(rl.bandwidth.budget, 200);
    cr_assert_eq(rate_limiter_wait_ns(&rl, 1, 100, 0), 50 * MS);
    /* Ops back, bandwidth short: the longer wait wins. */
    cr_assert_eq(rate_limiter_wait_ns(&rl, 1, 500, 0), 300 * MS);
    cr_assert_not(rate_limiter_consume(&rl, 1, 500, 299 * MS));
    cr_assert_eq(rl.ops.budget, 2);
    cr_assert(rate_limiter_consume(&rl, 1, 500, 300 * MS));
}

Test(rate_limiter, update_starts_over_with_new_values)
{
    struct rate_limiter rl;
    struct rate_limiter_config c = {.bandwidth = {.size = 100, .refill_time_ms = 1000}};
    struct rate_limiter_config bigger = {
        .bandwidth = {.size = 1000, .one_time_burst = 7, .refill_time_ms = 10}};
    struct rate_limiter_config off = {0};

    rate_limiter_init(&rl, &c, 0);
    cr_assert(rate_limiter_consume(&rl, 1, 5000, 0)); /* deep in debt */
    cr_assert_not(rate_limiter_consume(&rl, 1, 1, 1 * S));
    rate_limiter_update(&rl, &bigger, 1 * S);
    cr_assert_eq(rl.bandwidth.debt, 0);
    cr_assert_eq(rl.bandwidth.budget, 1000);
    cr_assert_eq(rl.bandwidth.one_time_burst, 7);
    cr_assert(rate_limiter_consume(&rl, 1, 1007, 1 * S));
    cr_assert_not(rate_limiter_consume(&rl, 1, 1, 1 * S));
    cr_assert_eq(rate_limiter_wait_ns(&rl, 1, 100, 1 * S), 1 * MS);
    rate_limiter_update(&rl, &off, 1 * S);
    cr_assert_not(rate_limiter_enabled(&rl));
    cr_assert(rate_limiter_consume(&rl, 1, UINT64_MAX, 1 * S));
}

Test(rate_limiter, charge_takes_whatever_is_there_and_owes_the_rest)
{
    struct rate_limiter rl;
    struct rate_limiter_config c = {
        .bandwidth = {.size = 1000, .one_time_burst = 100, .refill_time_ms = 1000}};

    rate_limiter_init(&rl, &c, 0);
    rate_limiter_charge(&rl, 1, 600, 0); /* 100 burst + 500 budget */
    cr_assert_eq(rl.bandwidth.budget, 500);
    rate_limiter_charge(&rl, 1, 800, 0); /* 500 budget, 300 owed */
    cr_assert_eq(rl.bandwidth.debt, 300);
    cr_assert_not(rate_limiter_consume(&rl, 1, 1, 0));
    cr_assert_eq(rate_limiter_wait_ns(&rl, 1, 1, 0), 301 * MS);
    rate_limiter_charge(&rl, 1, UINT64_MAX, 0);
    cr_assert_eq(rl.bandwidth.debt, UINT64_MAX, "saturates, does not wrap");
    rate_limiter_charge(&rl, 1, 5, 0);
    cr_assert_eq(rl.bandwidth.debt, UINT64_MAX);
}
