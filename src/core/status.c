/* status.c: the /status JSON document (docs/status.md). */
#include "runnerd/core/status.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

struct rd_status_doc {
    json_object *root;
    json_object *host;
    json_object *pools;
    json_object *runners;
    json_object *targets;
    double cpus_used;
    uint64_t memory_used;
    uint64_t gpus_used;
    int64_t nrunners;
};

static json_object *str_or_null(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *time_or_null(int64_t t)
{
    return t > 0 ? json_object_new_int64(t) : NULL;
}

static json_object *strlist(const char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

static json_object *number(double v)
{
    /* Whole numbers render as integers (cpus: 8), fractions as doubles (0.5). */
    if (v == (double)(int64_t)v)
        return json_object_new_int64((int64_t)v);
    return json_object_new_double(v);
}

rd_status_doc_t *rd_status_new(const rd_status_top_t *top, const rd_status_host_t *host)
{
    rd_status_doc_t *doc = rd_xcalloc(1, sizeof(*doc));
    json_object *r = doc->root = json_object_new_object();
    json_object_object_add(r, "schema", json_object_new_int(1));
    json_object_object_add(r, "version", str_or_null(top->version));
    json_object_object_add(r, "instance", str_or_null(top->instance));
    json_object_object_add(r, "now", json_object_new_int64(top->now));
    json_object_object_add(r, "started_at", json_object_new_int64(top->started_at));
    json_object_object_add(r, "state", str_or_null(top->state));

    json_object *c = json_object_new_object();
    json_object_object_add(c, "path", str_or_null(top->config_path));
    json_object_object_add(c, "loaded_at", json_object_new_int64(top->loaded_at));
    json_object_object_add(c, "reloads_ok", json_object_new_int64((int64_t)top->reloads_ok));
    json_object_object_add(c, "reloads_failed",
                           json_object_new_int64((int64_t)top->reloads_failed));
    json_object_object_add(c, "last_error", str_or_null(top->last_error));
    json_object_object_add(r, "config", c);

    json_object *h = doc->host = json_object_new_object();
    json_object_object_add(h, "arch", str_or_null(host->arch));
    json_object_object_add(h, "cpus", number(host->cpus));
    json_object_object_add(h, "cpus_used", json_object_new_int(0));
    json_object_object_add(h, "memory", json_object_new_int64((int64_t)host->memory));
    json_object_object_add(h, "memory_used", json_object_new_int64(0));
    json_object_object_add(h, "gpus", json_object_new_int64(host->gpus));
    json_object_object_add(h, "gpus_used", json_object_new_int64(0));
    json_object_object_add(h, "max_runners", json_object_new_int64(host->max_runners));
    json_object_object_add(h, "runners", json_object_new_int64(0));
    json_object_object_add(r, "host", h);

    doc->pools = json_object_new_array();
    doc->runners = json_object_new_array();
    doc->targets = json_object_new_array();
    json_object_object_add(r, "pools", doc->pools);
    json_object_object_add(r, "runners", doc->runners);
    json_object_object_add(r, "targets", doc->targets);
    return doc;
}

void rd_status_add_pool(rd_status_doc_t *doc, const rd_status_pool_t *p)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", str_or_null(p->name));
    json_object_object_add(o, "labels", strlist(p->labels, p->nlabels));
    json_object_object_add(o, "arch", str_or_null(p->arch));
    json_object_object_add(o, "emulated", json_object_new_boolean(p->emulated));
    json_object_object_add(o, "max", json_object_new_int64(p->max));
    json_object_object_add(o, "min_idle", json_object_new_int64(p->min_idle));
    static const char *const counts[] = {"running", "starting", "idle", "busy", "stopping"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(counts); i++)
        json_object_object_add(o, counts[i], json_object_new_int64(0));
    json_object_object_add(o, "queued", json_object_new_int64(p->queued));
    json_object_object_add(o, "degraded", json_object_new_boolean(p->degraded));
    json_object_object_add(o, "backoff_until", time_or_null(p->backoff_until));
    json_object_object_add(o, "draining", json_object_new_boolean(p->draining));
    json_object_object_add(o, "starts", json_object_new_int64((int64_t)p->starts));
    json_object_object_add(o, "failures", json_object_new_int64((int64_t)p->failures));
    json_object_array_add(doc->pools, o);
}

static void bump(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v))
        json_object_set_int64(v, json_object_get_int64(v) + 1);
}

void rd_status_add_runner(rd_status_doc_t *doc, const rd_status_runner_t *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", str_or_null(r->name));
    json_object_object_add(o, "pool", str_or_null(r->pool));
    json_object_object_add(o, "scope", str_or_null(r->scope));
    json_object_object_add(o, "state", str_or_null(r->state));
    json_object_object_add(o, "age_s", json_object_new_int64(r->age_s > 0 ? r->age_s : 0));
    json_object_object_add(o, "runner_id",
                           r->runner_id ? json_object_new_int64(r->runner_id) : NULL);
    json_object_object_add(o, "job_id", r->job_id ? json_object_new_int64(r->job_id) : NULL);
    json_object_object_add(o, "adopted", json_object_new_boolean(r->adopted));
    json_object_array_add(doc->runners, o);

    doc->cpus_used += r->cpus;
    doc->memory_used += r->memory;
    doc->gpus_used += r->gpus;
    doc->nrunners++;
    size_t n = json_object_array_length(doc->pools);
    for (size_t i = 0; i < n && r->pool != NULL; i++) {
        json_object *p = json_object_array_get_idx(doc->pools, i);
        json_object *pn;
        if (json_object_object_get_ex(p, "name", &pn) &&
            strcmp(json_object_get_string(pn), r->pool) == 0) {
            bump(p, "running");
            if (r->state != NULL)
                bump(p, r->state);
            break;
        }
    }
}

void rd_status_add_target(rd_status_doc_t *doc, const rd_status_target_t *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "scope", str_or_null(t->scope));
    json_object_object_add(o, "kind", json_object_new_string(t->org ? "org" : "repo"));
    json_object_object_add(o, "repos", t->org && t->repos ? strlist(t->repos, t->nrepos) : NULL);
    json_object_object_add(o, "pools", strlist(t->pools, t->npools));
    json_object_object_add(o, "last_poll", time_or_null(t->last_poll));
    json_object_object_add(o, "last_error", str_or_null(t->last_error));
    json_object_object_add(o, "backoff_until", time_or_null(t->backoff_until));
    json_object_object_add(o, "queued", json_object_new_int64((int64_t)t->queued));
    json_object_array_add(doc->targets, o);
}

static json_object *int_or_null(int64_t v)
{
    return v >= 0 ? json_object_new_int64(v) : NULL;
}

void rd_status_set_github(rd_status_doc_t *doc, const rd_status_github_t *g)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "api_url", str_or_null(g->api_url));
    json_object_object_add(o, "auth", str_or_null(g->auth));
    json_object *rl = json_object_new_object();
    json_object_object_add(rl, "limit", int_or_null(g->rl_limit));
    json_object_object_add(rl, "remaining", int_or_null(g->rl_remaining));
    json_object_object_add(rl, "reset", int_or_null(g->rl_reset));
    json_object_object_add(o, "rate_limit", rl);
    static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx", "error"};
    json_object *req = json_object_new_object();
    for (size_t i = 0; i < RD_ARRAY_SIZE(classes); i++)
        json_object_object_add(req, classes[i], json_object_new_int64((int64_t)g->requests[i]));
    json_object_object_add(o, "requests", req);
    json_object_object_add(o, "budget_per_hour",
                           json_object_new_int64((int64_t)g->budget_per_hour));
    json_object_object_add(doc->root, "github", o);
}

void rd_status_set_webhook(rd_status_doc_t *doc, const rd_status_webhook_t *w)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "enabled", json_object_new_boolean(w->enabled));
    json_object *dl = json_object_new_object();
    for (size_t i = 0; i < w->n; i++)
        json_object_object_add(dl, w->names[i], json_object_new_int64((int64_t)w->counts[i]));
    json_object_object_add(o, "deliveries", dl);
    json_object_object_add(o, "last_delivery", time_or_null(w->last_delivery));
    json_object_object_add(doc->root, "webhook", o);
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
    json_object_object_add(doc->host, "cpus_used", number(doc->cpus_used));
    json_object_object_add(doc->host, "memory_used",
                           json_object_new_int64((int64_t)doc->memory_used));
    json_object_object_add(doc->host, "gpus_used", json_object_new_int64((int64_t)doc->gpus_used));
    json_object_object_add(doc->host, "runners", json_object_new_int64(doc->nrunners));
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
