/* daemon_plan.c: the daemon's scheduling pass. Feeds the demand ledger what
 * the supervisor knows (its runners, each start, each exit), applies the
 * ledger's actions to the supervisor, builds the planner input from the config,
 * the ledger and the supervisor's runners, and hands the plan's starts and
 * stops to the supervisor (a dry run logs it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

/* ------------------------------------------------------------------ */
/* Ledger events from the supervisor, ledger actions to it             */

/* The supervisor's view of one runner, as a ledger event (borrowed fields). */
static void ledger_runner(const rd_daemon_t *d, const rd_supervisor_runner_info_t *ri,
                          rd_ledger_runner_t *out)
{
    /* Positions in d->cfg, which the ledger also has: the references say them in O(1). */
    const rd_pool_t *p = rd_pool_ref_cfg(ri->pool_ref);
    size_t target = rd_target_ref_pos(ri->target_ref);
    *out = (rd_ledger_runner_t){
        .key = ri->key,
        .name = ri->name,
        .target = target < d->cfg->ntargets ? (int)target : -1,
        .pool = p != NULL ? (int)rd_pool_ref_pos(ri->pool_ref) : -1,
        .pool_labels = p != NULL ? (const char *const *)p->labels : NULL,
        .npool_labels = p != NULL ? p->nlabels : 0,
        .state = ri->state,
        .job_id = ri->job_id,
        .job_unknown = ri->job_unknown,
        .ran_job = ri->ran_job,
    };
}

void rd_daemon_apply(rd_daemon_t *d, const rd_ledger_actions_t *acts)
{
    for (size_t i = 0; i < acts->n; i++) {
        const rd_ledger_action_t *a = &acts->v[i];
        if (d->sup == NULL)
            return;
        switch (a->kind) {
        case RD_LEDGER_RUNS:
            if (rd_supervisor_job_started(d->sup, a->name, a->job_id) == 0)
                rd_daemon_schedule_soon(d);
            break;
        case RD_LEDGER_ASSUMED:
            rd_supervisor_job_assumed(d->sup, a->name, a->job_id);
            break;
        case RD_LEDGER_COMPLETED:
            rd_supervisor_job_completed(d->sup, a->name, a->job_id);
            break;
        case RD_LEDGER_COUNTED:
            break; /* the plan reads the ledger's tie; the runner's state is unchanged */
        }
    }
}

/* A runner's container exited (called from inside the supervisor: record only). */
void rd_daemon_on_runner_exited(void *ud, const rd_supervisor_runner_info_t *ri)
{
    rd_daemon_t *d = ud;
    rd_ledger_runner_t lr;
    ledger_runner(d, ri, &lr);
    rd_ledger_runner_exited(d->ledger, &lr, rd_daemon_wall_ms());
}

typedef struct {
    const rd_daemon_t *d;
    rd_ledger_runner_t *v;
    size_t n;
    uint64_t find_key; /* started_name: the key looked for */
    char *found_name;
} runners_ctx_t;

static void collect_runner(void *ud, const rd_supervisor_runner_info_t *ri)
{
    runners_ctx_t *c = ud;
    c->v = rd_xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
    ledger_runner(c->d, ri, &c->v[c->n]);
    /* the name is borrowed for the callback only */
    c->v[c->n].name = rd_xstrdup(ri->name);
    c->n++;
}

/* The runners snapshot event: the ledger learns adopted runners and which
 * adopted ones turned busy; their assumed jobs go back to the supervisor. */
static void feed_runners(rd_daemon_t *d)
{
    if (d->sup == NULL)
        return;
    runners_ctx_t c = {.d = d};
    rd_supervisor_foreach(d->sup, collect_runner, &c);
    rd_ledger_actions_t acts = {0};
    rd_ledger_runners(d->ledger, c.v, c.n, rd_daemon_wall_ms(), &acts);
    rd_daemon_apply(d, &acts);
    rd_ledger_actions_clear(&acts);
    for (size_t i = 0; i < c.n; i++)
        free((char *)c.v[i].name);
    free(c.v);
}

static void find_name(void *ud, const rd_supervisor_runner_info_t *ri)
{
    runners_ctx_t *c = ud;
    if (ri->key == c->find_key && c->found_name == NULL)
        c->found_name = rd_xstrdup(ri->name);
}

/* "Runner R started for job J" for the ledger. */
static void note_started(rd_daemon_t *d, uint64_t key, size_t target, size_t pool, int64_t job)
{
    runners_ctx_t c = {.d = d, .find_key = key};
    rd_supervisor_foreach(d->sup, find_name, &c);
    rd_ledger_runner_started(d->ledger, key, c.found_name, (int)target, (int)pool, job,
                             rd_daemon_wall_ms());
    free(c.found_name);
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                          */

void rd_daemon_build_input(rd_daemon_t *d, rd_planner_input_t *pi, rd_sched_runner_t **snap_out)
{
    feed_runners(d);
    rd_sched_runner_t *snap = NULL;
    rd_supervisor_refs_t *refs = NULL;
    size_t n = d->sup != NULL ? rd_supervisor_snapshot_refs(d->sup, &snap, &refs) : 0;
    rd_planner_runner_t *rs = rd_xcalloc(n ? n : 1, sizeof(*rs));
    for (size_t i = 0; i < n; i++) {
        const rd_sched_runner_t *s = &snap[i];
        rs[i].key = s->key;
        rs[i].pool = refs[i].pool;
        rs[i].target = refs[i].target;
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
        .ledger = d->ledger,
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
    free(refs);
    *snap_out = snap;
}

/* Runner keys in the planner input are the supervisor's; pool names used by the
 * planner point into d->cfg or the input itself, so everything here is freed
 * together at the end of the pass. */
void rd_daemon_run_schedule(rd_daemon_t *d)
{
    if (d->phase != PHASE_RUNNING && !(d->opts.dry_run && d->phase == PHASE_ADOPTING))
        return;
    /* --once plans once, when its cycle has ended (on_once_cycle): a pass per
     * poll result would make the cycle quadratic in the repositories. */
    if (d->opts.once && d->phase != PHASE_RUNNING)
        return;
    uint64_t t0 = uv_hrtime();

    rd_planner_input_t pi;
    rd_sched_runner_t *snap = NULL;
    rd_daemon_build_input(d, &pi, &snap);
    rd_sched_plan_t plan;
    rd_sched_plan(&pi.in, &plan);
    /* this pass's plan lines (dry run), owned by d->dry_plan after; one stream, not one
     * string per line copied into the next (that was quadratic in the plan's lines) */
    char *dry_plan = NULL;
    size_t dry_len = 0, dry_cap = 0;

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
            char *line = rd_xasprintf("plan: %s pool %s: demand %u supply %u start %u%s%s"
                                      " (dry run)\n",
                                      scope, pool, dec->demand, dec->supply, dec->start,
                                      lim ? " limit " : "", lim ? lim : "");
            size_t n = strlen(line);
            if (dry_len + n + 1 > dry_cap) {
                dry_cap = (dry_len + n + 1) * 2;
                dry_plan = rd_xrealloc(dry_plan, dry_cap);
            }
            memcpy(dry_plan + dry_len, line, n + 1);
            dry_len += n;
            free(line);
            continue;
        }
        rd_logc(RD_LOG_INFO, "sched", &(const rd_log_ctx_t){.scope = scope, .pool = pool},
                "%s pool %s: demand %u supply %u: starting %u%s%s", scope, pool, dec->demand,
                dec->supply, dec->start, lim ? " (limit " : "", lim ? lim : "");
        for (unsigned k = 0; k < dec->start; k++) {
            uint64_t key = 0;
            int64_t job = dec->job_ids != NULL ? dec->job_ids[k] : 0;
            /* The plan's positions are d->cfg's, to which d->ids was applied. */
            int rc = rd_supervisor_start(d->sup, rd_idents_target(d->ids, dec->scope),
                                         rd_idents_pool(d->ids, dec->pool), job, &key);
            if (rc != 0) {
                rd_debug("sched", "start in %s pool %s refused: %s", scope, pool, rd_strerror(rc));
                break;
            }
            note_started(d, key, dec->scope, dec->pool, job);
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
    d->pass_end_ns = uv_hrtime();
    d->pass_ns = d->pass_end_ns - t0;
}

/* Jobs no pool serves are counted in every plan and logged once each. */
void rd_daemon_log_unmatched(rd_daemon_t *d, const rd_sched_plan_t *plan)
{
    for (size_t i = 0; i < plan->unmatched && plan->unmatched_ids != NULL; i++) {
        if (!rd_ledger_unmatched_once(d->ledger, plan->unmatched_ids[i]))
            continue;
        const rd_job_t *uj = rd_ledger_job(d->ledger, plan->unmatched_ids[i]);
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
    /* Passes take at most about a tenth of the time: a pass costs O(jobs + targets),
     * and with thousands of repositories answering one by one, a pass per answer
     * made a cycle quadratic. Small fleets (passes of microseconds) see no delay;
     * a queued webhook delivery does not wait (rd_daemon_schedule_now). */
    uint64_t now = uv_hrtime(), ready = d->pass_end_ns + 9 * d->pass_ns;
    uint64_t delay_ms = ready > now ? (ready - now + 999999) / 1000000 : 0;
    uv_timer_start(&d->sched_timer, on_sched_timer, delay_ms, 0);
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

/* The ledger's actions for a poll (a runner of ours runs a job GitHub lists
 * in_progress on it: maybe another job than the one it was started for). */
void rd_daemon_on_poll_actions(void *ud, const rd_ledger_actions_t *acts)
{
    rd_daemon_apply(ud, acts);
}

/* runnerd_job_queue_wait_seconds from a poll (the webhook path observes it too;
 * the supervisor counts each runner's job once, whichever comes first). */
void rd_daemon_on_poll_started(void *ud, const char *runner_name, int64_t job_id, int64_t wait_ms)
{
    rd_daemon_t *d = ud;
    if (d->sup != NULL)
        rd_supervisor_job_waited(d->sup, runner_name, job_id, wait_ms);
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
