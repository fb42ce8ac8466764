/* github_int.h: what the GitHub client's modules share (private to src/io/github*.c).
 *
 *  github_queue.c  one logical request (redirects, one 401 retry), the FIFO
 *                  gate (rate-limit holds, per-scope backoff, auth, in-flight
 *                  cap, pacer), answers and their rate-limit headers
 *  github_auth.c   credentials: PAT, App JWT, installation tokens per owner
 *  github_pager.c  paged GETs: Link rel="next" verbatim, the ETag cache
 *  github.c        the endpoints (github.h) and the client's life cycle
 *
 * Arrows point down that list: the pager uses the queue, the queue asks auth
 * for a credential; auth sends its token requests through the queue. */
#ifndef RUNNERD_GITHUB_INT_H
#define RUNNERD_GITHUB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/ghcache.h"
#include "runnerd/core/log.h"
#include "runnerd/core/strmap.h"
#include "runnerd/io/github.h"

#define LOGC "github"
#define GH_MAX_BODY ((size_t)8 << 20)
#define GH_TOTAL_TIMEOUT_MS 20000
#define GH_MAX_REDIRECTS 3
/* Renew installation tokens this long before they expire. */
#define GH_TOKEN_RENEW_MS (5 * 60 * 1000)
/* ETag cache: bodies kept at most this many bytes in total (LRU beyond).
 * Large enough for every poll page of a 10,000-repository fleet (five URLs a
 * repository, about 700 bytes an entry with its decoded memo: ~35 MB): a cycle
 * walks the cache in LRU order, so a cap below the working set would evict each
 * entry just before it is needed and lose every 304 (bench/cycle at 10,000 saw
 * 0% 304s with a 32 MiB cap once memos were charged). */
#define GH_CACHE_MAX_BYTES ((size_t)64 << 20)
/* Entries unused this long are dropped (e.g. jobs of runs long finished). */
#define GH_CACHE_MAX_AGE_MS (2 * 3600 * 1000)
#define GH_SECONDARY_DEFAULT_MS 60000
#define GH_SECONDARY_CAP_MS (15 * 60 * 1000)
#define GH_BACKOFF_BASE_MS 1000
#define GH_BACKOFF_CAP_MS (5 * 60 * 1000)
/* An idempotent GET that fails (transport error, 5xx, garbage body) is sent this
 * many times in all before it counts as failed, GH_RETRY_BASE_MS (jittered,
 * doubling) apart: faults GitHub has most weeks pass in a second, not in a
 * backoff of the whole repository. */
#define GH_GET_TRIES 4
#define GH_RETRY_BASE_MS 250

typedef enum { AUTH_NONE = 0, AUTH_TOKEN, AUTH_JWT } gh_auth_kind_t;

typedef struct gh_req gh_req_t;
/* A request's end: err 0 with the answer (status, body, Link), or an RD_E*.
 * The body is borrowed for the call. */
typedef void (*gh_req_done_cb)(gh_req_t *r, int err, long status, const char *body, size_t len,
                               const char *link);

struct gh_req {
    rd_github_t *gh;
    char *method;
    char *url;
    char *body;
    size_t body_len;
    char *scope; /* for backoff; NULL = none */
    char *owner; /* whose installation token authenticates it (App auth) */
    gh_auth_kind_t auth;
    bool priority;
    bool retried_401;
    bool in_queue;
    int redirects;
    int64_t charged_ms;
    char *token; /* the credential the request went out with (copy) */
    rd_http_req_t *hreq;
    gh_req_done_cb done;
    void *ud;
    unsigned *ctr;         /* the operation's [sent, charged] counters, or NULL */
    bool from_cache;       /* the body handed to done comes from the ETag cache */
    const char *resp_etag; /* during done: the fresh response's ETag, or NULL */
    int fail_err;          /* failure delivered from the loop (fail list) */
    /* During done, after a failure: a transport error or a 5xx (worth another
     * try for an idempotent request), and whether the transport error was a
     * timeout (the server may still be working on it). */
    bool transient;
    bool timed_out;
    bool quiet;            /* the caller retries failures: log them at debug */
    int64_t not_before_ms; /* on the delay list: not sent before this */
    gh_req_t *next, *prev; /* gate queue / waiter list / fail list / delay list */
};

struct rd_github {
    uv_loop_t *loop;
    rd_http_t *http;
    char *api_url;
    char *origin; /* "scheme://host[:port]" of api_url, for same-host checks */
    unsigned max_inflight;
    /* credentials (github_auth.c) */
    bool app;
    char *pat;
    int64_t app_id;
    char *client_id; /* the App's client ID (JWT iss) instead of app_id, or NULL */
    rd_auth_key_t *app_key;
    int64_t installation_id;
    char *jwt;
    int64_t jwt_exp_ms;
    rd_strmap_t insts; /* owner (or "#id") -> installation */
    /* gate (github_queue.c) */
    gh_req_t *q_head, *q_tail;
    gh_req_t *fail_head, *fail_tail;
    gh_req_t *delay_head; /* retries waiting for their time (unordered, short) */
    uv_timer_t gate_timer;
    int64_t gate_timer_at;
    bool gate_running;
    size_t inflight;
    rd_pace_t *pace;
    /* rate limits */
    int64_t hold_until_ms; /* primary / secondary limit: nothing before this */
    unsigned secondary_hits;
    rd_strmap_t scopes; /* scope -> backoff */
    uint64_t rnd;
    rd_ghcache_t *cache; /* url -> compacted page (github_pager.c) */
    rd_github_stats_t stats;
    /* close */
    bool closing;
    void (*closed_cb)(void *);
    void *closed_ud;
};

int64_t gh_now_ms(void);
/* Zero a secret's bytes, then free it. */
void gh_wipe_free(char *s);

/* ---- github_queue.c ---- */
gh_req_t *gh_req_new(rd_github_t *gh, const char *method, const char *url, const char *scope,
                     const char *owner, gh_auth_kind_t auth, gh_req_done_cb done, void *ud);
/* Queue a request (mutations before polls); it completes from the loop. */
void gh_req_submit(rd_github_t *gh, gh_req_t *r);
/* Queue at the front (token fetches, retries, requests back from a token wait). */
void gh_q_push(rd_github_t *gh, gh_req_t *r, bool front);
/* Queue r after delay_ms (a retry); it goes through the whole gate then. */
void gh_req_submit_after(rd_github_t *gh, gh_req_t *r, uint64_t delay_ms);
/* A jittered retry delay for the n-th retry (1, 2, ...): GH_RETRY_BASE_MS doubling. */
uint64_t gh_retry_delay(rd_github_t *gh, unsigned n);
/* Whether err from an operation counts against its scope's backoff (a fault of
 * GitHub or of its answer, not an outcome like 404 or a rate-limit hold). */
bool gh_err_counts(int err);
/* Finish r with err from the loop (never from inside the caller). */
void gh_req_fail_later(rd_github_t *gh, gh_req_t *r, int err);
/* Run the gate soon, from the loop. */
void gh_gate_kick(rd_github_t *gh);
void gh_gate_run(rd_github_t *gh);
/* Fail every queued request with RD_ECANCELED (from the loop). */
void gh_queue_cancel(rd_github_t *gh);
void gh_scope_failed(rd_github_t *gh, const char *scope);
void gh_scope_ok(rd_github_t *gh, const char *scope);
/* Warn about the first failure of a scope; repeats while it backs off are debug. */
rd_log_level_t gh_fail_level(rd_github_t *gh, const char *scope);
/* 0, or why an operation on scope cannot start now (RD_ECANCELED, RD_EAGAIN):
 * closing, a rate-limit hold, or (scope not NULL) the scope's backoff. */
int gh_start_check(rd_github_t *gh, const char *scope);
void gh_scopes_free(rd_github_t *gh);

/* ---- github_auth.c ---- */
/* Credentials from the config into fresh strings; nothing changes on failure. */
int gh_creds_load(const rd_github_config_t *cfg, char **pat, rd_auth_key_t **key);
/* Take pat and key (either may be NULL) and the App settings of cfg. */
void gh_creds_set(rd_github_t *gh, const rd_github_config_t *cfg, char *pat, rd_auth_key_t *key);
/* The credential for r now; NULL when r has to wait (then it is parked until its
 * installation token arrives), needs none, or failed (*err set). */
const char *gh_auth_for(rd_github_t *gh, gh_req_t *r, int *err);
/* A 401 answered r: forget the installation token it carried (if still current). */
void gh_auth_rejected(rd_github_t *gh, gh_req_t *r);
/* Forget every installation and token; parked requests go back to the queue. */
void gh_auth_flush(rd_github_t *gh);
/* Fail every parked request with RD_ECANCELED (close). */
void gh_auth_cancel(rd_github_t *gh);
void gh_auth_free(rd_github_t *gh);

/* ---- github_pager.c ---- */
typedef struct gh_pager gh_pager_t;
/* One page handed to an operation. */
typedef struct {
    const char *body; /* the compacted page */
    size_t len;
    bool unchanged; /* a 304: the body is the ETag cache's */
    /* With a memo_free at gh_pager_start: what this operation decoded from this
     * very body before (kept by the ETag cache), or NULL; the operation may set
     * keep to a decoded copy it does not own, kept with the body for next time. */
    const void *memo;
    void *keep;
} gh_page_t;
/* One page: read it into the operation (ud). 0 or RD_E*. */
typedef int (*gh_page_cb)(void *ud, gh_page_t *page);
/* All pages done (err 0) or the first failure. */
typedef void (*gh_pager_done_cb)(void *ud, int err);
/* GET url and every page after it; page() for each, then done() once. ctr: the
 * operation's [sent, charged] counters, or NULL. priority: part of a runner
 * registration (queued before polls, drawn from the registration bucket).
 * memo_free: frees what page() keeps (gh_page_t.keep), or NULL: it keeps nothing. */
void gh_pager_start(rd_github_t *gh, const char *url, const char *scope, const char *owner,
                    gh_page_cb page, void (*memo_free)(void *), gh_pager_done_cb done, void *ud,
                    unsigned *ctr, bool priority);

#endif
