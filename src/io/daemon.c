/* daemon.c: the service. One uv loop; signals; config load and reload; the
 * poller feeds the demand table, the scheduler decides, the supervisor runs
 * the runners, the listener serves /metrics /healthz /status /webhook.
 *
 * The daemon owns one root struct (no globals). Every decision is taken by
 * the pure modules (planner + sched, webhook); this file moves data between
 * them and the I/O modules and sequences start-up, reload and shutdown:
 *
 *   load config -> github, demand, poller, supervisor, listener
 *   -> supervisor adopts what a previous run left -> poller starts -> READY
 *   -> (poll results | webhooks | runner changes | 1 s tick) -> schedule
 *   SIGHUP: load off to the side; on success reconfigure every module, swap
 *   SIGTERM/SIGINT: stop polling and starting, drain the supervisor, close all */
#include "runnerd/io/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/demand.h"
#include "runnerd/core/labels.h"
#include "runnerd/core/log.h"
#include "runnerd/core/metrics.h"
#include "runnerd/core/planner.h"
#include "runnerd/core/sched.h"
#include "runnerd/core/status.h"
#include "runnerd/core/webhook.h"
#include "runnerd/io/github.h"
#include "runnerd/io/hostfacts.h"
#include "runnerd/io/listener.h"
#include "runnerd/io/notify.h"
#include "runnerd/io/poller.h"
#include "runnerd/io/supervisor.h"

#define LOGC "daemon"
#define RECENT_JOBS 4096
#define TAKEN_JOBS 256
/* A runner that exited after a job took (most likely) the job it was started for:
 * that job is no demand until a poll that ends this long after the exit lists it
 * queued again (a poll already in flight at the exit may still list it). */
#define TAKEN_MARGIN_MS 10000

typedef enum {
    PHASE_ADOPTING = 0, /* looking at what a previous run left behind */
    PHASE_RUNNING,
    PHASE_DRAINING, /* SIGTERM: busy runners finishing */
    PHASE_CLOSING,  /* closing handles; the loop ends when they are closed */
} phase_t;

typedef struct rd_daemon {
    uv_loop_t loop;
    rd_daemon_opts_t opts;
    char hostname[256];
    rd_host_facts_t facts;
    rd_config_t *cfg;
    char *webhook_secret;
    size_t webhook_secret_len;

    rd_github_t *gh;
    rd_demand_t *demand;
    rd_poller_t *poller;
    rd_supervisor_t *sup;
    rd_listener_t *listener;
    rd_notify_t *notify;
    rd_webhook_dedup_t *dedup;

    uv_signal_t sighup;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t sched_timer; /* coalesces "something changed" into one pass */
    uv_timer_t tick_timer;  /* periodic pass: idle timeouts, backoff expiry */
    uv_timer_t once_timer;  /* --once: waits for registrations in flight */
    uv_timer_t adopt_timer; /* retries the restart adoption when docker ps failed */
    uint64_t adopt_retry_ms;
    bool sched_pending;
    phase_t phase;
    int exit_code;
    size_t open_modules; /* modules whose close callback is pending */

    /* Jobs a webhook said started or finished: a late "queued" delivery or a
     * stale poll page must not bring them back as demand. */
    int64_t recent_jobs[RECENT_JOBS];
    size_t recent_next;
    size_t recent_count;

    /* Jobs whose runner exited after running a job, without a webhook saying which
     * job it ran: without this, the stale demand entry (until the next poll, which
     * may be minutes away when webhooks bring demand) starts a second runner. */
    struct {
        uint64_t runner_key;
        int64_t job_id;
        int64_t until_seen_ms; /* demand entries seen before this are stale */
        bool active;           /* false once a later poll listed the job queued */
    } taken[TAKEN_JOBS];
    size_t taken_next;

    /* Figures for /metrics and /status. */
    double start_time_s;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    double last_reload_s;
    uint64_t webhook_results[RD_WEBHOOK_RESULT_COUNT];
    int64_t last_delivery_s;
    int64_t loaded_at_s;
    char *last_reload_error; /* first error of the last failed reload, NULL after a good one */
    int64_t last_cycle_ms;   /* end of the last full poll cycle or poll result */
    unsigned last_unmatched;
    unsigned *pool_queued; /* per cfg pool: queued jobs it was chosen for, last plan */
    size_t npool_queued;
    char *dry_plan; /* the plan lines a dry run logged last (NULL: none) */
} rd_daemon_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void schedule_soon(rd_daemon_t *d);
static void begin_close(rd_daemon_t *d);

/* ------------------------------------------------------------------ */
/* Recently started/finished jobs                                      */

static void recent_add(rd_daemon_t *d, int64_t id)
{
    d->recent_jobs[d->recent_next] = id;
    d->recent_next = (d->recent_next + 1) % RECENT_JOBS;
    if (d->recent_count < RECENT_JOBS)
        d->recent_count++;
}

static bool recent_has(const rd_daemon_t *d, int64_t id)
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
    d->taken[k].until_seen_ms = wall_ms() + TAKEN_MARGIN_MS;
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
                d->taken[k].until_seen_ms = wall_ms() + TAKEN_MARGIN_MS;
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
static void on_runner_exited(void *ud, const rd_supervisor_runner_info_t *ri)
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

static void build_input(rd_daemon_t *d, rd_planner_input_t *pi, rd_sched_runner_t **snap_out)
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
    rd_planner_state_t st = {
        .cfg = d->cfg,
        .demand = d->demand,
        .runners = rs,
        .nrunners = n,
        .pool_backoff = backoff,
        .now_ms = wall_ms(),
        .stopping = d->phase >= PHASE_DRAINING,
    };
    rd_planner_build(&st, pi);
    free(backoff);
    free(rs);
    *snap_out = snap;
}

/* Runner keys in the planner input are the supervisor's; pool names used by the
 * planner point into d->cfg or the input itself, so everything here is freed
 * together at the end of the pass. */
static void log_unmatched(rd_daemon_t *d, const rd_sched_plan_t *plan);

static void run_schedule(rd_daemon_t *d)
{
    if (d->phase != PHASE_RUNNING && !(d->opts.dry_run && d->phase == PHASE_ADOPTING))
        return;

    drop_recent_from_demand(d);
    drop_taken(d);
    bind_adopted(d, false);

    rd_planner_input_t pi;
    rd_sched_runner_t *snap = NULL;
    build_input(d, &pi, &snap);
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
        rd_info("sched", "%s pool %s: demand %u supply %u: starting %u%s%s", scope, pool,
                dec->demand, dec->supply, dec->start, lim ? " (limit " : "", lim ? lim : "");
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
    log_unmatched(d, &plan);
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
}

/* Jobs no pool serves are counted in every plan and logged once each. */
static void log_unmatched(rd_daemon_t *d, const rd_sched_plan_t *plan)
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
        rd_warn("sched", "job %" PRId64 " in %s (runs-on: %s) matches no pool: not served", uj->id,
                uj->repo, labels);
    }
}

static void on_sched_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, sched_timer);
    d->sched_pending = false;
    run_schedule(d);
}

static void schedule_soon(rd_daemon_t *d)
{
    if (d->sched_pending || d->phase >= PHASE_CLOSING)
        return;
    d->sched_pending = true;
    uv_timer_start(&d->sched_timer, on_sched_timer, 0, 0);
}

static void on_tick(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, tick_timer);
    schedule_soon(d);
}

static void on_demand_changed(void *ud)
{
    rd_daemon_t *d = ud;
    d->last_cycle_ms = wall_ms();
    schedule_soon(d);
}

/* A poll saw a job in_progress on a named runner: if it is one of ours, that is the
 * job it runs (GitHub may have given it another job than the one it was started
 * for, which then is still queued and must not count as covered by this runner). */
static void on_job_assigned(void *ud, int64_t job_id, const char *runner_name)
{
    rd_daemon_t *d = ud;
    if (d->sup == NULL || strncmp(runner_name, "runnerd-", 8) != 0)
        return;
    if (rd_supervisor_job_started(d->sup, runner_name, job_id) == 0)
        schedule_soon(d);
}

static void on_runners_changed(void *ud)
{
    schedule_soon(ud);
}

/* ------------------------------------------------------------------ */
/* Config                                                              */

static rd_config_t *load_config(rd_daemon_t *d, bool fatal)
{
    rd_config_errors_t errs = {0};
    rd_config_errors_t warns = {0};
    rd_config_t *cfg = NULL;
    /* The same path as --check-config: the file, then the host side of validation
     * (secret files readable, token_env set). */
    int rc = rd_config_load_checked(d->opts.config_path, &d->facts, &cfg, &errs, &warns);
    for (size_t i = 0; i < warns.n; i++) {
        char *line = rd_config_error_str(&warns.v[i]);
        rd_warn("config", "%s", line);
        free(line);
    }
    rd_config_errors_free(&warns);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            char *line = rd_config_error_str(&errs.v[i]);
            /* ERROR also on a reload: the file would fail the next start too, and an
             * operator running with --log-level error must still see it. */
            rd_log(RD_LOG_ERROR, "config", "%s", line);
            if (i == 0) {
                free(d->last_reload_error);
                d->last_reload_error = line;
            } else {
                free(line);
            }
        }
        if (errs.n == 0) {
            rd_log(RD_LOG_ERROR, "config", "%s: %s", d->opts.config_path, rd_strerror(rc));
            free(d->last_reload_error);
            d->last_reload_error = rd_xasprintf("%s: %s", d->opts.config_path, rd_strerror(rc));
        }
        rd_config_errors_free(&errs);
        return NULL;
    }
    rd_config_errors_free(&errs);
    return cfg;
}

/* The webhook secret: the file's content without trailing newlines. */
static int read_secret(const char *path, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (path == NULL)
        return 0;
    char *buf = NULL;
    size_t n = 0;
    int rc = rd_read_file(path, 64 * 1024, RD_READ_SECRET, &buf, &n);
    if (rc != 0) {
        rd_error("config", "webhook_secret_file %s: %s", path,
                 rc == RD_ERANGE ? "larger than 64 KiB" : strerror(errno));
        return rc;
    }
    size_t all = n;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0) {
        explicit_bzero(buf, all);
        free(buf);
        rd_error("config", "webhook_secret_file %s: empty", path);
        return RD_EINVAL;
    }
    *out = rd_xstrndup(buf, n);
    *out_len = n;
    explicit_bzero(buf, all);
    free(buf);
    rd_log_add_secret(*out);
    return 0;
}

static void free_secret(char *s, size_t len)
{
    if (s == NULL)
        return;
    rd_log_forget_secret(s);
    explicit_bzero(s, len);
    free(s);
}

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

static char *cb_metrics(void *ud, size_t *len)
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
        pools[i].draining = d->phase >= PHASE_DRAINING;
        if (d->sup != NULL && rd_supervisor_pool_info(d->sup, i, &info) == 0) {
            pools[i].degraded = info.degraded;
            pools[i].starts_total = info.starts_total;
            pools[i].failures_total = info.failures_total;
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
    s.queued_jobs_total = (int64_t)rd_demand_count(d->demand);
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
        int64_t now = wall_ms();
        for (size_t i = 0; i < n && i < d->cfg->ntargets; i++)
            if (ps[i].backoff_until_ms > now)
                s.targets_backoff++;
        free(ps);
        rd_poller_poll_durations(d->poller, &s.poll_duration);
    }
    char *text = rd_metrics_render(&s, len);
    free(pools);
    return text;
}

static bool cb_healthz(void *ud, char *reason, size_t reason_size)
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
    int64_t now = wall_ms();
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
    if (ri->state == RD_RUNNER_EXITED || rd_config_pool_index(c->d->cfg, ri->pool) >= 0)
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

static char *cb_status(void *ud, size_t *len)
{
    rd_daemon_t *d = ud;
    const rd_config_t *cfg = d->cfg;
    int64_t now = wall_ms();
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
    rd_status_set_jobs(c.doc, (int64_t)rd_demand_count(d->demand), d->last_unmatched);
    char *json = rd_status_render(c.doc, len);
    rd_status_free(c.doc);
    free(snap);
    return json;
}

static int cb_webhook(void *ud, const char *event, const char *delivery, const char *signature,
                      const char *body, size_t len, const char **message)
{
    rd_daemon_t *d = ud;
    rd_webhook_outcome_t o;
    int64_t now = wall_ms();
    rd_webhook_process(d->webhook_secret, d->webhook_secret_len, d->dedup, event, delivery,
                       signature, body, len, now, &o);
    if (o.result < RD_WEBHOOK_RESULT_COUNT)
        d->webhook_results[o.result]++;
    *message = o.message;
    int status = o.http_status;
    if (o.result == RD_WEBHOOK_ACCEPTED)
        d->last_delivery_s = now / 1000;
    if (o.result != RD_WEBHOOK_ACCEPTED) {
        if (o.result == RD_WEBHOOK_BAD_SIGNATURE || o.result == RD_WEBHOOK_MALFORMED)
            rd_warn("webhook", "delivery %s refused: %s", delivery ? delivery : "-",
                    rd_webhook_result_name(o.result));
        rd_webhook_outcome_clear(&o);
        return status;
    }
    const rd_gh_job_t *job = &o.job;
    switch (o.action) {
    case RD_WEBHOOK_JOB_QUEUED: {
        int target = job->repo ? rd_config_target_for_repo(d->cfg, job->repo) : -1;
        if (target < 0 || recent_has(d, job->id)) {
            rd_debug("webhook", "job %" PRId64 " queued in %s: not watched or already done",
                     job->id, job->repo ? job->repo : "?");
            break;
        }
        rd_demand_upsert(d->demand, job->id, job->run_id, job->repo,
                         (const char *const *)job->labels, job->nlabels,
                         job->created_ms ? job->created_ms : now, now, target);
        if (d->poller != NULL)
            rd_poller_note_activity(d->poller, job->repo);
        rd_info("webhook", "job %" PRId64 " queued in %s", job->id, job->repo);
        /* Schedule now rather than on the next loop turn: this is the fast path. */
        if (d->sched_pending)
            uv_timer_stop(&d->sched_timer);
        d->sched_pending = false;
        run_schedule(d);
        break;
    }
    case RD_WEBHOOK_JOB_IN_PROGRESS:
        recent_add(d, job->id);
        rd_demand_remove(d->demand, job->id);
        if (job->runner_name != NULL && d->sup != NULL)
            rd_supervisor_job_started(d->sup, job->runner_name, job->id);
        schedule_soon(d);
        break;
    case RD_WEBHOOK_JOB_COMPLETED:
        recent_add(d, job->id);
        rd_demand_remove(d->demand, job->id);
        if (job->runner_name != NULL && d->sup != NULL)
            rd_supervisor_job_completed(d->sup, job->runner_name, job->id);
        schedule_soon(d);
        break;
    case RD_WEBHOOK_JOB_WAITING:
        rd_demand_remove(d->demand, job->id);
        schedule_soon(d);
        break;
    default:
        break;
    }
    rd_webhook_outcome_clear(&o);
    return status;
}

static int start_listener(rd_daemon_t *d)
{
    if (d->cfg->listen == NULL)
        return 0;
    rd_listener_opts_t lo;
    rd_listener_opts_default(&lo);
    lo.listen = d->cfg->listen;
    rd_listener_cbs_t cbs = {.ud = d,
                             .metrics = cb_metrics,
                             .healthz = cb_healthz,
                             .status = cb_status,
                             .webhook = cb_webhook};
    int rc = rd_listener_start(&d->loop, &lo, &cbs, &d->listener);
    if (rc != 0) {
        rd_error(LOGC, "cannot listen on %s: %s", d->cfg->listen, rd_strerror(rc));
        d->listener = NULL;
        return rc;
    }
    rd_info(LOGC, "listening on %s (port %d)", d->cfg->listen, rd_listener_port(d->listener));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reload                                                              */

static void reload(rd_daemon_t *d)
{
    rd_info(LOGC, "SIGHUP: reloading %s", d->opts.config_path);
    if (d->notify != NULL)
        rd_notify_reloading(d->notify, "reloading configuration");
    rd_config_t *cfg = load_config(d, false);
    char *secret = NULL;
    size_t secret_len = 0;
    if (cfg != NULL && read_secret(cfg->webhook_secret_file, &secret, &secret_len) != 0) {
        rd_config_free(cfg);
        cfg = NULL;
    }
    if (cfg != NULL && rd_github_reconfigure(d->gh, &cfg->github) != 0) {
        rd_error("config", "reload: github settings unusable");
        free_secret(secret, secret_len);
        rd_config_free(cfg);
        cfg = NULL;
    }
    if (cfg == NULL) {
        d->reloads_failed++;
        rd_error(LOGC, "reload failed: still running the previous configuration");
        if (d->notify != NULL)
            rd_notify_ready(d->notify, "reload failed; running the previous configuration");
        return;
    }

    bool listen_changed = (cfg->listen == NULL) != (d->cfg->listen == NULL) ||
                          (cfg->listen != NULL && strcmp(cfg->listen, d->cfg->listen) != 0);
    rd_config_t *old = d->cfg;
    d->cfg = cfg;
    if (d->poller != NULL)
        rd_poller_reconfigure(d->poller, cfg);
    if (d->sup != NULL)
        rd_supervisor_reconfigure(d->sup, cfg);
    free_secret(d->webhook_secret, d->webhook_secret_len);
    d->webhook_secret = secret;
    d->webhook_secret_len = secret_len;
    if (listen_changed) {
        if (d->listener != NULL)
            rd_listener_close(d->listener, NULL, NULL);
        d->listener = NULL;
        start_listener(d);
    }
    rd_config_free(old);
    d->reloads_ok++;
    d->last_reload_s = (double)wall_ms() / 1000.0;
    d->loaded_at_s = wall_ms() / 1000;
    free(d->last_reload_error);
    d->last_reload_error = NULL;
    rd_info(LOGC, "reloaded: %zu pools, %zu targets", cfg->npools, cfg->ntargets);
    if (d->notify != NULL)
        rd_notify_status(d->notify, "running: %zu pools, %zu targets", cfg->npools, cfg->ntargets);
    if (d->notify != NULL)
        rd_notify_ready(d->notify, NULL);
    schedule_soon(d);
}

/* ------------------------------------------------------------------ */
/* Start-up and shutdown                                               */

static void on_module_closed(void *ud)
{
    rd_daemon_t *d = ud;
    d->open_modules--;
}

static void close_signal(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close every module and handle; the loop then runs out of work and ends. */
static void begin_close(rd_daemon_t *d)
{
    if (d->phase == PHASE_CLOSING)
        return;
    d->phase = PHASE_CLOSING;
    if (d->listener != NULL) {
        d->open_modules++;
        rd_listener_close(d->listener, on_module_closed, d);
        d->listener = NULL;
    }
    if (d->poller != NULL) {
        d->open_modules++;
        rd_poller_close(d->poller, on_module_closed, d);
        d->poller = NULL;
    }
    if (d->sup != NULL) {
        d->open_modules++;
        rd_supervisor_close(d->sup, on_module_closed, d);
        d->sup = NULL;
    }
    if (d->gh != NULL) {
        d->open_modules++;
        rd_github_close(d->gh, on_module_closed, d);
        d->gh = NULL;
    }
    if (d->notify != NULL) {
        rd_notify_close(d->notify);
        d->notify = NULL;
    }
    uv_timer_stop(&d->sched_timer);
    close_signal((uv_handle_t *)&d->sched_timer);
    close_signal((uv_handle_t *)&d->tick_timer);
    close_signal((uv_handle_t *)&d->once_timer);
    close_signal((uv_handle_t *)&d->adopt_timer);
    close_signal((uv_handle_t *)&d->sighup);
    close_signal((uv_handle_t *)&d->sigterm);
    close_signal((uv_handle_t *)&d->sigint);
}

static void on_drained(void *ud)
{
    rd_daemon_t *d = ud;
    rd_info(LOGC, "drained: every runner has exited");
    begin_close(d);
}

static void stop(rd_daemon_t *d, const char *why)
{
    if (d->phase >= PHASE_DRAINING) {
        if (d->sup != NULL && !d->opts.dry_run && d->phase == PHASE_DRAINING) {
            rd_info(LOGC, "%s again: stopping busy runners now", why);
            rd_supervisor_drain(d->sup, 0, on_drained, d);
        }
        return;
    }
    rd_info(LOGC, "%s: stopping (busy runners may finish for up to %" PRIu64 " s)", why,
            d->cfg->shutdown_grace_ms / 1000);
    d->phase = PHASE_DRAINING;
    if (d->notify != NULL)
        rd_notify_stopping(d->notify, "draining runners");
    uv_timer_stop(&d->tick_timer);
    uv_timer_stop(&d->adopt_timer);
    if (d->poller != NULL) {
        d->open_modules++;
        rd_poller_close(d->poller, on_module_closed, d);
        d->poller = NULL;
    }
    if (d->sup != NULL && !d->opts.dry_run)
        rd_supervisor_drain(d->sup, d->cfg->shutdown_grace_ms, on_drained, d);
    else
        begin_close(d);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    rd_daemon_t *d = rd_container_of(s, rd_daemon_t, sighup);
    (void)signum;
    if (d->phase >= PHASE_DRAINING)
        return;
    reload(d);
}

static void on_sigterm(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(rd_container_of(s, rd_daemon_t, sigterm), "SIGTERM");
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(rd_container_of(s, rd_daemon_t, sigint), "SIGINT");
}

/* --once without --dry-run: the starts were handed to the supervisor; exit
 * once every new runner has its registration and its container (they keep
 * running, and the next start adopts them). */
static void check_registering(void *ud, const rd_supervisor_runner_info_t *ri)
{
    bool *registering = ud;
    if (ri->state == RD_RUNNER_STARTING && ri->runner_id == 0 && !ri->adopted)
        *registering = true;
}

static void on_once_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, once_timer);
    bool registering = false;
    if (d->sup != NULL)
        rd_supervisor_foreach(d->sup, check_registering, &registering);
    if (!registering) {
        uv_timer_stop(t);
        begin_close(d);
    }
}

static void on_once_cycle(void *ud, size_t failed)
{
    rd_daemon_t *d = ud;
    if (failed > 0) {
        rd_warn(LOGC, "%zu polls failed in this cycle: the plan may miss jobs", failed);
        d->exit_code = 1;
    }
    if (d->opts.dry_run) {
        rd_planner_input_t pi;
        rd_sched_runner_t *snap = NULL;
        build_input(d, &pi, &snap);
        rd_sched_plan_t plan;
        rd_sched_plan(&pi.in, &plan);
        rd_planner_print_plan(&pi, &plan, stdout);
        log_unmatched(d, &plan);
        rd_sched_plan_free(&plan);
        rd_planner_input_free(&pi);
        free(snap);
        begin_close(d);
        return;
    }
    d->phase = PHASE_RUNNING;
    run_schedule(d);
    uv_timer_start(&d->once_timer, on_once_timer, 100, 100);
}

static void on_adopt_timer(uv_timer_t *t);

/* Containers of a previous run that could not be listed at start (docker down)
 * are looked for again, 5 s then doubling up to 5 min, until a listing works:
 * until then they run unsupervised and their capacity is not counted. */
static void adopt_retry_later(rd_daemon_t *d)
{
    d->adopt_retry_ms = d->adopt_retry_ms == 0 ? 5000 : d->adopt_retry_ms * 2;
    if (d->adopt_retry_ms > 300000)
        d->adopt_retry_ms = 300000;
    uv_timer_start(&d->adopt_timer, on_adopt_timer, d->adopt_retry_ms, 0);
}

static void on_readopted(void *ud, int err)
{
    rd_daemon_t *d = ud;
    if (d->phase != PHASE_RUNNING)
        return;
    if (err != 0) {
        adopt_retry_later(d);
        rd_warn(LOGC, "could not list containers (%s) again: retrying in %" PRIu64 " s",
                rd_strerror(err), d->adopt_retry_ms / 1000);
        return;
    }
    rd_info(LOGC, "containers listed: adoption of a previous run's runners done");
    d->adopt_retry_ms = 0;
    run_schedule(d);
}

static void on_adopt_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, adopt_timer);
    if (d->phase != PHASE_RUNNING || d->sup == NULL)
        return;
    int rc = rd_supervisor_adopt(d->sup, on_readopted, d);
    if (rc != 0)
        on_readopted(d, rc);
}

static void on_adopted(void *ud, int err)
{
    rd_daemon_t *d = ud;
    if (d->phase != PHASE_ADOPTING)
        return;
    if (err != 0 && !d->opts.once) {
        adopt_retry_later(d);
        rd_warn(LOGC,
                "could not list containers (%s): nothing adopted yet; retrying in %" PRIu64
                " s (runners of a previous run are left as they are until then)",
                rd_strerror(err), d->adopt_retry_ms / 1000);
    } else if (err != 0) {
        rd_warn(LOGC,
                "could not list containers (%s): nothing adopted; runners of a previous run"
                " are left as they are",
                rd_strerror(err));
    }
    if (d->opts.once) {
        int rc = rd_poller_run_once(d->poller, on_once_cycle, d);
        if (rc != 0) {
            d->exit_code = 1;
            begin_close(d);
        }
        return;
    }
    d->phase = PHASE_RUNNING;
    rd_poller_start(d->poller);
    uv_timer_start(&d->tick_timer, on_tick, 1000, 1000);
    if (d->notify != NULL) {
        rd_notify_status(d->notify, "running: %zu pools, %zu targets", d->cfg->npools,
                         d->cfg->ntargets);
        rd_notify_ready(d->notify, NULL);
    }
    rd_info(LOGC, "running: %zu pools, %zu targets, host %.2f cpus %" PRIu64 " MiB %s",
            d->cfg->npools, d->cfg->ntargets, d->cfg->host.cpus, d->cfg->host.memory >> 20,
            rd_arch_name(d->cfg->host.arch));
    schedule_soon(d);
}

int rd_daemon_run(const rd_daemon_opts_t *opts)
{
    rd_daemon_t *d = rd_xcalloc(1, sizeof(*d));
    int code = 1;
    d->opts = *opts;
    d->start_time_s = (double)wall_ms() / 1000.0;

    signal(SIGPIPE, SIG_IGN);
    /* A SIGHUP before the loop's handler is installed must not kill the service
     * (systemd may reload it as soon as it has started). */
    signal(SIGHUP, SIG_IGN);
    uv_disable_stdio_inheritance();
    rd_hostfacts_gather(&d->facts, d->hostname, sizeof(d->hostname));

    d->cfg = load_config(d, true);
    if (d->cfg == NULL)
        goto fail_early;
    d->loaded_at_s = wall_ms() / 1000;
    d->last_reload_s = d->start_time_s; /* docs/metrics.md: start or reload */
    if (read_secret(d->cfg->webhook_secret_file, &d->webhook_secret, &d->webhook_secret_len) != 0)
        goto fail_early;
    if (uv_loop_init(&d->loop) != 0) {
        rd_error(LOGC, "cannot initialise the event loop");
        goto fail_early;
    }
    uv_timer_init(&d->loop, &d->sched_timer);
    uv_timer_init(&d->loop, &d->tick_timer);
    uv_timer_init(&d->loop, &d->once_timer);
    uv_timer_init(&d->loop, &d->adopt_timer);
    uv_signal_init(&d->loop, &d->sighup);
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_start(&d->sighup, on_sighup, SIGHUP);
    uv_signal_start(&d->sigterm, on_sigterm, SIGTERM);
    uv_signal_start(&d->sigint, on_sigint, SIGINT);
    d->demand = rd_demand_new();
    d->dedup = rd_webhook_dedup_new(RD_WEBHOOK_DEDUP_CAPACITY, RD_WEBHOOK_DEDUP_MAX_AGE_MS);
    d->phase = PHASE_ADOPTING;

    int rc = rd_github_new(&d->loop, &d->cfg->github, &d->gh);
    if (rc != 0) {
        rd_error(LOGC, "GitHub client: %s", rd_strerror(rc));
        begin_close(d);
        goto run;
    }
    rc = rd_poller_new(&d->loop, d->gh, d->demand, d->cfg, on_demand_changed, d, &d->poller);
    if (rc != 0) {
        rd_error(LOGC, "poller: %s", rd_strerror(rc));
        begin_close(d);
        goto run;
    }
    rd_poller_set_assigned_cb(d->poller, on_job_assigned);
    /* --once --dry-run (the plan) looks at this instance's runners, read-only, so that
     * supply and the capacity they hold are counted as --once would count them. */
    if (!opts->dry_run || opts->once) {
        rd_supervisor_callbacks_t cbs = {
            .changed = on_runners_changed, .exited = on_runner_exited, .ud = d};
        rd_supervisor_options_t so = {.read_only = opts->dry_run};
        /* Tests shorten the docker command deadline (default 60 s). */
        const char *dt = getenv("RUNNERD_DOCKER_TIMEOUT_MS");
        if (dt != NULL && *dt)
            so.docker_timeout_ms = strtoull(dt, NULL, 10);
        rc = rd_supervisor_new(&d->loop, d->cfg, d->gh, &cbs, &so, &d->sup);
        if (rc != 0) {
            rd_error(LOGC, "supervisor: %s", rd_strerror(rc));
            begin_close(d);
            goto run;
        }
    }
    if (!opts->once && start_listener(d) != 0) {
        begin_close(d);
        goto run;
    }
    if (!opts->once)
        rd_notify_open(&d->loop, &d->notify);
    code = 0;
    if (d->sup != NULL) {
        rc = rd_supervisor_adopt(d->sup, on_adopted, d);
        if (rc != 0)
            on_adopted(d, rc);
    } else {
        on_adopted(d, 0);
    }

run:
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->phase != PHASE_CLOSING) {
        begin_close(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&d->loop) != 0)
        rd_warn(LOGC, "event loop closed with handles still open");
    if (code == 0)
        code = d->exit_code;
    rd_webhook_dedup_free(d->dedup);
    rd_demand_free(d->demand);
    free(d->pool_queued);
    free(d->dry_plan);
fail_early:
    free(d->last_reload_error);
    free_secret(d->webhook_secret, d->webhook_secret_len);
    rd_config_free(d->cfg);
    free(d);
    return code;
}
