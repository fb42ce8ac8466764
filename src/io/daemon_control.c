/* daemon_control.c: what the control socket's requests do (DESIGN.md section 6).
 *
 * Drained pools and paused targets are kept by name here, so they survive a
 * reload (until resumed or the daemon restarts). The scheduling pass asks
 * rd_daemon_control_plan: a drained pool starts nothing (as if backing off),
 * a paused target's jobs are no demand and it starts nothing. Draining or
 * pausing also stops the idle and starting runners at once (after a fresh
 * runner list confirms they have not just taken a job, as a reload's drain
 * does); busy runners finish their job. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "daemon_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/control.h"

#define LOGC "control"

typedef struct {
    char **v;
    size_t n;
} nameset_t;

struct rd_daemon_ctl {
    rd_control_t *sock;
    nameset_t drained; /* pool names */
    nameset_t paused;  /* target scopes */
};

static bool set_has(const nameset_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return true;
    return false;
}

static bool set_add(nameset_t *s, const char *name)
{
    if (set_has(s, name))
        return false;
    s->v = rd_xrealloc(s->v, (s->n + 1) * sizeof(char *));
    s->v[s->n++] = rd_xstrdup(name);
    return true;
}

static bool set_del(nameset_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0) {
            free(s->v[i]);
            s->v[i] = s->v[--s->n];
            return true;
        }
    return false;
}

static char *json_reply(json_object *o)
{
    char *s = rd_xasprintf("%s\n", json_object_to_json_string_ext(
                                       o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static void reply(rd_control_reply_t *out, int status, const char *key, const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_string(msg));
    out->status = status;
    out->body = json_reply(o);
}

typedef struct {
    const char *pool, *scope, *name; /* match on whichever is set */
    rd_daemon_t *d;
    uint64_t keys[4096];
    size_t nkeys;
    bool found, busy;
    int64_t job;
    uint64_t key;
} match_t;

static void collect(void *ud, const rd_supervisor_runner_info_t *ri)
{
    match_t *m = ud;
    if (m->name != NULL) {
        if (ri->name && strcmp(ri->name, m->name) == 0 && ri->state != RD_RUNNER_EXITED) {
            m->found = true;
            m->busy = ri->state == RD_RUNNER_BUSY;
            m->job = ri->job_id;
            m->key = ri->key;
        }
        return;
    }
    bool hit = (m->pool && ri->pool && strcmp(ri->pool, m->pool) == 0) ||
               (m->scope && ri->scope && strcmp(ri->scope, m->scope) == 0);
    if (hit && (ri->state == RD_RUNNER_IDLE || ri->state == RD_RUNNER_STARTING) &&
        m->nkeys < RD_ARRAY_SIZE(m->keys))
        m->keys[m->nkeys++] = ri->key;
}

/* Stop the idle and starting runners of POOL or SCOPE; returns how many. */
static size_t stop_idle(rd_daemon_t *d, const char *pool, const char *scope)
{
    if (d->sup == NULL)
        return 0;
    match_t *m = rd_xcalloc(1, sizeof(*m));
    m->pool = pool;
    m->scope = scope;
    rd_supervisor_foreach(d->sup, collect, m);
    size_t n = 0;
    for (size_t i = 0; i < m->nkeys; i++)
        if (rd_supervisor_stop(d->sup, m->keys[i]) == 0)
            n++;
    free(m);
    return n;
}

static bool pool_exists(const rd_daemon_t *d, const char *name)
{
    for (size_t i = 0; i < d->cfg->npools; i++)
        if (strcmp(d->cfg->pools[i].name, name) == 0)
            return true;
    return false;
}

static bool scope_exists(const rd_daemon_t *d, const char *scope)
{
    for (size_t i = 0; i < d->cfg->ntargets; i++)
        if (strcmp(d->cfg->targets[i].scope, scope) == 0)
            return true;
    return false;
}

static void do_pool(rd_daemon_t *d, const rd_control_request_t *req, const char *name, bool drain,
                    rd_control_reply_t *out)
{
    if (!pool_exists(d, name)) {
        char *m = rd_xasprintf("no pool named %s", name);
        reply(out, 404, "error", m);
        free(m);
        return;
    }
    struct rd_daemon_ctl *c = d->ctl;
    char *msg;
    if (drain) {
        bool changed = set_add(&c->drained, name);
        size_t n = stop_idle(d, name, NULL);
        msg = rd_xasprintf("pool %s drained%s: starts nothing, %zu idle runners stopping, "
                           "busy ones finish",
                           name, changed ? "" : " (already)", n);
    } else {
        bool changed = set_del(&c->drained, name);
        msg = rd_xasprintf("pool %s %s", name, changed ? "resumed" : "was not drained");
    }
    rd_logc(RD_LOG_INFO, LOGC, &(const rd_log_ctx_t){.pool = name}, "%s (uid %ld, pid %ld)", msg,
            (long)req->uid, (long)req->pid);
    reply(out, 200, "result", msg);
    free(msg);
    rd_daemon_schedule_soon(d);
}

static void do_target(rd_daemon_t *d, const rd_control_request_t *req, bool pause,
                      rd_control_reply_t *out)
{
    char *scope = rd_control_query_get(req->query, "scope");
    if (scope == NULL || !scope_exists(d, scope)) {
        char *m = scope ? rd_xasprintf("no target with scope %s (write orgs/ORG or "
                                       "repos/OWNER/REPO, as runnerctl targets shows)",
                                       scope)
                        : rd_xstrdup("scope=S missing");
        reply(out, scope ? 404 : 400, "error", m);
        free(m);
        free(scope);
        return;
    }
    struct rd_daemon_ctl *c = d->ctl;
    char *msg;
    if (pause) {
        bool changed = set_add(&c->paused, scope);
        size_t n = stop_idle(d, NULL, scope);
        msg = rd_xasprintf("target %s paused%s: starts nothing, %zu idle runners stopping, busy "
                           "ones finish",
                           scope, changed ? "" : " (already)", n);
    } else {
        bool changed = set_del(&c->paused, scope);
        msg = rd_xasprintf("target %s %s", scope, changed ? "unpaused" : "was not paused");
    }
    rd_logc(RD_LOG_INFO, LOGC, &(const rd_log_ctx_t){.scope = scope}, "%s (uid %ld, pid %ld)", msg,
            (long)req->uid, (long)req->pid);
    reply(out, 200, "result", msg);
    free(msg);
    free(scope);
    rd_daemon_schedule_soon(d);
}

static void do_stop(rd_daemon_t *d, const rd_control_request_t *req, const char *name,
                    rd_control_reply_t *out)
{
    char *force_s = rd_control_query_get(req->query, "force");
    bool force = force_s != NULL && strcmp(force_s, "0") != 0 && strcmp(force_s, "false") != 0;
    free(force_s);
    match_t *m = rd_xcalloc(1, sizeof(*m));
    m->name = name;
    if (d->sup != NULL)
        rd_supervisor_foreach(d->sup, collect, m);
    char *msg = NULL;
    if (!m->found) {
        msg = rd_xasprintf("no runner named %s", name);
        reply(out, 404, "error", msg);
    } else if (m->busy && !force) {
        msg = rd_xasprintf("runner %s is busy (job %" PRId64 "): not stopped; --force stops it "
                           "and fails its job",
                           name, m->job);
        rd_logc(RD_LOG_INFO, LOGC, &(const rd_log_ctx_t){.runner = name, .job = m->job},
                "stop refused: %s (uid %ld, pid %ld)", msg, (long)req->uid, (long)req->pid);
        reply(out, 409, "error", msg);
    } else {
        int rc =
            force ? rd_supervisor_stop_force(d->sup, m->key) : rd_supervisor_stop(d->sup, m->key);
        if (rc != 0) {
            msg = rd_xasprintf("runner %s: %s", name, rd_strerror(rc));
            reply(out, 503, "error", msg);
        } else {
            msg = rd_xasprintf("runner %s stopping%s", name,
                               m->busy ? " (forced: its job fails)" : "");
            rd_logc(m->busy ? RD_LOG_WARN : RD_LOG_INFO, LOGC,
                    &(const rd_log_ctx_t){.runner = name, .job = m->job}, "%s (uid %ld, pid %ld)",
                    msg, (long)req->uid, (long)req->pid);
            reply(out, 200, "result", msg);
        }
    }
    free(msg);
    free(m);
}

static void do_reload(rd_daemon_t *d, const rd_control_request_t *req, rd_control_reply_t *out)
{
    rd_info(LOGC, "reload asked (uid %ld, pid %ld)", (long)req->uid, (long)req->pid);
    if (rd_daemon_reload(d) == 0) {
        char *msg =
            rd_xasprintf("reloaded: %zu pools, %zu targets", d->cfg->npools, d->cfg->ntargets);
        reply(out, 200, "result", msg);
        free(msg);
        return;
    }
    json_object *o = json_object_new_object();
    json_object *errs = json_object_new_array();
    const char *p = d->reload_errors ? d->reload_errors : "reload failed";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0)
            json_object_array_add(errs, json_object_new_string_len(p, (int)n));
        p += n + (nl ? 1 : 0);
    }
    json_object_object_add(o, "error",
                           json_object_new_string("configuration refused; the "
                                                  "previous one keeps running"));
    json_object_object_add(o, "errors", errs);
    out->status = 422;
    out->body = json_reply(o);
}

/* Routes: GET /v1/status; POST /v1/reload, /v1/pools/NAME/{drain,resume},
 * /v1/runners/NAME/stop[?force=1], /v1/targets/{pause,resume}?scope=S. */
static void handle(void *ud, const rd_control_request_t *req, rd_control_reply_t *out)
{
    rd_daemon_t *d = ud;
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (strcmp(p, "/v1/status") == 0) {
        if (!get) {
            reply(out, 405, "error", "use GET");
            return;
        }
        size_t len = 0;
        out->status = 200;
        out->body = rd_daemon_cb_status(d, &len);
        return;
    }
    if (!post) {
        reply(out, strncmp(p, "/v1/", 4) == 0 ? 405 : 404, "error",
              "use POST (GET only for /v1/status)");
        return;
    }
    if (d->phase != PHASE_RUNNING) {
        reply(out, 503, "error",
              d->phase == PHASE_ADOPTING ? "starting up (adopting runners); try again"
                                         : "stopping");
        return;
    }
    if (strcmp(p, "/v1/reload") == 0) {
        do_reload(d, req, out);
        return;
    }
    if (strcmp(p, "/v1/targets/pause") == 0 || strcmp(p, "/v1/targets/resume") == 0) {
        do_target(d, req, p[12] == 'p', out);
        return;
    }
    const char *tail = NULL;
    const char *prefix = strncmp(p, "/v1/pools/", 10) == 0     ? "pools"
                         : strncmp(p, "/v1/runners/", 12) == 0 ? "runners"
                                                               : NULL;
    if (prefix != NULL) {
        const char *name = p + (prefix[0] == 'p' ? 10 : 12);
        tail = strrchr(name, '/');
        if (tail != NULL && tail > name) {
            char *n = rd_xasprintf("%.*s", (int)(tail - name), name);
            if (prefix[0] == 'p' && (strcmp(tail, "/drain") == 0 || strcmp(tail, "/resume") == 0))
                do_pool(d, req, n, tail[1] == 'd', out);
            else if (prefix[0] == 'r' && strcmp(tail, "/stop") == 0)
                do_stop(d, req, n, out);
            else
                reply(out, 404, "error", "unknown request");
            free(n);
            return;
        }
    }
    reply(out, 404, "error", "unknown request");
}

void rd_daemon_control_start(rd_daemon_t *d)
{
    if (d->ctl == NULL)
        d->ctl = rd_xcalloc(1, sizeof(*d->ctl));
    /* --control-socket, else control_socket: (read at start), else the default. */
    const char *path = d->opts.control_socket   ? d->opts.control_socket
                       : d->cfg->control_socket ? d->cfg->control_socket
                                                : "/run/runnerd/runnerd.sock";
    if (path == NULL || path[0] == '\0' || d->opts.once || d->ctl->sock != NULL)
        return;
    int rc = rd_control_open(&d->loop, path, handle, d, &d->ctl->sock);
    if (rc == 0)
        rd_info(LOGC, "control socket %s (mode 0660)", path);
    else if (rc == RD_ENOENT)
        rd_warn(LOGC,
                "control socket %s: its directory is missing; running without it "
                "(RuntimeDirectory=runnerd in the unit creates /run/runnerd)",
                path);
    else if (rc == RD_EEXIST)
        rd_warn(LOGC,
                "control socket %s: another runnerd answers there (or it is not a socket); "
                "running without it",
                path);
    else
        rd_warn(LOGC, "control socket %s: %s; running without it", path, rd_strerror(rc));
}

void rd_daemon_control_close(rd_daemon_t *d)
{
    if (d->ctl == NULL)
        return;
    rd_control_close(d->ctl->sock);
    d->ctl->sock = NULL;
}

void rd_daemon_control_free(rd_daemon_t *d)
{
    if (d->ctl == NULL)
        return;
    rd_strv_free(d->ctl->drained.v, d->ctl->drained.n);
    rd_strv_free(d->ctl->paused.v, d->ctl->paused.n);
    free(d->ctl);
    d->ctl = NULL;
}

bool rd_daemon_control_pool_drained(const rd_daemon_t *d, const char *pool)
{
    return d->ctl != NULL && pool != NULL && set_has(&d->ctl->drained, pool);
}

void rd_daemon_control_plan(const rd_daemon_t *d, bool *backoff, rd_planner_input_t *pi)
{
    if (d->ctl == NULL)
        return;
    for (size_t i = 0; backoff != NULL && i < d->cfg->npools; i++)
        if (set_has(&d->ctl->drained, d->cfg->pools[i].name))
            backoff[i] = true;
    if (pi == NULL || d->ctl->paused.n == 0)
        return;
    /* A paused target: its jobs are no demand and no pool serves its scope. */
    size_t o = 0;
    for (size_t i = 0; i < pi->njobs; i++) {
        const rd_sched_job_t *j = &pi->jobs[i];
        if (j->scope < pi->nscopes && set_has(&d->ctl->paused, pi->scopes[j->scope].name))
            continue;
        pi->jobs[o++] = *j;
    }
    pi->njobs = o;
    pi->in.njobs = o;
    for (size_t i = 0; i < pi->nscopes; i++)
        if (set_has(&d->ctl->paused, pi->scopes[i].name))
            pi->scopes[i].npools = 0;
}
