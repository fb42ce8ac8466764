/* sched.h: the scheduler, a pure function (DESIGN.md section 3 "Scheduling").
 *
 * Input: the pools, the host's capacity, the scopes (targets), the queued jobs
 * and the runners that exist. Output: how many runners to start per
 * (scope, pool), which job each start is for, which cap bound it, and which
 * idle runners to stop. Same input, same output. */
#ifndef RUNNERD_SCHED_H
#define RUNNERD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"

typedef enum {
    RD_LIMIT_NONE = 0,
    RD_LIMIT_POOL_MAX,
    RD_LIMIT_HOST_MAX,
    RD_LIMIT_HOST_CPUS,
    RD_LIMIT_HOST_MEMORY,
    RD_LIMIT_HOST_GPUS,
    RD_LIMIT_DRAINING, /* pool removed or daemon stopping: no starts */
    RD_LIMIT_BACKOFF,  /* pool backing off after failures: no starts now */
} rd_limit_t;

/** "pool_max", "host_max", "host_cpus", "host_memory", "host_gpus", "draining", "backoff", or NULL
 * for none. */
const char *rd_limit_name(rd_limit_t limit);

typedef enum {
    RD_RSTATE_STARTING = 0, /* spawned, not yet online on GitHub */
    RD_RSTATE_IDLE,         /* online, no job */
    RD_RSTATE_BUSY,         /* running a job */
    RD_RSTATE_STOPPING,     /* being stopped; still holds capacity */
} rd_rstate_t;

typedef struct {
    const rd_pool_t *pool; /* the pool's spec (labels, cpus, memory, gpus, max, min_idle, arch) */
    bool draining;         /* removed from config or shrinking: start nothing, stop idle */
    bool backoff;          /* failing: start nothing this round */
} rd_sched_pool_t;

typedef struct {
    const char *name;    /* "repos/o/r" or "orgs/o" */
    const size_t *pools; /* indexes into the pools array that may serve this scope */
    size_t npools;
} rd_sched_scope_t;

typedef struct {
    int64_t id;
    size_t scope; /* index into scopes */
    const char *const *labels;
    size_t nlabels;
    int64_t queued_ms; /* when it was queued (created_at), for fairness */
} rd_sched_job_t;

typedef struct {
    uint64_t key; /* caller's handle for this runner, echoed in stops */
    size_t scope; /* index into scopes; (size_t)-1 when its scope is gone */
    size_t pool;  /* index into pools */
    rd_rstate_t state;
    int64_t job_id;        /* the job it was started for or is known to run; 0 = none */
    int64_t idle_since_ms; /* IDLE: when it became idle */
    double cpus;           /* capacity it holds (its own, even if the pool changed) */
    uint64_t memory;
    unsigned gpus;
} rd_sched_runner_t;

typedef struct {
    const rd_host_config_t *host;
    const rd_sched_pool_t *pools;
    size_t npools;
    const rd_sched_scope_t *scopes;
    size_t nscopes;
    const rd_sched_job_t *jobs; /* queued jobs only */
    size_t njobs;
    const rd_sched_runner_t *runners;
    size_t nrunners;
    int64_t now_ms;
    bool stopping; /* daemon shutting down: start nothing, stop idle */
} rd_sched_input_t;

/* One (scope, pool) line of the plan; emitted when demand, supply or start is non-zero. */
typedef struct {
    size_t scope;
    size_t pool;
    unsigned demand; /* queued jobs this pool serves in this scope (each job counted once) */
    unsigned supply; /* runners starting or idle, plus busy ones whose job is still queued */
    unsigned start;
    rd_limit_t limit; /* the cap that bound start, RD_LIMIT_NONE when none did */
    int64_t *job_ids; /* start entries: the job each new runner is started for (0 for min_idle) */
} rd_sched_decision_t;

typedef struct {
    rd_sched_decision_t *decisions;
    size_t ndecisions;
    uint64_t *stop_keys; /* idle runners to stop (keys from the input) */
    size_t nstops;
    unsigned unmatched; /* queued jobs that no pool of their scope serves */
    int64_t *unmatched_ids;
} rd_sched_plan_t;

/**
 * Decide. Never returns more starts than every cap allows, never starts a second
 * runner for a job that a runner (starting, idle, or busy while the job still
 * shows queued) already covers. Idle runners are stopped when their pool is
 * draining, when the daemon is stopping, or when they have been idle longer than
 * the pool's idle_timeout and supply exceeds demand + min_idle, or when the
 * pool's or the host's live runners exceed its max_runners (lowered by a reload):
 * then untied idle runners go first, longest idle first.
 */
void rd_sched_plan(const rd_sched_input_t *in, rd_sched_plan_t *out);
void rd_sched_plan_free(rd_sched_plan_t *plan);

/**
 * Which of the pools serve a job with these labels in this scope: the chosen
 * pool index, or -1. Native before emulated, then fewest labels, then first.
 */
int rd_sched_pick_pool(const rd_sched_pool_t *pools, size_t npools, const size_t *allowed,
                       size_t nallowed, const char *const *labels, size_t nlabels);

#endif
