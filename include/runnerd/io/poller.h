/* poller.h: discovery of queued jobs (I/O module on the loop).
 *
 * Every repository a target covers is polled with rd_github_list_queued_jobs
 * on its own schedule from pace.h (one uv_timer drives them all): often while
 * it had queued jobs in the last 10 minutes, less often when idle, stretched
 * when the request budget cannot sustain the plan. Org targets list the org's
 * repositories first (again every 10 minutes), skip archived and disabled ones
 * and apply the target's `repos:` filter. A repository covered by several
 * targets is polled once. Each complete poll of a repository is one event for
 * the demand ledger (rd_ledger_poll: its queued jobs, with their target from
 * rd_config_target_for_repo, and its in_progress jobs with their runners); the
 * poller writes nothing else. A failing repository or org listing
 * backs off alone (github.h keeps the per-scope backoff).
 *
 * The config is borrowed: it must stay valid until the next
 * rd_poller_reconfigure or rd_poller_close. */
#ifndef RUNNERD_POLLER_H
#define RUNNERD_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/metrics.h"
#include "runnerd/io/github.h"

typedef struct rd_poller rd_poller_t;

/** Demand changed (jobs added or dropped). Called on the loop after a poll result. */
typedef void (*rd_poller_changed_cb)(void *ud);
/** A full cycle finished; failed = targets or repositories whose poll failed in it. */
typedef void (*rd_poller_cycle_cb)(void *ud, size_t failed);

typedef struct {
    const char *scope;        /* "repos/O/R" or "orgs/O" (borrowed until the next poller call) */
    int64_t last_poll_ms;     /* end of the latest successful poll of one of its repos; 0 never */
    const char *last_error;   /* NULL when the latest polls succeeded; curl's or GitHub's words
                               * when known, else rd_strerror (valid until the next poll) */
    int64_t last_error_ms;    /* when last_error happened */
    int64_t backoff_until_ms; /* 0 when not backing off */
    size_t repos;             /* repositories polled for it */
    size_t queued;            /* queued jobs its repositories reported at their last polls */
    const char *const *repo_names; /* org targets: watched repositories ("owner/name", after
                                    * the repos: filter; borrowed until the next poller call);
                                    * NULL for repo targets and before the first listing */
    size_t nrepo_names;
} rd_poller_status_t;

/**
 * ids: the identity set the owner applies to each config before handing it here
 * (rd_idents_apply, then rd_poller_reconfigure): a target keeps its polling state
 * (org listing, backoff) across a reload through its identity. Borrowed; it must
 * outlive the poller.
 */
int rd_poller_new(uv_loop_t *loop, rd_github_t *gh, rd_ledger_t *ledger, rd_idents_t *ids,
                  const rd_config_t *cfg, rd_poller_changed_cb changed, void *ud,
                  rd_poller_t **out);
/** Start polling continuously (org listings first, then each repository when due). */
int rd_poller_start(rd_poller_t *p);
/**
 * Poll every target once now (org listings, then every repository), ignoring
 * the pacing intervals but not the request budget, and call cb when every
 * poll has finished or failed. RD_EBUSY when a cycle is already running.
 */
int rd_poller_run_once(rd_poller_t *p, rd_poller_cycle_cb cb, void *ud);
/**
 * Switch to a new config (SIGHUP): new targets start, removed ones stop
 * (their in-flight results are ignored and their jobs dropped from demand),
 * changed `repos:` filters apply at once.
 */
int rd_poller_reconfigure(rd_poller_t *p, const rd_config_t *cfg);
/** A webhook saw a queued job in REPO ("owner/name"): poll it at the active rate. */
void rd_poller_note_activity(rd_poller_t *p, const char *repo);
/**
 * Optional: called with the actions the ledger returned for a poll (a runner of
 * ours runs a job GitHub lists in_progress on it; actions borrowed for the call),
 * before the demand-changed callback. GitHub hands a queued job to any idle
 * runner whose labels fit, not necessarily to the one started for it.
 */
typedef void (*rd_poller_actions_cb)(void *ud, const rd_ledger_actions_t *acts);
void rd_poller_set_actions_cb(rd_poller_t *p, rd_poller_actions_cb cb);

/**
 * Optional: called for each job a poll lists in_progress on a named runner with
 * both created_at and started_at known (wait_ms = started_at - created_at), so
 * that the job's queue wait is observed without webhooks too. The name may be
 * another host's runner: the callee ignores names it does not know.
 */
typedef void (*rd_poller_started_cb)(void *ud, const char *runner_name, int64_t job_id,
                                     int64_t wait_ms);
void rd_poller_set_started_cb(rd_poller_t *p, rd_poller_started_cb cb);
/** Per-target status, in config order; returns the number of targets (writes at most max). */
size_t rd_poller_status(rd_poller_t *p, rd_poller_status_t *out, size_t max);
/** Durations of the repository polls that succeeded since start (for /metrics). */
void rd_poller_poll_durations(const rd_poller_t *p, rd_metrics_hist_t *out);
/** Stop; in-flight results are ignored. closed_cb(ud) once every handle is closed. */
void rd_poller_close(rd_poller_t *p, void (*closed_cb)(void *ud), void *ud);

#endif
