/* daemon_plan.c: the daemon's scheduling pass. Corrects the demand table with
 * what the poller cannot see (jobs a webhook said started or finished, jobs a
 * finished runner most likely took, adopted runners that turned busy), builds
 * the planner input from the config, the demand and the supervisor's runners,
 * and hands the plan's starts and stops to the supervisor (a dry run logs it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/labels.h"
#include "runnerd/core/log.h"

/* ------------------------------------------------------------------ */
/* Recently started/finished jobs                                      */

void rd_daemon_recent_add(rd_daemon_t *d, int64_t id)
{
    d->recent_jobs[d->recent_next] = id;
    d->recent_next = (d->recent_next + 1) % RECENT_JOBS;
    if (d->recent_count < RECENT_JOBS)
        d->recent_count++;
}

bool rd_daemon_recent_has(const rd_daemon_t *d, int64_t id)
{
    for (size_t i = 0; i < d->recent_count; i++)
        if (d->recent_jobs[i] == id)
            return true;
    return false;
}

static void note_taken(void *ud, const rd_supervisor_runner_info_t *ri)
{
    rd_daemon_t *d = ud;
    if (!ri->ran_job || ri->job_id == 0)
        return;
    for (size_t i = 0; i < TAKEN_JOBS; i++)
        if (d->taken[i].job_id != 0 && d->taken[i].runner_key == ri->key)
            return; /* noted at an earlier pass */
    size_t k = d->taken_next;
    d->taken_next = (k + 1) % TAKEN_JOBS;
    d->taken[k].runner_key = ri->key;
    d->taken[k].job_id = ri->job_id;
    d->taken[k].until_seen_ms = rd_daemon_wall_ms() + TAKEN_MARGIN_MS;
    d->taken[k].active = true;
}

/* Drop demand entries that a finished runner most likely consumed, unless a
 * poll listed them queued well after that runner exited. */
static void drop_taken(rd_daemon_t *d)
{
    for (size_t i = 0; i < TAKEN_JOBS; i++) {
        if (!d->taken[i].active)
            continue;
        rd_job_t *j = rd_demand_get(d->demand, d->taken[i].job_id);
        if (j == NULL)
            continue;
        if (j->seen_ms < d->taken[i].until_seen_ms) {
            rd_debug("sched",
                     "job %" PRId64 ": its runner ran a job and exited; not demand"
                     " until a poll lists it queued again",
                     j->id);
            rd_demand_remove(d->demand, d->taken[i].job_id);
        } else {
            d->taken[i].active = false; /* still queued after all: the runner ran another job */
        }
    }
}

/* An adopted runner does not tell which job it was started for. When one adopted
 * starting or idle turns busy, bind it to the oldest queued job of its scope that its pool serves
 * and no other runner holds: a poll that still lists that job as queued must not start a second
 * runner for it (the scheduler counts a busy runner against its job). */
typedef struct {
    char **names, **scopes, **pools;
    uint64_t *keys;
    bool *exited;
    size_t n;
    int64_t *held;
    size_t nheld;
} adopted_busy_t;

static void note_adopted_busy(void *ud, const rd_supervisor_runner_info_t *ri)
{
    adopted_busy_t *ab = ud;
    if (ri->job_id != 0) {
        ab->held = rd_xrealloc(ab->held, (ab->nheld + 1) * sizeof(*ab->held));
        ab->held[ab->nheld++] = ri->job_id;
        return;
    }
    bool exited = ri->state == RD_RUNNER_EXITED && ri->ran_job;
    if (!ri->job_unknown || (ri->state != RD_RUNNER_BUSY && !exited))
        return;
    ab->keys = rd_xrealloc(ab->keys, (ab->n + 1) * sizeof(*ab->keys));
    ab->exited = rd_xrealloc(ab->exited, (ab->n + 1) * sizeof(*ab->exited));
    ab->keys[ab->n] = ri->key;
    ab->exited[ab->n] = exited;
    ab->names = rd_xrealloc(ab->names, (ab->n + 1) * sizeof(char *));
    ab->scopes = rd_xrealloc(ab->scopes, (ab->n + 1) * sizeof(char *));
    ab->pools = rd_xrealloc(ab->pools, (ab->n + 1) * sizeof(char *));
    ab->names[ab->n] = rd_xstrdup(ri->name);
    ab->scopes[ab->n] = rd_xstrdup(ri->scope);
    ab->pools[ab->n] = rd_xstrdup(ri->pool);
    ab->n++;
}

static void bind_adopted(rd_daemon_t *d, bool exited_only)
{
    if (d->sup == NULL)
        return;
    adopted_busy_t ab = {0};
    rd_supervisor_foreach(d->sup, note_adopted_busy, &ab);
    for (size_t i = 0; i < ab.n; i++) {
        bool noted =
            exited_only && !ab.exited[i]; /* no call into the supervisor from its callback */
        for (size_t k = 0; k < TAKEN_JOBS && ab.exited[i] && !noted; k++)
            noted = d->taken[k].job_id != 0 && d->taken[k].runner_key == ab.keys[i];
        const rd_pool_t *pool = NULL;
        for (size_t p = 0; p < d->cfg->npools && pool == NULL; p++)
            if (strcmp(d->cfg->pools[p].name, ab.pools[i]) == 0)
                pool = &d->cfg->pools[p];
        int target = -1;
        for (size_t t = 0; t < d->cfg->ntargets && target < 0; t++)
            if (strcmp(d->cfg->targets[t].scope, ab.scopes[i]) == 0)
                target = (int)t;
        rd_job_t *best = NULL, *j;
        size_t it = 0;
        while (!noted && pool != NULL && target >= 0 &&
               (j = rd_demand_next(d->demand, &it)) != NULL) {
            if (j->target != target ||
                !rd_labels_match((const char *const *)j->labels, j->nlabels,
                                 (const char *const *)pool->labels, pool->nlabels))
                continue;
            bool held = false;
            for (size_t k = 0; k < ab.nheld && !held; k++)
                held = ab.held[k] == j->id;
            if (!held && (best == NULL || j->queued_ms < best->queued_ms ||
                          (j->queued_ms == best->queued_ms && j->id < best->id)))
                best = j;
        }
        if (best != NULL) {
            rd_debug("sched", "%s (adopted) %s: counting it against job %" PRId64, ab.names[i],
                     ab.exited[i] ? "ran a job" : "turned busy", best->id);
            ab.held = rd_xrealloc(ab.held, (ab.nheld + 1) * sizeof(*ab.held));
            ab.held[ab.nheld++] = best->id;
            if (ab.exited[i]) {
                /* Gone before a runner list showed it busy: treat it as drop_taken does. */
                size_t k = d->taken_next;
                d->taken_next = (k + 1) % TAKEN_JOBS;
                d->taken[k].runner_key = ab.keys[i];
                d->taken[k].job_id = best->id;
                d->taken[k].until_seen_ms = rd_daemon_wall_ms() + TAKEN_MARGIN_MS;
                d->taken[k].active = true;
                rd_demand_remove(d->demand, best->id);
            } else {
                rd_supervisor_job_assumed(d->sup, ab.names[i], best->id);
            }
        }
        free(ab.names[i]);
        free(ab.scopes[i]);
        free(ab.pools[i]);
    }
    free(ab.keys);
    free(ab.exited);
    free(ab.names);
    free(ab.scopes);
    free(ab.pools);
    free(ab.held);
}

/* A runner's container exited (called from inside the supervisor: record only). */
void rd_daemon_on_runner_exited(void *ud, const rd_supervisor_runner_info_t *ri)
{
    rd_daemon_t *d = ud;
    note_taken(d, ri);
    if (ri->job_unknown && ri->ran_job)
        bind_adopted(d, true);
}

/* A stale poll page may list a job that a webhook already said started or
 * finished: take such jobs out again (lookups in the demand table, so the cost
 * is the number of webhook-seen jobs, zero without webhooks). */
static void drop_recent_from_demand(rd_daemon_t *d)
{
    for (size_t i = 0; i < d->recent_count; i++)
        rd_demand_remove(d->demand, d->recent_jobs[i]);
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                          */

void rd_daemon_build_input(rd_daemon_t *d, rd_planner_input_t *pi, rd_sched_runner_t **snap_out)
{
    rd_sched_runner_t *snap = NULL;
    size_t n = d->sup != NULL ? rd_supervisor_snapshot(d->sup, &snap) : 0;
    rd_planner_runner_t *rs = rd_xcalloc(n ? n : 1, sizeof(*rs));
    for (size_t i = 0; i < n; i++) {
        const rd_sched_runner_t *s = &snap[i];
        rs[i].key = s->key;
        rs[i].pool = s->pool < d->cfg->npools ? d->cfg->pools[s->pool].name : "(removed)";
        rs[i].scope = s->scope < d->cfg->ntargets ? d->cfg->targets[s->scope].scope : "";
        rs[i].state = s->state;
        rs[i].job_id = s->job_id;
        rs[i].idle_since_ms = s->idle_since_ms;
        rs[i].cpus = s->cpus;
        rs[i].memory = s->memory;
        rs[i].gpus = s->gpus;
    }
    bool *backoff = rd_xcalloc(d->cfg->npools ? d->cfg->npools : 1, sizeof(bool));
    for (size_t i = 0; d->sup != NULL && i < d->cfg->npools; i++) {
        rd_supervisor_pool_info_t info;
        if (rd_supervisor_pool_info(d->sup, i, &info) == 0)
            backoff[i] = info.backoff;
    }
    rd_daemon_control_plan(d, backoff, NULL);
    rd_planner_state_t st = {
        .cfg = d->cfg,
        .demand = d->demand,
        .runners = rs,
        .nrunners = n,
        .pool_backoff = backoff,
        .now_ms = rd_daemon_wall_ms(),
        .stopping = d->phase >= PHASE_DRAINING,
    };
    rd_planner_build(&st, pi);
    rd_daemon_control_plan(d, NULL, pi);
    free(backoff);
    free(rs);
    *snap_out = snap;
}

/* Runner keys in the planner input are the supervisor's; pool names used by the
 * planner point into d->cfg or the input itself, so everything here is freed
 * together at the end of the pass. */
void rd_daemon_run_schedule(rd_daemon_t *d)
{
    if (d->phase != PHASE_RUNNING && !(d->opts.dry_run && d->phase == PHASE_ADOPTING))
        return;

    drop_recent_from_demand(d);
    drop_taken(d);
    bind_adopted(d, false);

    rd_planner_input_t pi;
    rd_sched_runner_t *snap = NULL;
    rd_daemon_build_input(d, &pi, &snap);
    rd_sched_plan_t plan;
    rd_sched_plan(&pi.in, &plan);
    char *dry_plan = NULL; /* this pass's plan lines (dry run), owned by d->dry_plan after */

    if (d->npool_queued != d->cfg->npools) {
        free(d->pool_queued);
        d->npool_queued = d->cfg->npools;
        d->pool_queued = rd_xcalloc(d->npool_queued ? d->npool_queued : 1, sizeof(unsigned));
    }
    memset(d->pool_queued, 0, d->npool_queued * sizeof(unsigned));
    d->last_unmatched = plan.unmatched;

    for (size_t i = 0; i < plan.ndecisions; i++) {
        const rd_sched_decision_t *dec = &plan.decisions[i];
        if (dec->pool < d->npool_queued)
            d->pool_queued[dec->pool] += dec->demand;
        if (dec->start == 0)
            continue;
        const char *scope = pi.scopes[dec->scope].name;
        const char *pool = rd_planner_pool_name(&pi, dec->pool);
        const char *lim = rd_limit_name(dec->limit);
        if (d->opts.dry_run || d->sup == NULL) {
            char *more =
                rd_xasprintf("%splan: %s pool %s: demand %u supply %u start %u%s%s"
                             " (dry run)\n",
                             dry_plan ? dry_plan : "", scope, pool, dec->demand, dec->supply,
                             dec->start, lim ? " limit " : "", lim ? lim : "");
            free(dry_plan);
            dry_plan = more;
            continue;
        }
        rd_logc(RD_LOG_INFO, "sched", &(const rd_log_ctx_t){.scope = scope, .pool = pool},
                "%s pool %s: demand %u supply %u: starting %u%s%s", scope, pool, dec->demand,
                dec->supply, dec->start, lim ? " (limit " : "", lim ? lim : "");
        for (unsigned k = 0; k < dec->start; k++) {
            uint64_t key = 0;
            int64_t job = dec->job_ids != NULL ? dec->job_ids[k] : 0;
            int rc = rd_supervisor_start(d->sup, dec->scope, dec->pool, job, &key);
            if (rc != 0) {
                rd_debug("sched", "start in %s pool %s refused: %s", scope, pool, rd_strerror(rc));
                break;
            }
        }
    }
    for (size_t i = 0; i < plan.nstops && d->sup != NULL && !d->opts.dry_run; i++)
        rd_supervisor_stop(d->sup, plan.stop_keys[i]);
    rd_daemon_log_unmatched(d, &plan);
    /* A dry run logs its plan when it changes, not on every pass (1 s tick). */
    if (dry_plan != NULL && (d->dry_plan == NULL || strcmp(dry_plan, d->dry_plan) != 0)) {
        for (char *l = dry_plan, *nl; (nl = strchr(l, '\n')) != NULL; l = nl + 1)
            rd_info("sched", "%.*s", (int)(nl - l), l);
    }
    free(d->dry_plan);
    d->dry_plan = dry_plan;

    rd_sched_plan_free(&plan);
    rd_planner_input_free(&pi);
    free(snap);
    if (d->fleet != NULL)
        rd_fleet_kick(d->fleet);
}

/* Jobs no pool serves are counted in every plan and logged once each. */
void rd_daemon_log_unmatched(rd_daemon_t *d, const rd_sched_plan_t *plan)
{
    for (size_t i = 0; i < plan->unmatched; i++) {
        rd_job_t *uj =
            plan->unmatched_ids ? rd_demand_get(d->demand, plan->unmatched_ids[i]) : NULL;
        if (uj == NULL || uj->unmatched_logged)
            continue;
        uj->unmatched_logged = true;
        char labels[512] = "";
        size_t off = 0;
        for (size_t k = 0; k < uj->nlabels && off < sizeof(labels) - 1; k++)
            off += (size_t)snprintf(labels + off, sizeof(labels) - off, "%s%s", k ? "," : "",
                                    uj->labels[k]);
        rd_logc(RD_LOG_WARN, "sched", &(const rd_log_ctx_t){.job = uj->id},
                "job %" PRId64 " in %s (runs-on: %s) matches no pool: not served", uj->id, uj->repo,
                labels);
    }
}

static void on_sched_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, sched_timer);
    d->sched_pending = false;
    rd_daemon_run_schedule(d);
}

void rd_daemon_schedule_soon(rd_daemon_t *d)
{
    if (d->sched_pending || d->phase >= PHASE_CLOSING)
        return;
    d->sched_pending = true;
    uv_timer_start(&d->sched_timer, on_sched_timer, 0, 0);
}

void rd_daemon_on_tick(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, tick_timer);
    rd_daemon_schedule_soon(d);
}

void rd_daemon_on_demand_changed(void *ud)
{
    rd_daemon_t *d = ud;
    d->last_cycle_ms = rd_daemon_wall_ms();
    rd_daemon_schedule_soon(d);
}

/* A poll saw a job in_progress on a named runner: if it is one of ours, that is the
 * job it runs (GitHub may have given it another job than the one it was started
 * for, which then is still queued and must not count as covered by this runner). */
void rd_daemon_on_job_assigned(void *ud, int64_t job_id, const char *runner_name)
{
    rd_daemon_t *d = ud;
    if (d->sup == NULL || strncmp(runner_name, "runnerd-", 8) != 0)
        return;
    if (rd_supervisor_job_started(d->sup, runner_name, job_id) == 0)
        rd_daemon_schedule_soon(d);
}

void rd_daemon_on_runners_changed(void *ud)
{
    rd_daemon_schedule_soon(ud);
}

void rd_daemon_schedule_now(rd_daemon_t *d)
{
    if (d->sched_pending)
        uv_timer_stop(&d->sched_timer);
    d->sched_pending = false;
    rd_daemon_run_schedule(d);
}
