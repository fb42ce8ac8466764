/* planner.h: turns the daemon's state (config, demand ledger, runners) into the
 * scheduler's input, and the scheduler's output into the operator's plan lines
 * (pure). Runners of pools or targets that a reload removed still count: their
 * pools appear as draining "retired" pools so capacity stays accounted. */
#ifndef RUNNERD_PLANNER_H
#define RUNNERD_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/sched.h"

/* A runner as the daemon knows it: its pool and target by reference (ident.h),
 * applied to the same config as cfg below; removed ones are kept accounted. */
typedef struct {
    uint64_t key;
    const rd_pool_ref_t *pool;
    const rd_target_ref_t *target;
    rd_rstate_t state;
    int64_t job_id;
    int64_t idle_since_ms;
    double cpus;
    uint64_t memory;
    unsigned gpus;
} rd_planner_runner_t;

typedef struct {
    const rd_config_t *cfg;
    const rd_ledger_t *ledger; /* the jobs, and the job each runner is counted against */
    const rd_planner_runner_t *runners;
    size_t nrunners;
    const bool *pool_backoff; /* per cfg pool, may be NULL */
    int64_t now_ms;
    bool stopping;
} rd_planner_state_t;

/* Everything rd_sched_plan needs, owned here. */
typedef struct {
    rd_sched_input_t in;
    rd_sched_pool_t *pools; /* cfg pools, then retired ones */
    size_t npools;
    rd_pool_t *retired;                 /* synthetic specs of pools no longer in cfg */
    const rd_pool_ref_t **retired_refs; /* which removed pool each is */
    size_t nretired;
    rd_sched_scope_t *scopes;
    size_t nscopes;
    size_t *scope_pools; /* storage for scopes[i].pools */
    rd_sched_job_t *jobs;
    size_t njobs;
    rd_sched_runner_t *runners;
    size_t nrunners;
} rd_planner_input_t;

/** Build the scheduler input; free with rd_planner_input_free. */
void rd_planner_build(const rd_planner_state_t *st, rd_planner_input_t *out);
void rd_planner_input_free(rd_planner_input_t *pi);

/** Name of pool index i in the built input (cfg pool or retired pool). */
const char *rd_planner_pool_name(const rd_planner_input_t *pi, size_t pool);

/**
 * The plan as DESIGN.md's CLI section says: one JSON object a line for each
 * (scope, pool) with demand or starts, then {"unmatched":N}; a heap string the
 * caller frees and the shell writes (the daemon's dry run, to stdout).
 */
char *rd_planner_format_plan(const rd_planner_input_t *pi, const rd_sched_plan_t *plan);

#endif
