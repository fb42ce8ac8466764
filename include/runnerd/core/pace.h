/* pace.h: the request budget and adaptive poll pacing (pure; the clock is handed in).
 *
 * Two independent limits gate every request the GitHub client sends:
 *  - the budget: at most `budget_per_hour` *charged* requests in any sliding
 *    hour (1 s granularity). A request is charged when sent; a 304 Not
 *    Modified is refunded, since GitHub does not count conditional hits
 *    against the primary limit. Polls may use `poll_share` of the budget;
 *    priority requests (JIT config, runner delete) may use all of it.
 *  - the rate cap: a token bucket over *all* requests sent (304s included),
 *    `max_rate_per_s` sustained with bursts of `burst`, to stay below
 *    GitHub's secondary limit of 900 points (GETs) per minute for REST.
 *    Priority requests (runner registration and deletion) do not wait in it:
 *    they draw from a bucket of their own, `priority_rate_per_s` sustained with
 *    bursts of `priority_burst` (GitHub keeps runner registration in a separate
 *    bucket, actions_runner_registration, 10,000/h), so a burst of queued jobs
 *    gets its runners at once instead of behind the polls' rate cap.
 *
 * Targets (one per polled repository) are registered with the pacer, which
 * keeps the sums of their requests per poll, for active targets (queued jobs in
 * the last `active_window_ms`) and idle ones. Every target is polled every
 * `poll_interval_ms` while all of them together fit what the budget's fill rate
 * (poll_share of it) and 80% of the rate cap sustain. When they do not, the idle
 * targets slow down first, just enough to fit, up to
 * min(idle_factor * poll_interval, max_idle_interval_ms) (never below
 * poll_interval); if that is still too much, every interval is stretched by the
 * same factor. The gate above makes the budget a hard ceiling even when the
 * plan is wrong. */
#ifndef RUNNERD_PACE_H
#define RUNNERD_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t budget_per_hour;      /* charged requests in any sliding hour; 0 = 4000 */
    double poll_share;             /* fraction of the budget polls may use; 0 = 0.9 */
    double max_rate_per_s;         /* all requests; 0 = 12; < 0 = no rate cap */
    double burst;                  /* rate bucket size; 0 = 60 */
    double priority_rate_per_s;    /* registrations/deletes; 0 = 10000/h; < 0 = no cap */
    double priority_burst;         /* their bucket size; 0 = 100 */
    uint64_t poll_interval_ms;     /* active targets; 0 = 15 s */
    unsigned idle_factor;          /* idle targets slow to this many intervals at most; 0 = 8 */
    uint64_t max_idle_interval_ms; /* ...and at most this; 0 = 5 min */
    uint64_t active_window_ms;     /* "recent queued jobs"; 0 = 10 min */
} rd_pace_config_t;

typedef struct rd_pace rd_pace_t;

/** Per-target pacing state, owned (embedded) by the caller and registered with the pacer. */
typedef struct {
    int64_t last_poll_ms;   /* start of the last completed poll; 0 = never polled */
    int64_t last_active_ms; /* last poll that saw queued jobs; 0 = never */
    double cost;            /* charged requests per poll (moving average) */
    double sent;            /* requests sent per poll (moving average) */
    bool idle;              /* no queued jobs within active_window_ms (counted with the idle) */
    bool registered;
} rd_pace_target_t;

rd_pace_t *rd_pace_new(const rd_pace_config_t *cfg, int64_t now_ms);
void rd_pace_free(rd_pace_t *p);
/** Apply new limits (reload); charges already made stay counted. */
void rd_pace_reconfigure(rd_pace_t *p, const rd_pace_config_t *cfg);

/**
 * Earliest time (ms) at which one more request may be sent; <= now_ms means
 * now. priority: a mutating request that may use the whole budget.
 */
int64_t rd_pace_request_at(rd_pace_t *p, int64_t now_ms, bool priority);
/** A request was sent at now_ms: take it from the rate bucket and charge the budget. */
void rd_pace_charge(rd_pace_t *p, int64_t now_ms);
/** Charge a priority request (its own rate bucket; the same hourly budget). */
void rd_pace_charge_priority(rd_pace_t *p, int64_t now_ms);
/** The request charged at charged_ms came back 304: give the budget back. */
void rd_pace_refund(rd_pace_t *p, int64_t charged_ms, int64_t now_ms);
/** Charged requests in the hour before now_ms. */
uint64_t rd_pace_used(rd_pace_t *p, int64_t now_ms);
uint64_t rd_pace_budget(const rd_pace_t *p);

/** Register a target (it is due at once if never polled). */
void rd_pace_target_add(rd_pace_t *p, rd_pace_target_t *t);
void rd_pace_target_remove(rd_pace_t *p, rd_pace_target_t *t);
/**
 * A poll that started at started_ms finished at now_ms having sent `sent`
 * requests of which `charged` were charged (not 304), and found queued jobs
 * or not. A failed poll reports what it sent; the caller's backoff decides
 * when to retry it.
 */
void rd_pace_target_polled(rd_pace_t *p, rd_pace_target_t *t, int64_t started_ms, int64_t now_ms,
                           unsigned sent, unsigned charged, bool had_jobs);
/** Mark a target active now (a webhook or a poll elsewhere saw a job for it). */
void rd_pace_target_activate(rd_pace_t *p, rd_pace_target_t *t, int64_t now_ms);
/** When the target is next due (ms since the epoch). */
int64_t rd_pace_target_due(const rd_pace_t *p, const rd_pace_target_t *t);
/** The current stretch factor (>= 1) applied to every interval. */
double rd_pace_stretch(const rd_pace_t *p);
/** How many times poll_interval idle targets wait now, before the stretch (>= 1). */
double rd_pace_idle_factor(const rd_pace_t *p);

#endif
