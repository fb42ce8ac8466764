/* scaleset_client.c: fleet mode's broker client (see scaleset_client.h, docs/fleet.md).
 *
 * "P x.y" names the section of the protocol file (/work/shared/scaleset-protocol.md).
 * Per scope (tenant): registration token -> runner-registration -> admin token,
 * refreshed 60 s before its exp (P 1.5). Per scale set: find/create/update, session,
 * then a loop of long poll -> handle -> acquire -> ack -> long poll. */
#include "runnerd/io/scaleset_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/http.h"
#include "scaleset_int.h"

#define COMP "fleet"
#define CONFLICT_MIN_MS 30000 /* DESIGN.md 5: 409 retried after 30-60 s */
#define CONFLICT_SPAN_MS 30000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

static void set_step(fset_t *s);
static void set_poll(fset_t *s);
static void on_removed_session(void *ud, int err, long status, const char *body, size_t len);
static void free_all(rd_fleet_t *f);

static int64_t now_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static uint64_t rnd(rd_fleet_t *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static const char *state_name(ss_state_t st)
{
    static const char *const n[] = {"idle",     "bootstrap", "finding", "session", "polling",
                                    "conflict", "backoff",   "closed",  "missing"};
    return n[st];
}

/* ------------------------------------------------------------------ scale set life */

static void set_timer_cb(uv_timer_t *t);

static void set_later(fset_t *s, ss_state_t st, uint64_t ms)
{
    s->state = st;
    uv_timer_stop(&s->timer);
    if (!s->f->closing)
        uv_timer_start(&s->timer, set_timer_cb, ms, 0);
}

static void set_failed(fset_t *s, const char *what, int err, long status)
{
    s->errors++;
    s->failures++;
    if (s->f->opt.dry_run) {
        s->looked = true;
        s->state = SS_BACKOFF;
        rd_warn(COMP, "%s: %s failed: %s (HTTP %ld)", s->name, what, rd_strerror(err), status);
        return;
    }
    if (err == RD_EIO || status >= 500)
        s->healthy = false;
    uint64_t ms = BACKOFF_MIN_MS << (s->failures < 7 ? s->failures - 1 : 6);
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    ms = ms / 2 + rnd(s->f) % (ms / 2 + 1);
    rd_log(s->failures == 1 ? RD_LOG_WARN : RD_LOG_DEBUG, COMP,
           "%s: %s failed: %s (HTTP %ld); retrying in %" PRIu64 " ms", s->name, what,
           rd_strerror(err), status, ms);
    set_later(s, SS_BACKOFF, ms);
}

static void on_set_deleted(void *ud, int err, long status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    fset_t *s = ud;
    if (err == 0 || err == RD_ENOENT)
        rd_info(COMP, "%s: scale set deleted", s->name);
    else
        rd_warn(COMP, "%s: deleting the scale set failed (HTTP %ld)", s->name, status);
    s->state = SS_CLOSED;
}

static void on_session_created(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    if (err == RD_EEXIST || rd_ss_parse_error(body, len) == RD_SS_ERR_SESSION_CONFLICT) {
        /* P 3.3: a stale session of a crashed predecessor, or another host with our
         * instance name: jittered 30-60 s, logged once, never a crash loop. */
        s->conflicts++;
        if (!s->conflict_logged)
            rd_warn(COMP,
                    "%s: the scale set already has an active session (another host with "
                    "instance \"%s\", or a predecessor that died); retrying every 30-60 s",
                    s->name, s->f->cfg->instance);
        s->conflict_logged = true;
        set_later(s, SS_CONFLICT, CONFLICT_MIN_MS + rnd(s->f) % CONFLICT_SPAN_MS);
        return;
    }
    if (err == RD_ENOENT) {
        s->id = 0; /* P 6.6: the scale set is gone: find or create it again */
        set_later(s, SS_FINDING, 0);
        return;
    }
    rd_ss_session_t sess;
    if (err != 0 || rd_ss_parse_session(body, len, &sess) != 0) {
        set_failed(s, "creating a session", err ? err : RD_EPROTO, status);
        return;
    }
    rd_log_add_secret(sess.queue_token);
    rd_ss_session_free(&s->sess);
    s->sess = sess;
    s->have_session = true;
    s->stats = sess.stats;
    s->extra = 0;
    s->failures = 0;
    s->healthy = true;
    if (s->conflict_logged)
        rd_info(COMP, "%s: session conflict resolved", s->name);
    s->conflict_logged = false;
    rd_info(COMP, "%s: session open (scale set %" PRId64 ", %" PRId64 " jobs assigned)", s->name,
            s->id, sess.stats.assigned);
    s->state = SS_POLLING;
    rd_fleet_kick(s->f);
    set_poll(s);
}

static void session_create(fset_t *s)
{
    s->state = SS_SESSION;
    char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/sessions", s->id);
    rd_fleet_admin_call(s->t, "POST", rel, rd_ss_body_session(s->f->cfg->instance),
                        on_session_created, s);
    free(rel);
}

static const rd_pool_t *set_pool(const fset_t *s)
{
    return s->removed ? NULL : rd_pool_ref_cfg(s->pref);
}

static void on_set_written(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    rd_ss_scale_set_t ss;
    if (status == 400 && s->id == 0) {
        /* P 9.8: a duplicate name answers 400 (decision: look it up again). */
        set_later(s, SS_FINDING, 1000);
        return;
    }
    if (err != 0 || rd_ss_parse_scale_set(body, len, &ss) != 0) {
        set_failed(s, "writing the scale set", err ? err : RD_EPROTO, status);
        return;
    }
    rd_info(COMP, "%s: scale set %" PRId64 " %s", s->name, ss.id,
            s->id ? "labels updated" : "created");
    s->id = ss.id;
    rd_ss_scale_set_free(&ss);
    if (s->f->opt.dry_run) {
        s->state = SS_IDLE;
        return;
    }
    session_create(s);
}

static void on_set_found(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    rd_ss_scale_set_t ss;
    int rc = err ? err : rd_ss_parse_scale_set_list(body, len, &ss);
    const rd_pool_t *p = set_pool(s);
    if (rc == RD_ENOENT && err == 0) {
        if (s->f->opt.dry_run || p == NULL) {
            s->state = SS_MISSING;
            s->looked = true;
            return;
        }
        char *b =
            rd_ss_body_scale_set(s->name, s->group_id, (const char *const *)p->labels, p->nlabels);
        s->id = 0;
        rd_fleet_admin_call(s->t, "POST", "_apis/runtime/runnerscalesets", b, on_set_written, s);
        return;
    }
    if (rc != 0) {
        set_failed(s, "finding the scale set", rc, status);
        return;
    }
    s->id = ss.id;
    bool same = p == NULL || rd_ss_labels_match(&ss, (const char *const *)p->labels, p->nlabels);
    rd_ss_scale_set_free(&ss);
    if (s->f->opt.dry_run) {
        s->state = SS_IDLE;
        s->looked = true;
        s->labels_differ = !same;
        return;
    }
    if (!same) {
        char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64, s->id);
        char *b =
            rd_ss_body_scale_set(s->name, s->group_id, (const char *const *)p->labels, p->nlabels);
        rd_fleet_admin_call(s->t, "PATCH", rel, b, on_set_written, s);
        free(rel);
        return;
    }
    session_create(s);
}

static void find_set(fset_t *s)
{
    s->state = SS_FINDING;
    char *rel = rd_xasprintf("_apis/runtime/runnerscalesets?runnerGroupId=%" PRId64 "&name=%s",
                             s->group_id, s->name);
    rd_fleet_admin_call(s->t, "GET", rel, NULL, on_set_found, s);
    free(rel);
}

static void on_group(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    int64_t id = 0;
    int rc = err ? err : rd_ss_parse_group_list(body, len, &id);
    if (rc != 0) {
        set_failed(s, "looking up the runner group", rc, status);
        return;
    }
    s->group_id = id;
    find_set(s);
}

/* The next step of a scale set's life, from its state (timer or a fresh start). */
static void set_step(fset_t *s)
{
    rd_fleet_t *f = s->f;
    if (f->closing || s->removed)
        return;
    if (s->id != 0 && s->have_session) {
        set_poll(s);
        return;
    }
    const rd_pool_t *p = set_pool(s);
    const rd_target_t *tg = s->removed ? NULL : rd_target_ref_cfg(s->tref);
    /* P 3.1: Default is group 1 (not looked up); repo targets are always group 1. */
    if (s->group_id == 0 && tg != NULL && p != NULL && tg->kind == RD_TARGET_ORG &&
        strcasecmp(p->runner_group, "Default") != 0) {
        s->state = SS_FINDING;
        char *rel = rd_xasprintf("_apis/runtime/runnergroups/?groupName=%s", p->runner_group);
        rd_fleet_admin_call(s->t, "GET", rel, NULL, on_group, s);
        free(rel);
        return;
    }
    if (s->group_id == 0)
        s->group_id = 1;
    if (s->id == 0 || !s->have_session) {
        if (s->id != 0 && s->state == SS_CONFLICT)
            session_create(s);
        else
            find_set(s);
    }
}

/* ------------------------------------------------------------------ capacity */

typedef struct {
    fset_t *s;
    unsigned live, busy;
} count_t;

static void count_runner(void *ud, const rd_supervisor_runner_info_t *ri)
{
    count_t *c = ud;
    if (ri->state == RD_RUNNER_EXITED || ri->target_ref != c->s->tref || ri->pool_ref != c->s->pref)
        return;
    c->live++;
    c->busy += ri->state == RD_RUNNER_BUSY;
}

static void cap_input(fset_t *s, rd_ss_cap_input_t *in)
{
    rd_fleet_t *f = s->f;
    memset(in, 0, sizeof(*in));
    count_t c = {.s = s};
    rd_sched_runner_t *snap = NULL;
    size_t n = 0;
    if (f->sup != NULL) {
        rd_supervisor_foreach(f->sup, count_runner, &c);
        n = rd_supervisor_snapshot(f->sup, &snap);
    }
    bool stopping = f->draining || s->removed || set_pool(s) == NULL;
    rd_supervisor_pool_info_t pi;
    size_t pool = s->removed ? SIZE_MAX : rd_pool_ref_pos(s->pref);
    bool backoff = f->sup != NULL && pool < f->cfg->npools &&
                   rd_supervisor_pool_info(f->sup, pool, &pi) == 0 && pi.backoff;
    in->live = c.live;
    in->busy = c.busy;
    in->room =
        backoff ? 0
                : rd_ss_room(&f->cfg->host, f->cfg->pools, f->cfg->npools, pool, snap, n, stopping);
    int64_t waiting = s->stats.assigned - s->stats.running;
    in->pending = (unsigned)(waiting > 0 ? waiting : 0) + s->extra;
    /* Jobs acquired since the last statistics are assigned to us already (P 3.6). */
    in->total_assigned = s->stats.assigned + s->extra;
    in->stopping = stopping;
    free(snap);
}

/* Start the runners the statistics ask for (level-triggered, DESIGN.md 5). */
static void set_scale(fset_t *s)
{
    rd_fleet_t *f = s->f;
    if (f->sup == NULL || f->opt.dry_run || !s->have_session || s->removed)
        return;
    rd_ss_cap_input_t in;
    cap_input(s, &in);
    unsigned n = rd_ss_starts(set_pool(s), &in);
    for (unsigned i = 0; i < n; i++) {
        uint64_t key;
        int rc = rd_supervisor_start(f->sup, s->tref, s->pref, 0, &key);
        if (rc != 0) {
            rd_debug(COMP, "%s: start refused: %s", s->name, rd_strerror(rc));
            break;
        }
    }
    if (n > 0)
        rd_info(COMP, "%s: %" PRId64 " jobs assigned, %u runners live: starting %u", s->name,
                in.total_assigned, in.live, n);
}

/* ------------------------------------------------------------------ messages (P 3.4-3.6, 4) */

static void session_refresh(fset_t *s);

static void on_acked(void *ud, int err, long status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    if (status == 401) {
        session_refresh(s);
        return;
    }
    if (err != 0 && err != RD_ENOENT)
        rd_debug(COMP, "%s: deleting message failed: %s", s->name, rd_strerror(err));
    s->busy_step = false;
    set_poll(s);
}

static void ack(fset_t *s, int64_t mid)
{
    rd_fleet_mq_call(s, "DELETE", rd_ss_ack_url(s->sess.queue_url, mid), NULL, on_acked, s);
}

typedef struct {
    fset_t *s;
    int64_t mid;
} acq_t;

static void on_acquired(void *ud, int err, long status, const char *body, size_t len)
{
    acq_t *a = ud;
    fset_t *s = a->s;
    int64_t mid = a->mid;
    free(a);
    if (s->f->closing || err == RD_ECANCELED)
        return;
    int64_t *ids = NULL;
    size_t n = 0;
    if (err == 0 && rd_ss_parse_acquired(body, len, &ids, &n) == 0) {
        s->extra += (unsigned)n;
        s->acquired += n;
        if (n > 0)
            rd_info(COMP, "%s: acquired %zu jobs", s->name, n);
    } else if (status == 401) {
        /* Not acked: the message comes again after the refresh (P 3.6, 3.3). */
        s->busy_step = false;
        session_refresh(s);
        return;
    } else {
        rd_warn(COMP, "%s: acquirejobs failed: %s (HTTP %ld)", s->name, rd_strerror(err), status);
    }
    free(ids);
    set_scale(s);
    ack(s, mid);
}

static bool seen_has(const fset_t *s, int64_t id)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (s->seen[i] == id)
            return true;
    return false;
}

static void seen_add(fset_t *s, int64_t id)
{
    if (s->nseen == SEEN_MAX) {
        memmove(s->seen, s->seen + SEEN_MAX / 2, (SEEN_MAX / 2) * sizeof(int64_t));
        s->nseen = SEEN_MAX / 2;
    }
    s->seen[s->nseen++] = id;
}

static void handle_message(fset_t *s, const char *body, size_t len)
{
    rd_fleet_t *f = s->f;
    rd_ss_message_t m;
    if (rd_ss_parse_message(body, len, &m) != 0) {
        rd_warn(COMP, "%s: unreadable message from the broker; skipping it", s->name);
        s->errors++;
        set_poll(s);
        return;
    }
    s->messages++;
    s->last_mid = m.message_id;
    if (m.has_stats) {
        s->stats = m.stats;
        s->extra = 0;
    }
    int64_t *avail = rd_xcalloc(m.njobs + 1, sizeof(int64_t));
    size_t navail = 0;
    for (size_t i = 0; i < m.njobs; i++) {
        const rd_ss_job_msg_t *j = &m.jobs[i];
        switch (j->kind) {
        case RD_SS_JOB_AVAILABLE:
            /* P 9.4: an id of 0 cannot be acquired; redelivered ids are acquired once. */
            if (j->request_id > 0 && !seen_has(s, j->request_id))
                avail[navail++] = j->request_id;
            break;
        case RD_SS_JOB_STARTED:
            if (f->sup != NULL && j->runner_name != NULL)
                rd_supervisor_job_started(f->sup, j->runner_name, j->request_id);
            break;
        case RD_SS_JOB_COMPLETED:
            if (f->sup != NULL && j->runner_name != NULL && j->runner_name[0] != '\0')
                rd_supervisor_job_completed(f->sup, j->runner_name, j->request_id);
            break;
        default:
            break;
        }
    }
    rd_ss_message_free(&m);
    rd_ss_cap_input_t in;
    cap_input(s, &in);
    unsigned k = rd_ss_acquire_count(&in, navail);
    set_scale(s);
    s->busy_step = true;
    if (k == 0) {
        free(avail);
        ack(s, s->last_mid);
        return;
    }
    /* Every host is offered the same jobs (P 6.1): take a random k of them, not the
     * first k, so that hosts rarely race for the same ids. */
    for (size_t i = navail; i > 1; i--) {
        size_t j = (size_t)(rnd(s->f) % i);
        int64_t tmp = avail[i - 1];
        avail[i - 1] = avail[j];
        avail[j] = tmp;
    }
    for (unsigned i = 0; i < k; i++)
        seen_add(s, avail[i]);
    acq_t *a = rd_xcalloc(1, sizeof(*a));
    a->s = s;
    a->mid = s->last_mid;
    char *url = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/acquirejobs", s->id);
    char *full = rd_ss_service_url(s->t->service, url);
    rd_fleet_mq_call(s, "POST", full, rd_ss_body_acquire(avail, k), on_acquired, a);
    free(url);
    free(avail);
}

static void on_refreshed(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    rd_ss_session_t sess;
    if (err == RD_ENOENT) {
        /* P 3.3, 6.6: the session is gone: create a new one. */
        rd_info(COMP, "%s: session gone; opening a new one", s->name);
        s->have_session = false;
        session_create(s);
        return;
    }
    if (err != 0 || rd_ss_parse_session(body, len, &sess) != 0) {
        set_failed(s, "refreshing the session", err ? err : RD_EPROTO, status);
        return;
    }
    rd_log_add_secret(sess.queue_token);
    rd_ss_session_free(&s->sess);
    s->sess = sess;
    s->state = SS_POLLING;
    set_poll(s);
}

static void session_refresh(fset_t *s)
{
    s->state = SS_SESSION;
    char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/sessions/%s", s->id,
                             s->sess.session_id);
    rd_fleet_admin_call(s->t, "PATCH", rel, NULL, on_refreshed, s);
    free(rel);
}

static void on_polled(void *ud, int err, long status, const char *body, size_t len)
{
    fset_t *s = ud;
    s->poll = NULL;
    if (s->f->closing)
        return;
    if (err == RD_ECANCELED) {
        /* Cancelled to send a new capacity at once (rd_fleet_kick). */
        if (!s->busy_step && s->state == SS_POLLING)
            set_poll(s);
        return;
    }
    if (status == 202) {
        s->healthy = true;
        s->failures = 0;
        set_scale(s);
        set_poll(s);
        return;
    }
    if (status == 401) {
        session_refresh(s); /* P 3.4: token expired: refresh, then poll again */
        return;
    }
    if (status == 200) {
        s->healthy = true;
        s->failures = 0;
        handle_message(s, body, len);
        return;
    }
    if (status == 404 || status == 400) {
        s->have_session = false; /* session gone (expired): open a new one */
        set_failed(s, "polling", err, status);
        return;
    }
    set_failed(s, "polling", err, status);
}

static void set_poll(fset_t *s)
{
    rd_fleet_t *f = s->f;
    if (f->closing || s->poll != NULL || !s->have_session || s->busy_step)
        return;
    s->state = SS_POLLING;
    rd_ss_cap_input_t in;
    cap_input(s, &in);
    s->advertised = rd_ss_advertise(&in);
    s->poll_adv = s->advertised;
    char *url = rd_ss_poll_url(s->sess.queue_url, s->last_mid);
    char *cap = rd_xasprintf("X-ScaleSetMaxCapacity: %u", s->advertised);
    char *auth = rd_xasprintf("Authorization: Bearer %s", s->sess.queue_token);
    const char *hdrs[] = {auth, cap, "Accept: application/json; api-version=" RD_SS_API_VERSION,
                          NULL};
    call_t *c = rd_xcalloc(1, sizeof(*c));
    c->f = f;
    c->t = s->t;
    c->method = rd_xstrdup("GET");
    c->mq_token = rd_xstrdup(s->sess.queue_token);
    c->cb = on_polled;
    c->ud = s;
    s->poll = c;
    int rc = rd_http_request(f->http, "GET", url, hdrs, NULL, 0, rd_fleet_on_call_done, c, &c->req);
    memset(auth, 0, strlen(auth));
    free(auth);
    free(cap);
    free(url);
    if (rc != 0) {
        s->poll = NULL;
        rd_fleet_call_free(c);
        set_failed(s, "polling", rc, 0);
    }
}

fset_t *rd_fleet_set_by(rd_fleet_t *f, const char *scope, const char *pool)
{
    for (fset_t *s = f->sets; s; s = s->next)
        if (strcmp(s->scope, scope) == 0 && (pool == NULL || strcmp(s->pool, pool) == 0))
            return s;
    return NULL;
}

const char *rd_fleet_state_name(int st)
{
    return state_name((ss_state_t)st);
}

/* ------------------------------------------------------------------ life cycle */

bool rd_fleet_wanted(const rd_config_t *cfg)
{
    for (size_t i = 0; i < cfg->ntargets; i++)
        if (cfg->targets[i].discovery == RD_DISCOVERY_SCALESET)
            return true;
    return false;
}

static void handle_closed(uv_handle_t *h)
{
    rd_fleet_t *f = h->data;
    if (--f->open > 0)
        return;
    void (*cb)(void *) = f->closed;
    void *ud = f->closed_ud;
    free_all(f);
    free(f);
    if (cb)
        cb(ud);
}

/* The scale set of a (target, pool) pair of references, or NULL. */
static fset_t *set_by_refs(rd_fleet_t *f, const rd_target_ref_t *t, const rd_pool_ref_t *p)
{
    for (fset_t *s = f->sets; s; s = s->next)
        if (s->tref == t && s->pref == p)
            return s;
    return NULL;
}

static void load_sets(rd_fleet_t *f, const rd_config_t *cfg)
{
    f->cfg = cfg;
    if (f->own_ids)
        rd_idents_apply(f->ids, cfg);
    for (fset_t *s = f->sets; s; s = s->next)
        s->removed = true;
    for (size_t t = 0; t < cfg->ntargets; t++) {
        const rd_target_t *tg = &cfg->targets[t];
        if (tg->discovery != RD_DISCOVERY_SCALESET)
            continue;
        rd_target_ref_t *tref = rd_idents_target(f->ids, t);
        for (size_t k = 0; k < tg->npools; k++) {
            const rd_pool_t *p = &cfg->pools[tg->pools[k]];
            rd_pool_ref_t *pref = rd_idents_pool(f->ids, tg->pools[k]);
            /* Paired by reference: the set stays the same object across reloads. */
            fset_t *s = set_by_refs(f, tref, pref);
            if (s == NULL) {
                s = rd_xcalloc(1, sizeof(*s));
                s->f = f;
                s->tref = rd_target_ref_hold(tref);
                s->pref = rd_pool_ref_hold(pref);
                s->scope = rd_xstrdup(tg->scope);
                s->pool = rd_xstrdup(p->name);
                s->name = rd_ss_set_name(cfg->instance, p->name);
                s->t = rd_fleet_tenant_for(f, tg);
                s->healthy = true;
                uv_timer_init(f->loop, &s->timer);
                s->timer.data = f;
                f->open++;
                s->next = f->sets;
                f->sets = s;
            }
            s->removed = false;
        }
    }
}

int rd_fleet_new(uv_loop_t *loop, const rd_config_t *cfg, rd_github_t *gh, rd_supervisor_t *sup,
                 const rd_fleet_options_t *opts, rd_fleet_t **out)
{
    *out = NULL;
    rd_fleet_t *f = rd_xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->gh = gh;
    f->sup = sup;
    if (opts)
        f->opt = *opts;
    f->ids = f->opt.idents;
    if (f->ids == NULL) {
        f->ids = rd_idents_new();
        f->own_ids = true; /* applied in load_sets */
    }
    f->rng = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)f;
    /* Its own curl multi: long polls (one per scale set, up to ~50 s each on GitHub,
     * P 3.4) never take a connection of the REST client. */
    rd_http_options_t ho = {.max_connections = 64,
                            .total_timeout_ms = 150000, /* P 2: > 1 min for long polls */
                            .ca_file = cfg->github.ca_file,
                            .max_body = RD_SS_MAX_BODY};
    int rc = rd_http_new(loop, &ho, &f->http);
    if (rc != 0) {
        if (f->own_ids)
            rd_idents_free(f->ids);
        free(f);
        return rc;
    }
    uv_timer_init(loop, &f->t_close);
    f->t_close.data = f;
    f->open = 1;
    f->reg = (rd_supervisor_registry_t){.claims = rd_fleet_reg_claims,
                                        .generate_jit = rd_fleet_reg_jit,
                                        .delete_runner = rd_fleet_reg_delete,
                                        .list_runners = rd_fleet_reg_list,
                                        .ud = f};
    load_sets(f, cfg);
    *out = f;
    return 0;
}

static void set_timer_cb(uv_timer_t *t)
{
    rd_fleet_t *f = t->data;
    for (fset_t *s = f->sets; s; s = s->next)
        if (&s->timer == t)
            set_step(s);
}

void rd_fleet_start(rd_fleet_t *f)
{
    for (fset_t *s = f->sets; s; s = s->next)
        if (s->state == SS_IDLE && !s->removed) {
            uv_timer_stop(&s->timer);
            uv_timer_start(&s->timer, set_timer_cb, 0, 0);
        }
}

void rd_fleet_reconfigure(rd_fleet_t *f, const rd_config_t *cfg)
{
    load_sets(f, cfg);
    rd_fleet_start(f);
    rd_fleet_kick(f);
}

void rd_fleet_kick(rd_fleet_t *f)
{
    if (f->closing)
        return;
    int64_t now = now_ms();
    for (fset_t *s = f->sets; s; s = s->next) {
        if (!s->have_session)
            continue;
        if (s->removed && !s->busy_step) {
            rd_ss_cap_input_t in;
            cap_input(s, &in);
            if (in.live == 0) {
                /* SIGHUP removed it and its runners are gone: session, then the set. */
                if (s->poll != NULL && s->poll->req != NULL)
                    rd_http_cancel(f->http, s->poll->req);
                s->busy_step = true;
                char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/sessions/%s",
                                         s->id, s->sess.session_id);
                rd_fleet_admin_call(s->t, "DELETE", rel, NULL, on_removed_session, s);
                free(rel);
                continue;
            }
        }
        set_scale(s);
        if (s->poll == NULL)
            continue;
        rd_ss_cap_input_t in;
        cap_input(s, &in);
        unsigned adv = rd_ss_advertise(&in);
        /* The broker hears a new capacity only with the next poll (P 6.4): re-issue the
         * long poll when it changed, at most once a second. */
        if (adv != s->poll_adv && now - s->last_repoll_ms >= 1000) {
            s->last_repoll_ms = now;
            rd_http_cancel(f->http, s->poll->req);
        }
    }
}

void rd_fleet_drain(rd_fleet_t *f)
{
    f->draining = true;
    rd_fleet_kick(f);
}

static void free_all(rd_fleet_t *f)
{
    while (f->sets) {
        fset_t *s = f->sets;
        f->sets = s->next;
        rd_ss_session_free(&s->sess);
        free(s->scope);
        free(s->pool);
        free(s->name);
        rd_target_ref_release(s->tref);
        rd_pool_ref_release(s->pref);
        free(s);
    }
    while (f->tenants) {
        tenant_t *t = f->tenants;
        f->tenants = t->next;
        free(t->scope);
        free(t->config_url);
        free(t->service);
        if (t->token)
            memset(t->token, 0, strlen(t->token));
        free(t->token);
        free(t);
    }
    if (f->own_ids)
        rd_idents_free(f->ids);
    f->ids = NULL;
}

static void http_closed(void *ud)
{
    rd_fleet_t *f = ud;
    /* Every call has called back (cancelled) by now: nothing refers to a set any more. */
    f->http = NULL;
    handle_closed((uv_handle_t *)&f->t_close);
}

static void finish_close(rd_fleet_t *f)
{
    if (f->finished)
        return;
    f->finished = true;
    for (fset_t *s = f->sets; s; s = s->next)
        uv_close((uv_handle_t *)&s->timer, handle_closed);
    f->open++; /* the http client */
    uv_close((uv_handle_t *)&f->t_close, handle_closed);
    rd_http_close(f->http, http_closed, f);
}

static void on_removed_session(void *ud, int err, long status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    (void)status;
    fset_t *s = ud;
    s->have_session = false;
    if (s->f->closing || err == RD_ECANCELED)
        return;
    char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64, s->id);
    rd_fleet_admin_call(s->t, "DELETE", rel, NULL, on_set_deleted, s);
    free(rel);
}

static void on_close_timer(uv_timer_t *t)
{
    finish_close(t->data);
}

static void on_session_deleted(void *ud, int err, long status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    fset_t *s = ud;
    if (err == 0)
        rd_info(COMP, "%s: session deleted", s->name);
    else if (err != RD_ECANCELED)
        rd_warn(COMP, "%s: deleting the session failed (HTTP %ld)", s->name, status);
    s->have_session = false;
    rd_fleet_t *f = s->f;
    if (f->finished)
        return;
    for (fset_t *o = f->sets; o; o = o->next)
        if (o->have_session)
            return;
    uv_timer_stop(&f->t_close);
    uv_timer_start(&f->t_close, on_close_timer, 0, 0);
}

void rd_fleet_close(rd_fleet_t *f, void (*closed)(void *ud), void *ud)
{
    f->closed = closed;
    f->closed_ud = ud;
    f->closing = true;
    bool any = false;
    for (fset_t *s = f->sets; s; s = s->next) {
        uv_timer_stop(&s->timer);
        if (s->poll != NULL && s->poll->req != NULL)
            rd_http_cancel(f->http, s->poll->req);
        if (!s->have_session)
            continue;
        any = true;
        char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/sessions/%s", s->id,
                                 s->sess.session_id);
        rd_fleet_admin_call(s->t, "DELETE", rel, NULL, on_session_deleted, s);
        free(rel);
        if (s->removed) {
            char *r2 = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64, s->id);
            rd_fleet_admin_call(s->t, "DELETE", r2, NULL, on_set_deleted, s);
            free(r2);
        }
    }
    /* Bounded: a broker that does not answer must not hold the exit. */
    uv_timer_start(&f->t_close, on_close_timer, any ? 5000 : 0, 0);
}

bool rd_fleet_settled(const rd_fleet_t *f)
{
    for (const fset_t *s = f->sets; s; s = s->next)
        if (!s->looked)
            return false;
    return true;
}

void rd_fleet_print_dry(const rd_fleet_t *f, FILE *out)
{
    for (const fset_t *s = f->sets; s; s = s->next) {
        if (s->state == SS_BACKOFF)
            fprintf(out,
                    "{\"scale_set\":\"%s\",\"scope\":\"%s\",\"pool\":\"%s\","
                    "\"exists\":null}\n",
                    s->name, s->scope, s->pool);
        else
            fprintf(out,
                    "{\"scale_set\":\"%s\",\"scope\":\"%s\",\"pool\":\"%s\","
                    "\"exists\":%s,\"id\":%" PRId64 ",\"labels_match\":%s}\n",
                    s->name, s->scope, s->pool, s->id ? "true" : "false", s->id,
                    s->id && !s->labels_differ ? "true" : "false");
    }
}
