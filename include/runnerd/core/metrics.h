/* metrics.h: Prometheus text exposition (format 0.0.4) from a plain snapshot (pure).
 *
 * The daemon fills an rd_metrics_snapshot_t from its state whenever /metrics is
 * asked for, calls rd_metrics_render() and serves the text. Every metric and
 * label is documented in docs/metrics.md. */
#ifndef RUNNERD_METRICS_H
#define RUNNERD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runner states, in the order of rd_rstate_t (sched.h). */
enum {
    RD_METRICS_RSTATE_STARTING = 0,
    RD_METRICS_RSTATE_IDLE,
    RD_METRICS_RSTATE_BUSY,
    RD_METRICS_RSTATE_STOPPING,
    RD_METRICS_RSTATE_COUNT
};

/* GitHub API requests by the class of their outcome. */
enum {
    RD_METRICS_HTTP_2XX = 0,
    RD_METRICS_HTTP_3XX, /* 304 Not Modified mostly: ETag hits */
    RD_METRICS_HTTP_4XX,
    RD_METRICS_HTTP_5XX,
    RD_METRICS_HTTP_ERROR, /* no HTTP status: connect failure, timeout, TLS */
    RD_METRICS_HTTP_COUNT
};

/* Webhook deliveries by result: same order and names as rd_webhook_result_t (webhook.h). */
enum {
    RD_METRICS_WEBHOOK_ACCEPTED = 0,
    RD_METRICS_WEBHOOK_DUPLICATE,
    RD_METRICS_WEBHOOK_PING,
    RD_METRICS_WEBHOOK_IGNORED,
    RD_METRICS_WEBHOOK_BAD_SIGNATURE,
    RD_METRICS_WEBHOOK_MALFORMED,
    RD_METRICS_WEBHOOK_TOO_LARGE,
    RD_METRICS_WEBHOOK_DISABLED,
    RD_METRICS_WEBHOOK_COUNT
};

/* Upper bounds (seconds) of the poll latency histogram buckets; +Inf is implied. */
#define RD_METRICS_POLL_BUCKETS 10
extern const double rd_metrics_poll_bounds[RD_METRICS_POLL_BUCKETS];

/* What a histogram measures, which sets its buckets (docs/metrics.md). A zeroed
 * histogram is a poll-duration one. */
typedef enum {
    RD_METRICS_HIST_POLL = 0,   /* a target's discovery cycle: 0.05 .. 60 s */
    RD_METRICS_HIST_QUEUE_WAIT, /* a job's started_at - created_at: 1 s .. 1 h */
    RD_METRICS_HIST_STARTUP,    /* docker run spawned to runner online: 1 s .. 10 min */
    RD_METRICS_HIST_DURATION,   /* a job on a runner, busy to exit: 10 s .. 6 h */
    RD_METRICS_HIST_KIND_COUNT
} rd_metrics_hist_kind_t;

/* The most buckets any kind has (+Inf not counted). */
#define RD_METRICS_MAX_BUCKETS 12

/** A histogram: counts[i] observations <= bounds[i] and > bounds[i-1] (not cumulative);
 *  counts[nbounds] holds the ones above the last bound. */
typedef struct {
    rd_metrics_hist_kind_t kind;
    uint64_t counts[RD_METRICS_MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
} rd_metrics_hist_t;

/** An empty histogram of KIND. */
void rd_metrics_hist_init(rd_metrics_hist_t *h, rd_metrics_hist_kind_t kind);
/** The bucket bounds of KIND; *n gets their number. */
const double *rd_metrics_hist_bounds(rd_metrics_hist_kind_t kind, size_t *n);
/** Record one observation (seconds) into h. */
void rd_metrics_hist_observe(rd_metrics_hist_t *h, double seconds);
/** Add every observation of src into dst (same kind). */
void rd_metrics_hist_merge(rd_metrics_hist_t *dst, const rd_metrics_hist_t *src);

typedef struct {
    const char *name;    /* pool name (label "pool") */
    int64_t queued_jobs; /* queued jobs this pool was chosen to serve */
    int64_t runners[RD_METRICS_RSTATE_COUNT];
    int64_t max_runners;     /* configured max_runners */
    bool degraded;           /* backing off after failures */
    bool draining;           /* removed from the config or shrunk: finishing */
    uint64_t starts_total;   /* runners started (docker run spawned) */
    uint64_t failures_total; /* starts that failed: JIT config, spawn, startup timeout, bad exit */
    rd_metrics_hist_t queue_wait;   /* RD_METRICS_HIST_QUEUE_WAIT; a zeroed one is inited */
    rd_metrics_hist_t startup;      /* RD_METRICS_HIST_STARTUP */
    rd_metrics_hist_t job_duration; /* RD_METRICS_HIST_DURATION */
} rd_metrics_pool_t;

typedef struct {
    const char *version;  /* build_info label; NULL = RD_VERSION */
    const char *instance; /* build_info label "instance" (may be NULL) */
    double start_time_s;  /* process start, seconds since the epoch (0 = omit) */

    const rd_metrics_pool_t *pools;
    size_t npools;
    int64_t unmatched_jobs;  /* queued jobs no pool serves */
    int64_t queued_jobs_all; /* all queued jobs in the demand table, matched or not */

    uint64_t api_requests[RD_METRICS_HTTP_COUNT];
    int64_t rate_limit_remaining; /* core bucket; -1 = unknown (omitted) */
    int64_t rate_limit_limit;     /* -1 = unknown (omitted) */
    int64_t rate_limit_reset_s;   /* epoch seconds; -1 = unknown (omitted) */

    rd_metrics_hist_t poll_duration; /* seconds per target poll cycle */

    uint64_t webhook_deliveries[RD_METRICS_WEBHOOK_COUNT];
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    double last_reload_success_s; /* epoch seconds of the last good (re)load; 0 = omit */

    int64_t targets;         /* configured targets */
    int64_t targets_backoff; /* targets currently backing off after errors */
} rd_metrics_snapshot_t;

/** Initialise a snapshot: zeros, and -1 for the unknown rate-limit fields. */
void rd_metrics_snapshot_init(rd_metrics_snapshot_t *s);

/**
 * Render the snapshot as Prometheus text exposition format 0.0.4
 * (Content-Type: text/plain; version=0.0.4; charset=utf-8).
 * Returns a heap string (caller frees); *len (if non-NULL) gets its length.
 */
char *rd_metrics_render(const rd_metrics_snapshot_t *s, size_t *len);

/** Write v into out (NUL-terminated, truncated at an escape boundary) as a label value, escaping
 * backslash, double quote and newline. */
void rd_metrics_escape_label(const char *v, char *out, size_t out_size);

#endif
