/* status.h: the /status JSON document (pure; schema in docs/status.md).
 * The daemon adds what it knows, then renders; runnerctl reads the same schema. */
#ifndef RUNNERD_STATUS_H
#define RUNNERD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rd_status_doc rd_status_doc_t;

rd_status_doc_t *rd_status_new(const char *version, const char *instance, const char *state,
                               int64_t started_at_s);
void rd_status_add_pool(rd_status_doc_t *doc, const char *name, const char *const *labels,
                        size_t nlabels, unsigned max_runners, unsigned min_idle, unsigned queued,
                        bool degraded, uint64_t backoff_ms, uint64_t starts_total,
                        uint64_t failures_total);
/** A runner; it is also counted in its pool's per-state counts (state: "starting", "idle", ...). */
void rd_status_add_runner(rd_status_doc_t *doc, const char *name, const char *pool,
                          const char *scope, const char *state, int64_t age_s, int64_t job_id,
                          int64_t runner_id, bool adopted);
void rd_status_add_target(rd_status_doc_t *doc, const char *scope, int64_t last_poll_ms,
                          const char *last_error, int64_t backoff_until_ms, size_t repos,
                          size_t queued);
void rd_status_set_github(rd_status_doc_t *doc, int64_t rl_limit, int64_t rl_remaining,
                          int64_t rl_reset, uint64_t requests, uint64_t not_modified,
                          uint64_t budget_per_hour, uint64_t budget_used_last_hour);
void rd_status_set_jobs(rd_status_doc_t *doc, int64_t queued, unsigned unmatched);
/** Render as a heap string (caller frees); *len gets its length. */
char *rd_status_render(rd_status_doc_t *doc, size_t *len);
void rd_status_free(rd_status_doc_t *doc);

#endif
