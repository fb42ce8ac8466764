/* daemon_status.c: the listener's read-only views of the daemon: /metrics,
 * /healthz and /status, built from the config, the last plan, the supervisor,
 * the poller and the GitHub client's figures. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/core/metrics.h"
#include "runnerd/core/status.h"

/* ------------------------------------------------------------------ */
/* Listener callbacks                                                  */

/* Webhook results: the daemon's counts plus the 413s the listener answered itself. */
static void webhook_counts(const rd_daemon_t *d, const char **names, uint64_t *counts)
{
    for (size_t i = 0; i < RD_WEBHOOK_RESULT_COUNT; i++) {
        names[i] = rd_webhook_result_name((rd_webhook_result_t)i);
        counts[i] = d->webhook_results[i];
    }
    if (d->listener != NULL) {
        rd_listener_stats_t ls;
        rd_listener_get_stats(d->listener, &ls);
        counts[RD_WEBHOOK_TOO_LARGE] += ls.webhook_too_large;
    }
}

char *rd_daemon_cb_metrics(void *ud, size_t *len)
{
    rd_daemon_t *d = ud;
    rd_metrics_snapshot_t s;
    rd_metrics_snapshot_init(&s);
    s.instance = d->cfg->instance;
    s.start_time_s = d->start_time_s;
    rd_metrics_pool_t *pools = rd_xcalloc(d->cfg->npools ? d->cfg->npools : 1, sizeof(*pools));
    for (size_t i = 0; i < d->cfg->npools; i++) {
        pools[i].name = d->cfg->pools[i].name;
        pools[i].max_runners = d->cfg->pools[i].max_runners;
        pools[i].queued_jobs = i < d->npool_queued ? d->pool_queued[i] : 0;
        rd_supervisor_pool_info_t info;
        pools[i].draining =
            d->phase >= PHASE_DRAINING || rd_daemon_control_pool_drained(d, pools[i].name);
        if (d->sup != NULL && rd_supervisor_pool_info(d->sup, i, &info) == 0) {
            pools[i].degraded = info.degraded;
            pools[i].starts_total = info.starts_total;
            pools[i].failures_total = info.failures_total;
            pools[i].queue_wait = info.queue_wait;
            pools[i].startup = info.startup;
            pools[i].job_duration = info.job_duration;
        }
    }
    if (d->sup != NULL) {
        rd_sched_runner_t *snap = NULL;
        size_t n = rd_supervisor_snapshot(d->sup, &snap);
        for (size_t i = 0; i < n; i++)
            if (snap[i].pool < d->cfg->npools && (int)snap[i].state < (int)RD_METRICS_RSTATE_COUNT)
                pools[snap[i].pool].runners[snap[i].state]++;
        free(snap);
    }
    s.pools = pools;
    s.npools = d->cfg->npools;
    s.unmatched_jobs = d->last_unmatched;
    s.queued_jobs_all = (int64_t)rd_ledger_count(d->ledger);
    rd_github_stats_t gs;
    rd_github_get_stats(d->gh, &gs);
    s.api_requests[RD_METRICS_HTTP_2XX] = gs.by_status[2];
    s.api_requests[RD_METRICS_HTTP_3XX] = gs.by_status[3];
    s.api_requests[RD_METRICS_HTTP_4XX] = gs.by_status[4];
    s.api_requests[RD_METRICS_HTTP_5XX] = gs.by_status[5];
    s.api_requests[RD_METRICS_HTTP_ERROR] = gs.by_status[0];
    s.rate_limit_remaining = gs.rl_remaining;
    s.rate_limit_limit = gs.rl_limit;
    s.rate_limit_reset_s = gs.rl_reset;
    const char *wnames[RD_WEBHOOK_RESULT_COUNT];
    uint64_t wcounts[RD_WEBHOOK_RESULT_COUNT];
    webhook_counts(d, wnames, wcounts);
    for (size_t i = 0; i < RD_WEBHOOK_RESULT_COUNT && i < RD_METRICS_WEBHOOK_COUNT; i++)
        s.webhook_deliveries[i] = wcounts[i];
    s.reloads_ok = d->reloads_ok;
    s.reloads_failed = d->reloads_failed;
    s.last_reload_success_s = d->last_reload_s;
    s.targets = (int64_t)d->cfg->ntargets;
    if (d->poller != NULL) {
        rd_poller_status_t *ps = rd_xcalloc(d->cfg->ntargets ? d->cfg->ntargets : 1, sizeof(*ps));
        size_t n = rd_poller_status(d->poller, ps, d->cfg->ntargets);
        int64_t now = rd_daemon_wall_ms();
        for (size_t i = 0; i < n && i < d->cfg->ntargets; i++)
            if (ps[i].backoff_until_ms > now)
                s.targets_backoff++;
        free(ps);
        rd_poller_poll_durations(d->poller, &s.poll_duration);
    }
    char *text = rd_metrics_render(&s, len);
    if (d->fleet != NULL)
        text = rd_fleet_metrics_append(d->fleet, text, len);
    free(pools);
    return text;
}

bool rd_daemon_cb_healthz(void *ud, char *reason, size_t reason_size)
{
    rd_daemon_t *d = ud;
    if (d->phase == PHASE_ADOPTING) {
        snprintf(reason, reason_size, "starting: adopting containers from a previous run");
        return false;
    }
    if (d->phase >= PHASE_DRAINING) {
        snprintf(reason, reason_size, "stopping");
        return false;
    }
    if (d->fleet != NULL && !rd_fleet_healthy(d->fleet, reason, reason_size))
        return false;
    /* Recent means: within a few poll intervals (polls are paced, never rarer than 5 min). */
    int64_t limit = (int64_t)d->cfg->github.poll_interval_ms * 10;
    if (limit < 10 * 60 * 1000)
        limit = 10 * 60 * 1000;
    int64_t newest = 0;
    bool all_failing = false;
    const char *last_error = NULL;
    if (d->poller != NULL) {
        rd_poller_status_t *ps = rd_xcalloc(d->cfg->ntargets ? d->cfg->ntargets : 1, sizeof(*ps));
        size_t n = rd_poller_status(d->poller, ps, d->cfg->ntargets);
        all_failing = n > 0;
        for (size_t i = 0; i < n && i < d->cfg->ntargets; i++) {
            if (ps[i].last_poll_ms > newest)
                newest = ps[i].last_poll_ms;
            if (ps[i].last_error == NULL)
                all_failing = false;
            else
                last_error = ps[i].last_error; /* static text */
        }
        free(ps);
    }
    int64_t now = rd_daemon_wall_ms();
    /* Every target's latest poll failed (GitHub unreachable, bad credentials, rate
     * limited) and nothing succeeded for 3 poll intervals (at least 15 s): the daemon
     * cannot see demand. Slow polls that succeed (pacing) never count here. */
    int64_t fail_limit = (int64_t)d->cfg->github.poll_interval_ms * 3;
    if (fail_limit < 15 * 1000)
        fail_limit = 15 * 1000;
    int64_t since = newest ? newest : (int64_t)(d->start_time_s * 1000);
    if (d->cfg->ntargets > 0 && all_failing && now - since > fail_limit) {
        snprintf(reason, reason_size, "polls failing: no successful poll for %" PRId64 " s (%s)",
                 (now - since) / 1000, last_error ? last_error : "error");
        return false;
    }
    if (d->cfg->ntargets > 0 && (newest == 0 || now - newest > limit)) {
        if (newest == 0 && now - (int64_t)(d->start_time_s * 1000) < limit)
            return true; /* first cycle still running */
        snprintf(reason, reason_size, "no successful poll for %" PRId64 " s",
                 newest ? (now - newest) / 1000 : (now - (int64_t)(d->start_time_s * 1000)) / 1000);
        return false;
    }
    return true;
}

typedef struct {
    rd_daemon_t *d;
    rd_status_doc_t *doc;
    const rd_sched_runner_t *snap;
    size_t nsnap;
    int64_t now_ms;
    /* Pools that a reload removed but whose runners still live: listed as draining. */
    const char *extra_pools[64];
    size_t nextra;
    bool adding_pools;
} status_ctx_t;

static void status_extra_pool(void *ud, const rd_supervisor_runner_info_t *ri)
{
    status_ctx_t *c = ud;
    if (ri->state == RD_RUNNER_EXITED || !rd_pool_ref_removed(ri->pool_ref))
        return;
    for (size_t i = 0; i < c->nextra; i++)
        if (strcmp(c->extra_pools[i], ri->pool) == 0)
            return;
    if (c->nextra < RD_ARRAY_SIZE(c->extra_pools)) {
        c->extra_pools[c->nextra++] = ri->pool;
        rd_status_pool_t p = {
            .name = ri->pool, .arch = rd_arch_name(c->d->cfg->host.arch), .draining = true};
        rd_status_add_pool(c->doc, &p);
    }
}

static void status_runner(void *ud, const rd_supervisor_runner_info_t *ri)
{
    status_ctx_t *c = ud;
    if (ri->state == RD_RUNNER_EXITED)
        return; /* capacity released; only its registration is still being deleted */
    rd_status_runner_t r = {
        .name = ri->name,
        .pool = ri->pool,
        .scope = ri->scope,
        .state = rd_runner_state_name(ri->state),
        .age_s = ri->age_ms / 1000,
        .runner_id = ri->runner_id,
        .job_id = ri->job_id,
        .adopted = ri->adopted,
    };
    for (size_t i = 0; i < c->nsnap; i++) {
        if (c->snap[i].key == ri->key) {
            r.cpus = c->snap[i].cpus;
            r.memory = c->snap[i].memory;
            r.gpus = c->snap[i].gpus;
            break;
        }
    }
    rd_status_add_runner(c->doc, &r);
}

char *rd_daemon_cb_status(void *ud, size_t *len)
{
    rd_daemon_t *d = ud;
    const rd_config_t *cfg = d->cfg;
    int64_t now = rd_daemon_wall_ms();
    rd_status_top_t top = {
        .version = RD_VERSION_STRING,
        .instance = cfg->instance,
        .state = d->phase == PHASE_ADOPTING  ? "starting"
                 : d->phase == PHASE_RUNNING ? "running"
                                             : "stopping",
        .now = now / 1000,
        .started_at = (int64_t)d->start_time_s,
        .config_path = d->opts.config_path,
        .loaded_at = d->loaded_at_s,
        .reloads_ok = d->reloads_ok,
        .reloads_failed = d->reloads_failed,
        .last_error = d->last_reload_error,
    };
    rd_status_host_t host = {
        .arch = rd_arch_name(cfg->host.arch),
        .cpus = cfg->host.cpus,
        .memory = cfg->host.memory,
        .gpus = cfg->host.gpus,
        .max_runners = cfg->host.max_runners,
    };
    status_ctx_t c = {.d = d, .now_ms = now};
    c.doc = rd_status_new(&top, &host);
    rd_sched_runner_t *snap = NULL;
    c.nsnap = d->sup != NULL ? rd_supervisor_snapshot(d->sup, &snap) : 0;
    c.snap = snap;

    for (size_t i = 0; i < cfg->npools; i++) {
        const rd_pool_t *p = &cfg->pools[i];
        rd_supervisor_pool_info_t info = {0};
        if (d->sup != NULL)
            rd_supervisor_pool_info(d->sup, i, &info);
        rd_status_pool_t sp = {
            .name = p->name,
            .labels = (const char *const *)p->labels,
            .nlabels = p->nlabels,
            .arch = rd_arch_name(p->arch),
            .emulated = p->emulated,
            .max = p->max_runners,
            .min_idle = p->min_idle,
            .queued = i < d->npool_queued ? d->pool_queued[i] : 0,
            .degraded = info.degraded,
            .backoff_until = info.backoff ? (now + (int64_t)info.backoff_ms + 999) / 1000 : 0,
            .draining = d->phase >= PHASE_DRAINING,
            .starts = info.starts_total,
            .failures = info.failures_total,
        };
        rd_status_add_pool(c.doc, &sp);
    }
    if (d->sup != NULL) {
        rd_supervisor_foreach(d->sup, status_extra_pool, &c);
        rd_supervisor_foreach(d->sup, status_runner, &c);
    }

    rd_poller_status_t *ps = rd_xcalloc(cfg->ntargets ? cfg->ntargets : 1, sizeof(*ps));
    size_t n = d->poller != NULL ? rd_poller_status(d->poller, ps, cfg->ntargets) : 0;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        const char *pools[64];
        size_t np = 0;
        for (size_t k = 0; k < t->npools && np < RD_ARRAY_SIZE(pools); k++)
            if (t->pools[k] < cfg->npools)
                pools[np++] = cfg->pools[t->pools[k]].name;
        rd_status_target_t st = {
            .scope = t->scope,
            .org = t->kind == RD_TARGET_ORG,
            .repos = t->nrepos ? (const char *const *)t->repos : NULL,
            .nrepos = t->nrepos,
            .pools = pools,
            .npools = np,
        };
        if (i < n) {
            if (st.org && ps[i].repo_names != NULL) {
                /* docs/status.md: the watched repositories, discovered when no repos: list */
                st.repos = ps[i].repo_names;
                st.nrepos = ps[i].nrepo_names;
            }
            st.last_poll = ps[i].last_poll_ms / 1000;
            st.last_error = ps[i].last_error;
            st.backoff_until =
                ps[i].backoff_until_ms > now ? (ps[i].backoff_until_ms + 999) / 1000 : 0;
            st.queued = ps[i].queued;
        }
        rd_status_add_target(c.doc, &st);
    }
    free(ps);

    rd_github_stats_t gs;
    rd_github_get_stats(d->gh, &gs);
    rd_status_github_t g = {
        .api_url = cfg->github.api_url,
        .auth = cfg->github.app_id ? "app" : "token",
        .rl_limit = gs.rl_limit,
        .rl_remaining = gs.rl_remaining,
        .rl_reset = gs.rl_reset,
        .requests = {gs.by_status[2], gs.by_status[3], gs.by_status[4], gs.by_status[5],
                     gs.by_status[0]},
        .budget_per_hour = gs.budget_per_hour,
    };
    rd_status_set_github(c.doc, &g);

    const char *names[RD_WEBHOOK_RESULT_COUNT];
    uint64_t counts[RD_WEBHOOK_RESULT_COUNT];
    webhook_counts(d, names, counts);
    rd_status_webhook_t w = {.enabled = d->webhook_secret != NULL,
                             .names = names,
                             .counts = counts,
                             .n = RD_WEBHOOK_RESULT_COUNT,
                             .last_delivery = d->last_delivery_s};
    rd_status_set_webhook(c.doc, &w);
    rd_status_set_jobs(c.doc, (int64_t)rd_ledger_count(d->ledger), d->last_unmatched);
    char *json = rd_status_render(c.doc, len);
    if (d->fleet != NULL)
        json = rd_fleet_status_merge(d->fleet, json, len);
    rd_status_free(c.doc);
    free(snap);
    return json;
}
