/* http.c: HTTP client on libcurl-multi driven by a libuv loop.
 *
 * Shape (after curl's hiperfifo.c, with its habits and not multi-uv.c's):
 *  - one CURLM per rd_http_t;
 *  - CURLMOPT_SOCKETFUNCTION starts and changes one uv_poll_t per socket, each
 *    embedded in an rd_http_sock_t that is freed only in its close callback;
 *  - connection sockets are opened and closed through our own callbacks
 *    (CURLOPT_OPENSOCKETFUNCTION/CLOSESOCKETFUNCTION), so their uv_poll_t lives
 *    as long as the connection: when a transfer ends (CURL_POLL_REMOVE) it stays
 *    started but unreferenced, and the next transfer on the kept-alive connection
 *    reuses it. Creating and closing one per transfer cost an ioctl and three to
 *    five epoll_ctl calls per request (issue 14: half of the daemon's syscalls in
 *    a steady poll cycle). Other sockets curl watches (its resolver's) get a
 *    handle per CURL_POLL_IN/OUT that is closed at CURL_POLL_REMOVE, as before,
 *    because curl may close them without telling us;
 *  - CURLMOPT_TIMERFUNCTION only (re)arms one uv_timer_t; the timer callback is
 *    what calls curl_multi_socket_action(CURL_SOCKET_TIMEOUT);
 *  - after every curl_multi_socket_action, every finished transfer is drained
 *    with curl_multi_info_read, removed from the multi handle and queued;
 *  - queued completions are delivered to user callbacks only after libcurl has
 *    returned, so a callback may start new requests, cancel others or close the
 *    whole client.
 * Cancellation and close never call a user callback synchronously: they queue
 * the request and arm a zero-delay "defer" timer that delivers from the loop.
 *
 * Request headers carry tokens: nothing in here logs them, nor URLs' queries. */
#include "runnerd/io/http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runnerd/core/common.h"

#define RD_HTTP_DEFAULT_MAX_CONN 8u
#define RD_HTTP_DEFAULT_CONNECT_MS 10000u
#define RD_HTTP_DEFAULT_TOTAL_MS 30000u
#define RD_HTTP_DEFAULT_MAX_BODY ((size_t)16 << 20)

typedef struct rd_http_sock {
    uv_poll_t poll;
    rd_http_t *h;
    curl_socket_t fd;
    int events; /* UV_READABLE|UV_WRITABLE being watched; 0 = stopped */
    bool owned; /* opened by open_socket: closed through close_socket only */
    bool idle;  /* curl does not watch it now (CURL_POLL_REMOVE): unreferenced */
    bool closing;
    struct rd_http_sock *prev, *next; /* h->socks */
} rd_http_sock_t;

typedef enum { REQ_ACTIVE = 0, REQ_QUEUED } rd_req_state_t;

struct rd_http_req {
    rd_http_t *h;
    CURL *easy;
    struct curl_slist *headers;
    char *post; /* our copy of the request body, or NULL */
    rd_http_cb cb;
    void *ud;
    rd_req_state_t state;
    bool canceled;
    bool too_big;
    CURLcode result;
    uint64_t start_ns;
    char errbuf[CURL_ERROR_SIZE];
    /* response being collected */
    char *body;
    size_t body_len, body_cap;
    char *etag, *link, *retry_after, *location, *content_type, *rl_resource;
    int64_t rl_limit, rl_remaining, rl_used, rl_reset;
    struct rd_http_req *prev, *next; /* h->active, or h->done queue (singly, via next) */
};

struct rd_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    uv_timer_t defer; /* delivers queued completions from the loop */
    unsigned max_connections;
    long connect_timeout_ms;
    long total_timeout_ms;
    size_t max_body;
    char *ca_file;
    uint64_t ca_set_ns; /* uv_hrtime() of the last rd_http_set_ca_file, 0 = never */
    char *user_agent;
    rd_http_req_t *active; /* in the multi handle, doubly linked */
    rd_http_req_t *done_head, *done_tail;
    size_t inflight; /* active + queued, i.e. callbacks still owed */
    rd_http_sock_t *socks;
    /* Easy handles of finished transfers, reset, for the next requests: an easy
     * handle is a large allocation with much to set up, per request otherwise. */
    CURL **spare;
    size_t nspare, spare_cap;
    bool delivering;
    bool closing;   /* rd_http_close called */
    bool finalized; /* multi cleaned up, handles closing */
    unsigned open_handles;
    void (*closed_cb)(void *ud);
    void *closed_ud;
};

static void deliver(rd_http_t *h);

/* ---------------------------------------------------------------- lists */

static void active_unlink(rd_http_t *h, rd_http_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->active = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void done_push(rd_http_t *h, rd_http_req_t *r)
{
    r->state = REQ_QUEUED;
    r->next = NULL;
    r->prev = NULL;
    if (h->done_tail)
        h->done_tail->next = r;
    else
        h->done_head = r;
    h->done_tail = r;
}

static rd_http_req_t *done_pop(rd_http_t *h)
{
    rd_http_req_t *r = h->done_head;
    if (r) {
        h->done_head = r->next;
        if (h->done_head == NULL)
            h->done_tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* ---------------------------------------------------------------- handles */

static void on_handle_closed(uv_handle_t *handle)
{
    rd_http_t *h = handle->data;
    if (handle->type == UV_POLL) {
        rd_http_sock_t *s = rd_container_of((uv_poll_t *)handle, rd_http_sock_t, poll);
        free(s);
    }
    if (--h->open_handles == 0 && h->finalized) {
        void (*cb)(void *) = h->closed_cb;
        void *ud = h->closed_ud;
        free(h->ca_file);
        free(h->user_agent);
        free(h);
        curl_global_cleanup();
        if (cb)
            cb(ud);
    }
}

static void sock_close(rd_http_sock_t *s)
{
    rd_http_t *h = s->h;
    if (s->closing)
        return;
    s->closing = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* ---------------------------------------------------------------- curl -> uv */

/* Drain every finished transfer. Called right after each curl_multi_socket_action;
 * the user callbacks run afterwards, in deliver(), outside libcurl. */
static void drain_multi(rd_http_t *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        rd_http_req_t *r = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        /* msg points into the easy handle: copy what we need before removing it. */
        curl_multi_remove_handle(h->multi, easy);
        if (r == NULL || r->state != REQ_ACTIVE)
            continue;
        r->result = result;
        active_unlink(h, r);
        done_push(h, r);
    }
}

static void socket_action(rd_http_t *h, curl_socket_t fd, int flags)
{
    int running = 0;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    drain_multi(h);
    deliver(h);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    rd_http_sock_t *s = rd_container_of(poll, rd_http_sock_t, poll);
    rd_http_t *h = s->h;
    if (s->idle) {
        /* A kept-alive connection between transfers: the server closed it, or
         * sent something unasked. Stop watching (level-triggered, it would fire
         * again and again); curl finds out when it next tries to reuse it. */
        uv_poll_stop(&s->poll);
        s->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    if (h->finalized)
        return;
    socket_action(h, s->fd, flags);
}

static void on_curl_timer(uv_timer_t *t)
{
    rd_http_t *h = rd_container_of(t, rd_http_t, timer);
    if (h->finalized)
        return;
    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: only arm or stop the uv timer; never call libcurl here. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    rd_http_t *h = userp;
    (void)multi;
    if (h->finalized)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static rd_http_sock_t *sock_new(rd_http_t *h, curl_socket_t fd, bool owned)
{
    rd_http_sock_t *s = rd_xcalloc(1, sizeof(*s));
    s->h = h;
    s->fd = fd;
    s->owned = owned;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
        /* Nothing to close: an uninitialised handle is simply freed. */
        free(s);
        return NULL;
    }
    s->poll.data = h;
    h->open_handles++;
    s->next = h->socks;
    if (h->socks)
        h->socks->prev = s;
    h->socks = s;
    return s;
}

/* The live handle of fd, or NULL (a handful of sockets: a list is enough). */
static rd_http_sock_t *sock_find(rd_http_t *h, curl_socket_t fd)
{
    for (rd_http_sock_t *s = h->socks; s; s = s->next)
        if (s->fd == fd)
            return s;
    return NULL;
}

/* CURLOPT_OPENSOCKETFUNCTION: a connection socket, with its uv_poll_t for life. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    rd_http_t *h = clientp;
    (void)purpose;
    if (h->finalized)
        return CURL_SOCKET_BAD;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        return fd;
    /* Without a handle here, curl_socket_cb gives it a per-transfer one. */
    (void)sock_new(h, fd, true);
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl has already sent CURL_POLL_REMOVE for it.
 * uv_close takes fd out of epoll while it is still open. */
static int close_socket(void *clientp, curl_socket_t fd)
{
    rd_http_t *h = clientp;
    rd_http_sock_t *s = sock_find(h, fd);
    if (s)
        sock_close(s);
    return close(fd);
}

/* CURLMOPT_SOCKETFUNCTION: watch what curl asks for on fd. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    rd_http_t *h = userp;
    rd_http_sock_t *s = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s && s->owned && !s->closing) {
            /* Kept for the next transfer on this connection; watching on costs
             * nothing, but must not keep the loop alive. */
            s->idle = true;
            uv_unref((uv_handle_t *)&s->poll);
        } else if (s) {
            sock_close(s);
        }
        return 0;
    }
    if (h->finalized)
        return 0;
    if (s == NULL) {
        s = sock_find(h, fd);
        if (s == NULL)
            s = sock_new(h, fd, false);
        if (s == NULL)
            return 0; /* the transfer hits its timeout (-1 would kill the multi handle in 7.88) */
        curl_multi_assign(h->multi, fd, s);
    }
    if (s->idle) {
        s->idle = false;
        uv_ref((uv_handle_t *)&s->poll);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    /* Every uv_poll_start costs epoll_ctl calls, even with the same events. */
    if (events != s->events) {
        uv_poll_start(&s->poll, events, on_poll);
        s->events = events;
    }
    return 0;
}

/* ---------------------------------------------------------------- easy callbacks */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    rd_http_req_t *r = userdata;
    size_t n = size * nmemb;
    size_t max = r->h->max_body;
    if (n > max || r->body_len > max - n) {
        r->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        r->body = rd_xrealloc(r->body, cap);
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static void reset_headers(rd_http_req_t *r)
{
    free(r->etag);
    free(r->link);
    free(r->retry_after);
    free(r->location);
    free(r->content_type);
    free(r->rl_resource);
    r->etag = r->link = r->retry_after = r->location = r->content_type = r->rl_resource = NULL;
    r->rl_limit = r->rl_remaining = r->rl_used = r->rl_reset = -1;
}

static int64_t parse_i64(const char *v)
{
    char *end;
    if (*v == '\0')
        return -1;
    long long x = strtoll(v, &end, 10);
    if (*end != '\0' || x < 0)
        return -1;
    return (int64_t)x;
}

static void set_str(char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = rd_xstrndup(v, n);
}

/* Collect the headers the GitHub layer needs, case-insensitively. A new status
 * line (1xx interim responses) starts the set afresh. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    rd_http_req_t *r = userdata;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        reset_headers(r);
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (colon == NULL)
        return n;
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1;
    const char *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);

#define HDR_IS(lit) (nlen == sizeof(lit) - 1 && strncasecmp(buf, lit, nlen) == 0)
    if (HDR_IS("etag")) {
        set_str(&r->etag, v, vlen);
    } else if (HDR_IS("link")) {
        if (r->link) { /* repeated Link headers combine as one list */
            char *old = r->link;
            r->link = rd_xasprintf("%s, %.*s", old, (int)vlen, v);
            free(old);
        } else {
            set_str(&r->link, v, vlen);
        }
    } else if (HDR_IS("retry-after")) {
        set_str(&r->retry_after, v, vlen);
    } else if (HDR_IS("location")) {
        set_str(&r->location, v, vlen);
    } else if (HDR_IS("content-type")) {
        set_str(&r->content_type, v, vlen);
    } else if (HDR_IS("x-ratelimit-resource")) {
        set_str(&r->rl_resource, v, vlen);
    } else if (nlen > 12 && strncasecmp(buf, "x-ratelimit-", 12) == 0) {
        char tmp[32];
        if (vlen >= sizeof(tmp))
            return n;
        memcpy(tmp, v, vlen);
        tmp[vlen] = '\0';
        int64_t x = parse_i64(tmp);
        if (HDR_IS("x-ratelimit-limit"))
            r->rl_limit = x;
        else if (HDR_IS("x-ratelimit-remaining"))
            r->rl_remaining = x;
        else if (HDR_IS("x-ratelimit-used"))
            r->rl_used = x;
        else if (HDR_IS("x-ratelimit-reset"))
            r->rl_reset = x;
    }
#undef HDR_IS
    return n;
}

/* ---------------------------------------------------------------- completion */

static int map_curl_error(const rd_http_req_t *r)
{
    if (r->too_big)
        return RD_ERANGE;
    switch (r->result) {
    case CURLE_OK:
        return 0;
    case CURLE_FILESIZE_EXCEEDED:
        return RD_ERANGE;
    case CURLE_OUT_OF_MEMORY:
        return RD_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return RD_EINVAL;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PARTIAL_FILE:
        return RD_EPROTO;
    default:
        return RD_EIO; /* connect refused/timed out, reset, TLS, total timeout */
    }
}

static void req_free(rd_http_req_t *r)
{
    rd_http_t *h = r->h;
    if (r->easy && !h->finalized && h->nspare < h->spare_cap) {
        /* Reset now: nothing of this request (its buffers, callbacks' data) may
         * outlive it in the handle. */
        curl_easy_reset(r->easy);
        h->spare[h->nspare++] = r->easy;
    } else if (r->easy) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->post);
    free(r->body);
    reset_headers(r);
    free(r);
}

static void req_complete(rd_http_t *h, rd_http_req_t *r)
{
    rd_http_response_t res;
    memset(&res, 0, sizeof(res));
    if (r->canceled) {
        res.error = RD_ECANCELED;
        res.errmsg = "canceled";
    } else {
        res.error = map_curl_error(r);
        res.timed_out = r->result == CURLE_OPERATION_TIMEDOUT;
        if (res.error != 0) {
            if (r->too_big) {
                res.errmsg = "response body exceeds the size limit";
            } else if (r->errbuf[0] != '\0') {
                res.errmsg = r->errbuf;
            } else {
                res.errmsg = curl_easy_strerror(r->result);
            }
        }
    }
    if (res.error == 0) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        res.body = r->body ? r->body : (char *)"";
        res.body_len = r->body_len;
        res.etag = r->etag;
        res.link = r->link;
        res.retry_after = r->retry_after;
        res.location = r->location;
        res.content_type = r->content_type;
        res.rl_limit = r->rl_limit;
        res.rl_remaining = r->rl_remaining;
        res.rl_used = r->rl_used;
        res.rl_reset = r->rl_reset;
        res.rl_resource = r->rl_resource;
    } else {
        res.body = (char *)"";
        res.rl_limit = res.rl_remaining = res.rl_used = res.rl_reset = -1;
    }
    res.elapsed_ms = (uv_hrtime() - r->start_ns) / 1000000u;
    h->inflight--;
    r->cb(r->ud, &res);
    req_free(r);
}

/* Close the multi handle and every uv handle; h is freed in the last close callback. */
static void finalize(rd_http_t *h)
{
    h->finalized = true;
    while (h->nspare > 0)
        curl_easy_cleanup(h->spare[--h->nspare]);
    free(h->spare);
    h->spare = NULL;
    h->spare_cap = 0;
    /* Cached connections close now; curl may report CURL_POLL_REMOVE for them. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks)
        sock_close(h->socks);
    uv_timer_stop(&h->timer);
    uv_timer_stop(&h->defer);
    uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    uv_close((uv_handle_t *)&h->defer, on_handle_closed);
}

/* Run queued user callbacks. Never called from inside libcurl. Callbacks may
 * queue more (cancel) or add requests; they are delivered in the same loop. */
static void deliver(rd_http_t *h)
{
    if (h->delivering || h->finalized)
        return;
    h->delivering = true;
    rd_http_req_t *r;
    while ((r = done_pop(h)) != NULL)
        req_complete(h, r);
    h->delivering = false;
    if (h->closing && h->active == NULL)
        finalize(h);
}

static void on_defer(uv_timer_t *t)
{
    rd_http_t *h = rd_container_of(t, rd_http_t, defer);
    deliver(h);
}

static void arm_defer(rd_http_t *h)
{
    if (!h->finalized && !uv_is_active((uv_handle_t *)&h->defer))
        uv_timer_start(&h->defer, on_defer, 0, 0);
}

/* ---------------------------------------------------------------- API */

int rd_http_new(uv_loop_t *loop, const rd_http_options_t *opts, rd_http_t **out)
{
    *out = NULL;
    /* Reference counted by libcurl; released when this client is freed. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return RD_EIO;

    rd_http_t *h = rd_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->max_connections =
        opts && opts->max_connections ? opts->max_connections : RD_HTTP_DEFAULT_MAX_CONN;
    h->spare_cap = (size_t)h->max_connections * 2;
    h->spare = rd_xcalloc(h->spare_cap, sizeof(*h->spare));
    uint64_t cto =
        opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : RD_HTTP_DEFAULT_CONNECT_MS;
    uint64_t tto =
        opts && opts->total_timeout_ms ? opts->total_timeout_ms : RD_HTTP_DEFAULT_TOTAL_MS;
    h->connect_timeout_ms = cto > 0x7fffffff ? 0x7fffffff : (long)cto;
    h->total_timeout_ms = tto > 0x7fffffff ? 0x7fffffff : (long)tto;
    h->max_body = opts && opts->max_body ? opts->max_body : RD_HTTP_DEFAULT_MAX_BODY;
    if (opts && opts->ca_file)
        h->ca_file = rd_xstrdup(opts->ca_file);
    h->user_agent =
        rd_xstrdup(opts && opts->user_agent ? opts->user_agent : "runnerd/" RD_VERSION_STRING);

    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h->ca_file);
        free(h->user_agent);
        free(h->spare);
        free(h);
        curl_global_cleanup();
        return RD_ENOMEM;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_connections);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->max_connections);
    /* Keep the cache no larger than what may be open, so idle connections are reused, not churned.
     */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_connections);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    uv_timer_init(loop, &h->timer);
    uv_timer_init(loop, &h->defer);
    h->timer.data = h;
    h->defer.data = h;
    h->open_handles = 2;
    *out = h;
    return 0;
}

void rd_http_close(rd_http_t *h, void (*closed_cb)(void *ud), void *ud)
{
    if (h == NULL || h->closing)
        return;
    h->closing = true;
    h->closed_cb = closed_cb;
    h->closed_ud = ud;
    while (h->active) {
        rd_http_req_t *r = h->active;
        active_unlink(h, r);
        curl_multi_remove_handle(h->multi, r->easy);
        r->canceled = true;
        done_push(h, r);
    }
    /* Queued-but-undelivered completions are canceled too. */
    for (rd_http_req_t *r = h->done_head; r; r = r->next)
        r->canceled = true;
    arm_defer(h);
}

static bool method_is(const char *m, const char *lit)
{
    return strcasecmp(m, lit) == 0;
}

int rd_http_request(rd_http_t *h, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t body_len, rd_http_cb cb, void *ud,
                    rd_http_req_t **out_req)
{
    if (out_req)
        *out_req = NULL;
    if (h == NULL || url == NULL || cb == NULL)
        return RD_EINVAL;
    if (h->closing)
        return RD_ECANCELED;
    if (method == NULL)
        method = "GET";
    if (body == NULL)
        body_len = 0;

    rd_http_req_t *r = rd_xcalloc(1, sizeof(*r));
    r->h = h;
    r->cb = cb;
    r->ud = ud;
    r->rl_limit = r->rl_remaining = r->rl_used = r->rl_reset = -1;
    r->easy = h->nspare > 0 ? h->spare[--h->nspare] : curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return RD_ENOMEM;
    }
    CURL *e = r->easy;
    int err = 0;
    for (const char *const *p = headers; p && *p; p++) {
        struct curl_slist *n = curl_slist_append(r->headers, *p);
        if (n == NULL) {
            err = RD_ENOMEM;
            goto fail;
        }
        r->headers = n;
    }

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK) {                                           \
            err = RD_EINVAL;                                                                       \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PRIVATE, (void *)r);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    /* Redirects are the GitHub layer's decision (301 on renamed repos): it sees
     * the status and the Location header and chooses. */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, prefer waiting for a connection that may turn out to multiplex
     * (HTTP/2) over opening another one. Not for plain http://: there HTTP/2 is
     * never offered, and PIPEWAIT would hold every new transfer until the first
     * response on the first connection arrives. */
    if (strncasecmp(url, "https://", 8) == 0)
        SETOPT(CURLOPT_PIPEWAIT, 1L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, h->total_timeout_ms);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
    SETOPT(CURLOPT_USERAGENT, h->user_agent);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)r);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)r);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SETOPT(CURLOPT_OPENSOCKETDATA, (void *)h);
    SETOPT(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    SETOPT(CURLOPT_CLOSESOCKETDATA, (void *)h);
    if (h->ca_file)
        SETOPT(CURLOPT_CAINFO, h->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075700 /* 7.87.0: CA store cache */
    if (h->ca_set_ns != 0) {
        /* A store cached before the CA file was (re)set is older than the time
         * since then: expired for this transfer (0 s = no cache at all). */
        uint64_t age_s = (uv_hrtime() - h->ca_set_ns) / 1000000000u;
        if (age_s < 86400)
            SETOPT(CURLOPT_CA_CACHE_TIMEOUT, (long)age_s);
    }
#endif
    if (r->headers)
        SETOPT(CURLOPT_HTTPHEADER, r->headers);

    if (method_is(method, "GET")) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (method_is(method, "HEAD")) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        if (!method_is(method, "POST"))
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL || method_is(method, "POST") || method_is(method, "PUT") ||
            method_is(method, "PATCH")) {
            r->post = rd_xmalloc(body_len + 1);
            if (body_len)
                memcpy(r->post, body, body_len);
            r->post[body_len] = '\0';
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            SETOPT(CURLOPT_POSTFIELDS, r->post);
        }
    }
#undef SETOPT

    r->start_ns = uv_hrtime();
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        err = RD_EIO;
        goto fail;
    }
    r->state = REQ_ACTIVE;
    r->next = h->active;
    if (h->active)
        h->active->prev = r;
    h->active = r;
    h->inflight++;
    if (out_req)
        *out_req = r;
    return 0;

fail:
    req_free(r);
    return err;
}

void rd_http_cancel(rd_http_t *h, rd_http_req_t *req)
{
    if (h == NULL || req == NULL || req->canceled)
        return;
    req->canceled = true;
    if (req->state == REQ_ACTIVE) {
        active_unlink(h, req);
        if (h->multi)
            curl_multi_remove_handle(h->multi, req->easy);
        done_push(h, req);
    }
    arm_defer(h);
}

size_t rd_http_inflight(const rd_http_t *h)
{
    return h ? h->inflight : 0;
}

void rd_http_set_ca_file(rd_http_t *h, const char *ca_file)
{
    char *copy = ca_file ? rd_xstrdup(ca_file) : NULL;
    free(h->ca_file);
    h->ca_file = copy;
    h->ca_set_ns = uv_hrtime();
    if (h->ca_set_ns == 0)
        h->ca_set_ns = 1;
}
