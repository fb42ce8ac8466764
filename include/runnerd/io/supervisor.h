/* supervisor.h: owns the runners (I/O module; DESIGN.md section 3 "Runners",
 * "Restarts", SIGTERM drain).
 *
 * Per runner: generate a JIT config on the target's scope (org scopes resolve
 * the pool's runner_group to its id first), then uv_spawn `docker run` (argv
 * from dockerargv.h, the JIT config only in the child's environment), read the
 * child's stdout/stderr into the log line by line prefixed with the runner
 * name, and drive the state machine of runner.h from the GitHub runner list
 * (a periodic reconcile per scope), job hints from the daemon, timers and the
 * child's exit. On exit the registration is deleted when GitHub still has it
 * (422 retried with backoff), the capacity is released, and failures feed a
 * per-pool backoff (1 s .. 5 min, jitter) that the scheduler sees.
 *
 * Times given out (idle_since_ms, age) are wall-clock ms since the epoch, the
 * clock of GitHub's created_at and docker's StartedAt.
 *
 * All functions are called on the loop thread. Callbacks never run from inside
 * the call that caused them (they are deferred to the loop). */
#ifndef RUNNERD_SUPERVISOR_H
#define RUNNERD_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/metrics.h"
#include "runnerd/core/runner.h"
#include "runnerd/core/sched.h"
#include "runnerd/io/github.h"

typedef struct rd_supervisor rd_supervisor_t;

struct rd_supervisor_runner_info;

typedef struct {
    /* Runner states, capacity or a pool's backoff changed: plan again. Coalesced. */
    void (*changed)(void *ud);
    void *ud;
    /* Optional: a runner's container exited and its capacity is released (called at
     * once, possibly from inside a supervisor call: record, do not call back). */
    void (*exited)(void *ud, const struct rd_supervisor_runner_info *ri);
} rd_supervisor_callbacks_t;

typedef struct {
    uint64_t stop_grace_ms; /* `docker stop -t`; 0 = 10 s */
    uint64_t kill_slack_ms; /* `docker kill` this long after the stop grace; 0 = 5 s */
    uint64_t reconcile_ms;  /* runner list per scope; 0 = cfg github.poll_interval */
    size_t log_line_max;    /* longest child output line logged; 0 = 2048 */
    /* A runner's output lines logged per minute; past it they are counted, and one line
     * says how many were suppressed (at the next minute or the runner's exit); 0 = 600. */
    unsigned log_lines_per_minute;
    unsigned degraded_after; /* consecutive failures before a pool shows degraded; 0 = 3 */
    uint64_t
        drain_delete_ms; /* drain: retry registration deletes this long after the grace; 0 = 15 s */
    /* One-shot docker commands (ps, inspect, rm, kill; stop: this plus the grace) still
     * running after this are killed and count as failed (a hung dockerd); 0 = 60 s. */
    uint64_t docker_timeout_ms;
    /* --dry-run: adoption only looks (`docker ps`, `docker inspect`, runner lists) so the
     * plan counts this instance's runners as supply and capacity; nothing is removed,
     * deleted, waited on, started or stopped, and no timer or periodic list runs. */
    bool read_only;
    /* The pools' and targets' identities (ident.h), borrowed: the caller applies each
     * reload's config to it before rd_supervisor_reconfigure. NULL: the supervisor keeps
     * its own and applies the configs it is given. */
    rd_idents_t *idents;
} rd_supervisor_options_t;

/**
 * Create. cfg and gh are borrowed: cfg until the next rd_supervisor_reconfigure
 * (or close), gh until rd_supervisor_close has called back. opts may be NULL.
 */
int rd_supervisor_new(uv_loop_t *loop, const rd_config_t *cfg, rd_github_t *gh,
                      const rd_supervisor_callbacks_t *cbs, const rd_supervisor_options_t *opts,
                      rd_supervisor_t **out);

/**
 * Switch to a reloaded config. Runners hold references to their pool and target
 * (ident.h), which the identity set re-pointed at the new config once; runners
 * whose pool is gone are stopped unless busy (busy ones finish). Backoff state
 * stays with the pool's reference.
 */
void rd_supervisor_reconfigure(rd_supervisor_t *s, const rd_config_t *cfg);

/**
 * Another registry than GitHub's REST API for some scopes (fleet mode: the scale-set
 * broker's generatejitconfig and agents API, docs/fleet.md). For a scope that claims()
 * answers true for, these replace rd_github_generate_jitconfig, delete_runner and
 * list_runners (same callback contracts); the runner group is the scale set's.
 */
typedef struct {
    bool (*claims)(void *ud, const char *scope);
    int (*generate_jit)(void *ud, const char *scope, const char *pool, const char *name,
                        rd_github_jit_cb cb, void *cbud);
    int (*delete_runner)(void *ud, const char *scope, int64_t runner_id, rd_github_done_cb cb,
                         void *cbud);
    int (*list_runners)(void *ud, const char *scope, rd_github_runners_cb cb, void *cbud);
    void *ud;
} rd_supervisor_registry_t;
/** Set (or with NULL clear) the registry; reg is copied. */
void rd_supervisor_set_registry(rd_supervisor_t *s, const rd_supervisor_registry_t *reg);

/**
 * Start one runner of POOL for TARGET (its scope): references of the current
 * config (ident.h), which the runner holds; started for job_id (0 for a min_idle
 * warm runner). It is STARTING at once (the scheduler counts it as supply), then
 * registers and spawns. Returns 0 and the runner's key, RD_EAGAIN when the pool
 * is backing off, RD_ECANCELED while draining or closing, RD_EINVAL for a removed
 * pool or target or a name/argv that does not validate. A registration failure
 * later shows as the runner exiting.
 */
int rd_supervisor_start(rd_supervisor_t *s, rd_target_ref_t *target, rd_pool_ref_t *pool,
                        int64_t job_id, uint64_t *key_out);

/** Stop a runner unless it is busy (the scheduler's stop list). Safe twice. 0 or RD_ENOENT. */
int rd_supervisor_stop(rd_supervisor_t *s, uint64_t key);
/** Stop a runner even if busy. Safe twice. 0 or RD_ENOENT. */
int rd_supervisor_stop_force(rd_supervisor_t *s, uint64_t key);

/**
 * Job hints from webhook or poll: job_id is in_progress on runner NAME (the
 * runner turns BUSY and records the job), or completed. 0, or RD_ENOENT when
 * NAME is not one of ours. job_started is GitHub's word, job_assumed a guess
 * (an adopted runner's job); both turn the runner busy. Which job a runner is
 * counted against in the plan is the demand ledger's (ledger.h), which asks
 * for these calls through its actions.
 */
int rd_supervisor_job_started(rd_supervisor_t *s, const char *runner_name, int64_t job_id);
/**
 * GitHub says job_id started on NAME after waiting wait_ms in the queue
 * (started_at - created_at): counted once per runner in its pool's
 * runnerd_job_queue_wait_seconds when NAME is one of ours. RD_ENOENT otherwise.
 */
int rd_supervisor_job_waited(rd_supervisor_t *s, const char *runner_name, int64_t job_id,
                             int64_t wait_ms);
int rd_supervisor_job_assumed(rd_supervisor_t *s, const char *runner_name, int64_t job_id);
int rd_supervisor_job_completed(rd_supervisor_t *s, const char *runner_name, int64_t job_id);

/** List runners on GitHub now for every scope that has runners (else every reconcile_ms). */
void rd_supervisor_reconcile(rd_supervisor_t *s);

/**
 * The runners that hold capacity, for rd_sched_input_t.runners: scope = index
 * of the runner's target in the current cfg->targets (SIZE_MAX when the target
 * is gone), pool = index in cfg->pools (SIZE_MAX when the pool is gone; the
 * runner still holds cpus/memory/gpus). *out is heap (free()); returns the count.
 */
size_t rd_supervisor_snapshot(const rd_supervisor_t *s, rd_sched_runner_t **out);

/* A snapshot entry's pool and target as references (ident.h). */
typedef struct {
    const rd_pool_ref_t *pool;
    const rd_target_ref_t *target;
} rd_supervisor_refs_t;
/** rd_supervisor_snapshot, and when refs is not NULL each entry's references in *refs
 * (heap, same order; free()). */
size_t rd_supervisor_snapshot_refs(const rd_supervisor_t *s, rd_sched_runner_t **out,
                                   rd_supervisor_refs_t **refs);

typedef struct {
    bool backoff;        /* no starts now (rd_sched_pool_t.backoff) */
    bool degraded;       /* failing repeatedly */
    uint64_t backoff_ms; /* time left */
    unsigned consecutive_failures;
    uint64_t starts_total; /* counters for /metrics */
    uint64_t failures_total;
    unsigned runners; /* runners holding capacity */
    /* docs/metrics.md: queue wait, docker run to online, busy to exit */
    rd_metrics_hist_t queue_wait, startup, job_duration;
} rd_supervisor_pool_info_t;

/** Backoff/degraded state and counters of cfg->pools[pool]. RD_EINVAL for a bad index. */
int rd_supervisor_pool_info(const rd_supervisor_t *s, size_t pool, rd_supervisor_pool_info_t *out);

typedef struct rd_supervisor_runner_info {
    uint64_t key;
    const char *name; /* borrowed for the duration of the callback */
    const char *pool;
    const char *scope;
    const rd_pool_ref_t *pool_ref;     /* its pool (removed: a reload took it away) */
    const rd_target_ref_t *target_ref; /* its target, likewise */
    rd_runner_state_t state;           /* rd_runner_state_name() for text */
    int64_t age_ms;                    /* since the start was decided (adopted: container start) */
    int64_t job_id;                    /* 0 = none known */
    int64_t runner_id;                 /* GitHub id, 0 until registered */
    bool adopted;                      /* found running at restart */
    bool ran_job;                      /* EXITED after running a job (busy, or exit 0 unasked): the
                                        * job it was started for is most likely no longer queued */
    bool job_unknown; /* adopted before it took a job: which job it takes is unknown */
} rd_supervisor_runner_info_t;

/** Call fn for every runner the supervisor still tracks (EXITED ones until their registration is
 * deleted). */
void rd_supervisor_foreach(const rd_supervisor_t *s,
                           void (*fn)(void *ud, const rd_supervisor_runner_info_t *ri), void *ud);

/** Runners tracked (all states). */
size_t rd_supervisor_count(const rd_supervisor_t *s);

/**
 * Restart adoption; call once before the first start. `docker ps -a` with this
 * instance's label: running containers are adopted (supervised through a
 * `docker wait` child, timers re-armed from their StartedAt, runner id and
 * scope from labels, busy/idle from GitHub), others are `docker rm -f`'d; then
 * offline registrations named runnerd-<instance>-<pool>-* with no running
 * container are deleted in every scope of the config. done(ud, err) once:
 * err RD_EIO when docker could not be listed (nothing adopted, nothing deleted).
 */
int rd_supervisor_adopt(rd_supervisor_t *s, void (*done)(void *ud, int err), void *ud);

/**
 * Drain (SIGTERM): refuse new starts, stop starting and idle runners, let busy
 * ones run up to grace_ms, then stop them too. done(ud) once, when every runner
 * has exited and its registration is deleted, or deletion was given up:
 * registration deletes are retried until drain_delete_ms after the grace (a
 * runner killed mid-job answers 422 until GitHub notices; the next start's
 * adoption deletes it once it shows offline).
 * Calling it again only shortens the grace.
 */
void rd_supervisor_drain(rd_supervisor_t *s, uint64_t grace_ms, void (*done)(void *ud), void *ud);

/**
 * Close every handle (children are not killed: containers keep running and a
 * restart adopts them). Pending GitHub callbacks are detached. closed(ud) when
 * all handles are closed; s is freed then.
 */
void rd_supervisor_close(rd_supervisor_t *s, void (*closed)(void *ud), void *ud);

#endif
