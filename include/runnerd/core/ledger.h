/* ledger.h: the demand ledger (pure), the one owner of what counts as demand.
 *
 * Every source of knowledge about jobs and runners feeds it events, each with
 * `now`: a poll's view of one repository (its queued jobs, and the in_progress
 * ones with the runner GitHub gave each), a webhook action, "runner R started
 * for job J", "runner R exited", and a snapshot of the runners (adopted ones
 * among them). From them it keeps:
 *
 *   - the queued jobs that are demand, each with its target;
 *   - which job each runner is counted against (its tie);
 *   - the corrections that keep one job from getting two runners: jobs a
 *     webhook said started or finished stay out of demand when a stale poll page
 *     or a late "queued" delivery lists them again; a runner that ran a job and
 *     exited takes one job out of demand until a poll that started TAKEN_MARGIN
 *     after the exit lists it again (the job GitHub said it runs, else one
 *     that left the queue unseen, which is out already, else the oldest queued
 *     job its pool serves that no busy runner holds: GitHub hands out the
 *     oldest first, whichever runner asks); when GitHub gives runner R
 *     the job runner O was started for, O is counted against R's job instead
 *     (GitHub hands a queued job to any idle runner whose labels fit), and a
 *     guess that an exited runner took it moves as at the exit; a busy runner
 *     whose job is unknown (adopted, warm, or the job it was started for went
 *     to another runner) is counted against the oldest queued job of its scope
 *     its pool serves that no other runner holds.
 *
 * It answers the jobs (read by the planner, which groups them per (scope,
 * pool)) and each runner's tie, and returns the actions that follow for the
 * supervisor: "R runs J" (GitHub's word), "R's job is unknown, assume J", "R
 * is now counted against J", "R's job completed". Nothing else writes demand. */
#ifndef RUNNERD_LEDGER_H
#define RUNNERD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"
#include "runnerd/core/demand.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/runner.h"
#include "runnerd/core/webhook.h"

/* A runner that ran a job and exited took (most likely) the job it was
 * counted against: that job is no demand until a poll that started this long
 * after the exit lists it queued again (GitHub's job lists lag; a poll in
 * flight at the exit may still list it). */
#define RD_LEDGER_TAKEN_MARGIN_MS 10000

typedef struct rd_ledger rd_ledger_t;

/** A job GitHub lists in_progress on a named runner. */
typedef struct {
    int64_t job_id;
    const char *runner_name;
} rd_ledger_running_t;

/** One complete poll of one repository. Everything is borrowed for the call. */
typedef struct {
    const char *repo;   /* "owner/name" (its target: the ledger's config says) */
    int64_t started_ms; /* when the poll's first request was sent */
    bool partial;       /* some request failed: its jobs are queued, but absent ones may be too */
    const rd_gh_job_t *queued;
    size_t nqueued;
    const rd_ledger_running_t *running;
    size_t nrunning;
} rd_ledger_poll_t;

/** A runner as the supervisor holds it (borrowed for the call). */
typedef struct {
    uint64_t key;
    const char *name;
    int target;                     /* config target index, -1 when gone */
    int pool;                       /* config pool index, -1 when gone */
    const char *const *pool_labels; /* its pool's labels (adopted runners' binding) */
    size_t npool_labels;
    rd_runner_state_t state;
    int64_t job_id;   /* the job the supervisor last recorded; 0 = none */
    bool job_unknown; /* adopted before it took a job: which job it takes is unknown */
    bool ran_job;     /* EXITED after running a job */
} rd_ledger_runner_t;

typedef enum {
    RD_LEDGER_RUNS = 0,  /* GitHub says runner `name` runs job_id: it is busy with it */
    RD_LEDGER_ASSUMED,   /* adopted busy runner, job unknown: assume job_id */
    RD_LEDGER_COUNTED,   /* runner `name` is now counted against job_id (a swap, no state change) */
    RD_LEDGER_COMPLETED, /* webhook: job_id completed on runner `name` */
} rd_ledger_action_kind_t;

typedef struct {
    rd_ledger_action_kind_t kind;
    char *name; /* the runner */
    int64_t job_id;
} rd_ledger_action_t;

typedef struct {
    rd_ledger_action_t *v;
    size_t n;
} rd_ledger_actions_t;

/** Free the actions' contents (the struct itself may be on the stack). */
void rd_ledger_actions_clear(rd_ledger_actions_t *a);

rd_ledger_t *rd_ledger_new(void);
void rd_ledger_free(rd_ledger_t *l);

/* ---- events ---- */

/**
 * A poll of one repository: its queued jobs become demand (refreshed), jobs of
 * the repository last seen before the poll started leave (not after a partial
 * poll: a failed page may have held them), and each
 * in_progress job on one of our runners ("runnerd-" names) confirms what that
 * runner runs. Returns true when demand gained or lost a job. acts may be NULL.
 */
bool rd_ledger_poll(rd_ledger_t *l, const rd_ledger_poll_t *p, int64_t now_ms,
                    rd_ledger_actions_t *acts);
/** The repository is no longer watched: its jobs leave. True when any did. */
bool rd_ledger_forget_repo(rd_ledger_t *l, const char *repo);
/**
 * A verified workflow_job delivery (job->repo names its repository). Returns
 * true when a queued job became demand; the other actions always take the job
 * out of demand.
 */
bool rd_ledger_webhook(rd_ledger_t *l, rd_webhook_job_action_t action, const rd_gh_job_t *job,
                       int64_t now_ms, rd_ledger_actions_t *acts);
/** Runner `key` (named `name`) was started for job_id (0: a warm runner). */
void rd_ledger_runner_started(rd_ledger_t *l, uint64_t key, const char *name, int target, int pool,
                              int64_t job_id, int64_t now_ms);
/** GitHub says runner `name` runs job_id (see rd_ledger_poll). */
void rd_ledger_runner_runs(rd_ledger_t *l, const char *name, int64_t job_id, int64_t now_ms,
                           rd_ledger_actions_t *acts);
/** Runner r's container exited (its capacity is released). */
void rd_ledger_runner_exited(rd_ledger_t *l, const rd_ledger_runner_t *r, int64_t now_ms);
/**
 * The supervisor's runners that hold capacity (adopted ones included): new
 * ones are learned, indexes and states refreshed, vanished ones forgotten, and
 * busy runners whose job is unknown are counted against a job (RD_LEDGER_ASSUMED).
 */
void rd_ledger_runners(rd_ledger_t *l, const rd_ledger_runner_t *snap, size_t n, int64_t now_ms,
                       rd_ledger_actions_t *acts);
/**
 * The config (borrowed until the next call or rd_ledger_free): at start and at
 * each reload. Its targets are indexed (cfgindex.h) and every job's target is
 * looked up again (-1: no longer watched, not planned). Until the first call
 * no repository is watched.
 */
void rd_ledger_set_config(rd_ledger_t *l, const rd_config_t *cfg);
/** The target serving repository "owner/name" in the current config, or -1 (O(1)). */
int rd_ledger_target_for_repo(const rd_ledger_t *l, const char *repo);
/** The target with this scope ("repos/O/R", "orgs/O") in the current config, or -1 (O(1)). */
int rd_ledger_target_by_scope(const rd_ledger_t *l, const char *scope);

/* ---- reads ---- */

size_t rd_ledger_count(const rd_ledger_t *l);
const rd_job_t *rd_ledger_job(const rd_ledger_t *l, int64_t id);
/** Iterate the queued jobs: *it = 0 first; NULL at the end. No events while iterating. */
const rd_job_t *rd_ledger_next(const rd_ledger_t *l, size_t *it);
/** The job runner `key` is counted against, or fallback when the ledger does not know it. */
int64_t rd_ledger_runner_job(const rd_ledger_t *l, uint64_t key, int64_t fallback);
/** True the first time it is asked for a job (log "matches no pool" once). */
bool rd_ledger_unmatched_once(rd_ledger_t *l, int64_t id);

#endif
