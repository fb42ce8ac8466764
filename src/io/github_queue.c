/* github_queue.c: one logical GitHub request and the gate every request
 * passes (see github_int.h).
 *
 * The gate is one FIFO that enforces, in order: the global rate-limit hold
 * (primary / secondary limits), the per-scope backoff, authentication (an
 * installation token may have to be fetched first), our own in-flight cap
 * (max_connections, so curl never queues transfers whose timeouts would tick
 * while waiting), and the pacer (request budget and rate cap). Completion
 * callbacks always run from the loop, never from inside the call that queued
 * the request. Request headers are never logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "github_int.h"
#include "runnerd/core/backoff.h"
#include <stdarg.h>
#include <stdio.h>

#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/ghurl.h"

typedef struct {
    rd_backoff_t b;
    /* The reason of the scope's latest failed request, as an operator reads it
     * (curl's message, or GitHub's status and "message"), with the error code it
     * ended with: /status and the poll log say this instead of rd_strerror. */
    char why[240];
    int why_err;
} scope_state_t;

/* ------------------------------------------------------------------ scopes */

static scope_state_t *scope_state(rd_github_t *gh, const char *scope)
{
    scope_state_t *s = rd_strmap_get(&gh->scopes, scope);
    if (s == NULL) {
        s = rd_xcalloc(1, sizeof(*s));
        rd_backoff_init(&s->b, GH_BACKOFF_BASE_MS, GH_BACKOFF_CAP_MS);
        rd_strmap_put(&gh->scopes, scope, s);
    }
    return s;
}

rd_log_level_t gh_fail_level(rd_github_t *gh, const char *scope)
{
    scope_state_t *s = scope ? rd_strmap_get(&gh->scopes, scope) : NULL;
    return s && s->b.failures > 0 ? RD_LOG_DEBUG : RD_LOG_WARN;
}

void gh_scope_failed(rd_github_t *gh, const char *scope)
{
    if (scope == NULL)
        return;
    scope_state_t *s = scope_state(gh, scope);
    uint64_t d = rd_backoff_fail(&s->b, (uint64_t)gh_now_ms(), rd_rand_next(&gh->rnd));
    rd_debug(LOGC, "%s: backing off %llu ms", scope, (unsigned long long)d);
}

void gh_scope_ok(rd_github_t *gh, const char *scope)
{
    if (scope == NULL)
        return;
    scope_state_t *s = rd_strmap_get(&gh->scopes, scope);
    if (s)
        rd_backoff_success(&s->b);
}

bool gh_err_counts(int err)
{
    switch (err) {
    case 0:
    case RD_ENOENT:
    case RD_EEXIST:
    case RD_EBUSY:
    case RD_EINVAL:
    case RD_EAGAIN:
    case RD_ECANCELED:
        return false;
    default:
        return true;
    }
}

uint64_t gh_retry_delay(rd_github_t *gh, unsigned n)
{
    uint64_t d = (uint64_t)GH_RETRY_BASE_MS << (n > 1 ? (n - 1 < 6 ? n - 1 : 6) : 0);
    return d / 2 + rd_rand_next(&gh->rnd) % (d / 2 + 1);
}

void gh_scopes_free(rd_github_t *gh)
{
    rd_strmap_free(&gh->scopes, free);
}

static void note_error(rd_github_t *gh, const char *scope, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note_error(rd_github_t *gh, const char *scope, int err, const char *fmt, ...)
{
    if (scope == NULL)
        return;
    scope_state_t *s = scope_state(gh, scope);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    s->why_err = err;
}

const char *rd_github_scope_error(const rd_github_t *gh, const char *scope, int err)
{
    scope_state_t *s = scope ? rd_strmap_get(&gh->scopes, scope) : NULL;
    return s && s->why[0] != '\0' && s->why_err == err ? s->why : NULL;
}

int64_t rd_github_retry_at(const rd_github_t *gh, const char *scope)
{
    return rd_github_retry_at_ms(gh, scope, gh_now_ms());
}

int64_t rd_github_retry_at_ms(const rd_github_t *gh, const char *scope, int64_t now)
{
    int64_t at = 0;
    if (gh->hold_until_ms > now)
        at = gh->hold_until_ms;
    if (scope) {
        scope_state_t *s = rd_strmap_get(&gh->scopes, scope);
        if (s && s->b.until_ms > (uint64_t)now && (int64_t)s->b.until_ms > at)
            at = (int64_t)s->b.until_ms;
    }
    return at;
}

int gh_start_check(rd_github_t *gh, const char *scope)
{
    if (gh->closing)
        return RD_ECANCELED;
    if (rd_github_retry_at(gh, scope) > gh_now_ms())
        return RD_EAGAIN;
    return 0;
}

/* ------------------------------------------------------------------ requests */

static void gate_cb(uv_timer_t *t);

static void req_free(gh_req_t *r)
{
    free(r->method);
    free(r->url);
    free(r->body);
    free(r->scope);
    free(r->owner);
    gh_wipe_free(r->token);
    free(r);
}

gh_req_t *gh_req_new(rd_github_t *gh, const char *method, const char *url, const char *scope,
                     const char *owner, gh_auth_kind_t auth, gh_req_done_cb done, void *ud)
{
    gh_req_t *r = rd_xcalloc(1, sizeof(*r));
    r->gh = gh;
    r->method = rd_xstrdup(method);
    r->url = rd_xstrdup(url);
    r->scope = scope ? rd_xstrdup(scope) : NULL;
    r->owner = owner ? rd_xstrdup(owner) : NULL;
    r->auth = auth;
    r->priority = strcmp(method, "GET") != 0;
    r->done = done;
    r->ud = ud;
    return r;
}

void gh_q_push(rd_github_t *gh, gh_req_t *r, bool front)
{
    r->in_queue = true;
    r->prev = NULL;
    r->next = NULL;
    if (gh->q_head == NULL) {
        gh->q_head = gh->q_tail = r;
    } else if (front) {
        r->next = gh->q_head;
        gh->q_head->prev = r;
        gh->q_head = r;
    } else {
        r->prev = gh->q_tail;
        gh->q_tail->next = r;
        gh->q_tail = r;
    }
}

static void q_unlink(rd_github_t *gh, gh_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        gh->q_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        gh->q_tail = r->prev;
    r->prev = r->next = NULL;
    r->in_queue = false;
}

void gh_req_fail_later(rd_github_t *gh, gh_req_t *r, int err)
{
    r->fail_err = err;
    r->next = NULL;
    r->prev = NULL;
    if (gh->fail_tail)
        gh->fail_tail->next = r;
    else
        gh->fail_head = r;
    gh->fail_tail = r;
    gh_gate_kick(gh);
}

static void req_finish(gh_req_t *r, int err, long status, const char *body, size_t len,
                       const char *link)
{
    r->done(r, err, status, body, len, link);
    req_free(r);
}

void gh_req_submit(rd_github_t *gh, gh_req_t *r)
{
    if (gh->closing) {
        gh_req_fail_later(gh, r, RD_ECANCELED);
        return;
    }
    if (r->priority && gh->q_head && !gh->q_head->priority) {
        /* Mutations (JIT configs, deletes) go before queued polls. */
        gh_q_push(gh, r, true);
    } else if (r->priority) {
        gh_req_t *after = gh->q_head;
        while (after && after->next && after->next->priority)
            after = after->next;
        if (after == NULL) {
            gh_q_push(gh, r, false);
        } else {
            r->in_queue = true;
            r->prev = after;
            r->next = after->next;
            if (after->next)
                after->next->prev = r;
            else
                gh->q_tail = r;
            after->next = r;
        }
    } else {
        gh_q_push(gh, r, false);
    }
    gh_gate_kick(gh);
}

void gh_req_submit_after(rd_github_t *gh, gh_req_t *r, uint64_t delay_ms)
{
    if (gh->closing) {
        gh_req_fail_later(gh, r, RD_ECANCELED);
        return;
    }
    r->not_before_ms = gh_now_ms() + (int64_t)delay_ms;
    r->prev = NULL;
    r->next = gh->delay_head;
    gh->delay_head = r;
    gh_gate_kick(gh);
}

/* Retries whose time has come go to the front of the queue; returns the
 * earliest time one still waits for, or 0. */
static int64_t delay_release(rd_github_t *gh, int64_t now)
{
    int64_t next = 0;
    for (gh_req_t **pp = &gh->delay_head; *pp;) {
        gh_req_t *r = *pp;
        if (r->not_before_ms <= now || gh->closing) {
            *pp = r->next;
            gh_q_push(gh, r, true);
            continue;
        }
        if (next == 0 || r->not_before_ms < next)
            next = r->not_before_ms;
        pp = &r->next;
    }
    return next;
}

void gh_queue_cancel(rd_github_t *gh)
{
    while (gh->delay_head) {
        gh_req_t *r = gh->delay_head;
        gh->delay_head = r->next;
        gh_req_fail_later(gh, r, RD_ECANCELED);
    }
    while (gh->q_head) {
        gh_req_t *r = gh->q_head;
        q_unlink(gh, r);
        gh_req_fail_later(gh, r, RD_ECANCELED);
    }
}

/* ------------------------------------------------------------------ rate limits */

static void update_ratelimit(rd_github_t *gh, const rd_http_response_t *res)
{
    if (res->rl_resource && strcmp(res->rl_resource, "core") != 0)
        return;
    if (res->rl_limit >= 0)
        gh->stats.rl_limit = res->rl_limit;
    if (res->rl_remaining >= 0)
        gh->stats.rl_remaining = res->rl_remaining;
    if (res->rl_reset >= 0)
        gh->stats.rl_reset = res->rl_reset;
}

static void hold(rd_github_t *gh, int64_t until, const char *why)
{
    if (until > gh->hold_until_ms) {
        gh->hold_until_ms = until;
        rd_warn(LOGC, "%s: holding all requests for %lld s", why,
                (long long)((until - gh_now_ms() + 999) / 1000));
    }
}

/* 403/429: a rate limit? Then hold and return true. */
static bool handle_rate_limit(rd_github_t *gh, const rd_http_response_t *res)
{
    int64_t now = gh_now_ms();
    int64_t retry_after = -1;
    if (res->retry_after) {
        char *end;
        long long v = strtoll(res->retry_after, &end, 10);
        /* Capped at an hour before scaling: a huge value would overflow, and no
         * limit GitHub sets lasts longer than its hourly window. */
        if (end != res->retry_after && v >= 0)
            retry_after = (v > 3600 ? 3600 : v) * 1000;
    }
    if (res->rl_remaining == 0) {
        int64_t until = res->rl_reset > 0 ? res->rl_reset * 1000 + 1000 : now + 60000;
        if (retry_after >= 0 && now + retry_after > until)
            until = now + retry_after;
        if (until > now + 2 * 3600 * 1000)
            until = now + 3600 * 1000; /* a clock far off: do not stop for days */
        hold(gh, until, "primary rate limit exceeded");
        return true;
    }
    char *msg = NULL, *doc = NULL;
    bool secondary = false;
    if (res->body && rd_ghjson_parse_error(res->body, res->body_len, &msg, &doc) == 0) {
        if (msg && (strcasestr(msg, "secondary rate limit") || strcasestr(msg, "abuse detection")))
            secondary = true;
        if (doc && (strstr(doc, "secondary-rate-limits") || strstr(doc, "abuse-rate-limits")))
            secondary = true;
    }
    free(msg);
    free(doc);
    if (secondary) {
        int64_t wait = retry_after;
        if (wait < 0) {
            /* No Retry-After: 60 s, then doubling while it keeps happening. */
            wait = GH_SECONDARY_DEFAULT_MS;
            for (unsigned i = 0; i < gh->secondary_hits && wait < GH_SECONDARY_CAP_MS; i++)
                wait *= 2;
            if (wait > GH_SECONDARY_CAP_MS)
                wait = GH_SECONDARY_CAP_MS;
        }
        gh->secondary_hits++;
        hold(gh, now + wait, "secondary rate limit");
        return true;
    }
    if (res->status == 429) {
        hold(gh, now + (retry_after >= 0 ? retry_after : GH_SECONDARY_DEFAULT_MS), "429");
        return true;
    }
    if (retry_after >= 0) {
        /* GitHub's retry rule, step 1: Retry-After present, wait that long, whatever
         * the message says (its wording drifts). */
        hold(gh, now + retry_after, "403 with Retry-After");
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ answers */

/* Answers that are outcomes the caller expects and reports itself, not
 * failures: logged at debug here. Deleting a runner registration: 404/410 means
 * it is already gone (success for us), 422 that it still runs a job (the
 * supervisor logs that at info and retries). */
static bool expected_answer(const gh_req_t *r, long st)
{
    if (strcmp(r->method, "DELETE") == 0)
        return st == 404 || st == 410 || st == 422;
    return false;
}

static int error_of_status(const gh_req_t *r, long st)
{
    switch (st) {
    case 401:
    case 403:
        return RD_EAUTH;
    case 404:
    case 410:
        return RD_ENOENT;
    case 409:
        return RD_EEXIST;
    case 422:
        return strcmp(r->method, "DELETE") == 0 ? RD_EBUSY : RD_EINVAL;
    default:
        return st >= 500 ? RD_EIO : RD_EPROTO;
    }
}

static void on_http_done(void *ud, const rd_http_response_t *res)
{
    gh_req_t *r = ud;
    rd_github_t *gh = r->gh;
    int64_t now = gh_now_ms();
    r->hreq = NULL;
    gh->inflight--;
    if (res->error != 0) {
        gh->stats.by_status[0]++;
        if (res->error != RD_ECANCELED) {
            rd_log(r->quiet ? RD_LOG_DEBUG : gh_fail_level(gh, r->scope), LOGC, "%s %s: %s%s%s",
                   r->method, r->url, rd_strerror(res->error), res->errmsg ? ": " : "",
                   res->errmsg ? res->errmsg : "");
            r->transient = true;
            r->timed_out = res->timed_out != 0;
            note_error(gh, r->scope, res->error == RD_ERANGE ? RD_EIO : res->error, "%s%s%s",
                       rd_strerror(res->error), res->errmsg ? ": " : "",
                       res->errmsg ? res->errmsg : "");
        }
        req_finish(r, res->error == RD_ERANGE ? RD_EIO : res->error, 0, NULL, 0, NULL);
        goto out;
    }
    long st = res->status;
    gh->stats.by_status[st >= 100 && st < 600 ? st / 100 : 0]++;
    update_ratelimit(gh, res);

    if (st == 304) {
        gh->stats.not_modified++;
        rd_pace_refund(gh->pace, r->charged_ms, now);
        if (r->ctr && r->ctr[1] > 0)
            r->ctr[1]--;
        rd_ghcache_hit_t hit;
        if (rd_ghcache_get(gh->cache, r->url, now, &hit) != 0) {
            /* We only send If-None-Match with a cached body; it was evicted
             * meanwhile: ask again unconditionally. */
            gh_q_push(gh, r, true);
            goto out;
        }
        gh->secondary_hits = 0;
        r->from_cache = true;
        req_finish(r, 0, 200, hit.body, hit.len, hit.link);
        goto out;
    }
    if ((st == 301 || st == 302 || st == 307 || st == 308) && res->location) {
        char *loc = res->location[0] == '/' ? rd_xasprintf("%s%s", gh->origin, res->location)
                                            : rd_xstrdup(res->location);
        if (r->redirects >= GH_MAX_REDIRECTS || !rd_ghurl_same_origin(gh->origin, loc)) {
            rd_warn(LOGC, "%s %s: redirect %s refused", r->method, r->url,
                    r->redirects >= GH_MAX_REDIRECTS ? "limit reached" : "to another host");
            free(loc);
            req_finish(r, RD_EPROTO, st, NULL, 0, NULL);
            goto out;
        }
        r->redirects++;
        free(r->url);
        r->url = loc;
        gh_q_push(gh, r, true);
        goto out;
    }
    if (st == 401 && r->auth == AUTH_TOKEN && gh->app && !r->retried_401) {
        /* The installation token expired or was revoked: renew once, retry. */
        gh_auth_rejected(gh, r);
        r->retried_401 = true;
        gh_q_push(gh, r, true);
        goto out;
    }
    if (st == 403 || st == 429) {
        if (handle_rate_limit(gh, res)) {
            gh->stats.rate_limited++;
            req_finish(r, RD_EAGAIN, st, NULL, 0, NULL);
            goto out;
        }
    }
    if (st >= 200 && st < 300) {
        gh->secondary_hits = 0;
        if (res->rl_remaining == 0 && res->rl_reset > 0)
            hold(gh, res->rl_reset * 1000 + 1000, "rate limit used up");
        /* GET bodies are cached (compacted) by the pager, which knows what matters. */
        r->resp_etag = st == 200 ? res->etag : NULL;
        req_finish(r, 0, st, res->body, res->body_len, res->link);
        goto out;
    }
    int err = error_of_status(r, st);
    {
        char *msg = NULL, *doc = NULL;
        if (res->body)
            rd_ghjson_parse_error(res->body, res->body_len, &msg, &doc);
        rd_log(expected_answer(r, st) || r->quiet ? RD_LOG_DEBUG : gh_fail_level(gh, r->scope),
               LOGC, "%s %s: HTTP %ld%s%s", r->method, r->url, st, msg ? ": " : "", msg ? msg : "");
        if (!expected_answer(r, st))
            note_error(gh, r->scope, err, "HTTP %ld%s%s", st, msg ? ": " : "", msg ? msg : "");
        free(msg);
        free(doc);
    }
    /* The operation decides what counts against the scope's backoff (once, after
     * its retries), not every request of it. */
    r->transient = st >= 500;
    req_finish(r, err, st, res->body, res->body_len, NULL);
out:
    gh_gate_kick(gh);
}

/* ------------------------------------------------------------------ gate */

static int send_req(rd_github_t *gh, gh_req_t *r, const char *cred)
{
    const char *hdr[8];
    size_t nh = 0;
    char *auth = NULL, *inm = NULL;
    hdr[nh++] = "Accept: application/vnd.github+json";
    hdr[nh++] = "X-GitHub-Api-Version: 2022-11-28";
    if (cred) {
        auth = rd_xasprintf("Authorization: Bearer %s", cred);
        hdr[nh++] = auth;
    }
    if (strcmp(r->method, "GET") == 0) {
        const char *etag = rd_ghcache_etag(gh->cache, r->url);
        if (etag) {
            inm = rd_xasprintf("If-None-Match: %s", etag);
            hdr[nh++] = inm;
        }
    }
    if (r->body)
        hdr[nh++] = "Content-Type: application/json";
    hdr[nh] = NULL;
    gh_wipe_free(r->token);
    r->token = cred ? rd_xstrdup(cred) : NULL;
    int rc = rd_http_request(gh->http, r->method, r->url, hdr, r->body, r->body_len, on_http_done,
                             r, &r->hreq);
    gh_wipe_free(auth);
    free(inm);
    if (rc == 0) {
        int64_t now = gh_now_ms();
        if (r->priority)
            rd_pace_charge_priority(gh->pace, now);
        else
            rd_pace_charge(gh->pace, now);
        r->charged_ms = now;
        if (r->ctr) {
            r->ctr[0]++;
            r->ctr[1]++;
        }
        gh->inflight++;
        gh->stats.requests++;
    }
    return rc;
}

void gh_gate_run(rd_github_t *gh)
{
    if (gh->gate_running)
        return;
    gh->gate_running = true;
    /* Failures first: they only need their callbacks. */
    while (gh->fail_head) {
        gh_req_t *r = gh->fail_head;
        gh->fail_head = r->next;
        if (gh->fail_head == NULL)
            gh->fail_tail = NULL;
        r->next = NULL;
        req_finish(r, r->fail_err, 0, NULL, 0, NULL);
    }
    int64_t wake_at = 0;
    int64_t delayed_at = delay_release(gh, gh_now_ms());
    while (gh->q_head && !gh->closing) {
        int64_t now = gh_now_ms();
        gh_req_t *r = gh->q_head;
        /* Rate-limit holds and scope backoff answer at once: the caller retries later.
         * The backoff of a scope holds its reads only: registering a runner or
         * deleting one does not wait because a listing of the same scope failed. */
        if (gh->hold_until_ms > now ||
            (!r->priority && r->scope && rd_github_retry_at_ms(gh, r->scope, now) > now)) {
            q_unlink(gh, r);
            req_finish(r, RD_EAGAIN, 0, NULL, 0, NULL);
            continue;
        }
        if (gh->inflight >= gh->max_inflight)
            break;
        int64_t at = rd_pace_request_at(gh->pace, now, r->priority);
        if (at > now) {
            wake_at = at;
            break;
        }
        q_unlink(gh, r);
        int err;
        const char *cred = gh_auth_for(gh, r, &err);
        if (err != 0) {
            req_finish(r, err, 0, NULL, 0, NULL);
            continue;
        }
        if (cred == NULL && r->auth != AUTH_NONE)
            continue; /* parked until its token arrives */
        int rc = send_req(gh, r, cred);
        if (rc != 0) {
            rd_warn(LOGC, "%s %s: cannot start: %s", r->method, r->url, rd_strerror(rc));
            req_finish(r, rc == RD_ECANCELED ? rc : RD_EIO, 0, NULL, 0, NULL);
        }
    }
    if (gh->closing) {
        while (gh->q_head) {
            gh_req_t *r = gh->q_head;
            q_unlink(gh, r);
            req_finish(r, RD_ECANCELED, 0, NULL, 0, NULL);
        }
    }
    gh->gate_running = false;
    if (delayed_at > 0 && (wake_at == 0 || delayed_at < wake_at))
        wake_at = delayed_at;
    if (gh->fail_head) {
        gh_gate_kick(gh);
    } else if (wake_at > 0 && !gh->closing && gh->gate_timer_at != -1) {
        /* (gate_timer_at == -1: a callback above asked for an immediate run.) */
        int64_t d = wake_at - gh_now_ms();
        if (d < 1)
            d = 1;
        gh->gate_timer_at = wake_at;
        uv_timer_start(&gh->gate_timer, gate_cb, (uint64_t)d, 0);
    }
}

static void gate_cb(uv_timer_t *t)
{
    rd_github_t *gh = rd_container_of(t, rd_github_t, gate_timer);
    gh->gate_timer_at = 0;
    gh_gate_run(gh);
}

void gh_gate_kick(rd_github_t *gh)
{
    if (uv_is_closing((uv_handle_t *)&gh->gate_timer))
        return;
    if (gh->gate_timer_at == -1)
        return; /* already armed for "now" */
    gh->gate_timer_at = -1;
    uv_timer_start(&gh->gate_timer, gate_cb, 0, 0);
}
