/* status.c: the /status JSON document (docs/status.md). */
#include "runnerd/status.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/common.h"

struct rd_status_doc {
    json_object *root;
    json_object *pools;
    json_object *runners;
    json_object *targets;
};

static json_object *str_or_null(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

rd_status_doc_t *rd_status_new(const char *version, const char *instance, const char *state,
                               int64_t started_at_s)
{
    rd_status_doc_t *doc = rd_xcalloc(1, sizeof(*doc));
    doc->root = json_object_new_object();
    json_object_object_add(doc->root, "version", str_or_null(version));
    json_object_object_add(doc->root, "instance", str_or_null(instance));
    json_object_object_add(doc->root, "state", str_or_null(state));
    json_object_object_add(doc->root, "started_at", json_object_new_int64(started_at_s));
    doc->pools = json_object_new_array();
    doc->runners = json_object_new_array();
    doc->targets = json_object_new_array();
    json_object_object_add(doc->root, "pools", doc->pools);
    json_object_object_add(doc->root, "runners", doc->runners);
    json_object_object_add(doc->root, "targets", doc->targets);
    return doc;
}

static const char *const STATES[] = {"starting", "idle", "busy", "stopping", "exited"};

void rd_status_add_pool(rd_status_doc_t *doc, const char *name, const char *const *labels,
                        size_t nlabels, unsigned max_runners, unsigned min_idle, unsigned queued,
                        bool degraded, uint64_t backoff_ms, uint64_t starts_total,
                        uint64_t failures_total)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", str_or_null(name));
    json_object *ls = json_object_new_array();
    for (size_t i = 0; i < nlabels; i++)
        json_object_array_add(ls, json_object_new_string(labels[i]));
    json_object_object_add(p, "labels", ls);
    json_object_object_add(p, "max_runners", json_object_new_int64(max_runners));
    json_object_object_add(p, "min_idle", json_object_new_int64(min_idle));
    json_object_object_add(p, "queued", json_object_new_int64(queued));
    json_object_object_add(p, "runners", json_object_new_int64(0));
    for (size_t i = 0; i < RD_ARRAY_SIZE(STATES); i++)
        json_object_object_add(p, STATES[i], json_object_new_int64(0));
    json_object_object_add(p, "degraded", json_object_new_boolean(degraded));
    json_object_object_add(p, "backoff_s", json_object_new_double((double)backoff_ms / 1000.0));
    json_object_object_add(p, "starts_total", json_object_new_int64((int64_t)starts_total));
    json_object_object_add(p, "failures_total", json_object_new_int64((int64_t)failures_total));
    json_object_array_add(doc->pools, p);
}

static void bump(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v))
        json_object_set_int64(v, json_object_get_int64(v) + 1);
}

void rd_status_add_runner(rd_status_doc_t *doc, const char *name, const char *pool,
                          const char *scope, const char *state, int64_t age_s, int64_t job_id,
                          int64_t runner_id, bool adopted)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "name", str_or_null(name));
    json_object_object_add(r, "pool", str_or_null(pool));
    json_object_object_add(r, "scope", str_or_null(scope));
    json_object_object_add(r, "state", str_or_null(state));
    json_object_object_add(r, "age_s", json_object_new_int64(age_s));
    json_object_object_add(r, "job_id", job_id ? json_object_new_int64(job_id) : NULL);
    json_object_object_add(r, "runner_id", runner_id ? json_object_new_int64(runner_id) : NULL);
    json_object_object_add(r, "adopted", json_object_new_boolean(adopted));
    json_object_array_add(doc->runners, r);

    size_t n = json_object_array_length(doc->pools);
    for (size_t i = 0; i < n && pool != NULL; i++) {
        json_object *p = json_object_array_get_idx(doc->pools, i);
        json_object *pn;
        if (json_object_object_get_ex(p, "name", &pn) &&
            strcmp(json_object_get_string(pn), pool) == 0) {
            if (state == NULL || strcmp(state, "exited") != 0)
                bump(p, "runners");
            if (state != NULL)
                bump(p, state);
            break;
        }
    }
}

void rd_status_add_target(rd_status_doc_t *doc, const char *scope, int64_t last_poll_ms,
                          const char *last_error, int64_t backoff_until_ms, size_t repos,
                          size_t queued)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "scope", str_or_null(scope));
    json_object_object_add(t, "last_poll",
                           last_poll_ms ? json_object_new_double((double)last_poll_ms / 1000.0)
                                        : NULL);
    json_object_object_add(t, "last_error", str_or_null(last_error));
    json_object_object_add(t, "backoff_until",
                           backoff_until_ms
                               ? json_object_new_double((double)backoff_until_ms / 1000.0)
                               : NULL);
    json_object_object_add(t, "repos", json_object_new_int64((int64_t)repos));
    json_object_object_add(t, "queued", json_object_new_int64((int64_t)queued));
    json_object_array_add(doc->targets, t);
}

static json_object *int_or_null(int64_t v)
{
    return v >= 0 ? json_object_new_int64(v) : NULL;
}

void rd_status_set_github(rd_status_doc_t *doc, int64_t rl_limit, int64_t rl_remaining,
                          int64_t rl_reset, uint64_t requests, uint64_t not_modified,
                          uint64_t budget_per_hour, uint64_t budget_used_last_hour)
{
    json_object *g = json_object_new_object();
    json_object *rl = json_object_new_object();
    json_object_object_add(rl, "limit", int_or_null(rl_limit));
    json_object_object_add(rl, "remaining", int_or_null(rl_remaining));
    json_object_object_add(rl, "reset", int_or_null(rl_reset));
    json_object_object_add(g, "rate_limit", rl);
    json_object_object_add(g, "requests", json_object_new_int64((int64_t)requests));
    json_object_object_add(g, "not_modified", json_object_new_int64((int64_t)not_modified));
    json_object_object_add(g, "budget_per_hour", json_object_new_int64((int64_t)budget_per_hour));
    json_object_object_add(g, "budget_used_last_hour",
                           json_object_new_int64((int64_t)budget_used_last_hour));
    json_object_object_add(doc->root, "github", g);
}

void rd_status_set_jobs(rd_status_doc_t *doc, int64_t queued, unsigned unmatched)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "queued", json_object_new_int64(queued));
    json_object_object_add(j, "unmatched", json_object_new_int64(unmatched));
    json_object_object_add(doc->root, "jobs", j);
}

char *rd_status_render(rd_status_doc_t *doc, size_t *len)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(doc->root, JSON_C_TO_STRING_PLAIN, &n);
    char *out = rd_xstrndup(s, n);
    if (len != NULL)
        *len = n;
    return out;
}

void rd_status_free(rd_status_doc_t *doc)
{
    if (doc == NULL)
        return;
    json_object_put(doc->root);
    free(doc);
}
