/* supervisor_runner.c: one runner's life (see supervisor_int.h): the state machine of
 * runner.h driven by events, its actions carried out (timers, docker run/stop/kill,
 * capacity released, registration deleted), pool backoff and degraded state, and the
 * public start/stop/job-hint calls. */
#include "supervisor_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/log.h"
#include "runnerd/core/sched.h"

static void on_backoff_timer(uv_timer_t *t);

/* t_retry while STOPPING with the docker run child alive (delete retries use it only later). */
void rd_sup_on_restop_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_retry);
    if (r->done || r->m.state != RD_RUNNER_STOPPING || !r->m.has_container || r->stop_inflight)
        return;
    rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: stopping again (docker stop)", r->name);
    rd_sup_docker_simple(r->sup, PK_STOP, r->key, r->name);
}

static void runner_handle_closed(uv_handle_t *h)
{
    sup_runner_t *r = h->data;
    sup_t *s = r->sup;
    if (--r->open == 0) {
        free(r->name);
        free(r->scope);
        free(r->pool_name);
        rd_pool_ref_release(r->pool);
        rd_target_ref_release(r->target);
        free(r->group);
        if (r->jit_copy) {
            memset(r->jit_copy, 0, strlen(r->jit_copy));
            free(r->jit_copy);
        }
        free(r);
    }
    rd_sup_handle_closed(s);
}

static void runner_unlink(sup_runner_t *r)
{
    for (sup_runner_t **pp = &r->sup->runners; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

void rd_sup_runner_close(sup_runner_t *r)
{
    r->done = true;
    if (r->jit_redacting) {
        rd_log_forget_secret(r->jit_copy);
        r->jit_redacting = false;
    }
    runner_unlink(r);
    uv_close((uv_handle_t *)&r->t_startup, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_job, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_kill, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_retry, runner_handle_closed);
}

static void on_startup_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_startup);
    if (r->adopted && !r->gh_seen && r->m.state == RD_RUNNER_STARTING) {
        /* Adopted while GitHub could not be asked, and still no runner list: it may be
         * running a job. Do not stop it blind; wait for GitHub to answer. */
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r),
                "%s: adopted runner's GitHub status still unknown; not stopping it yet", r->name);
        uv_timer_start(&r->t_startup, on_startup_timer, ADOPT_MIN_STARTUP_MS, 0);
        return;
    }
    if (r->m.state == RD_RUNNER_STARTING)
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r),
                "%s: not online within its startup timeout; stopping it", r->name);
    rd_sup_feed(r, RD_REV_STARTUP_TIMER, 0);
}

static void on_job_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_job);
    rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: over its job timeout; stopping it", r->name);
    rd_sup_feed(r, RD_REV_JOB_TIMER, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_kill);
    rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: still running after docker stop; killing it",
            r->name);
    rd_sup_feed(r, RD_REV_KILL_TIMER, 0);
}

sup_runner_t *rd_sup_runner_new(sup_t *s, const char *name, rd_target_ref_t *t, rd_pool_ref_t *pool)
{
    sup_runner_t *r = rd_xcalloc(1, sizeof *r);
    r->sup = s;
    r->key = ++s->next_key;
    r->name = rd_xstrdup(name);
    r->target = rd_target_ref_hold(t);
    r->pool = rd_pool_ref_hold(pool);
    /* The config's spelling while it has the target (scopes compare case-insensitively). */
    const rd_target_t *tc = rd_target_ref_cfg(t);
    r->scope = rd_xstrdup(tc != NULL ? tc->scope : rd_target_ref_scope(t));
    r->pool_name = rd_xstrdup(rd_pool_ref_name(pool));
    const rd_pool_t *p = rd_pool_ref_cfg(pool);
    if (p != NULL) {
        r->cpus = p->cpus;
        r->memory = p->memory;
        r->gpus = p->gpus;
        r->group = rd_xstrdup(p->runner_group ? p->runner_group : "Default");
    }
    uv_timer_init(s->loop, &r->t_startup);
    uv_timer_init(s->loop, &r->t_job);
    uv_timer_init(s->loop, &r->t_kill);
    uv_timer_init(s->loop, &r->t_retry);
    r->t_startup.data = r->t_job.data = r->t_kill.data = r->t_retry.data = r;
    r->open = 4;
    s->open += 4;
    /* Append: status lists runners oldest first. */
    sup_runner_t **pp = &s->runners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    return r;
}

rd_runner_limits_t rd_sup_limits_for(const sup_t *s, const rd_pool_ref_t *pool)
{
    rd_runner_limits_t l = {
        .startup_timeout_ms = 300000,
        .job_timeout_ms = 6 * 3600000ull,
        .stop_grace_ms = s->opt.stop_grace_ms,
        .kill_slack_ms = s->opt.kill_slack_ms,
    };
    const rd_pool_t *p = rd_pool_ref_cfg(pool);
    if (p != NULL) {
        l.startup_timeout_ms = p->startup_timeout_ms;
        l.job_timeout_ms = p->job_timeout_ms;
    }
    return l;
}

static const char *failure_reason(const sup_runner_t *r, char *buf, size_t n)
{
    if (r->m.startup_timed_out)
        return "startup timeout";
    if (r->m.state == RD_RUNNER_EXITED && r->m.exit_code == -2)
        return "registration or spawn failed";
    snprintf(buf, n, "exit code %d%s", r->m.exit_code,
             r->m.exit_code == 125 ? " (docker error, e.g. image missing)" : "");
    return buf;
}

static void arm_backoff_timer(sup_t *s)
{
    if (s->closing)
        return;
    int64_t now = rd_sup_now_wall();
    uint64_t best = 0;
    for (size_t i = 0; i < s->npools; i++) {
        uint64_t left = rd_backoff_remaining(&s->pools[i].b, (uint64_t)now);
        if (left && (best == 0 || left < best))
            best = left;
    }
    if (best)
        uv_timer_start(&s->t_backoff, on_backoff_timer, best, 0);
}

static void pool_failure(sup_t *s, sup_runner_t *r)
{
    pool_state_t *ps = rd_sup_pool_state(s, r->pool);
    char buf[96];
    const char *why = failure_reason(r, buf, sizeof buf);
    if (ps == NULL) {
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: failed (%s)", r->name, why);
        return;
    }
    ps->failures++;
    uint64_t d = rd_backoff_fail(&ps->b, (uint64_t)rd_sup_now_wall(), rd_sup_rnd(s));
    rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: failed (%s); pool %s backs off %.1fs (%u in a row)",
            r->name, why, rd_pool_ref_name(ps->ref), (double)d / 1000.0, ps->b.failures);
    if (!ps->degraded && ps->b.failures >= s->opt.degraded_after) {
        ps->degraded = true;
        rd_error(COMP, "pool %s is degraded: %u runners failed in a row (last: %s)",
                 rd_pool_ref_name(ps->ref), ps->b.failures, why);
    }
    arm_backoff_timer(s);
    rd_sup_schedule_changed(s);
}

static void pool_success(sup_t *s, sup_runner_t *r)
{
    pool_state_t *ps = rd_sup_pool_state(s, r->pool);
    if (ps == NULL)
        return;
    if (ps->degraded)
        rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "pool %s recovered: %s came online",
                rd_pool_ref_name(ps->ref), r->name);
    ps->degraded = false;
    rd_backoff_success(&ps->b);
}

static void do_spawn(sup_runner_t *r)
{
    sup_t *s = r->sup;
    const rd_pool_t *pool = rd_pool_ref_cfg(r->pool);
    if (pool == NULL || r->jit == NULL) {
        rd_logc(RD_LOG_ERROR, COMP, SUP_CTX(r), "%s: pool %s is gone; not starting it", r->name,
                r->pool_name);
        rd_sup_feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    rd_dockerargv_run_t in = {
        .binary = s->cfg->docker.binary,
        .name = r->name,
        .instance = s->cfg->instance,
        .scope = r->scope,
        .runner_id = r->m.runner_id,
        .pool = pool,
        .docker = &s->cfg->docker,
    };
    char **argv = NULL;
    int rc = rd_dockerargv_run(&in, &argv);
    if (rc != 0) {
        rd_logc(RD_LOG_ERROR, COMP, SUP_CTX(r),
                "%s: refusing to build docker run argv: %s (check pool %s: image, network, "
                "env keys, runtime, platform)",
                r->name, rd_strerror(rc), pool->name);
        rd_sup_feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    char **env = rd_sup_child_env(s, r->jit, pool);
    sup_proc_t *p = rd_sup_proc_spawn(s, PK_RUN, r->key, r->name, argv, env, false);
    rd_sup_env_free(env);
    if (p == NULL) {
        rd_sup_feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r),
            "%s: docker run spawned (pool %s, scope %s, runner id %" PRId64 ", job %" PRId64 ")",
            r->name, r->pool_name, r->scope, r->m.runner_id, r->m.job_id);
    rd_sup_feed(r, RD_REV_SPAWNED, 0);
}

void rd_sup_apply(sup_runner_t *r, const rd_runner_actions_t *a)
{
    sup_t *s = r->sup;
    unsigned f = a->flags;
    if (r->done || s->opt.read_only)
        return;
    if (f & RD_RACT_CANCEL_STARTUP)
        uv_timer_stop(&r->t_startup);
    if (f & RD_RACT_CANCEL_JOB)
        uv_timer_stop(&r->t_job);
    if (f & RD_RACT_CANCEL_KILL)
        uv_timer_stop(&r->t_kill);
    if (f & RD_RACT_ARM_STARTUP)
        uv_timer_start(&r->t_startup, on_startup_timer, a->startup_ms, 0);
    if (f & RD_RACT_ARM_JOB)
        uv_timer_start(&r->t_job, on_job_timer, a->job_ms, 0);
    if (f & RD_RACT_ARM_KILL)
        uv_timer_start(&r->t_kill, on_kill_timer, a->kill_ms, 0);
    if (f & RD_RACT_COUNT_FAILURE)
        pool_failure(s, r);
    if (f & RD_RACT_COUNT_SUCCESS)
        pool_success(s, r);
    if (f & RD_RACT_CHANGED) {
        rd_logc(RD_LOG_DEBUG, COMP, SUP_CTX(r), "%s: %s", r->name,
                rd_runner_state_name(r->m.state));
        rd_sup_schedule_changed(s);
    }
    if (f & RD_RACT_STOP_CONTAINER) {
        rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: stopping (docker stop)", r->name);
        if (!r->stop_inflight)
            rd_sup_docker_simple(s, PK_STOP, r->key, r->name);
    }
    if (f & RD_RACT_KILL_CONTAINER)
        rd_sup_docker_simple(s, PK_KILL, r->key, r->name);
    if (f & RD_RACT_RELEASE) {
        rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: exited; capacity released", r->name);
        if (s->cbs.exited != NULL) {
            rd_supervisor_runner_info_t ri;
            rd_sup_runner_info(r, rd_sup_now_wall(), &ri);
            s->cbs.exited(s->cbs.ud, &ri);
        }
    }
    if (f & RD_RACT_SPAWN)
        do_spawn(r);
    if (r->done)
        return;
    if (f & RD_RACT_DELETE_REG)
        rd_sup_delete_reg(r);
    if (f & RD_RACT_DONE) {
        rd_logc(RD_LOG_DEBUG, COMP, SUP_CTX(r), "%s: done", r->name);
        rd_sup_runner_close(r);
        rd_sup_schedule_changed(s);
    }
}

static void hist_add(rd_metrics_hist_t *h, rd_metrics_hist_kind_t kind, int64_t ms)
{
    h->kind = kind;
    rd_metrics_hist_observe(h, (double)ms / 1000.0);
}

/* runnerd_runner_startup_seconds (docker run spawned to online; adopted runners
 * left out: their start was not seen) and runnerd_job_duration_seconds (busy to
 * the container's exit, whatever ended it). */
static void observe_transition(sup_runner_t *r, rd_runner_state_t before, int64_t now)
{
    rd_runner_state_t after = r->m.state;
    if (before == after)
        return;
    pool_state_t *ps = rd_sup_pool_state(r->sup, r->pool);
    if (ps == NULL)
        return;
    if (before == RD_RUNNER_STARTING && (after == RD_RUNNER_IDLE || after == RD_RUNNER_BUSY) &&
        !r->adopted && r->m.container_start_ms > 0)
        hist_add(&ps->startup, RD_METRICS_HIST_STARTUP, now - r->m.container_start_ms);
    if (after == RD_RUNNER_BUSY && r->busy_since_ms == 0 && !r->adopted)
        r->busy_since_ms = now;
    if (after == RD_RUNNER_EXITED && r->busy_since_ms > 0) {
        hist_add(&ps->job_duration, RD_METRICS_HIST_DURATION, now - r->busy_since_ms);
        r->busy_since_ms = 0;
    }
}

void rd_sup_feed(sup_runner_t *r, rd_runner_event_t ev, int64_t arg)
{
    if (r->done)
        return;
    rd_runner_actions_t a;
    rd_runner_state_t before = r->m.state;
    int64_t now = rd_sup_now_wall();
    rd_runner_event(&r->m, ev, arg, now, &a);
    observe_transition(r, before, now);
    rd_sup_apply(r, &a);
}

int rd_supervisor_job_waited(rd_supervisor_t *s, const char *runner_name, int64_t job_id,
                             int64_t wait_ms)
{
    sup_runner_t *r = runner_name ? rd_sup_find_name(s, runner_name) : NULL;
    if (r == NULL || r->done)
        return RD_ENOENT;
    pool_state_t *ps = rd_sup_pool_state(s, r->pool);
    if (ps == NULL || r->wait_counted || wait_ms < 0 || job_id <= 0)
        return 0;
    r->wait_counted = true;
    hist_add(&ps->queue_wait, RD_METRICS_HIST_QUEUE_WAIT, wait_ms);
    return 0;
}

static void on_backoff_timer(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_backoff);
    rd_sup_schedule_changed(s);
    arm_backoff_timer(s);
}

int rd_supervisor_start(rd_supervisor_t *s, rd_target_ref_t *target, rd_pool_ref_t *pool,
                        int64_t job_id, uint64_t *key_out)
{
    if (key_out)
        *key_out = 0;
    if (s->closing || s->draining || s->opt.read_only)
        return RD_ECANCELED;
    const rd_pool_t *p = rd_pool_ref_cfg(pool);
    pool_state_t *ps = rd_sup_pool_state(s, pool);
    if (p == NULL || ps == NULL || rd_target_ref_removed(target))
        return RD_EINVAL;
    int64_t now = rd_sup_now_wall();
    if (rd_backoff_remaining(&ps->b, (uint64_t)now) > 0)
        return RD_EAGAIN;
    char *name = NULL;
    int rc = rd_dockerargv_runner_name(s->cfg->instance, p->name, now, rd_sup_rnd(s), &name);
    if (rc != 0) {
        if (!ps->name_error_logged)
            rd_error(COMP,
                     "pool %s: cannot build a runner name from instance '%s' (runnerd-"
                     "<instance>-<pool>-<14 chars> must be a docker name of at most 64 "
                     "characters, GitHub's limit): %s; starting nothing in this pool",
                     p->name, s->cfg->instance, rd_strerror(rc));
        ps->name_error_logged = true;
        return rc;
    }
    sup_runner_t *r = rd_sup_runner_new(s, name, target, pool);
    free(name);
    ps->starts++;
    rd_runner_limits_t lim = rd_sup_limits_for(s, pool);
    rd_runner_actions_t a;
    rd_runner_init(&r->m, &lim, job_id, now, &a);
    rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: starting for job %" PRId64 " in %s (pool %s)",
            r->name, job_id, r->scope, p->name);
    rd_sup_apply(r, &a);
    if (key_out)
        *key_out = r->key;
    rd_sup_register_runner(r);
    return 0;
}

int rd_supervisor_stop(rd_supervisor_t *s, uint64_t key)
{
    sup_runner_t *r = rd_sup_find_key(s, key);
    if (r == NULL)
        return RD_ENOENT;
    if (s->opt.read_only)
        return RD_ECANCELED;
    /* A registered runner we believe idle may have taken a job since the last runner
     * list: stopping it now would cancel that job. Stop it once a fresh list says it is
     * not busy (list_cb). */
    if (r->m.runner_id != 0 && !r->m.registering && !s->closing &&
        (r->m.state == RD_RUNNER_IDLE || r->m.state == RD_RUNNER_STARTING)) {
        if (!r->stop_after_list) {
            r->stop_after_list = true;
            r->stop_asked_ms = rd_sup_now_wall();
            rd_sup_list_scope(s, r->scope);
        }
        return 0;
    }
    rd_sup_feed(r, RD_REV_STOP, 0);
    return 0;
}

int rd_supervisor_stop_force(rd_supervisor_t *s, uint64_t key)
{
    sup_runner_t *r = rd_sup_find_key(s, key);
    if (r == NULL)
        return RD_ENOENT;
    if (s->opt.read_only)
        return RD_ECANCELED;
    rd_sup_feed(r, RD_REV_STOP_FORCE, 0);
    return 0;
}

int rd_supervisor_job_started(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    /* Which job each runner is counted against (a swap when GitHub gave it
     * another runner's job) is the demand ledger's: this is the state only. */
    sup_runner_t *r = rd_sup_find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    rd_sup_feed(r, RD_REV_JOB_STARTED, job_id);
    return 0;
}

int rd_supervisor_job_assumed(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    sup_runner_t *r = rd_sup_find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    rd_sup_feed(r, RD_REV_JOB_STARTED, job_id);
    return 0;
}

int rd_supervisor_job_completed(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    sup_runner_t *r = rd_sup_find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    rd_sup_feed(r, RD_REV_JOB_COMPLETED, job_id);
    return 0;
}

void rd_sup_runner_info(const sup_runner_t *r, int64_t now, rd_supervisor_runner_info_t *out)
{
    rd_supervisor_runner_info_t ri = {
        .key = r->key,
        .name = r->name,
        .pool = r->pool_name,
        .scope = r->scope,
        .pool_ref = r->pool,
        .target_ref = r->target,
        .state = r->m.state,
        .age_ms = now - r->m.created_ms,
        .job_id = r->m.job_id,
        .runner_id = r->m.runner_id,
        .adopted = r->adopted,
        .job_unknown = r->adopted_unbusy && r->m.job_id == 0,
        .ran_job = r->m.state == RD_RUNNER_EXITED &&
                   (r->m.ever_busy || (r->m.exit_code == 0 && !r->m.stop_requested)),
    };
    *out = ri;
}
