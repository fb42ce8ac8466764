/* metrics.c: Prometheus text exposition from a snapshot (pure). */
#include "runnerd/core/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

const double rd_metrics_poll_bounds[RD_METRICS_POLL_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,
                                                                2.5,  5,   10,   30,  60};

static const char *const rstate_names[RD_METRICS_RSTATE_COUNT] = {"starting", "idle", "busy",
                                                                  "stopping"};
static const char *const http_names[RD_METRICS_HTTP_COUNT] = {"2xx", "3xx", "4xx", "5xx", "error"};
static const char *const webhook_names[RD_METRICS_WEBHOOK_COUNT] = {
    "accepted",      "duplicate", "ping",      "ignored",
    "bad_signature", "malformed", "too_large", "disabled"};

/* Buckets a Prometheus user would pick for each question: a job waits seconds
 * with webhooks and up to an hour on a full host; a runner comes online in
 * seconds unless its image is pulled; jobs last minutes to hours. */
static const double queue_wait_bounds[] = {1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600};
static const double startup_bounds[] = {1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600};
static const double duration_bounds[] = {10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600};

const double *rd_metrics_hist_bounds(rd_metrics_hist_kind_t kind, size_t *n)
{
    switch (kind) {
    case RD_METRICS_HIST_QUEUE_WAIT:
        *n = RD_ARRAY_SIZE(queue_wait_bounds);
        return queue_wait_bounds;
    case RD_METRICS_HIST_STARTUP:
        *n = RD_ARRAY_SIZE(startup_bounds);
        return startup_bounds;
    case RD_METRICS_HIST_DURATION:
        *n = RD_ARRAY_SIZE(duration_bounds);
        return duration_bounds;
    case RD_METRICS_HIST_POLL:
    case RD_METRICS_HIST_KIND_COUNT:
        break;
    }
    *n = RD_METRICS_POLL_BUCKETS;
    return rd_metrics_poll_bounds;
}

void rd_metrics_hist_init(rd_metrics_hist_t *h, rd_metrics_hist_kind_t kind)
{
    memset(h, 0, sizeof(*h));
    h->kind = kind;
}

void rd_metrics_hist_observe(rd_metrics_hist_t *h, double seconds)
{
    if (!(seconds >= 0)) /* NaN or negative: a clock step; count it as 0 */
        seconds = 0;
    size_t nb;
    const double *bounds = rd_metrics_hist_bounds(h->kind, &nb);
    size_t i = 0;
    while (i < nb && seconds > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

void rd_metrics_hist_merge(rd_metrics_hist_t *dst, const rd_metrics_hist_t *src)
{
    for (size_t i = 0; i <= RD_METRICS_MAX_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
}

void rd_metrics_snapshot_init(rd_metrics_snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->rate_limit_remaining = -1;
    s->rate_limit_limit = -1;
    s->rate_limit_reset_s = -1;
}

void rd_metrics_escape_label(const char *v, char *out, size_t out_size)
{
    size_t o = 0;
    if (out_size == 0)
        return;
    for (; v != NULL && *v; v++) {
        const char *rep = NULL;
        char one[2] = {*v, 0};
        if (*v == '\\')
            rep = "\\\\";
        else if (*v == '"')
            rep = "\\\"";
        else if (*v == '\n')
            rep = "\\n";
        else
            rep = one;
        size_t rl = strlen(rep);
        if (o + rl >= out_size)
            break;
        memcpy(out + o, rep, rl);
        o += rl;
    }
    out[o] = '\0';
}

/* Label values come from the config (pool names) and are short, but escape
 * them anyway; a pool name is at most a few dozen bytes. */
static void buf_label(rd_sbuf_t *b, const char *v)
{
    char esc[512];
    rd_metrics_escape_label(v ? v : "", esc, sizeof(esc));
    rd_sbuf_printf(b, "%s", esc);
}

static void head(rd_sbuf_t *b, const char *name, const char *type, const char *help)
{
    rd_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Go-style float text: integers without a fraction, +Inf/-Inf/NaN spelled out. */
static void buf_double(rd_sbuf_t *b, double v)
{
    if (isnan(v))
        rd_sbuf_printf(b, "NaN");
    else if (isinf(v))
        rd_sbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        rd_sbuf_printf(b, "%.0f", v);
    else
        rd_sbuf_printf(b, "%.15g", v);
}

/* One histogram's series: NAME_bucket (cumulative, le as Go prints it, +Inf),
 * NAME_sum and NAME_count, with the pool label when POOL is set. */
static void buf_hist(rd_sbuf_t *b, const char *name, const char *pool, const rd_metrics_hist_t *h)
{
    size_t nb;
    const double *bounds = rd_metrics_hist_bounds(h->kind, &nb);
    char lab[600] = "";
    if (pool != NULL) {
        char esc[512];
        rd_metrics_escape_label(pool, esc, sizeof(esc));
        snprintf(lab, sizeof(lab), "pool=\"%s\",", esc);
    }
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += h->counts[i];
        rd_sbuf_printf(b, "%s_bucket{%sle=\"", name, lab);
        buf_double(b, bounds[i]);
        rd_sbuf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    cum += h->counts[nb];
    rd_sbuf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lab, (unsigned long long)cum);
    if (pool != NULL)
        lab[strlen(lab) - 1] = '\0'; /* no trailing comma */
    rd_sbuf_printf(b, "%s_sum%s%s%s ", name, pool ? "{" : "", lab, pool ? "}" : "");
    buf_double(b, h->sum);
    rd_sbuf_printf(b, "\n%s_count%s%s%s %llu\n", name, pool ? "{" : "", lab, pool ? "}" : "",
                   (unsigned long long)cum);
}

/* A per-pool histogram family; a pool's zeroed histogram gets KIND's buckets. */
static void pool_hists(rd_sbuf_t *b, const rd_metrics_snapshot_t *s, const char *name,
                       const char *help, size_t offset, rd_metrics_hist_kind_t kind)
{
    head(b, name, "histogram", help);
    for (size_t i = 0; i < s->npools; i++) {
        rd_metrics_hist_t h = *(const rd_metrics_hist_t *)((const char *)&s->pools[i] + offset);
        h.kind = kind;
        buf_hist(b, name, s->pools[i].name, &h);
    }
}

char *rd_metrics_render(const rd_metrics_snapshot_t *s, size_t *len)
{
    rd_sbuf_t b = {rd_xmalloc(8192), 0, 8192};
    b.s[0] = '\0';

    head(&b, "runnerd_build_info", "gauge", "Always 1; labels carry the version and instance.");
    rd_sbuf_printf(&b, "runnerd_build_info{version=\"");
    buf_label(&b, s->version ? s->version : RD_VERSION_STRING);
    rd_sbuf_printf(&b, "\",instance=\"");
    buf_label(&b, s->instance);
    rd_sbuf_printf(&b, "\"} 1\n");

    if (s->start_time_s > 0) {
        head(&b, "runnerd_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
        rd_sbuf_printf(&b, "runnerd_start_time_seconds ");
        buf_double(&b, s->start_time_s);
        rd_sbuf_printf(&b, "\n");
    }

    head(&b, "runnerd_queued_jobs", "gauge", "Queued jobs assigned to a pool.");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_queued_jobs{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %lld\n", (long long)s->pools[i].queued_jobs);
    }
    head(&b, "runnerd_all_queued_jobs", "gauge",
         "All queued jobs known from polls and webhooks, matched or not.");
    rd_sbuf_printf(&b, "runnerd_all_queued_jobs %lld\n", (long long)s->queued_jobs_all);
    head(&b, "runnerd_unmatched_jobs", "gauge", "Queued jobs whose labels no pool serves.");
    rd_sbuf_printf(&b, "runnerd_unmatched_jobs %lld\n", (long long)s->unmatched_jobs);

    head(&b, "runnerd_runners", "gauge", "Runners by pool and state.");
    for (size_t i = 0; i < s->npools; i++) {
        for (int st = 0; st < RD_METRICS_RSTATE_COUNT; st++) {
            rd_sbuf_printf(&b, "runnerd_runners{pool=\"");
            buf_label(&b, s->pools[i].name);
            rd_sbuf_printf(&b, "\",state=\"%s\"} %lld\n", rstate_names[st],
                           (long long)s->pools[i].runners[st]);
        }
    }
    head(&b, "runnerd_pool_max_runners", "gauge", "Configured max_runners of the pool.");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_pool_max_runners{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %lld\n", (long long)s->pools[i].max_runners);
    }
    head(&b, "runnerd_pool_degraded", "gauge",
         "1 while the pool backs off after failed starts, else 0.");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_pool_degraded{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %d\n", s->pools[i].degraded ? 1 : 0);
    }
    head(&b, "runnerd_pool_draining", "gauge",
         "1 while the pool drains (removed or shrunk by a reload, or shutdown), else 0.");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_pool_draining{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %d\n", s->pools[i].draining ? 1 : 0);
    }
    head(&b, "runnerd_runner_starts_total", "counter", "Runners started (docker run spawned).");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_runner_starts_total{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %llu\n", (unsigned long long)s->pools[i].starts_total);
    }
    head(&b, "runnerd_runner_failures_total", "counter",
         "Runner starts that failed (JIT config, spawn, startup timeout, bad exit).");
    for (size_t i = 0; i < s->npools; i++) {
        rd_sbuf_printf(&b, "runnerd_runner_failures_total{pool=\"");
        buf_label(&b, s->pools[i].name);
        rd_sbuf_printf(&b, "\"} %llu\n", (unsigned long long)s->pools[i].failures_total);
    }

    pool_hists(&b, s, "runnerd_job_queue_wait_seconds",
               "Jobs run by this instance's runners: GitHub's started_at minus created_at.",
               offsetof(rd_metrics_pool_t, queue_wait), RD_METRICS_HIST_QUEUE_WAIT);
    pool_hists(&b, s, "runnerd_runner_startup_seconds",
               "Runners: docker run spawned to the runner online on GitHub.",
               offsetof(rd_metrics_pool_t, startup), RD_METRICS_HIST_STARTUP);
    pool_hists(&b, s, "runnerd_job_duration_seconds",
               "Jobs on this instance's runners: the runner busy to its exit.",
               offsetof(rd_metrics_pool_t, job_duration), RD_METRICS_HIST_DURATION);

    head(&b, "runnerd_targets", "gauge", "Configured targets (repositories and organisations).");
    rd_sbuf_printf(&b, "runnerd_targets %lld\n", (long long)s->targets);
    head(&b, "runnerd_targets_backoff", "gauge", "Targets backing off after poll errors.");
    rd_sbuf_printf(&b, "runnerd_targets_backoff %lld\n", (long long)s->targets_backoff);

    head(&b, "runnerd_github_requests_total", "counter",
         "GitHub API requests by status class (error: no HTTP response).");
    for (int c = 0; c < RD_METRICS_HTTP_COUNT; c++)
        rd_sbuf_printf(&b, "runnerd_github_requests_total{class=\"%s\"} %llu\n", http_names[c],
                       (unsigned long long)s->api_requests[c]);
    if (s->rate_limit_remaining >= 0) {
        head(&b, "runnerd_github_rate_limit_remaining", "gauge",
             "X-RateLimit-Remaining of the core bucket in the last response.");
        rd_sbuf_printf(&b, "runnerd_github_rate_limit_remaining %lld\n",
                       (long long)s->rate_limit_remaining);
    }
    if (s->rate_limit_limit >= 0) {
        head(&b, "runnerd_github_rate_limit_limit", "gauge",
             "X-RateLimit-Limit of the core bucket in the last response.");
        rd_sbuf_printf(&b, "runnerd_github_rate_limit_limit %lld\n",
                       (long long)s->rate_limit_limit);
    }
    if (s->rate_limit_reset_s >= 0) {
        head(&b, "runnerd_github_rate_limit_reset_timestamp_seconds", "gauge",
             "X-RateLimit-Reset of the core bucket (Unix epoch seconds).");
        rd_sbuf_printf(&b, "runnerd_github_rate_limit_reset_timestamp_seconds %lld\n",
                       (long long)s->rate_limit_reset_s);
    }

    head(&b, "runnerd_poll_duration_seconds", "histogram",
         "Duration of one target's discovery cycle (runs, jobs, pages).");
    rd_metrics_hist_t poll = s->poll_duration;
    poll.kind = RD_METRICS_HIST_POLL;
    buf_hist(&b, "runnerd_poll_duration_seconds", NULL, &poll);

    head(&b, "runnerd_webhook_deliveries_total", "counter", "Webhook deliveries by result.");
    for (int r = 0; r < RD_METRICS_WEBHOOK_COUNT; r++)
        rd_sbuf_printf(&b, "runnerd_webhook_deliveries_total{result=\"%s\"} %llu\n",
                       webhook_names[r], (unsigned long long)s->webhook_deliveries[r]);

    head(&b, "runnerd_config_reloads_total", "counter",
         "Configuration reloads (SIGHUP) by result.");
    rd_sbuf_printf(&b, "runnerd_config_reloads_total{result=\"ok\"} %llu\n",
                   (unsigned long long)s->reloads_ok);
    rd_sbuf_printf(&b, "runnerd_config_reloads_total{result=\"failed\"} %llu\n",
                   (unsigned long long)s->reloads_failed);
    if (s->last_reload_success_s > 0) {
        head(&b, "runnerd_config_last_reload_success_timestamp_seconds", "gauge",
             "When the configuration was last loaded successfully (Unix epoch seconds).");
        rd_sbuf_printf(&b, "runnerd_config_last_reload_success_timestamp_seconds ");
        buf_double(&b, s->last_reload_success_s);
        rd_sbuf_printf(&b, "\n");
    }

    if (len != NULL)
        *len = b.len;
    return b.s;
}
