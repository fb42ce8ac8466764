/* status.h: the /status JSON document (pure; schema in docs/status.md, version 1).
 * The daemon fills the plain structs below from its state and renders; runnerctl
 * and tests/integration/status_schema.py read the same schema. */
#ifndef RUNNERD_STATUS_H
#define RUNNERD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rd_status_doc rd_status_doc_t;

/* Times are epoch seconds; 0 renders as null where the schema allows null. */
typedef struct {
    const char *version;
    const char *instance;
    const char *state; /* starting | running | reloading | stopping */
    int64_t now;
    int64_t started_at;
    const char *config_path;
    int64_t loaded_at;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    const char *last_error; /* NULL = null */
} rd_status_top_t;

typedef struct {
    const char *arch;
    double cpus;
    uint64_t memory;
    unsigned gpus;
    unsigned max_runners;
} rd_status_host_t;

typedef struct {
    const char *api_url;
    const char *auth;                         /* "token" | "app" */
    int64_t rl_limit, rl_remaining, rl_reset; /* < 0 = null */
    uint64_t requests[5];                     /* 2xx, 3xx, 4xx, 5xx, error */
    uint64_t budget_per_hour;
} rd_status_github_t;

typedef struct {
    bool enabled;
    const char *const *names; /* result names, n of them */
    const uint64_t *counts;
    size_t n;
    int64_t last_delivery; /* 0 = null */
} rd_status_webhook_t;

typedef struct {
    const char *name;
    const char *const *labels;
    size_t nlabels;
    const char *arch;
    bool emulated;
    unsigned max;
    unsigned min_idle;
    unsigned queued;
    bool degraded;
    int64_t backoff_until; /* 0 = null */
    bool draining;
    uint64_t starts;
    uint64_t failures;
} rd_status_pool_t;

typedef struct {
    const char *name;
    const char *pool;
    const char *scope;
    const char *state; /* starting | idle | busy | stopping */
    int64_t age_s;
    int64_t runner_id; /* 0 = null */
    int64_t job_id;    /* 0 = null */
    bool adopted;
    double cpus; /* reserved, for host.cpus_used */
    uint64_t memory;
    unsigned gpus;
} rd_status_runner_t;

typedef struct {
    const char *scope;
    bool org;
    const char *const *repos; /* org targets: names, or NULL = null */
    size_t nrepos;
    const char *const *pools;
    size_t npools;
    int64_t last_poll; /* 0 = null */
    const char *last_error;
    int64_t backoff_until; /* 0 = null */
    size_t queued;
} rd_status_target_t;

rd_status_doc_t *rd_status_new(const rd_status_top_t *top, const rd_status_host_t *host);
/** Pools first (runners are counted into their pool by name). */
void rd_status_add_pool(rd_status_doc_t *doc, const rd_status_pool_t *p);
void rd_status_add_runner(rd_status_doc_t *doc, const rd_status_runner_t *r);
void rd_status_add_target(rd_status_doc_t *doc, const rd_status_target_t *t);
void rd_status_set_github(rd_status_doc_t *doc, const rd_status_github_t *g);
void rd_status_set_webhook(rd_status_doc_t *doc, const rd_status_webhook_t *w);
void rd_status_set_jobs(rd_status_doc_t *doc, int64_t queued, unsigned unmatched);
/** Render as a heap string (caller frees); *len gets its length. */
char *rd_status_render(rd_status_doc_t *doc, size_t *len);
void rd_status_free(rd_status_doc_t *doc);

#endif
