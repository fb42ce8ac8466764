/* backoff.h: exponential backoff with jitter; randomness is injected. */
#ifndef RUNNERD_BACKOFF_H
#define RUNNERD_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t base_ms;  /* first delay */
    uint64_t cap_ms;   /* never longer */
    unsigned failures; /* consecutive failures so far */
    uint64_t until_ms; /* not before this time (0 = not backing off) */
} rd_backoff_t;

void rd_backoff_init(rd_backoff_t *b, uint64_t base_ms, uint64_t cap_ms);
/**
 * Record a failure at now_ms; returns the delay chosen: "full jitter" over
 * [d/2, d] where d = min(cap, base * 2^(failures-1)); rnd is a uniform random
 * 64-bit value supplied by the caller.
 */
uint64_t rd_backoff_fail(rd_backoff_t *b, uint64_t now_ms, uint64_t rnd);
/** Make sure nothing happens before at_ms (Retry-After, rate-limit reset). */
void rd_backoff_hold(rd_backoff_t *b, uint64_t at_ms);
void rd_backoff_success(rd_backoff_t *b);
/** 0 when allowed now, else ms left. */
uint64_t rd_backoff_remaining(const rd_backoff_t *b, uint64_t now_ms);

/** splitmix64: a small deterministic RNG for callers and tests. */
uint64_t rd_rand_next(uint64_t *state);

#endif
