/* planner.c: daemon state -> scheduler input, scheduler output -> plan lines. */
#include "runnerd/core/planner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

/* The runner's pool's position in cfg: its reference says it in O(1) (ident.h). */
static size_t pool_for_runner(const rd_planner_state_t *st, rd_planner_input_t *pi,
                              const rd_planner_runner_t *r)
{
    size_t pos = rd_pool_ref_pos(r->pool);
    if (pos < st->cfg->npools && rd_pool_ref_cfg(r->pool) == &st->cfg->pools[pos])
        return pos;
    for (size_t i = 0; i < pi->nretired; i++)
        if (pi->retired_refs[i] == r->pool)
            return st->cfg->npools + i;
    /* A pool that a reload removed: keep its runners accounted as a draining pool. */
    pi->retired_refs[pi->nretired] = r->pool;
    rd_pool_t *p = &pi->retired[pi->nretired++];
    memset(p, 0, sizeof(*p));
    p->name = rd_xstrdup(r->pool != NULL ? rd_pool_ref_name(r->pool) : "(removed)");
    p->cpus = r->cpus;
    p->memory = r->memory;
    p->gpus = r->gpus;
    p->max_runners = 0;
    return st->cfg->npools + pi->nretired - 1;
}

static size_t scope_for_runner(const rd_planner_state_t *st, const rd_target_ref_t *t)
{
    size_t pos = rd_target_ref_pos(t);
    if (pos < st->cfg->ntargets && rd_target_ref_cfg(t) == &st->cfg->targets[pos])
        return pos;
    return (size_t)-1; /* a target a reload removed */
}

void rd_planner_build(const rd_planner_state_t *st, rd_planner_input_t *pi)
{
    const rd_config_t *cfg = st->cfg;
    memset(pi, 0, sizeof(*pi));

    /* Retired pools: at most one per runner. */
    pi->retired = rd_xcalloc(st->nrunners ? st->nrunners : 1, sizeof(rd_pool_t));
    pi->retired_refs = rd_xcalloc(st->nrunners ? st->nrunners : 1, sizeof(*pi->retired_refs));
    pi->runners = rd_xcalloc(st->nrunners ? st->nrunners : 1, sizeof(rd_sched_runner_t));
    for (size_t i = 0; i < st->nrunners; i++) {
        const rd_planner_runner_t *r = &st->runners[i];
        rd_sched_runner_t *sr = &pi->runners[pi->nrunners++];
        sr->key = r->key;
        sr->pool = pool_for_runner(st, pi, r);
        sr->scope = scope_for_runner(st, r->target);
        sr->state = r->state;
        sr->job_id = rd_ledger_runner_job(st->ledger, r->key, r->job_id);
        sr->idle_since_ms = r->idle_since_ms;
        sr->cpus = r->cpus;
        sr->memory = r->memory;
        sr->gpus = r->gpus;
    }

    pi->npools = cfg->npools + pi->nretired;
    pi->pools = rd_xcalloc(pi->npools ? pi->npools : 1, sizeof(rd_sched_pool_t));
    for (size_t i = 0; i < cfg->npools; i++) {
        pi->pools[i].pool = &cfg->pools[i];
        pi->pools[i].backoff = st->pool_backoff != NULL && st->pool_backoff[i];
    }
    for (size_t i = 0; i < pi->nretired; i++) {
        pi->pools[cfg->npools + i].pool = &pi->retired[i];
        pi->pools[cfg->npools + i].draining = true;
    }

    size_t total = 0;
    for (size_t i = 0; i < cfg->ntargets; i++)
        total += cfg->targets[i].npools;
    pi->scope_pools = rd_xcalloc(total ? total : 1, sizeof(size_t));
    pi->nscopes = cfg->ntargets;
    pi->scopes = rd_xcalloc(pi->nscopes ? pi->nscopes : 1, sizeof(rd_sched_scope_t));
    size_t off = 0;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        memcpy(pi->scope_pools + off, t->pools, t->npools * sizeof(size_t));
        pi->scopes[i].name = t->scope;
        pi->scopes[i].pools = pi->scope_pools + off;
        /* A fleet-mode target's runners are started by the broker's assignments
         * (scaleset_client.c), never for polled or webhook demand. */
        pi->scopes[i].npools = t->discovery == RD_DISCOVERY_SCALESET ? 0 : t->npools;
        off += t->npools;
    }

    /* Read only: the ledger set each job's target when it learned the job and
     * at each reload; a job no target watches any more is not planned. */
    size_t njobs = rd_ledger_count(st->ledger);
    pi->jobs = rd_xcalloc(njobs ? njobs : 1, sizeof(rd_sched_job_t));
    size_t it = 0;
    const rd_job_t *j;
    while ((j = rd_ledger_next(st->ledger, &it)) != NULL) {
        if (j->target < 0 || (size_t)j->target >= cfg->ntargets)
            continue;
        if (cfg->targets[j->target].discovery == RD_DISCOVERY_SCALESET)
            continue; /* a webhook's job for a broker target: the broker assigns it */
        rd_sched_job_t *sj = &pi->jobs[pi->njobs++];
        sj->id = j->id;
        sj->scope = (size_t)j->target;
        sj->labels = (const char *const *)j->labels;
        sj->nlabels = j->nlabels;
        sj->queued_ms = j->queued_ms;
    }

    pi->in.host = &cfg->host;
    pi->in.pools = pi->pools;
    pi->in.npools = pi->npools;
    pi->in.scopes = pi->scopes;
    pi->in.nscopes = pi->nscopes;
    pi->in.jobs = pi->jobs;
    pi->in.njobs = pi->njobs;
    pi->in.runners = pi->runners;
    pi->in.nrunners = pi->nrunners;
    pi->in.now_ms = st->now_ms;
    pi->in.stopping = st->stopping;
}

void rd_planner_input_free(rd_planner_input_t *pi)
{
    for (size_t i = 0; i < pi->nretired; i++)
        free(pi->retired[i].name);
    free(pi->retired);
    free(pi->retired_refs);
    free(pi->runners);
    free(pi->pools);
    free(pi->scope_pools);
    free(pi->scopes);
    free(pi->jobs);
    memset(pi, 0, sizeof(*pi));
}

const char *rd_planner_pool_name(const rd_planner_input_t *pi, size_t pool)
{
    return pool < pi->npools ? pi->pools[pool].pool->name : "?";
}

/* Names in plan lines come from a validated config (no quotes or controls),
 * but escape anyway so the output is always valid JSON. */
static void json_str(rd_sbuf_t *b, const char *s)
{
    rd_sbuf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rd_sbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rd_sbuf_printf(b, "\\u%04x", c);
        else
            rd_sbuf_printf(b, "%c", c);
    }
    rd_sbuf_printf(b, "\"");
}

char *rd_planner_format_plan(const rd_planner_input_t *pi, const rd_sched_plan_t *plan)
{
    rd_sbuf_t sb = {0};
    for (size_t i = 0; i < plan->ndecisions; i++) {
        const rd_sched_decision_t *d = &plan->decisions[i];
        if (d->demand == 0 && d->start == 0)
            continue;
        rd_sbuf_printf(&sb, "{\"scope\":");
        json_str(&sb, d->scope < pi->nscopes ? pi->scopes[d->scope].name : "");
        rd_sbuf_printf(&sb, ",\"pool\":");
        json_str(&sb, rd_planner_pool_name(pi, d->pool));
        rd_sbuf_printf(&sb, ",\"demand\":%u,\"supply\":%u,\"start\":%u,\"limit\":", d->demand,
                       d->supply, d->start);
        const char *lim = rd_limit_name(d->limit);
        if (lim != NULL)
            json_str(&sb, lim);
        else
            rd_sbuf_printf(&sb, "null");
        rd_sbuf_printf(&sb, "}\n");
    }
    rd_sbuf_printf(&sb, "{\"unmatched\":%u}\n", plan->unmatched);
    return sb.s;
}
