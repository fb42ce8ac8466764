/* listener.c: HTTP/1.1 listener for /metrics, /healthz, /status and /webhook
 * (uv_tcp + http-parser).
 *
 * One conn_t per connection owns two handles (the socket and a timer) and is
 * freed in the close callback of the last one. Requests are answered
 * synchronously from the parser's on_message_complete callback; responses are
 * queued with uv_write, which keeps pipelined answers in order. A connection
 * that must end (error, Connection: close) shuts its write side down after the
 * last response and discards input until EOF or a short linger timeout, so the
 * peer reads the answer instead of a reset.
 *
 * Bounded memory under any client: a peer that pipelines requests without
 * reading the answers would have them pile up in uv_write's queue, so once more
 * than max_unwritten bytes wait there the parser is paused and the socket no
 * longer read (what was read and not parsed, at most one read buffer, is kept)
 * until the peer has taken most of them. One address holds at most
 * max_per_address connections, and the last loopback_reserve slots are kept
 * for loopback clients, so a flood from elsewhere cannot lock out a local
 * health check. */
#include "runnerd/io/listener.h"

#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

#define LINGER_MS 2000
#define READ_BUF_SIZE 65536

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sbuf_append(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = rd_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_reset(sbuf_t *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

static void sbuf_free(sbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

typedef enum { ROUTE_NONE = 0, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_STATUS, ROUTE_WEBHOOK } route_t;

typedef struct conn conn_t;

struct rd_listener {
    uv_loop_t *loop;
    uv_tcp_t server;
    bool server_open;
    rd_listener_opts_t opts;
    char *listen; /* owned copy of opts.listen */
    rd_listener_cbs_t cbs;
    conn_t *conns; /* doubly linked list of live connections */
    size_t nconns; /* allocated conn_t, including those closing */
    size_t refused_closing;
    bool closing;
    void (*done)(void *);
    void *done_arg;
    int port;
    rd_listener_stats_t stats;
    size_t body_bytes; /* request bodies buffered over all connections */
    bool reading;      /* rbuf is lent to libuv between alloc_cb and read_cb */
    char rbuf[READ_BUF_SIZE];
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_parser parser;
    rd_listener_t *l;
    conn_t *prev, *next;
    int handles;            /* open handles: freed when it drops to 0 */
    bool closing;           /* uv_close called */
    bool finishing;         /* last response queued: parse nothing more */
    bool lingering;         /* write side shut down: discard input until EOF */
    bool paused;            /* too many answers unwritten: parser paused, socket not read */
    bool active;            /* a request is under way (bytes of it parsed, or being answered) */
    uint64_t idle_since;    /* uv_now when the last request was answered (or accept) */
    unsigned char addr[17]; /* peer: family byte (4 or 6) + address; IPv4-mapped as IPv4 */
    bool loopback;
    sbuf_t pending; /* read while paused and not parsed yet */
    /* the request being parsed */
    size_t header_bytes;
    size_t nheaders;
    sbuf_t url, field, value;
    bool last_was_value;
    char *event, *delivery, *signature, *content_type;
    bool expect_continue;
    sbuf_t body;
    size_t body_limit;
    route_t route;
    int err_status; /* a callback refused the request with this status */
};

typedef struct {
    uv_write_t req;
    conn_t *c;
    bool finish; /* the connection's last response */
    uv_buf_t buf;
    char data[];
} wreq_t;

static void conn_close(conn_t *c);
static void maybe_free(rd_listener_t *l);
static void on_linger_timeout(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void rd_listener_opts_default(rd_listener_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->max_header_bytes = 16 * 1024;
    o->max_headers = 100;
    o->max_body_webhook = 25 * 1024 * 1024;
    o->max_body_other = 4 * 1024;
    o->header_timeout_ms = 10000;
    o->body_timeout_ms = 30000;
    o->max_connections = 1024;
    o->max_body_total = 64 * 1024 * 1024;
    o->max_per_address = 64;
    o->loopback_reserve = 8;
    o->max_unwritten = 256 * 1024;
}

int rd_listener_parse_addr(const char *listen, struct sockaddr_storage *addr)
{
    char host[64];
    const char *port_s;
    memset(addr, 0, sizeof(*addr));
    if (listen == NULL || *listen == '\0')
        return RD_EINVAL;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof(host))
            return RD_EINVAL;
        memcpy(host, listen + 1, (size_t)(end - listen - 1));
        host[end - listen - 1] = '\0';
        port_s = end + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) ||
            memchr(listen, ':', (size_t)(colon - listen)) != NULL)
            return RD_EINVAL;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port_s = colon + 1;
    }
    if (*port_s == '\0' || strlen(port_s) > 5 || strspn(port_s, "0123456789") != strlen(port_s))
        return RD_EINVAL;
    int port = atoi(port_s);
    if (port > 65535)
        return RD_EINVAL;
    if (listen[0] == '[') {
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) != 0)
            return RD_EINVAL;
        return 0;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (host[0] == '\0' || uv_ip4_addr(host, port, (struct sockaddr_in *)addr) != 0)
        return RD_EINVAL;
    /* uv_ip4_addr accepts some sloppy forms; insist on a dotted quad. */
    if (strspn(host, "0123456789.") != strlen(host))
        return RD_EINVAL;
    return 0;
}

/* ---- responses ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = rd_container_of(req, conn_t, shutdown);
    if (status < 0)
        conn_close(c);
}

/* After the last response: half-close, then wait (briefly) for the peer's EOF. */
static void start_linger(conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = true;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    /* Reading was stopped when the last response was queued; read again, only
     * to see the EOF (and discard whatever the peer still sends). */
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uint64_t linger =
        c->l->opts.header_timeout_ms < LINGER_MS ? c->l->opts.header_timeout_ms : LINGER_MS;
    uv_timer_start(&c->timer, on_linger_timeout, linger, 0);
}

static void conn_resume(conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = rd_container_of(req, wreq_t, req);
    conn_t *c = w->c;
    bool finish = w->finish;
    free(w);
    if (c->closing)
        return;
    if (status < 0)
        conn_close(c);
    else if (finish)
        start_linger(c);
    else if (c->paused && c->tcp.write_queue_size <= c->l->opts.max_unwritten / 4)
        conn_resume(c); /* the peer reads again: parse what waits, then read on */
    else if (!c->paused && c->tcp.write_queue_size == 0)
        c->active = false;
}

/* Queue one response. finish: it is the connection's last one. */
static void send_response(conn_t *c, int status, const char *ctype, const char *extra,
                          const char *body, size_t len, bool head_only, bool finish)
{
    if (c->closing || c->lingering)
        return;
    char hdr[512];
    int hl = snprintf(hdr, sizeof(hdr),
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "Cache-Control: no-store\r\n"
                      "%s"
                      "Connection: %s\r\n\r\n",
                      status, reason_phrase(status), ctype ? ctype : "text/plain; charset=utf-8",
                      len, extra ? extra : "", finish ? "close" : "keep-alive");
    if (hl < 0 || (size_t)hl >= sizeof(hdr))
        hl = 0;
    size_t blen = head_only ? 0 : len;
    wreq_t *w = rd_xmalloc(sizeof(*w) + (size_t)hl + blen);
    w->c = c;
    w->finish = finish;
    memcpy(w->data, hdr, (size_t)hl);
    if (blen)
        memcpy(w->data + hl, body, blen);
    w->buf = uv_buf_init(w->data, (unsigned)((size_t)hl + blen));
    if (finish) {
        c->finishing = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write) != 0) {
        free(w);
        conn_close(c);
    }
}

static void send_text(conn_t *c, int status, const char *text, bool finish)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", text);
    send_response(c, status, NULL, NULL, body, (size_t)n, false, finish);
}

static void send_interim_continue(conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    wreq_t *w = rd_xmalloc(sizeof(*w) + sizeof(cont));
    w->c = c;
    w->finish = false;
    memcpy(w->data, cont, sizeof(cont) - 1);
    w->buf = uv_buf_init(w->data, sizeof(cont) - 1);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write) != 0) {
        free(w);
        conn_close(c);
    }
}

/* ---- connection lifetime ---- */

static void request_reset(conn_t *c)
{
    c->header_bytes = 0;
    c->nheaders = 0;
    sbuf_reset(&c->url);
    sbuf_reset(&c->field);
    sbuf_reset(&c->value);
    c->last_was_value = false;
    free(c->event);
    free(c->delivery);
    free(c->signature);
    free(c->content_type);
    c->event = c->delivery = c->signature = c->content_type = NULL;
    c->expect_continue = false;
    c->l->body_bytes -= c->body.len;
    /* Keep a small body buffer for the next request, drop a big one. */
    if (c->body.cap > 64 * 1024)
        sbuf_free(&c->body);
    sbuf_reset(&c->body);
    c->body_limit = 0;
    c->route = ROUTE_NONE;
    c->err_status = 0;
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->type == UV_TCP ? rd_container_of((uv_tcp_t *)h, conn_t, tcp)
                                  : rd_container_of((uv_timer_t *)h, conn_t, timer);
    if (--c->handles > 0)
        return;
    rd_listener_t *l = c->l;
    request_reset(c);
    sbuf_free(&c->url);
    sbuf_free(&c->field);
    sbuf_free(&c->value);
    sbuf_free(&c->body);
    sbuf_free(&c->pending);
    free(c);
    l->nconns--;
    maybe_free(l);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    rd_listener_t *l = c->l;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    l->stats.open_connections--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = rd_container_of(t, conn_t, timer);
    c->l->stats.timeouts++;
    conn_close(c);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(rd_container_of(t, conn_t, timer));
}

static void arm_timer(conn_t *c, uint64_t ms)
{
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* ---- parser callbacks ---- */

static conn_t *pconn(http_parser *p)
{
    return rd_container_of(p, conn_t, parser);
}

static int refuse(conn_t *c, int status)
{
    if (c->err_status == 0)
        c->err_status = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = pconn(p);
    request_reset(c);
    c->active = true;
    return 0;
}

static int count_header_bytes(conn_t *c, size_t n)
{
    c->header_bytes += n;
    return c->header_bytes > c->l->opts.max_header_bytes ? refuse(c, 431) : 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = pconn(p);
    if (count_header_bytes(c, len) != 0)
        return -1;
    sbuf_append(&c->url, at, len);
    return 0;
}

static void commit_header(conn_t *c)
{
    const char *f = c->field.p ? c->field.p : "";
    const char *v = c->value.p ? c->value.p : "";
    char **slot = NULL;
    if (strcasecmp(f, "X-GitHub-Event") == 0)
        slot = &c->event;
    else if (strcasecmp(f, "X-GitHub-Delivery") == 0)
        slot = &c->delivery;
    else if (strcasecmp(f, "X-Hub-Signature-256") == 0)
        slot = &c->signature;
    else if (strcasecmp(f, "Content-Type") == 0)
        slot = &c->content_type;
    else if (strcasecmp(f, "Expect") == 0 && strcasecmp(v, "100-continue") == 0)
        c->expect_continue = true;
    if (slot != NULL) {
        free(*slot);
        *slot = rd_xstrdup(v);
    }
    sbuf_reset(&c->field);
    sbuf_reset(&c->value);
    c->last_was_value = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn_t *c = pconn(p);
    if (c->last_was_value || c->nheaders == 0) {
        if (c->last_was_value)
            commit_header(c);
        if (++c->nheaders > c->l->opts.max_headers)
            return refuse(c, 431);
        c->header_bytes += 4; /* ": " and CRLF */
    }
    if (count_header_bytes(c, len) != 0)
        return -1;
    sbuf_append(&c->field, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn_t *c = pconn(p);
    if (count_header_bytes(c, len) != 0)
        return -1;
    sbuf_append(&c->value, at, len);
    c->last_was_value = true;
    return 0;
}

static route_t route_of(const char *url)
{
    size_t n = strcspn(url, "?#");
    static const struct {
        const char *path;
        route_t route;
    } routes[] = {{"/metrics", ROUTE_METRICS},
                  {"/healthz", ROUTE_HEALTHZ},
                  {"/status", ROUTE_STATUS},
                  {"/webhook", ROUTE_WEBHOOK}};
    for (size_t i = 0; i < RD_ARRAY_SIZE(routes); i++)
        if (strlen(routes[i].path) == n && strncmp(url, routes[i].path, n) == 0)
            return routes[i].route;
    return ROUTE_NONE;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = pconn(p);
    if (c->last_was_value)
        commit_header(c);
    c->route = route_of(c->url.p ? c->url.p : "");
    c->body_limit =
        c->route == ROUTE_WEBHOOK ? c->l->opts.max_body_webhook : c->l->opts.max_body_other;
    /* Refuse a declared oversize body before reading any of it. */
    if (p->content_length != ULLONG_MAX && p->content_length > c->body_limit) {
        if (c->route == ROUTE_WEBHOOK)
            c->l->stats.webhook_too_large++;
        return refuse(c, 413);
    }
    if (c->expect_continue && p->content_length != ULLONG_MAX && p->content_length > 0)
        send_interim_continue(c);
    arm_timer(c, c->l->opts.body_timeout_ms);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *c = pconn(p);
    if (c->body.len + len > c->body_limit) {
        if (c->route == ROUTE_WEBHOOK)
            c->l->stats.webhook_too_large++;
        return refuse(c, 413);
    }
    /* Many large bodies at once could exhaust memory; the sum is capped too. */
    if (c->l->body_bytes + len > c->l->opts.max_body_total)
        return refuse(c, 503);
    sbuf_append(&c->body, at, len);
    c->l->body_bytes += len;
    return 0;
}

static void dispatch(conn_t *c, bool finish)
{
    rd_listener_t *l = c->l;
    const rd_listener_cbs_t *cb = &l->cbs;
    enum http_method m = (enum http_method)c->parser.method;
    bool head = m == HTTP_HEAD;
    bool get = m == HTTP_GET || head;

    l->stats.requests++;
    switch (c->route) {
    case ROUTE_NONE:
        send_text(c, 404, "not found", finish);
        return;
    case ROUTE_WEBHOOK:
        if (m != HTTP_POST) {
            send_response(c, 405, NULL, "Allow: POST\r\n", "method not allowed\n", 19, head,
                          finish);
            return;
        }
        if (cb->webhook == NULL) {
            send_text(c, 404, "webhook not configured", finish);
            return;
        }
        {
            const char *msg = NULL;
            int st = cb->webhook(cb->ud, c->event, c->delivery, c->signature, c->content_type,
                                 c->body.p ? c->body.p : "", c->body.len, &msg);
            if (st < 100 || st > 599)
                st = 500;
            send_text(c, st, msg ? msg : reason_phrase(st), finish);
        }
        return;
    default:
        break;
    }
    if (!get) {
        send_response(c, 405, NULL, "Allow: GET, HEAD\r\n", "method not allowed\n", 19, head,
                      finish);
        return;
    }
    if (c->route == ROUTE_HEALTHZ) {
        if (cb->healthz == NULL) {
            send_text(c, 404, "not found", finish);
            return;
        }
        char reason[200] = "";
        bool ok = cb->healthz(cb->ud, reason, sizeof(reason));
        reason[sizeof(reason) - 1] = '\0';
        send_text(c, ok ? 200 : 503, ok ? "ok" : (reason[0] ? reason : "unhealthy"), finish);
        return;
    }
    char *(*fn)(void *, size_t *) = c->route == ROUTE_METRICS ? cb->metrics : cb->status;
    const char *ctype =
        c->route == ROUTE_METRICS ? "text/plain; version=0.0.4; charset=utf-8" : "application/json";
    if (fn == NULL) {
        send_text(c, 404, "not found", finish);
        return;
    }
    size_t len = 0;
    char *text = fn(cb->ud, &len);
    if (text == NULL) {
        send_text(c, 500, "internal error", finish);
        return;
    }
    send_response(c, 200, ctype, NULL, text, len, head, finish);
    free(text);
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = pconn(p);
    bool keep = http_should_keep_alive(p) && !c->l->closing && !p->upgrade;
    dispatch(c, !keep);
    request_reset(c);
    if (!keep)
        return -1; /* stop parsing: nothing after this request is read */
    arm_timer(c, c->l->opts.header_timeout_ms);
    c->idle_since = uv_now(c->l->loop);
    if (c->tcp.write_queue_size > c->l->opts.max_unwritten) {
        /* The peer does not read its answers: parse no further request (conn_parse
         * keeps the rest and stops reading) until on_write sees the queue drain. */
        c->paused = true;
        http_parser_pause(p, 1);
    } else if (c->tcp.write_queue_size == 0) {
        c->active = false;
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- socket I/O ---- */

/* Parse bytes read from the peer and answer each complete request. */
static void conn_parse(conn_t *c, const char *data, size_t len)
{
    rd_listener_t *l = c->l;
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    if (c->closing || c->finishing)
        return;
    if (c->err_status != 0) {
        l->stats.too_large += c->err_status == 413 || c->err_status == 431;
        send_text(c, c->err_status, reason_phrase(c->err_status), true);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
        /* on_message_complete paused: keep the rest (at most one read buffer) and
         * read no more until conn_resume. */
        if (n < len)
            sbuf_append(&c->pending, data + n, len - n);
        uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        l->stats.bad_requests++;
        send_text(c, 400, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)), true);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = rd_container_of((uv_tcp_t *)h, conn_t, tcp);
    rd_listener_t *l = c->l;
    /* One buffer serves every connection: libuv calls read_cb right after
     * alloc_cb, and read_cb consumes the data before returning. */
    if (l->reading) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    l->reading = true;
    buf->base = l->rbuf;
    buf->len = sizeof(l->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = rd_container_of((uv_tcp_t *)s, conn_t, tcp);
    rd_listener_t *l = c->l;
    if (buf->base == l->rbuf)
        l->reading = false;
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering || c->finishing)
        return; /* lingering: discard until EOF */
    conn_parse(c, buf->base, (size_t)nread);
}

/* The peer has read most of its answers: parse the requests kept while paused, and
 * read again unless they fill the queue once more. */
static void conn_resume(conn_t *c)
{
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    sbuf_t rest = c->pending;
    memset(&c->pending, 0, sizeof(c->pending));
    if (rest.len > 0) /* a zero length would tell the parser the stream ended */
        conn_parse(c, rest.p, rest.len);
    sbuf_free(&rest);
    if (c->closing || c->finishing || c->lingering || c->paused)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_refused_closed(uv_handle_t *h)
{
    rd_listener_t *l = h->data;
    free(h);
    l->refused_closing--;
    maybe_free(l);
}

/* The peer's address without its port (IPv4-mapped IPv6 as IPv4). 0 or -1. */
static int peer_of(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    memset(c->addr, 0, sizeof(c->addr));
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        c->addr[0] = 4;
        memcpy(c->addr + 1, &a->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            c->addr[0] = 4;
            memcpy(c->addr + 1, a->sin6_addr.s6_addr + 12, 4);
        } else {
            c->addr[0] = 6;
            memcpy(c->addr + 1, &a->sin6_addr, 16);
            c->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        }
    } else {
        return -1;
    }
    if (c->addr[0] == 4)
        c->loopback = c->addr[1] == 127;
    return 0;
}

/* Admit a new connection c (already counted) against the reserve and its address's
 * cap; at the cap its address's longest-idle connection makes room, so one client's
 * idle connections cannot lock out its own (or a health check's) next request.
 * False: c must be refused. */
static bool admit(rd_listener_t *l, conn_t *c)
{
    size_t reserve = l->opts.loopback_reserve < l->opts.max_connections
                         ? l->opts.loopback_reserve
                         : l->opts.max_connections - 1;
    if (!c->loopback && l->stats.open_connections > l->opts.max_connections - reserve)
        return false;
    size_t same = 0;
    conn_t *idlest = NULL;
    for (conn_t *o = l->conns; o != NULL; o = o->next) {
        if (o == c || memcmp(o->addr, c->addr, sizeof(c->addr)) != 0)
            continue;
        same++;
        if (o->active || o->paused)
            continue;
        if (idlest == NULL || o->idle_since < idlest->idle_since)
            idlest = o;
    }
    if (l->opts.max_per_address == 0 || same < l->opts.max_per_address)
        return true;
    if (idlest == NULL)
        return false;
    l->stats.connections_evicted++;
    conn_close(idlest);
    return true;
}

static void on_connection(uv_stream_t *server, int status)
{
    rd_listener_t *l = rd_container_of((uv_tcp_t *)server, rd_listener_t, server);
    if (status < 0) {
        rd_warn("listener", "accept: %s", uv_strerror(status));
        return;
    }
    if (l->closing)
        return;
    if (l->stats.open_connections >= l->opts.max_connections) {
        /* Accept and close at once: leaving it in the backlog would only make
         * the client wait for a timeout. */
        uv_tcp_t *t = rd_xmalloc(sizeof(*t));
        uv_tcp_init(l->loop, t);
        t->data = l;
        l->refused_closing++;
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_refused_closed);
        l->stats.connections_refused++;
        return;
    }
    conn_t *c = rd_xcalloc(1, sizeof(*c));
    c->l = l;
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->handles = 2;
    l->nconns++;
    l->stats.open_connections++;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || peer_of(c) != 0) {
        conn_close(c);
        return;
    }
    c->idle_since = uv_now(l->loop);
    if (!admit(l, c)) {
        l->stats.connections_refused++;
        conn_close(c);
        return;
    }
    l->stats.connections++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    arm_timer(c, l->opts.header_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- listener lifetime ---- */

static void maybe_free(rd_listener_t *l)
{
    if (!l->closing || l->server_open || l->nconns > 0 || l->refused_closing > 0)
        return;
    void (*done)(void *) = l->done;
    void *arg = l->done_arg;
    free(l->listen);
    free(l);
    if (done)
        done(arg);
}

static void on_server_closed(uv_handle_t *h)
{
    rd_listener_t *l = rd_container_of((uv_tcp_t *)h, rd_listener_t, server);
    l->server_open = false;
    maybe_free(l);
}

int rd_listener_start(uv_loop_t *loop, const rd_listener_opts_t *opts, const rd_listener_cbs_t *cbs,
                      rd_listener_t **out)
{
    struct sockaddr_storage addr;
    *out = NULL;
    if (rd_listener_parse_addr(opts->listen, &addr) != 0) {
        rd_error("listener", "listen: bad address '%s' (want HOST:PORT or [IPv6]:PORT)",
                 opts->listen ? opts->listen : "");
        return RD_EINVAL;
    }
    rd_listener_t *l = rd_xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->opts = *opts;
    l->listen = rd_xstrdup(opts->listen);
    l->opts.listen = l->listen;
    if (cbs)
        l->cbs = *cbs;
    int rc = uv_tcp_init(loop, &l->server);
    if (rc != 0) {
        free(l->listen);
        free(l);
        return RD_EIO;
    }
    l->server_open = true;
    rc = uv_tcp_bind(&l->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->server, 511, on_connection);
    if (rc != 0) {
        rd_error("listener", "listen on %s: %s", l->listen, uv_strerror(rc));
        /* The handle is initialised: it must be closed; the memory goes with it. */
        l->closing = true;
        uv_close((uv_handle_t *)&l->server, on_server_closed);
        return RD_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&l->server, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            l->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            l->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    rd_info("listener", "listening on %s (port %d)", l->listen, l->port);
    *out = l;
    return 0;
}

int rd_listener_port(const rd_listener_t *l)
{
    return l->port;
}

void rd_listener_set_cbs(rd_listener_t *l, const rd_listener_cbs_t *cbs)
{
    l->cbs = *cbs;
}

void rd_listener_get_stats(const rd_listener_t *l, rd_listener_stats_t *out)
{
    *out = l->stats;
}

void rd_listener_close(rd_listener_t *l, void (*done)(void *arg), void *arg)
{
    if (l == NULL || l->closing)
        return;
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    uv_close((uv_handle_t *)&l->server, on_server_closed);
    while (l->conns != NULL)
        conn_close(l->conns);
}
