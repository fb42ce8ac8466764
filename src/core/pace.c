/* pace.c: request budget (sliding hour) + rate cap (token bucket) + adaptive
 * per-target poll intervals. See pace.h and docs/discovery.md for the model. */
#include "runnerd/core/pace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

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
    /* Registered targets' requests per poll (charged, sent), summed over the
     * active ones and over the idle ones; rates follow from the poll interval. */
    double act_cost, act_sent;
    double idle_cost, idle_sent;
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
            int64_t t =
                now_ms + (int64_t)ceil((1.0 - p->ptokens) * 1000.0 / p->cfg.priority_rate_per_s);
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
    double *cost = t->idle ? &p->idle_cost : &p->act_cost;
    double *sent = t->idle ? &p->idle_sent : &p->act_sent;
    *cost -= t->cost;
    *sent -= t->sent;
    if (*cost < 0)
        *cost = 0;
    if (*sent < 0)
        *sent = 0;
}

static void plan_add(rd_pace_t *p, const rd_pace_target_t *t)
{
    if (t->idle) {
        p->idle_cost += t->cost;
        p->idle_sent += t->sent;
    } else {
        p->act_cost += t->cost;
        p->act_sent += t->sent;
    }
}

static double idle_cap_ms(const rd_pace_t *p)
{
    double poll = (double)p->cfg.poll_interval_ms;
    double cap = poll * p->cfg.idle_factor;
    if (cap > (double)p->cfg.max_idle_interval_ms)
        cap = (double)p->cfg.max_idle_interval_ms;
    return cap < poll ? poll : cap;
}

/* How many times slower than the active targets the idle ones must go so that
 * act + idle / f fits limit (rates per ms); 1 when everything fits. */
static double idle_fit(double act, double idle, double limit)
{
    if (act + idle <= limit)
        return 1.0;
    if (limit > act)
        return idle / (limit - act);
    return INFINITY;
}

/* The idle targets' factor (1 .. the idle cap / poll_interval) and the stretch of
 * every interval (>= 1) that keep the planned rates within the budget's fill rate
 * (poll_share of it) and RATE_PLAN_SHARE of the rate cap. */
static void plan_factors(const rd_pace_t *p, double *idle_f, double *stretch)
{
    double poll = (double)p->cfg.poll_interval_ms;
    double ac = p->act_cost / poll, ic = p->idle_cost / poll;
    double as = p->act_sent / poll, is = p->idle_sent / poll;
    double budget = (double)p->cfg.budget_per_hour * p->cfg.poll_share / 3600000.0;
    double rate = p->cfg.max_rate_per_s > 0 ? p->cfg.max_rate_per_s * RATE_PLAN_SHARE / 1000.0 : 0;
    double f = 1.0;
    if (budget > 0)
        f = fmax(f, idle_fit(ac, ic, budget));
    if (rate > 0)
        f = fmax(f, idle_fit(as, is, rate));
    double cap = idle_cap_ms(p) / poll;
    if (f > cap)
        f = cap;
    double st = 1.0;
    if (budget > 0)
        st = fmax(st, (ac + ic / f) / budget);
    if (rate > 0)
        st = fmax(st, (as + is / f) / rate);
    *idle_f = f;
    *stretch = st;
}

void rd_pace_target_add(rd_pace_t *p, rd_pace_target_t *t)
{
    if (t->registered)
        return;
    if (t->last_poll_ms == 0 && t->sent <= 0) {
        /* Before its first poll, assume a poll sends 2 requests (queued and
         * in_progress runs) and that most come back 304, as they do for the
         * idle repositories that make up most of a large fleet. Polls soon
         * correct this; the budget gate holds meanwhile. */
        t->cost = 0.2;
        t->sent = 2.0;
        t->idle = true;
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
        p->act_cost = p->act_sent = p->idle_cost = p->idle_sent = 0;
}

/* Active: queued jobs seen within active_window_ms. */
static void set_idle(const rd_pace_t *p, rd_pace_target_t *t, int64_t now_ms)
{
    t->idle =
        !(t->last_active_ms > 0 && now_ms - t->last_active_ms < (int64_t)p->cfg.active_window_ms);
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
    set_idle(p, t, now_ms);
    if (t->registered)
        plan_add(p, t);
}

void rd_pace_target_activate(rd_pace_t *p, rd_pace_target_t *t, int64_t now_ms)
{
    if (t->registered)
        plan_sub(p, t);
    t->last_active_ms = now_ms;
    t->idle = false;
    if (t->registered)
        plan_add(p, t);
}

double rd_pace_stretch(const rd_pace_t *p)
{
    double f, st;
    plan_factors(p, &f, &st);
    return st;
}

double rd_pace_idle_factor(const rd_pace_t *p)
{
    double f, st;
    plan_factors(p, &f, &st);
    return f;
}

int64_t rd_pace_target_due(const rd_pace_t *p, const rd_pace_target_t *t)
{
    if (t->last_poll_ms == 0)
        return 0;
    double f, st;
    plan_factors(p, &f, &st);
    double base = (double)p->cfg.poll_interval_ms * (t->idle ? f : 1.0);
    return t->last_poll_ms + (int64_t)(base * st);
}
