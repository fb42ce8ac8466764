/* github.c: the GitHub REST client on top of http.h.
 *
 * Layers, bottom up:
 *  - gh_req_t: one logical HTTP exchange (with redirects and one 401 retry).
 *    Every request goes through one FIFO gate that enforces, in order: the
 *    global rate-limit hold (primary / secondary limits), the per-scope
 *    backoff, authentication (an installation token may have to be fetched
 *    first), our own in-flight cap (max_connections, so curl never queues
 *    transfers whose timeouts would tick while waiting), and the pacer
 *    (request budget and rate cap). Completion callbacks always run from the
 *    loop, never from inside the call that queued the request.
 *  - paged GETs: follow Link rel="next" verbatim, with the ETag cache in front
 *    of every page.
 *  - operations (the public API): list queued jobs of a repo, org repos,
 *    runners, runner group id, JIT config, delete runner.
 *
 * Secrets: the PAT, installation tokens and JWTs are registered with the log
 * redactor and never logged; request headers are never logged at all. */
#include "runnerd/io/github.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/backoff.h"
#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/core/pace.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/readfile.h"

#define LOGC "github"
#define GH_MAX_BODY ((size_t)8 << 20)
#define GH_TOTAL_TIMEOUT_MS 20000
#define GH_MAX_REDIRECTS 3
/* Renew installation tokens this long before they expire. */
#define GH_TOKEN_RENEW_MS (5 * 60 * 1000)
/* ETag cache: bodies kept at most this many bytes in total (LRU beyond). */
/* Large enough for every run list of a 10,000-repository fleet (about 600 bytes
 * an entry): a cycle walks the cache in LRU order, so a cap below the working
 * set would evict each entry just before it is needed and lose every 304. */
#define GH_CACHE_MAX_BYTES ((size_t)32 << 20)
/* Entries unused this long are dropped (e.g. jobs of runs long finished). */
#define GH_CACHE_MAX_AGE_MS (2 * 3600 * 1000)
#define GH_SECONDARY_DEFAULT_MS 60000
#define GH_SECONDARY_CAP_MS (15 * 60 * 1000)
#define GH_BACKOFF_BASE_MS 1000
#define GH_BACKOFF_CAP_MS (5 * 60 * 1000)

/* ------------------------------------------------------------------ map */

/* A small string-keyed hash map with chaining; values are owned by the user. */
typedef struct map_ent {
    char *key;
    void *val;
    uint64_t hash;
    struct map_ent *next;
} map_ent_t;

typedef struct {
    map_ent_t **b;
    size_t nb, n;
} map_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void map_grow(map_t *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    map_ent_t **b = rd_xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++) {
        map_ent_t *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash % nb];
            b[e->hash % nb] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

static void *map_get(const map_t *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (map_ent_t *e = m->b[h % m->nb]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

/* Insert (key must not be present). */
static void map_put(map_t *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb * 3 / 4)
        map_grow(m);
    map_ent_t *e = rd_xmalloc(sizeof(*e));
    e->key = rd_xstrdup(key);
    e->val = val;
    e->hash = hash_str(key);
    e->next = m->b[e->hash % m->nb];
    m->b[e->hash % m->nb] = e;
    m->n++;
}

static void *map_del(map_t *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (map_ent_t **pp = &m->b[h % m->nb]; *pp; pp = &(*pp)->next) {
        map_ent_t *e = *pp;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            void *v = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

static void map_free(map_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        map_ent_t *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ types */

/* ETag cache entry, keyed by the exact URL. */
typedef struct cache_ent {
    char *url;
    char *etag;
    char *link;
    char *body;
    size_t len;
    size_t cost;                   /* bytes charged to the cache, overhead included */
    int64_t used_ms;               /* last stored or served */
    struct cache_ent *prev, *next; /* LRU, most recent first */
} cache_ent_t;

typedef enum { AUTH_NONE = 0, AUTH_TOKEN, AUTH_JWT } auth_kind_t;

struct gh_req;
typedef void (*gh_req_done_cb)(struct gh_req *r, int err, long status, const char *body, size_t len,
                               const char *link);

typedef struct gh_req {
    rd_github_t *gh;
    char *method;
    char *url;
    char *body;
    size_t body_len;
    char *scope; /* for backoff; NULL = none */
    char *owner; /* whose installation token authenticates it (App auth) */
    auth_kind_t auth;
    bool priority;
    bool retried_401;
    bool in_queue;
    int redirects;
    int64_t charged_ms;
    char *token; /* the credential the request went out with (borrowed copy) */
    rd_http_req_t *hreq;
    gh_req_done_cb done;
    void *ud;
    unsigned *ctr;         /* the operation's [sent, charged] counters, or NULL */
    bool from_cache;       /* the body handed to done comes from the ETag cache */
    const char *resp_etag; /* during done: the fresh response's ETag, or NULL */
    /* Failure delivered from the loop (queued via fail list). */
    int fail_err;
    struct gh_req *next, *prev; /* gate queue / waiter list / fail list */
} gh_req_t;

/* Installation token per owner (or one shared entry for a configured installation id). */
typedef struct {
    char *key;
    int64_t inst_id;
    char *token;
    int64_t expires_ms;
    int64_t renew_ms; /* renew from this time on */
    bool fetching;
    int last_err;
    int64_t failed_until_ms;
    gh_req_t *waiters_head, *waiters_tail;
} inst_t;

typedef struct {
    rd_backoff_t b;
} scope_state_t;

struct rd_github {
    uv_loop_t *loop;
    rd_http_t *http;
    char *api_url;
    char *origin; /* "scheme://host[:port]" of api_url, for same-host checks */
    unsigned max_inflight;
    /* credentials */
    bool app;
    char *pat;
    int64_t app_id;
    rd_auth_key_t *app_key;
    int64_t installation_id;
    char *jwt;
    int64_t jwt_exp_ms;
    map_t insts;
    /* gate */
    gh_req_t *q_head, *q_tail;
    gh_req_t *fail_head, *fail_tail;
    uv_timer_t gate_timer;
    int64_t gate_timer_at;
    bool gate_running;
    size_t inflight;
    rd_pace_t *pace;
    /* rate limits */
    int64_t hold_until_ms; /* primary / secondary limit: nothing before this */
    unsigned secondary_hits;
    map_t scopes; /* scope -> scope_state_t */
    uint64_t rnd;
    /* caches */
    map_t cache; /* url -> cache_ent_t */
    cache_ent_t *lru_head, *lru_tail;
    size_t cache_bytes;
    rd_github_stats_t stats;
    unsigned cb_sent, cb_charged;            /* for rd_github_op_counts */
    const rd_github_assignment_t *cb_assign; /* for rd_github_op_assignments */
    size_t cb_nassign;
    /* close */
    bool closing;
    int open_parts;
    void (*closed_cb)(void *);
    void *closed_ud;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ helpers */

static char *origin_of(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    char *o = rd_xstrndup(url, (size_t)(p - url) + n);
    for (char *c = o; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return o;
}

/* True when url is on the API's scheme+host+port. */
static bool same_origin(const rd_github_t *gh, const char *url)
{
    size_t n = strlen(gh->origin);
    if (strncasecmp(url, gh->origin, n) != 0)
        return false;
    char c = url[n];
    return c == '\0' || c == '/' || c == '?' || c == '#';
}

/* Read a credential file: whole content, surrounding whitespace trimmed. */
static int read_secret_file(const char *path, char **out)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = rd_read_file(path, 1u << 20, RD_READ_SECRET, &buf, &len);
    if (rc != 0)
        return rc;
    size_t all = len, a = 0;
    while (a < len && isspace((unsigned char)buf[a]))
        a++;
    while (len > a && isspace((unsigned char)buf[len - 1]))
        len--;
    *out = rd_xstrndup(buf + a, len - a);
    explicit_bzero(buf, all);
    free(buf);
    return 0;
}

static char *trimmed_dup(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return rd_xstrndup(s, n);
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

/* Percent-encode a path segment (owner, repo, names). */
static char *seg(const char *s)
{
    size_t n = strlen(s);
    char *o = rd_xmalloc(n * 3 + 1), *p = o;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.') {
            *p++ = (char)c;
        } else {
            sprintf(p, "%%%02X", c);
            p += 3;
        }
    }
    *p = '\0';
    return o;
}

/* Parse an RFC 8288 Link header for rel="next". */
static char *link_next(const char *link)
{
    if (link == NULL)
        return NULL;
    const char *p = link;
    while (*p) {
        const char *lt = strchr(p, '<');
        if (lt == NULL)
            return NULL;
        const char *gt = strchr(lt, '>');
        if (gt == NULL)
            return NULL;
        const char *end = strchr(gt, ',');
        /* A URL may not contain '>' but params end at the next ',' that starts a new link. */
        size_t plen = end ? (size_t)(end - gt) : strlen(gt);
        const char *rel = NULL;
        for (const char *q = gt; q < gt + plen; q++) {
            if (strncasecmp(q, "rel=", 4) == 0) {
                rel = q + 4;
                break;
            }
        }
        if (rel) {
            if (*rel == '"')
                rel++;
            /* rel may list several space-separated types. */
            const char *r = rel;
            while (r < gt + plen && *r != '"' && *r != ';' && *r != ',') {
                size_t wl = strcspn(r, " \";,");
                if (wl == 4 && strncasecmp(r, "next", 4) == 0)
                    return rd_xstrndup(lt + 1, (size_t)(gt - lt - 1));
                r += wl;
                while (*r == ' ')
                    r++;
            }
        }
        if (end == NULL)
            return NULL;
        p = end + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ ETag cache */

static void cache_unlink(rd_github_t *gh, cache_ent_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        gh->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        gh->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void cache_push_front(rd_github_t *gh, cache_ent_t *e)
{
    e->prev = NULL;
    e->next = gh->lru_head;
    if (gh->lru_head)
        gh->lru_head->prev = e;
    gh->lru_head = e;
    if (gh->lru_tail == NULL)
        gh->lru_tail = e;
}

static void cache_ent_free(cache_ent_t *e)
{
    free(e->url);
    free(e->etag);
    free(e->link);
    free(e->body);
    free(e);
}

static void cache_drop(rd_github_t *gh, cache_ent_t *e)
{
    cache_unlink(gh, e);
    map_del(&gh->cache, e->url);
    gh->cache_bytes -= e->cost;
    cache_ent_free(e);
}

static cache_ent_t *cache_get(rd_github_t *gh, const char *url)
{
    cache_ent_t *e = map_get(&gh->cache, url);
    if (e) {
        cache_unlink(gh, e);
        cache_push_front(gh, e);
        e->used_ms = now_ms();
    }
    return e;
}

static void cache_put(rd_github_t *gh, const char *url, const char *etag, const char *link,
                      const char *body, size_t len)
{
    cache_ent_t *e = map_get(&gh->cache, url);
    if (e)
        cache_drop(gh, e);
    size_t cost = sizeof(*e) + len + 2 * strlen(url) + strlen(etag) + (link ? strlen(link) : 0) +
                  64; /* map entry and allocator overhead */
    if (cost > GH_CACHE_MAX_BYTES / 4)
        return; /* not worth evicting everything else for */
    e = rd_xcalloc(1, sizeof(*e));
    e->cost = cost;
    e->used_ms = now_ms();
    e->url = rd_xstrdup(url);
    e->etag = rd_xstrdup(etag);
    e->link = link ? rd_xstrdup(link) : NULL;
    e->body = rd_xstrndup(body ? body : "", len);
    e->len = len;
    map_put(&gh->cache, url, e);
    cache_push_front(gh, e);
    gh->cache_bytes += cost;
    while (gh->lru_tail && gh->lru_tail != e &&
           (gh->cache_bytes > GH_CACHE_MAX_BYTES ||
            e->used_ms - gh->lru_tail->used_ms > GH_CACHE_MAX_AGE_MS))
        cache_drop(gh, gh->lru_tail);
}

/* ------------------------------------------------------------------ scopes */

static scope_state_t *scope_state(rd_github_t *gh, const char *scope)
{
    scope_state_t *s = map_get(&gh->scopes, scope);
    if (s == NULL) {
        s = rd_xcalloc(1, sizeof(*s));
        rd_backoff_init(&s->b, GH_BACKOFF_BASE_MS, GH_BACKOFF_CAP_MS);
        map_put(&gh->scopes, scope, s);
    }
    return s;
}

/* Warn about the first failure of a scope; repeats while it backs off are debug. */
static rd_log_level_t fail_level(rd_github_t *gh, const char *scope)
{
    scope_state_t *s = scope ? map_get(&gh->scopes, scope) : NULL;
    return s && s->b.failures > 0 ? RD_LOG_DEBUG : RD_LOG_WARN;
}

static void scope_failed(rd_github_t *gh, const char *scope)
{
    if (scope == NULL)
        return;
    scope_state_t *s = scope_state(gh, scope);
    uint64_t d = rd_backoff_fail(&s->b, (uint64_t)now_ms(), rd_rand_next(&gh->rnd));
    rd_debug(LOGC, "%s: backing off %llu ms", scope, (unsigned long long)d);
}

static void scope_ok(rd_github_t *gh, const char *scope)
{
    if (scope == NULL)
        return;
    scope_state_t *s = map_get(&gh->scopes, scope);
    if (s)
        rd_backoff_success(&s->b);
}

int64_t rd_github_retry_at(const rd_github_t *gh, const char *scope)
{
    int64_t now = now_ms(), at = 0;
    if (gh->hold_until_ms > now)
        at = gh->hold_until_ms;
    if (scope) {
        scope_state_t *s = map_get(&gh->scopes, scope);
        if (s && s->b.until_ms > (uint64_t)now && (int64_t)s->b.until_ms > at)
            at = (int64_t)s->b.until_ms;
    }
    return at;
}

/* ------------------------------------------------------------------ requests */

static void gate_kick(rd_github_t *gh);
static void gate_cb(uv_timer_t *t);
static void inst_fetch(rd_github_t *gh, inst_t *in, const char *scope_hint);

static void req_free(gh_req_t *r)
{
    free(r->method);
    free(r->url);
    free(r->body);
    free(r->scope);
    free(r->owner);
    free(r->token);
    free(r);
}

static gh_req_t *req_new(rd_github_t *gh, const char *method, const char *url, const char *scope,
                         const char *owner, auth_kind_t auth, gh_req_done_cb done, void *ud)
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

static void q_push(rd_github_t *gh, gh_req_t *r, bool front)
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

/* Finish a request with an error, from the loop (the gate drains the fail list). */
static void req_fail_later(rd_github_t *gh, gh_req_t *r, int err)
{
    r->fail_err = err;
    r->next = NULL;
    r->prev = NULL;
    if (gh->fail_tail)
        gh->fail_tail->next = r;
    else
        gh->fail_head = r;
    gh->fail_tail = r;
    gate_kick(gh);
}

static void req_finish(gh_req_t *r, int err, long status, const char *body, size_t len,
                       const char *link)
{
    r->done(r, err, status, body, len, link);
    req_free(r);
}

/* Queue a request; it completes from the loop. */
static void req_submit(rd_github_t *gh, gh_req_t *r)
{
    if (gh->closing) {
        req_fail_later(gh, r, RD_ECANCELED);
        return;
    }
    if (r->priority && gh->q_head && !gh->q_head->priority) {
        /* Mutations (JIT configs, deletes) go before queued polls. */
        q_push(gh, r, true);
    } else if (r->priority) {
        gh_req_t *after = gh->q_head;
        while (after && after->next && after->next->priority)
            after = after->next;
        if (after == NULL) {
            q_push(gh, r, false);
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
        q_push(gh, r, false);
    }
    gate_kick(gh);
}

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
                (long long)((until - now_ms() + 999) / 1000));
    }
}

/* 403/429: a rate limit? Then hold and return true. */
static bool handle_rate_limit(rd_github_t *gh, const rd_http_response_t *res)
{
    int64_t now = now_ms();
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

static inst_t *inst_for(rd_github_t *gh, const char *owner);

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

static void on_http_done(void *ud, const rd_http_response_t *res)
{
    gh_req_t *r = ud;
    rd_github_t *gh = r->gh;
    int64_t now = now_ms();
    r->hreq = NULL;
    gh->inflight--;
    if (res->error != 0) {
        gh->stats.by_status[0]++;
        if (res->error != RD_ECANCELED) {
            rd_log(fail_level(gh, r->scope), LOGC, "%s %s: %s%s%s", r->method, r->url,
                   rd_strerror(res->error), res->errmsg ? ": " : "",
                   res->errmsg ? res->errmsg : "");
            scope_failed(gh, r->scope);
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
        cache_ent_t *e = cache_get(gh, r->url);
        if (e == NULL) {
            /* We only send If-None-Match with a cached body; it was evicted
             * meanwhile: ask again unconditionally. */
            q_push(gh, r, true);
            goto out;
        }
        gh->secondary_hits = 0;
        r->from_cache = true;
        req_finish(r, 0, 200, e->body, e->len, e->link);
        goto out;
    }
    if ((st == 301 || st == 302 || st == 307 || st == 308) && res->location) {
        char *loc = res->location[0] == '/' ? rd_xasprintf("%s%s", gh->origin, res->location)
                                            : rd_xstrdup(res->location);
        if (r->redirects >= GH_MAX_REDIRECTS || !same_origin(gh, loc)) {
            rd_warn(LOGC, "%s %s: redirect %s refused", r->method, r->url,
                    r->redirects >= GH_MAX_REDIRECTS ? "limit reached" : "to another host");
            free(loc);
            req_finish(r, RD_EPROTO, st, NULL, 0, NULL);
            goto out;
        }
        r->redirects++;
        free(r->url);
        r->url = loc;
        q_push(gh, r, true);
        goto out;
    }
    if (st == 401 && r->auth == AUTH_TOKEN && gh->app && !r->retried_401) {
        /* The installation token expired or was revoked: renew once, retry. */
        inst_t *in = inst_for(gh, r->owner);
        if (in->token && r->token && strcmp(in->token, r->token) == 0) {
            rd_log_forget_secret(in->token);
            wipe_free(in->token);
            in->token = NULL;
            in->expires_ms = in->renew_ms = 0;
        }
        r->retried_401 = true;
        q_push(gh, r, true);
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
    int err;
    switch (st) {
    case 401:
    case 403:
        err = RD_EAUTH;
        break;
    case 404:
    case 410:
        err = RD_ENOENT;
        break;
    case 409:
        err = RD_EEXIST;
        break;
    case 422:
        err = strcmp(r->method, "DELETE") == 0 ? RD_EBUSY : RD_EINVAL;
        break;
    default:
        err = st >= 500 ? RD_EIO : RD_EPROTO;
        break;
    }
    {
        char *msg = NULL, *doc = NULL;
        if (res->body)
            rd_ghjson_parse_error(res->body, res->body_len, &msg, &doc);
        rd_log(expected_answer(r, st) ? RD_LOG_DEBUG : fail_level(gh, r->scope), LOGC,
               "%s %s: HTTP %ld%s%s", r->method, r->url, st, msg ? ": " : "", msg ? msg : "");
        free(msg);
        free(doc);
    }
    if (st >= 500 || err == RD_EAUTH || err == RD_EPROTO)
        scope_failed(gh, r->scope);
    req_finish(r, err, st, res->body, res->body_len, NULL);
out:
    gate_kick(gh);
}

/* ------------------------------------------------------------------ auth */

static void inst_free(void *p);
static void q_push(rd_github_t *gh, gh_req_t *r, bool front);
static void gate_kick(rd_github_t *gh);

/* Forget every installation and token (credentials or server changed);
 * requests waiting for a token go back to the queue and ask again. */
static void inst_flush(rd_github_t *gh)
{
    for (size_t i = 0; i < gh->insts.nb; i++) {
        for (map_ent_t *e = gh->insts.b[i]; e; e = e->next) {
            inst_t *in = e->val;
            gh_req_t *w = in->waiters_head, *next;
            in->waiters_head = in->waiters_tail = NULL;
            for (; w; w = next) {
                next = w->next;
                q_push(gh, w, true);
            }
        }
    }
    map_free(&gh->insts, inst_free);
    if (gh->q_head)
        gate_kick(gh);
}

static void inst_free(void *p)
{
    inst_t *in = p;
    if (in->token)
        rd_log_forget_secret(in->token);
    wipe_free(in->token);
    free(in->key);
    free(in);
}

static inst_t *inst_for(rd_github_t *gh, const char *owner)
{
    char key[256];
    if (gh->installation_id > 0) {
        snprintf(key, sizeof(key), "#%lld", (long long)gh->installation_id);
    } else {
        snprintf(key, sizeof(key), "%s", owner ? owner : "");
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    inst_t *in = map_get(&gh->insts, key);
    if (in == NULL) {
        in = rd_xcalloc(1, sizeof(*in));
        in->key = rd_xstrdup(key);
        in->inst_id = gh->installation_id;
        map_put(&gh->insts, key, in);
    }
    return in;
}

/* A JWT for App endpoints, reused until a minute before it expires. */
static const char *app_jwt(rd_github_t *gh)
{
    int64_t now = now_ms();
    if (gh->jwt && gh->jwt_exp_ms - 60000 > now)
        return gh->jwt;
    if (gh->jwt) {
        rd_log_forget_secret(gh->jwt);
        wipe_free(gh->jwt);
        gh->jwt = NULL;
    }
    char *jwt = NULL;
    int64_t exp = 0;
    int rc =
        gh->app_key ? rd_auth_app_jwt(gh->app_key, gh->app_id, now / 1000, &jwt, &exp) : RD_EINVAL;
    if (rc != 0) {
        rd_error(LOGC, "cannot sign the GitHub App JWT: %s", rd_strerror(rc));
        return NULL;
    }
    rd_log_add_secret(jwt);
    gh->jwt = jwt;
    gh->jwt_exp_ms = exp * 1000;
    return gh->jwt;
}

static void inst_wake(rd_github_t *gh, inst_t *in, int err)
{
    gh_req_t *w = in->waiters_head, *next;
    in->waiters_head = in->waiters_tail = NULL;
    /* Back to the front of the queue, keeping their order. */
    gh_req_t *rev = NULL;
    for (; w; w = next) {
        next = w->next;
        w->next = rev;
        rev = w;
    }
    for (w = rev; w; w = next) {
        next = w->next;
        if (err != 0)
            req_fail_later(gh, w, err);
        else
            q_push(gh, w, true);
    }
    gate_kick(gh);
}

typedef struct {
    rd_github_t *gh;
    char *key;
} inst_op_t;

static void inst_op_free(inst_op_t *op)
{
    free(op->key);
    free(op);
}

static void inst_failed(rd_github_t *gh, inst_t *in, int err)
{
    in->fetching = false;
    in->last_err = err;
    /* Do not hammer the token endpoint: retry a failed owner after 30 s. */
    in->failed_until_ms = now_ms() + 30000;
    inst_wake(gh, in, err == RD_ECANCELED ? err : (err == RD_EAGAIN ? RD_EAGAIN : RD_EAUTH));
}

static void on_token(gh_req_t *r, int err, long status, const char *body, size_t len,
                     const char *link)
{
    inst_op_t *op = r->ud;
    rd_github_t *gh = op->gh;
    inst_t *in = map_get(&gh->insts, op->key);
    inst_op_free(op);
    if (in == NULL)
        return;
    char *tok = NULL;
    int64_t exp = 0;
    if (err == 0 && rd_ghjson_parse_token(body, len, &tok, &exp) != 0)
        err = RD_EPROTO;
    if (err != 0) {
        rd_error(LOGC, "installation %lld: access token request failed: %s", (long long)in->inst_id,
                 rd_strerror(err));
        inst_failed(gh, in, err);
        return;
    }
    rd_log_add_secret(tok);
    if (in->token) {
        rd_log_forget_secret(in->token);
        wipe_free(in->token);
    }
    in->token = tok;
    in->expires_ms = exp;
    /* Renew 5 min before expiry, or after 3/4 of a shorter life. */
    int64_t now = now_ms(), margin = GH_TOKEN_RENEW_MS;
    if (exp - now < 4 * margin)
        margin = (exp - now) / 4;
    in->renew_ms = exp - margin;
    in->fetching = false;
    in->last_err = 0;
    rd_info(LOGC, "installation %lld: new access token, expires in %lld s", (long long)in->inst_id,
            (long long)((exp - now_ms()) / 1000));
    inst_wake(gh, in, 0);
}

static void token_request(rd_github_t *gh, inst_t *in)
{
    char *url = rd_xasprintf("%s/app/installations/%lld/access_tokens", gh->api_url,
                             (long long)in->inst_id);
    inst_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->key = rd_xstrdup(in->key);
    gh_req_t *r = req_new(gh, "POST", url, NULL, NULL, AUTH_JWT, on_token, op);
    free(url);
    q_push(gh, r, true);
    gate_kick(gh);
}

static void on_installation(gh_req_t *r, int err, long status, const char *body, size_t len,
                            const char *link)
{
    inst_op_t *op = r->ud;
    rd_github_t *gh = op->gh;
    inst_t *in = map_get(&gh->insts, op->key);
    inst_op_free(op);
    if (in == NULL)
        return;
    int64_t id = 0;
    char *acct = NULL;
    if (err == 0 && rd_ghjson_parse_installation(body, len, &id, &acct) != 0)
        err = RD_EPROTO;
    free(acct);
    if (err != 0) {
        rd_error(LOGC, "no GitHub App installation found for %s: %s", in->key, rd_strerror(err));
        inst_failed(gh, in, err);
        return;
    }
    in->inst_id = id;
    token_request(gh, in);
}

/* Look up the installation (unless known) and fetch a token. scope_hint
 * "repos/O/R" uses the repository's installation endpoint (works for user
 * accounts too), else the org's. */
static void inst_fetch(rd_github_t *gh, inst_t *in, const char *scope_hint)
{
    in->fetching = true;
    if (in->inst_id > 0) {
        token_request(gh, in);
        return;
    }
    char *url;
    if (scope_hint && strncmp(scope_hint, "repos/", 6) == 0)
        url = rd_xasprintf("%s/%s/installation", gh->api_url, scope_hint);
    else {
        char *o = seg(in->key);
        url = rd_xasprintf("%s/orgs/%s/installation", gh->api_url, o);
        free(o);
    }
    inst_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->key = rd_xstrdup(in->key);
    gh_req_t *r = req_new(gh, "GET", url, NULL, NULL, AUTH_JWT, on_installation, op);
    r->priority = true;
    free(url);
    q_push(gh, r, true);
    gate_kick(gh);
}

/* The credential for r now, or NULL when r has to wait (then it is parked) or failed. */
static const char *auth_for(rd_github_t *gh, gh_req_t *r, int *err)
{
    *err = 0;
    if (r->auth == AUTH_NONE)
        return NULL;
    if (r->auth == AUTH_JWT) {
        const char *j = app_jwt(gh);
        if (j == NULL)
            *err = RD_EAUTH;
        return j;
    }
    if (!gh->app)
        return gh->pat;
    inst_t *in = inst_for(gh, r->owner);
    int64_t now = now_ms();
    if (in->token && now < in->renew_ms)
        return in->token;
    if (!in->fetching && in->failed_until_ms > now) {
        *err = in->last_err == RD_EAGAIN ? RD_EAGAIN : RD_EAUTH;
        return NULL;
    }
    /* Park r on the owner's waiters and fetch (once). */
    r->next = NULL;
    r->prev = NULL;
    if (in->waiters_tail)
        in->waiters_tail->next = r;
    else
        in->waiters_head = r;
    in->waiters_tail = r;
    if (!in->fetching)
        inst_fetch(gh, in, r->scope);
    return NULL;
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
        cache_ent_t *e = map_get(&gh->cache, r->url);
        if (e) {
            inm = rd_xasprintf("If-None-Match: %s", e->etag);
            hdr[nh++] = inm;
        }
    }
    if (r->body)
        hdr[nh++] = "Content-Type: application/json";
    hdr[nh] = NULL;
    free(r->token);
    r->token = cred ? rd_xstrdup(cred) : NULL;
    int rc = rd_http_request(gh->http, r->method, r->url, hdr, r->body, r->body_len, on_http_done,
                             r, &r->hreq);
    wipe_free(auth);
    free(inm);
    if (rc == 0) {
        int64_t now = now_ms();
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

static void gate_run(rd_github_t *gh)
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
    while (gh->q_head && !gh->closing) {
        int64_t now = now_ms();
        gh_req_t *r = gh->q_head;
        /* Rate-limit holds and scope backoff answer at once: the caller retries later. */
        if (gh->hold_until_ms > now || (r->scope && rd_github_retry_at(gh, r->scope) > now)) {
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
        const char *cred = auth_for(gh, r, &err);
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
    if (gh->fail_head) {
        gate_kick(gh);
    } else if (wake_at > 0 && !gh->closing && gh->gate_timer_at != -1) {
        /* (gate_timer_at == -1: a callback above asked for an immediate run.) */
        int64_t d = wake_at - now_ms();
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
    gate_run(gh);
}

/* Run the gate soon, from the loop (never synchronously). */
static void gate_kick(rd_github_t *gh)
{
    if (uv_is_closing((uv_handle_t *)&gh->gate_timer))
        return;
    if (gh->gate_timer_at == -1)
        return; /* already armed for "now" */
    gh->gate_timer_at = -1;
    uv_timer_start(&gh->gate_timer, gate_cb, 0, 0);
}

/* ------------------------------------------------------------------ compaction */

/* The only keys any list parser reads (ghjson.c). Everything else GitHub
 * sends (URLs, owners, head commits: 95% of a repository or run object) is
 * dropped before a body is parsed into structs or kept in the ETag cache. */
static bool keep_key(const char *k)
{
    static const char *const keys[] = {
        "id",          "run_id",        "status",    "labels",   "created_at",    "runner_id",
        "runner_name", "name",          "full_name", "archived", "disabled",      "busy",
        "total_count", "workflow_runs", "jobs",      "runners",  "runner_groups", "repositories",
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(keys); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static json_object *compact_obj(json_object *o, int depth)
{
    if (depth > 8)
        return NULL;
    switch (json_object_get_type(o)) {
    case json_type_object: {
        json_object *n = json_object_new_object();
        json_object_object_foreach(o, k, v)
        {
            if (!keep_key(k))
                continue;
            json_object *c = compact_obj(v, depth + 1);
            json_object_object_add(n, k, c);
        }
        return n;
    }
    case json_type_array: {
        size_t len = json_object_array_length(o);
        json_object *n = json_object_new_array_ext((int)len);
        for (size_t i = 0; i < len; i++)
            json_object_array_add(n, compact_obj(json_object_array_get_idx(o, i), depth + 1));
        return n;
    }
    default:
        return json_object_get(o); /* share scalars (and null) */
    }
}

/* Parse body and re-serialize only the keys we use; NULL when it is not JSON. */
static char *compact_json(const char *body, size_t len, size_t *out_len)
{
    if (body == NULL || len == 0 || len > INT32_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    bool ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success;
    if (ok) {
        for (size_t i = json_tokener_get_parse_end(tok); i < len && ok; i++)
            ok = isspace((unsigned char)body[i]) || body[i] == '\0';
    }
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    json_object *c = compact_obj(o, 0);
    json_object_put(o);
    size_t n = 0;
    const char *txt = json_object_to_json_string_length(c, JSON_C_TO_STRING_PLAIN, &n);
    char *out = rd_xstrndup(txt, n);
    json_object_put(c);
    *out_len = n;
    return out;
}

/* ------------------------------------------------------------------ paged GET */

typedef struct pager pager_t;
/* One page: parse it. Returns 0 or RD_E*. */
typedef int (*pager_page_cb)(pager_t *pg, const char *body, size_t len);
typedef void (*pager_done_cb)(pager_t *pg, int err);

struct pager {
    rd_github_t *gh;
    char *scope, *owner;
    pager_page_cb page;
    pager_done_cb done;
    void *ud;
    unsigned pages;
    unsigned *ctr;
};

static void pager_on_resp(gh_req_t *r, int err, long status, const char *body, size_t len,
                          const char *link);

static void pager_free(pager_t *pg)
{
    free(pg->scope);
    free(pg->owner);
    free(pg);
}

static void pager_get(pager_t *pg, const char *url)
{
    gh_req_t *r = req_new(pg->gh, "GET", url, pg->scope, pg->owner, AUTH_TOKEN, pager_on_resp, pg);
    r->ctr = pg->ctr;
    req_submit(pg->gh, r);
}

static void pager_start(rd_github_t *gh, const char *url, const char *scope, const char *owner,
                        pager_page_cb page, pager_done_cb done, void *ud, unsigned *ctr)
{
    pager_t *pg = rd_xcalloc(1, sizeof(*pg));
    pg->ctr = ctr;
    pg->gh = gh;
    pg->scope = rd_xstrdup(scope);
    pg->owner = rd_xstrdup(owner);
    pg->page = page;
    pg->done = done;
    pg->ud = ud;
    pager_get(pg, url);
}

/* Pages beyond this are not followed (1000 pages of 100 items). */
#define GH_MAX_PAGES 1000

static void pager_on_resp(gh_req_t *r, int err, long status, const char *body, size_t len,
                          const char *link)
{
    pager_t *pg = r->ud;
    rd_github_t *gh = pg->gh;
    char *compact = NULL;
    if (err == 0 && !r->from_cache) {
        compact = compact_json(body, len, &len);
        if (compact == NULL)
            err = RD_EPROTO;
        body = compact;
    }
    if (err == 0) {
        err = pg->page(pg, body, len);
        if (err == 0 && compact && r->resp_etag)
            cache_put(gh, r->url, r->resp_etag, link, compact, len);
        if (err != 0) {
            rd_log(fail_level(gh, pg->scope), LOGC, "GET %s: unexpected payload", r->url);
            scope_failed(gh, pg->scope);
            /* A cached body that no longer parses must not be served again. */
            cache_ent_t *e = map_get(&gh->cache, r->url);
            if (e)
                cache_drop(gh, e);
        }
    }
    pg->pages++;
    char *next = err == 0 ? link_next(link) : NULL;
    if (next && pg->pages >= GH_MAX_PAGES) {
        rd_warn(LOGC, "GET %s: more than %d pages, stopping", r->url, GH_MAX_PAGES);
        free(next);
        next = NULL;
    }
    if (next && !same_origin(gh, next)) {
        /* Never send credentials to another host. */
        rd_warn(LOGC, "GET %s: next page is on another host, refused", r->url);
        free(next);
        next = NULL;
        err = RD_EPROTO;
    }
    free(compact);
    if (next && !gh->closing) {
        pager_get(pg, next);
        free(next);
        return;
    }
    free(next);
    pg->done(pg, err);
    pager_free(pg);
}

/* ------------------------------------------------------------------ ops: queued jobs */

typedef struct {
    rd_github_t *gh;
    char *owner, *repo, *scope, *base;
    rd_github_jobs_cb cb;
    void *ud;
    unsigned pending;
    int err;
    int64_t *runs; /* run ids whose jobs were asked for */
    size_t nruns, cruns;
    rd_gh_jobs_t jobs;
    size_t cjobs;
    rd_github_assignment_t *assign; /* in_progress jobs and their runners (names owned) */
    size_t nassign, cassign;
    unsigned ctr[2];
} qj_op_t;

static void qj_finish_if_done(qj_op_t *op)
{
    if (op->pending > 0)
        return;
    rd_github_t *gh = op->gh;
    if (op->err == 0)
        scope_ok(gh, op->scope);
    gh->cb_sent = op->ctr[0];
    gh->cb_charged = op->ctr[1];
    gh->cb_assign = op->err == 0 ? op->assign : NULL;
    gh->cb_nassign = op->err == 0 ? op->nassign : 0;
    op->cb(op->ud, op->err, op->err == 0 ? &op->jobs : NULL);
    gh->cb_sent = gh->cb_charged = 0;
    gh->cb_assign = NULL;
    gh->cb_nassign = 0;
    for (size_t i = 0; i < op->nassign; i++)
        free((char *)op->assign[i].runner_name);
    free(op->assign);
    rd_gh_jobs_free(&op->jobs);
    free(op->runs);
    free(op->owner);
    free(op->repo);
    free(op->scope);
    free(op->base);
    free(op);
}

static void qj_fail(qj_op_t *op, int err)
{
    if (op->err == 0 || op->err == RD_ECANCELED)
        op->err = err;
}

static int qj_jobs_page(pager_t *pg, const char *body, size_t len)
{
    qj_op_t *op = pg->ud;
    rd_gh_jobs_t page;
    if (rd_ghjson_parse_jobs(body, len, &page) != 0)
        return RD_EPROTO;
    for (size_t i = 0; i < page.n; i++) {
        rd_gh_job_t *j = &page.v[i];
        if (j->status == RD_GH_IN_PROGRESS && j->runner_name != NULL && j->runner_name[0]) {
            if (op->nassign == op->cassign) {
                op->cassign = op->cassign ? op->cassign * 2 : 8;
                op->assign = rd_xrealloc(op->assign, op->cassign * sizeof(*op->assign));
            }
            op->assign[op->nassign].job_id = j->id;
            op->assign[op->nassign].runner_name = rd_xstrdup(j->runner_name);
            op->nassign++;
            continue;
        }
        if (j->status != RD_GH_QUEUED)
            continue;
        bool dup = false;
        for (size_t k = 0; k < op->jobs.n && !dup; k++)
            dup = op->jobs.v[k].id == j->id;
        if (dup)
            continue;
        if (op->jobs.n == op->cjobs) {
            op->cjobs = op->cjobs ? op->cjobs * 2 : 8;
            op->jobs.v = rd_xrealloc(op->jobs.v, op->cjobs * sizeof(rd_gh_job_t));
        }
        op->jobs.v[op->jobs.n++] = *j;
        memset(j, 0, sizeof(*j)); /* moved */
    }
    rd_gh_jobs_free(&page);
    return 0;
}

static void qj_pager_done(pager_t *pg, int err)
{
    qj_op_t *op = pg->ud;
    if (err != 0)
        qj_fail(op, err);
    op->pending--;
    qj_finish_if_done(op);
}

static int qj_runs_page(pager_t *pg, const char *body, size_t len)
{
    qj_op_t *op = pg->ud;
    rd_gh_runs_t runs;
    if (rd_ghjson_parse_runs(body, len, &runs) != 0)
        return RD_EPROTO;
    for (size_t i = 0; i < runs.n && op->err == 0; i++) {
        int64_t id = runs.v[i].id;
        bool dup = false;
        for (size_t k = 0; k < op->nruns && !dup; k++)
            dup = op->runs[k] == id;
        if (dup)
            continue;
        if (op->nruns == op->cruns) {
            op->cruns = op->cruns ? op->cruns * 2 : 8;
            op->runs = rd_xrealloc(op->runs, op->cruns * sizeof(int64_t));
        }
        op->runs[op->nruns++] = id;
        char *url = rd_xasprintf("%s/actions/runs/%lld/jobs?per_page=100", op->base, (long long)id);
        op->pending++;
        pager_start(op->gh, url, op->scope, op->owner, qj_jobs_page, qj_pager_done, op, op->ctr);
        free(url);
    }
    rd_gh_runs_free(&runs);
    return 0;
}

static int start_check(rd_github_t *gh, const char *scope)
{
    if (gh->closing)
        return RD_ECANCELED;
    if (rd_github_retry_at(gh, scope) > now_ms())
        return RD_EAGAIN;
    return 0;
}

int rd_github_list_queued_jobs(rd_github_t *gh, const char *owner, const char *repo,
                               rd_github_jobs_cb cb, void *ud)
{
    if (owner == NULL || repo == NULL || !*owner || !*repo || cb == NULL)
        return RD_EINVAL;
    char *scope = rd_xasprintf("repos/%s/%s", owner, repo);
    int rc = start_check(gh, scope);
    if (rc != 0) {
        free(scope);
        return rc;
    }
    qj_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->owner = rd_xstrdup(owner);
    op->repo = rd_xstrdup(repo);
    op->scope = scope;
    char *o = seg(owner), *r = seg(repo);
    op->base = rd_xasprintf("%s/repos/%s/%s", gh->api_url, o, r);
    free(o);
    free(r);
    op->cb = cb;
    op->ud = ud;
    op->jobs.total_count = -1;
    static const char *const statuses[] = {"queued", "in_progress"};
    for (size_t i = 0; i < 2; i++) {
        char *url = rd_xasprintf("%s/actions/runs?status=%s&per_page=100", op->base, statuses[i]);
        op->pending++;
        pager_start(gh, url, op->scope, op->owner, qj_runs_page, qj_pager_done, op, op->ctr);
        free(url);
    }
    return 0;
}

/* ------------------------------------------------------------------ ops: lists */

typedef struct {
    rd_github_t *gh;
    char *scope;
    int kind; /* 0 repos, 1 runners, 2 groups */
    rd_gh_repos_t repos;
    rd_gh_runners_t runners;
    rd_gh_groups_t groups;
    char *group_name;
    union {
        rd_github_repos_cb repos;
        rd_github_runners_cb runners;
        rd_github_group_cb group;
    } cb;
    void *ud;
} list_op_t;

static int list_page(pager_t *pg, const char *body, size_t len)
{
    list_op_t *op = pg->ud;
    if (op->kind == 0) {
        rd_gh_repos_t page;
        if (rd_ghjson_parse_repos(body, len, &page) != 0)
            return RD_EPROTO;
        op->repos.v = rd_xrealloc(op->repos.v, (op->repos.n + page.n + 1) * sizeof(rd_gh_repo_t));
        memcpy(op->repos.v + op->repos.n, page.v, page.n * sizeof(rd_gh_repo_t));
        op->repos.n += page.n;
        free(page.v);
    } else if (op->kind == 1) {
        rd_gh_runners_t page;
        if (rd_ghjson_parse_runners(body, len, &page) != 0)
            return RD_EPROTO;
        op->runners.v =
            rd_xrealloc(op->runners.v, (op->runners.n + page.n + 1) * sizeof(rd_gh_runner_t));
        memcpy(op->runners.v + op->runners.n, page.v, page.n * sizeof(rd_gh_runner_t));
        op->runners.n += page.n;
        op->runners.total_count = page.total_count;
        free(page.v);
    } else {
        rd_gh_groups_t page;
        if (rd_ghjson_parse_groups(body, len, &page) != 0)
            return RD_EPROTO;
        op->groups.v =
            rd_xrealloc(op->groups.v, (op->groups.n + page.n + 1) * sizeof(rd_gh_group_t));
        memcpy(op->groups.v + op->groups.n, page.v, page.n * sizeof(rd_gh_group_t));
        op->groups.n += page.n;
        free(page.v);
    }
    return 0;
}

static void list_done(pager_t *pg, int err)
{
    list_op_t *op = pg->ud;
    if (err == 0)
        scope_ok(op->gh, op->scope);
    if (op->kind == 0) {
        op->repos.total_count = (int64_t)op->repos.n;
        op->cb.repos(op->ud, err, err == 0 ? &op->repos : NULL);
    } else if (op->kind == 1) {
        op->runners.total_count = (int64_t)op->runners.n;
        op->cb.runners(op->ud, err, err == 0 ? &op->runners : NULL);
    } else {
        int64_t id = 0;
        if (err == 0) {
            for (size_t i = 0; i < op->groups.n && id == 0; i++)
                if (strcasecmp(op->groups.v[i].name, op->group_name) == 0)
                    id = op->groups.v[i].id;
            if (id == 0) {
                rd_error(LOGC, "%s: no runner group named \"%s\"", op->scope, op->group_name);
                err = RD_ENOENT;
            }
        }
        op->cb.group(op->ud, err, id);
    }
    rd_gh_repos_free(&op->repos);
    rd_gh_runners_free(&op->runners);
    rd_gh_groups_free(&op->groups);
    free(op->group_name);
    free(op->scope);
    free(op);
}

static char *owner_of_scope(const char *scope)
{
    const char *p = strchr(scope, '/');
    if (p == NULL)
        return rd_xstrdup(scope);
    p++;
    return rd_xstrndup(p, strcspn(p, "/"));
}

static int valid_scope(const char *scope)
{
    if (scope == NULL)
        return 0;
    if (strncmp(scope, "repos/", 6) == 0) {
        const char *p = scope + 6, *s = strchr(p, '/');
        return s && s > p && s[1] && !strchr(s + 1, '/');
    }
    if (strncmp(scope, "orgs/", 5) == 0)
        return scope[5] && !strchr(scope + 5, '/');
    return 0;
}

static list_op_t *list_op_new(rd_github_t *gh, const char *scope, int kind, void *ud)
{
    list_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->scope = rd_xstrdup(scope);
    op->kind = kind;
    op->ud = ud;
    op->repos.total_count = op->runners.total_count = op->groups.total_count = -1;
    return op;
}

int rd_github_list_org_repos(rd_github_t *gh, const char *org, rd_github_repos_cb cb, void *ud)
{
    if (org == NULL || !*org || cb == NULL)
        return RD_EINVAL;
    char *scope = rd_xasprintf("orgs/%s", org);
    int rc = start_check(gh, scope);
    if (rc != 0) {
        free(scope);
        return rc;
    }
    list_op_t *op = list_op_new(gh, scope, 0, ud);
    op->cb.repos = cb;
    char *o = seg(org);
    char *url = rd_xasprintf("%s/orgs/%s/repos?per_page=100", gh->api_url, o);
    pager_start(gh, url, scope, org, list_page, list_done, op, NULL);
    free(url);
    free(o);
    free(scope);
    return 0;
}

/* "repos/O/R" or "orgs/O" -> the URL prefix with segments encoded. */
static char *scope_url(rd_github_t *gh, const char *scope)
{
    if (strncmp(scope, "orgs/", 5) == 0) {
        char *o = seg(scope + 5);
        char *u = rd_xasprintf("%s/orgs/%s", gh->api_url, o);
        free(o);
        return u;
    }
    const char *p = scope + 6, *s = strchr(p, '/');
    char *ow = rd_xstrndup(p, (size_t)(s - p));
    char *o = seg(ow), *r = seg(s + 1);
    char *u = rd_xasprintf("%s/repos/%s/%s", gh->api_url, o, r);
    free(ow);
    free(o);
    free(r);
    return u;
}

int rd_github_list_runners(rd_github_t *gh, const char *scope, rd_github_runners_cb cb, void *ud)
{
    if (!valid_scope(scope) || cb == NULL)
        return RD_EINVAL;
    int rc = start_check(gh, scope);
    if (rc != 0)
        return rc;
    list_op_t *op = list_op_new(gh, scope, 1, ud);
    op->cb.runners = cb;
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runners?per_page=100", base);
    pager_start(gh, url, scope, owner, list_page, list_done, op, NULL);
    free(url);
    free(base);
    free(owner);
    return 0;
}

/* Answers for repo scopes (always group 1) are delivered from the loop. */
typedef struct {
    uv_timer_t t;
    rd_github_group_cb cb;
    void *ud;
} group_now_t;

static void group_now_closed(uv_handle_t *h)
{
    free(rd_container_of((uv_timer_t *)h, group_now_t, t));
}

static void group_now_cb(uv_timer_t *t)
{
    group_now_t *g = rd_container_of(t, group_now_t, t);
    g->cb(g->ud, 0, 1);
    uv_close((uv_handle_t *)t, group_now_closed);
}

int rd_github_runner_group_id(rd_github_t *gh, const char *scope, const char *group_name,
                              rd_github_group_cb cb, void *ud)
{
    if (!valid_scope(scope) || cb == NULL)
        return RD_EINVAL;
    if (gh->closing)
        return RD_ECANCELED;
    if (strncmp(scope, "repos/", 6) == 0 || group_name == NULL ||
        strcasecmp(group_name, "Default") == 0) {
        group_now_t *g = rd_xcalloc(1, sizeof(*g));
        uv_timer_init(gh->loop, &g->t);
        g->cb = cb;
        g->ud = ud;
        uv_timer_start(&g->t, group_now_cb, 0, 0);
        return 0;
    }
    int rc = start_check(gh, scope);
    if (rc != 0)
        return rc;
    list_op_t *op = list_op_new(gh, scope, 2, ud);
    op->cb.group = cb;
    op->group_name = rd_xstrdup(group_name);
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runner-groups?per_page=100", base);
    pager_start(gh, url, scope, owner, list_page, list_done, op, NULL);
    free(url);
    free(base);
    free(owner);
    return 0;
}

/* ------------------------------------------------------------------ ops: mutations */

typedef struct {
    rd_github_jit_cb jit;
    rd_github_done_cb done;
    void *ud;
    char *scope;
} mut_op_t;

static void on_jit(gh_req_t *r, int err, long status, const char *body, size_t len,
                   const char *link)
{
    mut_op_t *op = r->ud;
    int64_t id = 0;
    char *enc = NULL;
    if (err == 0 && rd_ghjson_parse_jitconfig(body, len, &id, &enc) != 0) {
        rd_error(LOGC, "%s: generate-jitconfig: unexpected payload", op->scope);
        err = RD_EPROTO;
    }
    if (enc)
        rd_log_add_secret(enc);
    op->jit(op->ud, err, id, enc);
    if (enc) {
        rd_log_forget_secret(enc);
        wipe_free(enc);
    }
    free(op->scope);
    free(op);
}

int rd_github_generate_jitconfig(rd_github_t *gh, const char *scope, const char *name,
                                 const char *const *labels, size_t nlabels, int64_t group_id,
                                 rd_github_jit_cb cb, void *ud)
{
    if (!valid_scope(scope) || name == NULL || !*name || cb == NULL || nlabels == 0 ||
        nlabels > 100)
        return RD_EINVAL;
    int rc = start_check(gh, scope);
    if (rc != 0)
        return rc;
    json_object *o = json_object_new_object(), *ls = json_object_new_array();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "runner_group_id",
                           json_object_new_int64(group_id > 0 ? group_id : 1));
    for (size_t i = 0; i < nlabels; i++)
        json_object_array_add(ls, json_object_new_string(labels[i]));
    json_object_object_add(o, "labels", ls);
    json_object_object_add(o, "work_folder", json_object_new_string("_work"));
    const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    mut_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->jit = cb;
    op->ud = ud;
    op->scope = rd_xstrdup(scope);
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runners/generate-jitconfig", base);
    gh_req_t *r = req_new(gh, "POST", url, scope, owner, AUTH_TOKEN, on_jit, op);
    r->body = rd_xstrdup(txt);
    r->body_len = strlen(txt);
    json_object_put(o);
    free(url);
    free(base);
    free(owner);
    req_submit(gh, r);
    return 0;
}

static void on_delete(gh_req_t *r, int err, long status, const char *body, size_t len,
                      const char *link)
{
    mut_op_t *op = r->ud;
    op->done(op->ud, err);
    free(op->scope);
    free(op);
}

int rd_github_delete_runner(rd_github_t *gh, const char *scope, int64_t runner_id,
                            rd_github_done_cb cb, void *ud)
{
    if (!valid_scope(scope) || runner_id <= 0 || cb == NULL)
        return RD_EINVAL;
    int rc = start_check(gh, scope);
    if (rc != 0)
        return rc;
    mut_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->done = cb;
    op->ud = ud;
    op->scope = rd_xstrdup(scope);
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runners/%lld", base, (long long)runner_id);
    gh_req_t *r = req_new(gh, "DELETE", url, scope, owner, AUTH_TOKEN, on_delete, op);
    free(url);
    free(base);
    free(owner);
    req_submit(gh, r);
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

static void pace_cfg_from(const rd_github_config_t *cfg, rd_pace_config_t *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->budget_per_hour = cfg->request_budget_per_hour;
    pc->poll_interval_ms = cfg->poll_interval_ms;
    /* Tests and benchmarks against the local fake may lift the rate cap. */
    const char *r = getenv("RUNNERD_MAX_REQUEST_RATE");
    if (r && *r) {
        double v = strtod(r, NULL);
        pc->max_rate_per_s = v > 0 ? v : -1;
    }
    /* Likewise the registration bucket (GitHub's 10,000/h), in requests/s. */
    r = getenv("RUNNERD_MAX_REGISTRATION_RATE");
    if (r && *r) {
        double v = strtod(r, NULL);
        pc->priority_rate_per_s = v > 0 ? v : -1;
    }
}

/* Credentials from the config into fresh strings; nothing changes on failure. */
static int load_creds(const rd_github_config_t *cfg, char **pat, rd_auth_key_t **key)
{
    *pat = NULL;
    *key = NULL;
    if (cfg->app_id > 0) {
        if (cfg->private_key_file == NULL)
            return RD_EINVAL;
        int rc = rd_auth_key_load_file(cfg->private_key_file, key);
        if (rc != 0) {
            rd_error(LOGC, "cannot read private_key_file %s: %s", cfg->private_key_file,
                     rd_strerror(rc));
            return rc;
        }
        return 0;
    }
    if (cfg->token_file) {
        int rc = read_secret_file(cfg->token_file, pat);
        if (rc != 0) {
            rd_error(LOGC, "cannot read token_file %s: %s", cfg->token_file, rd_strerror(rc));
            return rc;
        }
    } else if (cfg->token_env) {
        const char *v = getenv(cfg->token_env);
        if (v == NULL) {
            rd_error(LOGC, "environment variable %s is not set", cfg->token_env);
            return RD_EINVAL;
        }
        *pat = trimmed_dup(v);
    } else {
        rd_error(LOGC, "no GitHub credentials configured");
        return RD_EINVAL;
    }
    if ((*pat)[0] == '\0') {
        rd_error(LOGC, "the GitHub token is empty");
        free(*pat);
        *pat = NULL;
        return RD_EINVAL;
    }
    return 0;
}

static void set_creds(rd_github_t *gh, const rd_github_config_t *cfg, char *pat, rd_auth_key_t *key)
{
    if (gh->pat) {
        rd_log_forget_secret(gh->pat);
        wipe_free(gh->pat);
    }
    rd_auth_key_free(gh->app_key);
    gh->pat = pat;
    gh->app_key = key;
    if (pat)
        rd_log_add_secret(pat);
    if (gh->installation_id != cfg->installation_id || gh->app_id != cfg->app_id ||
        gh->app != (cfg->app_id > 0))
        inst_flush(gh);
    gh->app = cfg->app_id > 0;
    gh->app_id = cfg->app_id;
    gh->installation_id = cfg->installation_id;
    if (gh->jwt) {
        rd_log_forget_secret(gh->jwt);
        wipe_free(gh->jwt);
        gh->jwt = NULL;
    }
}

int rd_github_new(uv_loop_t *loop, const rd_github_config_t *cfg, rd_github_t **out)
{
    *out = NULL;
    if (cfg->api_url == NULL)
        return RD_EINVAL;
    char *origin = origin_of(cfg->api_url);
    if (origin == NULL) {
        rd_error(LOGC, "api_url %s is not an absolute URL", cfg->api_url);
        return RD_EINVAL;
    }
    char *pat;
    rd_auth_key_t *key;
    int rc = load_creds(cfg, &pat, &key);
    if (rc != 0) {
        free(origin);
        return rc;
    }
    rd_github_t *gh = rd_xcalloc(1, sizeof(*gh));
    gh->loop = loop;
    gh->origin = origin;
    gh->api_url = rd_xstrdup(cfg->api_url);
    size_t n = strlen(gh->api_url);
    while (n > 0 && gh->api_url[n - 1] == '/')
        gh->api_url[--n] = '\0';
    gh->max_inflight = cfg->max_connections ? cfg->max_connections : 8;
    set_creds(gh, cfg, pat, key);
    rd_http_options_t ho = {
        .max_connections = gh->max_inflight,
        .total_timeout_ms = GH_TOTAL_TIMEOUT_MS,
        .max_body = GH_MAX_BODY,
        .ca_file = cfg->ca_file,
        .user_agent = "runnerd/" RD_VERSION,
    };
    rc = rd_http_new(loop, &ho, &gh->http);
    if (rc != 0) {
        set_creds(gh, &(rd_github_config_t){0}, NULL, NULL);
        free(gh->api_url);
        free(gh->origin);
        free(gh);
        return rc;
    }
    rd_pace_config_t pc;
    pace_cfg_from(cfg, &pc);
    gh->pace = rd_pace_new(&pc, now_ms());
    uv_timer_init(loop, &gh->gate_timer);
    gh->rnd = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    gh->stats.rl_limit = gh->stats.rl_remaining = gh->stats.rl_reset = -1;
    *out = gh;
    return 0;
}

int rd_github_reconfigure(rd_github_t *gh, const rd_github_config_t *cfg)
{
    char *origin = cfg->api_url ? origin_of(cfg->api_url) : NULL;
    if (origin == NULL)
        return RD_EINVAL;
    char *pat;
    rd_auth_key_t *key;
    int rc = load_creds(cfg, &pat, &key);
    if (rc != 0) {
        free(origin);
        return rc;
    }
    if (strcmp(gh->api_url, cfg->api_url) != 0) {
        /* Another server: nothing cached applies any more. */
        while (gh->lru_head)
            cache_drop(gh, gh->lru_head);
        inst_flush(gh);
        free(gh->api_url);
        gh->api_url = rd_xstrdup(cfg->api_url);
    }
    free(gh->origin);
    gh->origin = origin;
    set_creds(gh, cfg, pat, key);
    if (cfg->max_connections)
        gh->max_inflight = cfg->max_connections; /* http keeps its own cap until restart */
    /* Always, even when the path is the same: the file may have been replaced. */
    rd_http_set_ca_file(gh->http, cfg->ca_file);
    rd_pace_config_t pc;
    pace_cfg_from(cfg, &pc);
    rd_pace_reconfigure(gh->pace, &pc);
    gate_kick(gh);
    return 0;
}

static void free_scope(void *p)
{
    free(p);
}

static void on_gate_closed(uv_handle_t *h)
{
    rd_github_t *gh = rd_container_of((uv_timer_t *)h, rd_github_t, gate_timer);
    while (gh->lru_head)
        cache_drop(gh, gh->lru_head);
    map_free(&gh->cache, NULL);
    map_free(&gh->scopes, free_scope);
    set_creds(gh, &(rd_github_config_t){0}, NULL, NULL);
    map_free(&gh->insts, inst_free);
    rd_pace_free(gh->pace);
    free(gh->api_url);
    free(gh->origin);
    void (*cb)(void *) = gh->closed_cb;
    void *ud = gh->closed_ud;
    free(gh);
    if (cb)
        cb(ud);
}

/* http is closed: every in-flight request has had its RD_ECANCELED callback.
 * Deliver what is left (failures queued meanwhile), then close the timer. */
static void on_http_closed(void *ud)
{
    rd_github_t *gh = ud;
    gh->http = NULL;
    uv_timer_stop(&gh->gate_timer);
    gate_run(gh);
    uv_close((uv_handle_t *)&gh->gate_timer, on_gate_closed);
}

void rd_github_close(rd_github_t *gh, void (*closed_cb)(void *ud), void *ud)
{
    if (gh->closing)
        return;
    gh->closing = true;
    gh->closed_cb = closed_cb;
    gh->closed_ud = ud;
    /* Queued and parked requests fail with RD_ECANCELED from the loop. */
    for (size_t i = 0; i < gh->insts.nb; i++) {
        for (map_ent_t *e = gh->insts.b[i]; e; e = e->next) {
            inst_t *in = e->val;
            gh_req_t *w = in->waiters_head, *next;
            in->waiters_head = in->waiters_tail = NULL;
            for (; w; w = next) {
                next = w->next;
                req_fail_later(gh, w, RD_ECANCELED);
            }
        }
    }
    while (gh->q_head) {
        gh_req_t *r = gh->q_head;
        q_unlink(gh, r);
        req_fail_later(gh, r, RD_ECANCELED);
    }
    gate_kick(gh);
    /* In-flight requests: http delivers RD_ECANCELED to on_http_done. */
    rd_http_close(gh->http, on_http_closed, gh);
}

void rd_github_get_stats(const rd_github_t *gh, rd_github_stats_t *out)
{
    *out = gh->stats;
    out->budget_per_hour = rd_pace_budget(gh->pace);
    out->budget_used_last_hour = rd_pace_used(gh->pace, now_ms());
    out->inflight = gh->inflight;
}

rd_pace_t *rd_github_pace(rd_github_t *gh)
{
    return gh->pace;
}

void rd_github_op_counts(const rd_github_t *gh, unsigned *sent, unsigned *charged)
{
    *sent = gh->cb_sent;
    *charged = gh->cb_charged;
}

const rd_github_assignment_t *rd_github_op_assignments(const rd_github_t *gh, size_t *n)
{
    *n = gh->cb_nassign;
    return gh->cb_assign;
}
