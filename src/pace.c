/* pace.c: request budget (sliding hour) + rate cap (token bucket) + adaptive
 * per-target poll intervals. See pace.h and docs/discovery.md for the model. */
#include "runnerd/pace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/common.h"

#define HOUR_S 3600
/* Weight of the latest poll in a target's moving averages. */
#define EWMA_ALPHA 0.3
/* The rate-cap share polls may plan for, leaving room for mutations and retries. */
#define RATE_PLAN_SHARE 0.8

struct rd_pace {
    rd_pace_config_t cfg;
    /* Sliding hour: charged requests per second, ring indexed by second % 3600. */
    uint32_t counts[HOUR_S];
    int64_t head_s; /* the latest second the ring has been advanced to */
    uint64_t used;  /* sum of counts */
    /* Rate cap bucket. */
    double tokens;
    int64_t tokens_ms;
    /* Priority (registration/deletion) bucket. */
    double ptokens;
    int64_t ptokens_ms;
    /* Planned rates of registered targets, per ms. */
    double plan_cost;
    double plan_sent;
    size_t ntargets;
};

static void apply_defaults(rd_pace_config_t *c)
{
    if (c->budget_per_hour == 0)
        c->budget_per_hour = 4000;
    if (c->poll_share <= 0 || c->poll_share > 1)
        c->poll_share = 0.9;
    /* 12/s with bursts of 60: at most 780 requests in any minute, below
     * GitHub's secondary limit of 900 points per minute for REST (GET = 1). */
    if (c->max_rate_per_s == 0)
        c->max_rate_per_s = 12;
    if (c->burst <= 0)
        c->burst = 60;
    if (c->priority_rate_per_s == 0)
        c->priority_rate_per_s = 10000.0 / 3600.0;
    if (c->priority_burst <= 0)
        c->priority_burst = 100;
    if (c->poll_interval_ms == 0)
        c->poll_interval_ms = 15000;
    if (c->idle_factor == 0)
        c->idle_factor = 8;
    if (c->max_idle_interval_ms == 0)
        c->max_idle_interval_ms = 5 * 60 * 1000;
    if (c->active_window_ms == 0)
        c->active_window_ms = 10 * 60 * 1000;
}

rd_pace_t *rd_pace_new(const rd_pace_config_t *cfg, int64_t now_ms)
{
    rd_pace_t *p = rd_xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    apply_defaults(&p->cfg);
    p->head_s = now_ms / 1000;
    p->tokens = p->cfg.burst;
    p->tokens_ms = now_ms;
    p->ptokens = p->cfg.priority_burst;
    p->ptokens_ms = now_ms;
    return p;
}

void rd_pace_free(rd_pace_t *p)
{
    free(p);
}

void rd_pace_reconfigure(rd_pace_t *p, const rd_pace_config_t *cfg)
{
    p->cfg = *cfg;
    apply_defaults(&p->cfg);
    if (p->tokens > p->cfg.burst)
        p->tokens = p->cfg.burst;
    if (p->ptokens > p->cfg.priority_burst)
        p->ptokens = p->cfg.priority_burst;
    /* Target base intervals are recomputed at their next poll. */
}

uint64_t rd_pace_budget(const rd_pace_t *p)
{
    return p->cfg.budget_per_hour;
}

/* Move the ring forward to now, dropping seconds that left the hour. A clock
 * that steps back is treated as standing still. */
static void advance(rd_pace_t *p, int64_t now_ms)
{
    int64_t now_s = now_ms / 1000;
    if (now_s <= p->head_s)
        return;
    if (now_s - p->head_s >= HOUR_S) {
        memset(p->counts, 0, sizeof(p->counts));
        p->used = 0;
    } else {
        for (int64_t s = p->head_s + 1; s <= now_s; s++) {
            uint32_t *c = &p->counts[s % HOUR_S];
            p->used -= *c;
            *c = 0;
        }
    }
    p->head_s = now_s;
}

static void refill(rd_pace_t *p, int64_t now_ms)
{
    if (now_ms > p->tokens_ms) {
        p->tokens += (double)(now_ms - p->tokens_ms) * p->cfg.max_rate_per_s / 1000.0;
        if (p->tokens > p->cfg.burst)
            p->tokens = p->cfg.burst;
        p->tokens_ms = now_ms;
    }
}

static void prefill(rd_pace_t *p, int64_t now_ms)
{
    if (now_ms > p->ptokens_ms) {
        p->ptokens += (double)(now_ms - p->ptokens_ms) * p->cfg.priority_rate_per_s / 1000.0;
        if (p->ptokens > p->cfg.priority_burst)
            p->ptokens = p->cfg.priority_burst;
        p->ptokens_ms = now_ms;
    }
}

uint64_t rd_pace_used(rd_pace_t *p, int64_t now_ms)
{
    advance(p, now_ms);
    return p->used;
}

int64_t rd_pace_request_at(rd_pace_t *p, int64_t now_ms, bool priority)
{
    int64_t at = now_ms;
    advance(p, now_ms);
    uint64_t limit = p->cfg.budget_per_hour;
    if (!priority)
        limit = (uint64_t)floor((double)limit * p->cfg.poll_share);
    if (limit == 0)
        limit = 1;
    if (p->used >= limit) {
        /* Find the second at which enough old charges leave the window. */
        uint64_t need = p->used - limit + 1, freed = 0;
        for (int64_t s = p->head_s - HOUR_S + 1; s <= p->head_s; s++) {
            freed += p->counts[s % HOUR_S];
            if (freed >= need) {
                int64_t t = (s + HOUR_S) * 1000;
                if (t > at)
                    at = t;
                break;
            }
        }
    }
    if (priority && p->cfg.priority_rate_per_s > 0) {
        prefill(p, now_ms);
        if (p->ptokens < 1.0) {
            int64_t t = now_ms + (int64_t)ceil((1.0 - p->ptokens) * 1000.0 /
                                               p->cfg.priority_rate_per_s);
            if (t > at)
                at = t;
        }
    } else if (!priority && p->cfg.max_rate_per_s > 0) {
        refill(p, now_ms);
        if (p->tokens < 1.0) {
            int64_t t = now_ms + (int64_t)ceil((1.0 - p->tokens) * 1000.0 / p->cfg.max_rate_per_s);
            if (t > at)
                at = t;
        }
    }
    return at;
}

void rd_pace_charge(rd_pace_t *p, int64_t now_ms)
{
    advance(p, now_ms);
    p->counts[p->head_s % HOUR_S]++;
    p->used++;
    if (p->cfg.max_rate_per_s > 0) {
        refill(p, now_ms);
        p->tokens -= 1.0;
    }
}

void rd_pace_charge_priority(rd_pace_t *p, int64_t now_ms)
{
    advance(p, now_ms);
    p->counts[p->head_s % HOUR_S]++;
    p->used++;
    if (p->cfg.priority_rate_per_s > 0) {
        prefill(p, now_ms);
        p->ptokens -= 1.0;
    }
}

void rd_pace_refund(rd_pace_t *p, int64_t charged_ms, int64_t now_ms)
{
    advance(p, now_ms);
    int64_t s = charged_ms / 1000;
    if (s > p->head_s || s <= p->head_s - HOUR_S)
        return; /* already out of the window (or from the future) */
    uint32_t *c = &p->counts[s % HOUR_S];
    if (*c > 0) {
        (*c)--;
        p->used--;
    }
}

/* ---- targets ---- */

static void plan_sub(rd_pace_t *p, const rd_pace_target_t *t)
{
    p->plan_cost -= t->cost / t->base_ms;
    p->plan_sent -= t->sent / t->base_ms;
    if (p->plan_cost < 0)
        p->plan_cost = 0;
    if (p->plan_sent < 0)
        p->plan_sent = 0;
}

static void plan_add(rd_pace_t *p, const rd_pace_target_t *t)
{
    p->plan_cost += t->cost / t->base_ms;
    p->plan_sent += t->sent / t->base_ms;
}

static double idle_cap_ms(const rd_pace_t *p)
{
    double poll = (double)p->cfg.poll_interval_ms;
    double cap = poll * p->cfg.idle_factor;
    if (cap > (double)p->cfg.max_idle_interval_ms)
        cap = (double)p->cfg.max_idle_interval_ms;
    return cap < poll ? poll : cap;
}

void rd_pace_target_add(rd_pace_t *p, rd_pace_target_t *t)
{
    if (t->registered)
        return;
    if (t->base_ms <= 0) {
        /* Before its first poll, assume a poll sends 2 requests (queued and
         * in_progress runs) and that most come back 304, as they do for the
         * idle repositories that make up most of a large fleet. Polls soon
         * correct this; the budget gate holds meanwhile. */
        t->base_ms = (double)p->cfg.poll_interval_ms;
        t->cost = 0.2;
        t->sent = 2.0;
    }
    t->registered = true;
    p->ntargets++;
    plan_add(p, t);
}

void rd_pace_target_remove(rd_pace_t *p, rd_pace_target_t *t)
{
    if (!t->registered)
        return;
    plan_sub(p, t);
    t->registered = false;
    p->ntargets--;
    if (p->ntargets == 0)
        p->plan_cost = p->plan_sent = 0;
}

static void set_base(rd_pace_t *p, rd_pace_target_t *t, int64_t now_ms)
{
    double poll = (double)p->cfg.poll_interval_ms;
    if (t->last_active_ms > 0 && now_ms - t->last_active_ms < (int64_t)p->cfg.active_window_ms) {
        t->idle_polls = 0;
        t->base_ms = poll;
    } else {
        if (t->idle_polls < 30)
            t->idle_polls++;
        double b = poll * pow(2.0, (double)t->idle_polls);
        double cap = idle_cap_ms(p);
        t->base_ms = b > cap ? cap : b;
    }
}

void rd_pace_target_polled(rd_pace_t *p, rd_pace_target_t *t, int64_t started_ms, int64_t now_ms,
                           unsigned sent, unsigned charged, bool had_jobs)
{
    bool first = t->last_poll_ms == 0;
    if (t->registered)
        plan_sub(p, t);
    if (had_jobs)
        t->last_active_ms = now_ms;
    t->sent = first ? sent : (1 - EWMA_ALPHA) * t->sent + EWMA_ALPHA * sent;
    /* The first poll has no ETags yet, so every request is charged: it says
     * nothing about the steady state and does not feed the cost average. */
    if (!first)
        t->cost = (1 - EWMA_ALPHA) * t->cost + EWMA_ALPHA * charged;
    t->last_poll_ms = started_ms > 0 ? started_ms : 1;
    set_base(p, t, now_ms);
    if (t->registered)
        plan_add(p, t);
}

void rd_pace_target_activate(rd_pace_t *p, rd_pace_target_t *t, int64_t now_ms)
{
    if (t->registered)
        plan_sub(p, t);
    t->last_active_ms = now_ms;
    t->idle_polls = 0;
    t->base_ms = (double)p->cfg.poll_interval_ms;
    if (t->registered)
        plan_add(p, t);
}

double rd_pace_stretch(const rd_pace_t *p)
{
    double s = 1.0;
    double budget_rate = (double)p->cfg.budget_per_hour * p->cfg.poll_share / 3600000.0;
    if (budget_rate > 0 && p->plan_cost / budget_rate > s)
        s = p->plan_cost / budget_rate;
    if (p->cfg.max_rate_per_s > 0) {
        double rate = p->cfg.max_rate_per_s * RATE_PLAN_SHARE / 1000.0;
        if (p->plan_sent / rate > s)
            s = p->plan_sent / rate;
    }
    return s;
}

int64_t rd_pace_target_due(const rd_pace_t *p, const rd_pace_target_t *t)
{
    if (t->last_poll_ms == 0)
        return 0;
    double base = t->base_ms > 0 ? t->base_ms : (double)p->cfg.poll_interval_ms;
    return t->last_poll_ms + (int64_t)(base * rd_pace_stretch(p));
}
