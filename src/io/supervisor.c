/* supervisor.c: runners as docker containers (I/O; see supervisor.h): the supervisor
 * object, its supervisor-wide timers (changed, drain), reload, the read side for the
 * scheduler, /status and /metrics, drain and close. The other concerns have their own
 * files (supervisor_int.h lists them). */
#include "supervisor_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

int64_t rd_sup_now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rd_sup_rnd(sup_t *s)
{
    return rd_rand_next(&s->rng);
}

sup_runner_t *rd_sup_find_key(const sup_t *s, uint64_t key)
{
    for (sup_runner_t *r = s->runners; r; r = r->next)
        if (r->key == key)
            return r;
    return NULL;
}

sup_runner_t *rd_sup_find_name(const sup_t *s, const char *name)
{
    if (name == NULL)
        return NULL;
    for (sup_runner_t *r = s->runners; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

pool_state_t *rd_sup_pool_state(sup_t *s, const rd_pool_ref_t *ref)
{
    /* s->pools[] follows the current config's order (pools_rebuild); a reference
     * applied to a newer config than the supervisor has seen yet has none. */
    size_t pos = rd_pool_ref_pos(ref);
    return pos < s->npools && s->pools[pos].ref == ref ? &s->pools[pos] : NULL;
}

void rd_sup_handle_closed(sup_t *s)
{
    if (--s->open > 0 || !s->closing)
        return;
    for (size_t i = 0; i < s->npools; i++)
        rd_pool_ref_release(s->pools[i].ref);
    free(s->pools);
    if (s->own_ids)
        rd_idents_free(s->ids);
    for (size_t i = 0; i < s->ngroups; i++) {
        free(s->groups[i].scope);
        free(s->groups[i].group);
    }
    free(s->groups);
    rd_strv_free(s->listing, s->nlisting);
    rd_strv_free(s->suspects, s->nsuspects);
    free(s->suspect_until);
    if (s->adopt)
        rd_sup_adopt_free(s->adopt);
    void (*cb)(void *) = s->closed;
    void *ud = s->closed_ud;
    free(s);
    if (cb)
        cb(ud);
}

static void sup_handle_closed(uv_handle_t *h)
{
    rd_sup_handle_closed(h->data);
}

static void on_changed(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_changed);
    if (s->draining && !s->drain_done_called && s->runners == NULL) {
        s->drain_done_called = true;
        uv_timer_stop(&s->t_drain);
        rd_info(COMP, "drained: no runner left");
        if (s->drain_done)
            s->drain_done(s->drain_ud);
        if (s->closing)
            return;
    }
    if (s->cbs.changed)
        s->cbs.changed(s->cbs.ud);
}

void rd_sup_schedule_changed(sup_t *s)
{
    if (s->closing)
        return;
    if (!uv_is_active((uv_handle_t *)&s->t_changed))
        uv_timer_start(&s->t_changed, on_changed, 0, 0);
}

static void on_drain_timer(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_drain);
    rd_warn(COMP, "shutdown grace over: stopping busy runners");
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        rd_sup_feed(r, RD_REV_STOP_FORCE, 0);
    }
}

/* The per-pool state in the new config's order: a pool that stays keeps its state
 * (backoff, counters, histograms) through its reference; a removed one's goes. */
static void pools_rebuild(sup_t *s, const rd_config_t *cfg)
{
    pool_state_t *np = rd_xcalloc(cfg->npools ? cfg->npools : 1, sizeof *np);
    for (size_t i = 0; i < s->npools; i++) {
        size_t pos = rd_pool_ref_pos(s->pools[i].ref);
        if (pos < cfg->npools) {
            np[pos] = s->pools[i];
            continue;
        }
        rd_pool_ref_release(s->pools[i].ref);
    }
    for (size_t i = 0; i < cfg->npools; i++) {
        if (np[i].ref != NULL)
            continue;
        np[i].ref = rd_pool_ref_hold(rd_idents_pool(s->ids, i));
        rd_backoff_init(&np[i].b, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    }
    free(s->pools);
    s->pools = np;
    s->npools = cfg->npools;
}

int rd_supervisor_new(uv_loop_t *loop, const rd_config_t *cfg, rd_github_t *gh,
                      const rd_supervisor_callbacks_t *cbs, const rd_supervisor_options_t *opts,
                      rd_supervisor_t **out)
{
    *out = NULL;
    if (loop == NULL || cfg == NULL || gh == NULL || cfg->docker.binary == NULL ||
        cfg->instance == NULL)
        return RD_EINVAL;
    sup_t *s = rd_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->gh = gh;
    if (cbs)
        s->cbs = *cbs;
    if (opts)
        s->opt = *opts;
    s->ids = s->opt.idents;
    if (s->ids == NULL) {
        s->ids = rd_idents_new();
        s->own_ids = true;
        rd_idents_apply(s->ids, cfg);
    }
    if (s->opt.stop_grace_ms == 0)
        s->opt.stop_grace_ms = 10000;
    if (s->opt.kill_slack_ms == 0)
        s->opt.kill_slack_ms = 5000;
    if (s->opt.log_line_max == 0)
        s->opt.log_line_max = 2048;
    if (s->opt.log_lines_per_minute == 0)
        s->opt.log_lines_per_minute = 600;
    if (s->opt.degraded_after == 0)
        s->opt.degraded_after = 3;
    if (s->opt.drain_delete_ms == 0)
        s->opt.drain_delete_ms = 15000;
    s->rng = (uint64_t)rd_sup_now_wall() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    pools_rebuild(s, cfg);
    uv_timer_init(loop, &s->t_changed);
    uv_timer_init(loop, &s->t_reconcile);
    uv_timer_init(loop, &s->t_backoff);
    uv_timer_init(loop, &s->t_drain);
    s->t_changed.data = s->t_reconcile.data = s->t_backoff.data = s->t_drain.data = s;
    s->open = 4;
    int rc = rd_spawner_new(loop, &s->spawner);
    if (rc != 0) {
        /* Only a loop out of signal watchers fails here: runnerd cannot run docker. */
        rd_error(COMP, "cannot watch child processes: %s", uv_strerror(rc));
        rd_supervisor_close(s, NULL, NULL);
        return RD_EIO;
    }
    s->open++;
    uint64_t every = s->opt.reconcile_ms ? s->opt.reconcile_ms : cfg->github.poll_interval_ms;
    if (every < 1000)
        every = 1000;
    if (!s->opt.read_only)
        uv_timer_start(&s->t_reconcile, rd_sup_on_reconcile_timer, every, every);
    *out = s;
    return 0;
}

void rd_supervisor_reconfigure(rd_supervisor_t *s, const rd_config_t *cfg)
{
    s->cfg = cfg;
    if (s->own_ids)
        rd_idents_apply(s->ids, cfg);
    pools_rebuild(s, cfg);
    uint64_t every = s->opt.reconcile_ms ? s->opt.reconcile_ms : cfg->github.poll_interval_ms;
    if (every < 1000)
        every = 1000;
    if (!s->opt.read_only)
        uv_timer_start(&s->t_reconcile, rd_sup_on_reconcile_timer, every, every);
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        /* Its references were re-pointed when the reload was applied (ident.h). */
        if (rd_pool_ref_removed(r->pool) && !r->done && r->m.state != RD_RUNNER_EXITED) {
            rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: pool %s removed; stopping it unless busy",
                    r->name, r->pool_name);
            /* It may have taken a job since the last runner list: stopping it now would
             * cancel that job. Stop it once a fresh list says it is not busy (list_cb). */
            if (r->m.runner_id == 0 || r->m.registering)
                rd_sup_feed(r, RD_REV_STOP, 0);
            else if (!r->stop_after_list) {
                r->stop_after_list = true;
                r->stop_asked_ms = rd_sup_now_wall();
                rd_sup_list_scope(s, r->scope);
            }
        }
    }
    rd_sup_schedule_changed(s);
}

size_t rd_supervisor_snapshot(const rd_supervisor_t *s, rd_sched_runner_t **out)
{
    return rd_supervisor_snapshot_refs(s, out, NULL);
}

size_t rd_supervisor_snapshot_refs(const rd_supervisor_t *s, rd_sched_runner_t **out,
                                   rd_supervisor_refs_t **refs)
{
    size_t n = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        n++;
    rd_sched_runner_t *v = rd_xcalloc(n ? n : 1, sizeof *v);
    rd_supervisor_refs_t *rv = refs != NULL ? rd_xcalloc(n ? n : 1, sizeof *rv) : NULL;
    size_t k = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next) {
        rd_rstate_t st;
        switch (r->m.state) {
        case RD_RUNNER_STARTING:
            st = RD_RSTATE_STARTING;
            break;
        case RD_RUNNER_IDLE:
            st = RD_RSTATE_IDLE;
            break;
        case RD_RUNNER_BUSY:
            st = RD_RSTATE_BUSY;
            break;
        case RD_RUNNER_STOPPING:
            st = RD_RSTATE_STOPPING;
            break;
        default:
            continue;
        }
        v[k].key = r->key;
        v[k].scope = rd_target_ref_pos(r->target);
        v[k].pool = rd_pool_ref_pos(r->pool);
        v[k].state = st;
        v[k].job_id = r->m.job_id;
        v[k].idle_since_ms = r->m.idle_since_ms;
        v[k].cpus = r->cpus;
        v[k].memory = r->memory;
        v[k].gpus = r->gpus;
        if (rv != NULL)
            rv[k] = (rd_supervisor_refs_t){.pool = r->pool, .target = r->target};
        k++;
    }
    if (refs != NULL)
        *refs = rv;
    *out = v;
    return k;
}

int rd_supervisor_pool_info(const rd_supervisor_t *s, size_t pool, rd_supervisor_pool_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (pool >= s->npools)
        return RD_EINVAL;
    const pool_state_t *ps = &s->pools[pool];
    const rd_pool_ref_t *ref = ps->ref;
    out->backoff_ms = rd_backoff_remaining(&ps->b, (uint64_t)rd_sup_now_wall());
    out->backoff = out->backoff_ms > 0;
    out->degraded = ps->degraded;
    out->consecutive_failures = ps->b.failures;
    out->starts_total = ps->starts;
    out->failures_total = ps->failures;
    out->queue_wait = ps->queue_wait;
    out->startup = ps->startup;
    out->job_duration = ps->job_duration;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        if (r->pool == ref && rd_runner_holds_capacity(&r->m))
            out->runners++;
    return 0;
}

void rd_supervisor_foreach(const rd_supervisor_t *s,
                           void (*fn)(void *ud, const rd_supervisor_runner_info_t *ri), void *ud)
{
    int64_t now = rd_sup_now_wall();
    for (const sup_runner_t *r = s->runners; r; r = r->next) {
        rd_supervisor_runner_info_t ri;
        rd_sup_runner_info(r, now, &ri);
        fn(ud, &ri);
    }
}

size_t rd_supervisor_count(const rd_supervisor_t *s)
{
    size_t n = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        n++;
    return n;
}

void rd_supervisor_drain(rd_supervisor_t *s, uint64_t grace_ms, void (*done)(void *ud), void *ud)
{
    if (s->closing)
        return;
    bool first = !s->draining;
    s->draining = true;
    if (first) {
        s->drain_done = done;
        s->drain_ud = ud;
        rd_info(COMP, "draining %zu runners (busy ones get %.0fs)", rd_supervisor_count(s),
                (double)grace_ms / 1000.0);
        /* Runners with a registration may have taken a job since the last runner list:
         * stopping them now would cancel it. They are stopped when a fresh list says they
         * are not busy (list_cb); those still registering are stopped at once. */
        sup_runner_t *next;
        for (sup_runner_t *r = s->runners; r; r = next) {
            next = r->next;
            if (r->m.runner_id == 0)
                rd_sup_feed(r, RD_REV_STOP, 0);
        }
        rd_supervisor_reconcile(s);
    }
    uint64_t left = uv_is_active((uv_handle_t *)&s->t_drain) ? uv_timer_get_due_in(&s->t_drain) : 0;
    if (first || grace_ms < left) {
        uv_timer_start(&s->t_drain, on_drain_timer, grace_ms, 0);
        s->drain_giveup_ms =
            rd_sup_now_wall() + (int64_t)grace_ms + (int64_t)s->opt.drain_delete_ms;
    }
    rd_sup_schedule_changed(s);
}

static void spawner_closed(void *ud)
{
    rd_sup_handle_closed(ud);
}

void rd_supervisor_close(rd_supervisor_t *s, void (*closed)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->closed = closed;
    s->closed_ud = ud;
    for (ticket_t *t = s->tickets; t; t = t->next)
        t->sup = NULL;
    s->tickets = NULL;
    while (s->runners)
        rd_sup_runner_close(s->runners);
    while (s->procs) {
        sup_proc_t *p = s->procs;
        p->finished = true;
        rd_sup_proc_close(p);
    }
    uv_close((uv_handle_t *)&s->t_changed, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_reconcile, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_backoff, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_drain, sup_handle_closed);
    if (s->spawner) {
        rd_spawner_close(s->spawner, spawner_closed, s);
        s->spawner = NULL;
    }
}
