/* github.h: the GitHub REST client (I/O module on top of http.h).
 *
 * Adds the required headers (Accept, X-GitHub-Api-Version 2022-11-28,
 * User-Agent), authentication (PAT, or GitHub App JWT -> installation tokens
 * cached per owner and renewed before expiry, 401 -> renew once), ETag
 * conditional requests with a response cache, Link pagination followed
 * verbatim, x-ratelimit accounting, primary/secondary limit handling with
 * Retry-After / reset, and the request budget. Scopes are "repos/OWNER/REPO"
 * or "orgs/ORG" (the API path prefix without the leading slash).
 *
 * Every call below either returns an RD_E* error (and never calls cb) or
 * returns 0 and calls cb exactly once later, on the loop thread. err in a
 * callback: 0, RD_EAGAIN (rate limited or backing off: retry after
 * rd_github_retry_at), RD_EAUTH, RD_ENOENT (404), RD_EEXIST (409), RD_EBUSY
 * (422 on delete: runner still running a job), RD_EPROTO (bad payload), RD_EIO
 * (transport), RD_ECANCELED. Payload structs passed to callbacks are borrowed
 * for the duration of the callback only. */
#ifndef RUNNERD_GITHUB_H
#define RUNNERD_GITHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "runnerd/core/config.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/pace.h"
#include "runnerd/io/http.h"

typedef struct rd_github rd_github_t;

/** Create on loop with its own rd_http_t; reads the token file / env / key file now. */
int rd_github_new(uv_loop_t *loop, const rd_github_config_t *cfg, rd_github_t **out);
/** Apply a reloaded github config (credentials, budget, url). Returns RD_E* if unusable (old kept).
 */
int rd_github_reconfigure(rd_github_t *gh, const rd_github_config_t *cfg);
void rd_github_close(rd_github_t *gh, void (*closed_cb)(void *ud), void *ud);

/** A job that GitHub lists in_progress on a named runner (seen by a queued-jobs poll). */
typedef struct {
    int64_t job_id;
    const char *runner_name;
    int64_t wait_ms; /* started_at - created_at (how long it waited for a runner); -1 unknown */
} rd_github_assignment_t;

/** What one poll of a repository learned; everything in it is borrowed for the callback. */
typedef struct {
    /* the queued jobs it saw: all of them when err == 0; after a failure, those
     * of the pages that did arrive (never NULL) */
    const rd_gh_jobs_t *queued;
    /* the in_progress jobs of the runs it read, with the runner GitHub gave each
     * (a runner may take another job than the one it was started for) */
    const rd_github_assignment_t *assigned;
    size_t nassigned;
    unsigned sent, charged; /* requests it sent, and how many were charged (not 304) */
} rd_github_poll_t;

/* Discovery of one repository: runs queued + in_progress, then the queued jobs of those runs.
 * res is never NULL. */
typedef void (*rd_github_jobs_cb)(void *ud, int err, const rd_github_poll_t *res);
int rd_github_list_queued_jobs(rd_github_t *gh, const char *owner, const char *repo,
                               rd_github_jobs_cb cb, void *ud);

/* Repositories of an org (all pages; archived/disabled flagged, caller filters). */
typedef void (*rd_github_repos_cb)(void *ud, int err, const rd_gh_repos_t *repos);
int rd_github_list_org_repos(rd_github_t *gh, const char *org, rd_github_repos_cb cb, void *ud);

/* Runners of a scope (all pages). */
typedef void (*rd_github_runners_cb)(void *ud, int err, const rd_gh_runners_t *runners);
int rd_github_list_runners(rd_github_t *gh, const char *scope, rd_github_runners_cb cb, void *ud);

/* Runner group id by name for an org scope; repo scopes answer 1 without a request. */
typedef void (*rd_github_group_cb)(void *ud, int err, int64_t group_id);
int rd_github_runner_group_id(rd_github_t *gh, const char *scope, const char *group_name,
                              rd_github_group_cb cb, void *ud);

/* POST generate-jitconfig. encoded_jit is a secret (already registered with the log redactor). */
typedef void (*rd_github_jit_cb)(void *ud, int err, int64_t runner_id, const char *encoded_jit);
int rd_github_generate_jitconfig(rd_github_t *gh, const char *scope, const char *name,
                                 const char *const *labels, size_t nlabels, int64_t group_id,
                                 rd_github_jit_cb cb, void *ud);

/* DELETE a runner: 204 and 404 -> err 0 / RD_ENOENT; 422 -> RD_EBUSY. */
typedef void (*rd_github_done_cb)(void *ud, int err);
int rd_github_delete_runner(rd_github_t *gh, const char *scope, int64_t runner_id,
                            rd_github_done_cb cb, void *ud);

/* POST registration-token of a scope (fleet mode's bootstrap). token is a secret (registered
 * with the log redactor for the callback's duration). */
typedef void (*rd_github_regtoken_cb)(void *ud, int err, const char *token, int64_t expires_ms);
int rd_github_registration_token(rd_github_t *gh, const char *scope, rd_github_regtoken_cb cb,
                                 void *ud);

/** Earliest time (ms since epoch) at which a request to this scope may be sent; 0 = now. */
int64_t rd_github_retry_at(const rd_github_t *gh, const char *scope);
/** The same at NOW (ms since epoch), for loops that read the clock once. */
int64_t rd_github_retry_at_ms(const rd_github_t *gh, const char *scope, int64_t now);
/**
 * Why the latest failed request of SCOPE failed, as an operator reads it ("HTTP 403:
 * Resource not accessible by integration", "input/output error: Could not resolve
 * host: api.github.com"), when that failure ended with ERR; else NULL. Valid until
 * the next request of SCOPE finishes.
 */
const char *rd_github_scope_error(const rd_github_t *gh, const char *scope, int err);

typedef struct {
    uint64_t requests; /* sent */
    uint64_t
        by_status[6]; /* [0]=transport errors, [1]=1xx..., [2]=2xx, [3]=3xx, [4]=4xx, [5]=5xx */
    uint64_t not_modified; /* 304s */
    uint64_t jobs_reused;  /* job lists of unchanged queued runs taken from the cache, not asked */
    uint64_t rate_limited; /* 403/429 rate-limit answers */
    int64_t rl_limit, rl_remaining, rl_reset; /* last seen core values, -1 unknown */
    uint64_t budget_per_hour;
    uint64_t budget_used_last_hour;
    size_t inflight;
} rd_github_stats_t;
void rd_github_get_stats(const rd_github_t *gh, rd_github_stats_t *out);

/** The pacer gating this client's requests; poll schedules (poller.c) register targets with it. */
rd_pace_t *rd_github_pace(rd_github_t *gh);
#endif
