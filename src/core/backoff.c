/* backoff.c: exponential backoff with jitter; the caller supplies randomness. */
#include "runnerd/core/backoff.h"

void rd_backoff_init(rd_backoff_t *b, uint64_t base_ms, uint64_t cap_ms)
{
    b->base_ms = base_ms;
    b->cap_ms = cap_ms < base_ms ? base_ms : cap_ms;
    b->failures = 0;
    b->until_ms = 0;
}

/* base * 2^(failures-1), saturating at cap without overflowing. */
static uint64_t ceiling(const rd_backoff_t *b)
{
    uint64_t d = b->base_ms;
    for (unsigned i = 1; i < b->failures && d < b->cap_ms; i++) {
        if (d > UINT64_MAX / 2)
            return b->cap_ms;
        d *= 2;
    }
    return d < b->cap_ms ? d : b->cap_ms;
}

uint64_t rd_backoff_fail(rd_backoff_t *b, uint64_t now_ms, uint64_t rnd)
{
    if (b->failures < UINT32_MAX)
        b->failures++;
    uint64_t d = ceiling(b);
    /* Jitter over [d/2, d]: keeps at least half the delay (so a flapping pool
     * really slows down) while spreading retries of many pools apart. */
    uint64_t lo = d / 2;
    uint64_t span = d - lo; /* inclusive range lo..d has span+1 values */
    uint64_t delay = lo + (span == UINT64_MAX ? rnd : rnd % (span + 1));
    uint64_t until = now_ms + delay < now_ms ? UINT64_MAX : now_ms + delay;
    /* A hold (Retry-After) that reaches further must not be shortened. */
    if (until > b->until_ms)
        b->until_ms = until;
    return delay;
}

void rd_backoff_hold(rd_backoff_t *b, uint64_t at_ms)
{
    if (at_ms > b->until_ms)
        b->until_ms = at_ms;
}

void rd_backoff_success(rd_backoff_t *b)
{
    b->failures = 0;
    b->until_ms = 0;
}

uint64_t rd_backoff_remaining(const rd_backoff_t *b, uint64_t now_ms)
{
    return b->until_ms > now_ms ? b->until_ms - now_ms : 0;
}

uint64_t rd_rand_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
