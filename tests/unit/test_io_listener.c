/* test_io_listener.c: the HTTP listener on a real loop and loopback sockets: routes,
 * webhook answers, limits (413, 431), keep-alive, slowloris timeouts, 1000 concurrent
 * connections, the connection cap, and a clean close (uv_loop_close() == 0). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/core/webhook.h"
#include "runnerd/io/listener.h"
#include "runnerd/io/logsink.h"

static const char secret[] = "It's a Secret to Everybody";

/* ---- the daemon side: callbacks ---- */

typedef struct {
    bool healthy;
    bool webhook_enabled;
    rd_webhook_dedup_t *dedup;
    int applied; /* accepted workflow_job actions ("state changes") */
    int metrics_calls;
} app_t;

static char *cb_metrics(void *ud, size_t *len)
{
    app_t *a = ud;
    a->metrics_calls++;
    char *s = rd_xstrdup("# HELP runnerd_up Up.\n# TYPE runnerd_up gauge\nrunnerd_up 1\n");
    *len = strlen(s);
    return s;
}

static bool cb_healthz(void *ud, char *reason, size_t size)
{
    app_t *a = ud;
    if (!a->healthy)
        snprintf(reason, size, "last discovery cycle 300 s ago");
    return a->healthy;
}

static char *cb_status(void *ud, size_t *len)
{
    char *s = rd_xstrdup("{\"version\":\"test\",\"pools\":[]}");
    *len = strlen(s);
    return s;
}

static int cb_webhook(void *ud, const char *event, const char *delivery, const char *signature,
                      const char *content_type, const char *body, size_t len, const char **message)
{
    app_t *a = ud;
    rd_webhook_outcome_t o;
    rd_webhook_process(a->webhook_enabled ? secret : NULL, a->webhook_enabled ? strlen(secret) : 0,
                       a->dedup, event, delivery, signature, content_type, body, len, 1000, &o);
    if (o.result == RD_WEBHOOK_ACCEPTED)
        a->applied++;
    *message = o.message;
    int st = o.http_status;
    rd_webhook_outcome_clear(&o);
    return st;
}

/* ---- a loopback test client ---- */

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char *req;
    size_t req_len;
    bool send_on_connect;
    char *resp;
    size_t resp_len;
    bool connected, eof, closed, failed;
} client_t;

static void client_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    buf->base = rd_xmalloc(65536);
    buf->len = 65536;
}

static void client_closed(uv_handle_t *h)
{
    client_t *c = rd_container_of((uv_tcp_t *)h, client_t, tcp);
    c->closed = true;
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client_t *c = rd_container_of((uv_tcp_t *)s, client_t, tcp);
    if (n > 0) {
        c->resp = rd_xrealloc(c->resp, c->resp_len + (size_t)n + 1);
        memcpy(c->resp + c->resp_len, buf->base, (size_t)n);
        c->resp_len += (size_t)n;
        c->resp[c->resp_len] = '\0';
    } else if (n < 0) {
        c->eof = true;
        if (n != UV_EOF)
            c->failed = true;
        uv_close((uv_handle_t *)&c->tcp, client_closed);
    }
    free(buf->base);
}

static void client_written(uv_write_t *w, int status)
{
    /* A refused or reset connection may fail the write; the read side reports it. */
}

static void client_send(client_t *c)
{
    uv_buf_t b = uv_buf_init(c->req, (unsigned)c->req_len);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, client_written) != 0)
        c->failed = true;
}

static void client_connected(uv_connect_t *req, int status)
{
    client_t *c = rd_container_of(req, client_t, conn);
    if (status < 0) {
        c->failed = true;
        c->eof = true;
        uv_close((uv_handle_t *)&c->tcp, client_closed);
        return;
    }
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    if (c->send_on_connect)
        client_send(c);
}

/* Connect from `from` (an IPv4 address; NULL: any). */
static void client_start_from(uv_loop_t *loop, client_t *c, int port, const char *req, size_t len,
                              bool send_now, const char *from)
{
    memset(c, 0, sizeof(*c));
    c->req = rd_xmalloc(len + 1);
    memcpy(c->req, req, len);
    c->req_len = len;
    c->send_on_connect = send_now;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(loop, &c->tcp);
    if (from != NULL) {
        struct sockaddr_in b;
        uv_ip4_addr(from, 0, &b);
        assert_int_equal(uv_tcp_bind(&c->tcp, (struct sockaddr *)&b, 0), 0);
    }
    assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&a, client_connected), 0);
}

static void client_start(uv_loop_t *loop, client_t *c, int port, const char *req, size_t len,
                         bool send_now)
{
    client_start_from(loop, c, port, req, len, send_now, NULL);
}

static void client_free(client_t *c)
{
    free(c->req);
    free(c->resp);
}

static int resp_status(const client_t *c)
{
    if (c->resp == NULL || strncmp(c->resp, "HTTP/1.1 ", 9) != 0)
        return -1;
    return atoi(c->resp + 9);
}

static const char *resp_body(const client_t *c)
{
    const char *p = c->resp ? strstr(c->resp, "\r\n\r\n") : NULL;
    return p ? p + 4 : "";
}

/* ---- loop helpers ---- */

static void wake(uv_timer_t *t)
{
}

typedef bool (*cond_fn)(void *arg);

/* Run the loop until cond(arg) holds; fail after timeout_ms, multiplied by
 * $RD_TEST_TIMEOUT_SCALE when set (scripts/valgrind.sh sets it: everything runs
 * 10-50 times slower under memcheck). */
static void run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t timeout_ms)
{
    const char *scale = getenv("RD_TEST_TIMEOUT_SCALE");
    if (scale != NULL && atoi(scale) > 1)
        timeout_ms *= (uint64_t)atoi(scale);
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, wake, 20, 20);
    uint64_t start = uv_now(loop);
    while (!cond(arg)) {
        if (uv_now(loop) - start > timeout_ms) {
            uv_close((uv_handle_t *)&t, NULL);
            fail_msg("timed out after %llu ms", (unsigned long long)timeout_ms);
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static bool client_done(void *arg)
{
    return ((client_t *)arg)->closed;
}

typedef struct {
    client_t *v;
    size_t n;
} clients_t;

static bool all_done(void *arg)
{
    clients_t *cs = arg;
    for (size_t i = 0; i < cs->n; i++)
        if (!cs->v[i].closed)
            return false;
    return true;
}

typedef struct {
    uv_loop_t loop;
    rd_listener_t *l;
    app_t app;
    int port;
    bool closed;
} fix_t;

static void on_listener_done(void *arg)
{
    ((fix_t *)arg)->closed = true;
}

static fix_t *fix_start(const rd_listener_opts_t *opts_in)
{
    fix_t *f = rd_xcalloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->app.healthy = true;
    f->app.webhook_enabled = true;
    f->app.dedup = rd_webhook_dedup_new(64, 3600 * 1000);
    rd_listener_opts_t opts;
    if (opts_in)
        opts = *opts_in;
    else
        rd_listener_opts_default(&opts);
    opts.listen = "127.0.0.1:0";
    rd_listener_cbs_t cbs = {&f->app, cb_metrics, cb_healthz, cb_status, cb_webhook};
    assert_int_equal(rd_listener_start(&f->loop, &opts, &cbs, &f->l), 0);
    f->port = rd_listener_port(f->l);
    assert_true(f->port > 0);
    return f;
}

static bool fix_closed(void *arg)
{
    return ((fix_t *)arg)->closed;
}

static void fix_stop(fix_t *f)
{
    rd_listener_close(f->l, on_listener_done, f);
    run_until(&f->loop, fix_closed, f, 30000);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rd_webhook_dedup_free(f->app.dedup);
    free(f);
}

/* One request on its own connection; returns the client (caller frees). */
static void request(fix_t *f, client_t *c, const char *req, size_t len)
{
    client_start(&f->loop, c, f->port, req, len, true);
    run_until(&f->loop, client_done, c, 30000);
}

static int simple(fix_t *f, const char *req, char **body_out)
{
    client_t c;
    request(f, &c, req, strlen(req));
    int st = resp_status(&c);
    if (body_out)
        *body_out = rd_xstrdup(resp_body(&c));
    client_free(&c);
    return st;
}

/* ---- tests ---- */

static void test_parse_addr(void **state)
{
    struct sockaddr_storage a;
    assert_int_equal(rd_listener_parse_addr("127.0.0.1:9464", &a), 0);
    assert_int_equal(a.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a)->sin_port), 9464);
    assert_int_equal(rd_listener_parse_addr("[::1]:9464", &a), 0);
    assert_int_equal(a.ss_family, AF_INET6);
    assert_int_equal(rd_listener_parse_addr("localhost:80", &a), 0);
    assert_int_equal(rd_listener_parse_addr("0.0.0.0:0", &a), 0);
    static const char *const bad[] = {
        "",       "9464",          "127.0.0.1", "127.0.0.1:", "::1:9464",   "[::1]9464",
        "[::1]:", "1.2.3.4:65536", "host:9464", "1.2.3.4:-1", "1.2.3.4:9x", "[zz]:1"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++)
        if (rd_listener_parse_addr(bad[i], &a) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_routes(void **state)
{
    fix_t *f = fix_start(NULL);
    char *body = NULL;
    client_t c;

    request(f, &c, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 53);
    assert_int_equal(resp_status(&c), 200);
    assert_non_null(strstr(c.resp, "Content-Type: text/plain; version=0.0.4"));
    assert_string_equal(resp_body(&c),
                        "# HELP runnerd_up Up.\n# TYPE runnerd_up gauge\nrunnerd_up 1\n");
    client_free(&c);

    assert_int_equal(simple(f, "GET /healthz HTTP/1.0\r\n\r\n", &body), 200);
    assert_string_equal(body, "ok\n");
    free(body);
    f->app.healthy = false;
    assert_int_equal(simple(f, "GET /healthz HTTP/1.0\r\n\r\n", &body), 503);
    assert_string_equal(body, "last discovery cycle 300 s ago\n");
    free(body);

    request(f, &c, "GET /status?x=1 HTTP/1.0\r\n\r\n", 28);
    assert_int_equal(resp_status(&c), 200);
    assert_non_null(strstr(c.resp, "Content-Type: application/json"));
    assert_string_equal(resp_body(&c), "{\"version\":\"test\",\"pools\":[]}");
    client_free(&c);

    request(f, &c, "HEAD /status HTTP/1.0\r\n\r\n", 25);
    assert_int_equal(resp_status(&c), 200);
    assert_string_equal(resp_body(&c), "");
    client_free(&c);

    assert_int_equal(simple(f, "GET /nope HTTP/1.0\r\n\r\n", NULL), 404);
    assert_int_equal(simple(f, "GET / HTTP/1.0\r\n\r\n", NULL), 404);
    request(f, &c, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 45);
    assert_int_equal(resp_status(&c), 405);
    assert_non_null(strstr(c.resp, "Allow: GET, HEAD\r\n"));
    client_free(&c);
    request(f, &c, "GET /webhook HTTP/1.0\r\n\r\n", 25);
    assert_int_equal(resp_status(&c), 405);
    assert_non_null(strstr(c.resp, "Allow: POST\r\n"));
    client_free(&c);
    assert_int_equal(simple(f, "garbage\r\n\r\n", NULL), 400);
    fix_stop(f);
}

static void test_keepalive_pipelined(void **state)
{
    fix_t *f = fix_start(NULL);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    client_t c;
    request(f, &c, req, strlen(req));
    int n = 0;
    for (const char *p = c.resp; (p = strstr(p, "HTTP/1.1 200 OK")) != NULL; p++)
        n++;
    assert_int_equal(n, 3);
    assert_int_equal(f->app.metrics_calls, 1);
    client_free(&c);
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.requests, 3);
    fix_stop(f);
}

static char *webhook_req(const char *event, const char *delivery, const char *key, const char *body,
                         size_t len, size_t *out_len)
{
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign(key, strlen(key), body, len, sig);
    char *head = rd_xasprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nX-GitHub-Event: %s\r\n"
                              "X-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              event, delivery, sig, len);
    size_t hl = strlen(head);
    char *r = rd_xmalloc(hl + len);
    memcpy(r, head, hl);
    memcpy(r + hl, body, len);
    free(head);
    *out_len = hl + len;
    return r;
}

static char *read_fixture(const char *name, size_t *len)
{
    char *path = rd_xasprintf("%s/tests/fixtures/github/%s", RD_SRC_DIR, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    free(path);
    char *buf = rd_xmalloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    return buf;
}

static int post(fix_t *f, const char *event, const char *delivery, const char *key,
                const char *body, size_t len, char **msg)
{
    size_t rl;
    char *r = webhook_req(event, delivery, key, body, len, &rl);
    client_t c;
    request(f, &c, r, rl);
    free(r);
    int st = resp_status(&c);
    if (msg)
        *msg = rd_xstrdup(resp_body(&c));
    client_free(&c);
    return st;
}

static void test_webhook(void **state)
{
    fix_t *f = fix_start(NULL);
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    char *msg;

    assert_int_equal(post(f, "workflow_job", "d-1", secret, body, len, &msg), 200);
    assert_string_equal(msg, "accepted\n");
    free(msg);
    assert_int_equal(f->app.applied, 1);
    /* Replay: 200 duplicate, no state change. */
    assert_int_equal(post(f, "workflow_job", "d-1", secret, body, len, &msg), 200);
    assert_string_equal(msg, "duplicate\n");
    free(msg);
    assert_int_equal(f->app.applied, 1);
    /* Wrong secret: 401, no state change. */
    assert_int_equal(post(f, "workflow_job", "d-2", "not the secret", body, len, NULL), 401);
    /* Malformed JSON, correctly signed: 400. */
    assert_int_equal(post(f, "workflow_job", "d-3", secret, "{\"action\":", 10, NULL), 400);
    /* Unknown event: 202 ignored; ping: 200. */
    assert_int_equal(post(f, "issues", "d-4", secret, "{}", 2, &msg), 202);
    assert_string_equal(msg, "ignored\n");
    free(msg);
    assert_int_equal(post(f, "ping", "d-5", secret, "{}", 2, &msg), 200);
    assert_string_equal(msg, "pong\n");
    free(msg);
    assert_int_equal(f->app.applied, 1);
    /* No secret configured: 404. */
    f->app.webhook_enabled = false;
    assert_int_equal(post(f, "workflow_job", "d-6", secret, body, len, NULL), 404);
    assert_int_equal(f->app.applied, 1);
    /* Expect: 100-continue (curl sends it for bodies over 1 KiB). */
    f->app.webhook_enabled = true;
    size_t rl;
    char *r = webhook_req("workflow_job", "d-7", secret, body, len, &rl);
    char *hdr_end = memmem(r, rl, "\r\n\r\n", 4);
    size_t hl = (size_t)(hdr_end - r);
    char *r2 = rd_xasprintf("%.*s\r\nExpect: 100-continue\r\n\r\n", (int)hl, r);
    size_t r2l = strlen(r2);
    r2 = rd_xrealloc(r2, r2l + len);
    memcpy(r2 + r2l, body, len);
    client_t c;
    request(f, &c, r2, r2l + len);
    assert_int_equal(resp_status(&c), 100);
    assert_non_null(strstr(c.resp, "HTTP/1.1 200 OK"));
    assert_int_equal(f->app.applied, 2);
    client_free(&c);
    free(r);
    free(r2);
    free(body);
    fix_stop(f);
}

static void test_webhook_no_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.listen = "127.0.0.1:0";
    rd_listener_cbs_t cbs = {0};
    rd_listener_t *l;
    assert_int_equal(rd_listener_start(&loop, &o, &cbs, &l), 0);
    client_t c;
    static const char req[] = "POST /webhook HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}";
    client_start(&loop, &c, rd_listener_port(l), req, strlen(req), true);
    run_until(&loop, client_done, &c, 30000);
    assert_int_equal(resp_status(&c), 404);
    client_free(&c);
    client_start(&loop, &c, rd_listener_port(l), "GET /metrics HTTP/1.0\r\n\r\n", 25, true);
    run_until(&loop, client_done, &c, 30000);
    assert_int_equal(resp_status(&c), 404);
    client_free(&c);
    rd_listener_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_oversize(void **state)
{
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.max_body_webhook = 4096;
    fix_t *f = fix_start(&o);

    /* Declared too large: 413 before any body is read. */
    char *msg;
    static const char big_decl[] = "POST /webhook HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 26214400\r\n\r\n{\"action\":";
    assert_int_equal(simple(f, big_decl, &msg), 413);
    free(msg);
    /* Chunked body growing past the limit: 413 once it crosses. */
    char *chunk = rd_xmalloc(3000);
    memset(chunk, 'a', 3000);
    char *req = rd_xasprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             "\r\nbb8\r\n%.*s\r\nbb8\r\n%.*s\r\n0\r\n\r\n",
                             3000, chunk, 3000, chunk);
    assert_int_equal(simple(f, req, NULL), 413);
    free(req);
    free(chunk);
    /* Other routes take small bodies only. */
    char *small =
        rd_xasprintf("GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 64 * 1024);
    assert_int_equal(simple(f, small, NULL), 413);
    free(small);

    /* Headers over 16 KiB: 431. */
    char *pad = rd_xmalloc(17 * 1024);
    memset(pad, 'x', 17 * 1024 - 1);
    pad[17 * 1024 - 1] = '\0';
    char *hreq = rd_xasprintf("GET /healthz HTTP/1.1\r\nX-Pad: %s\r\n\r\n", pad);
    assert_int_equal(simple(f, hreq, NULL), 431);
    free(hreq);
    free(pad);
    /* Too many header lines: 431. */
    char *many = rd_xstrdup("GET /healthz HTTP/1.1\r\n");
    for (int i = 0; i < 150; i++) {
        char *n = rd_xasprintf("%sX-H%d: v\r\n", many, i);
        free(many);
        many = n;
    }
    char *n = rd_xasprintf("%s\r\n", many);
    free(many);
    assert_int_equal(simple(f, n, NULL), 431);
    free(n);
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    assert_int_equal(st.webhook_too_large, 2);
    assert_int_equal(st.too_large, 5);
    assert_int_equal(f->app.applied, 0);
    fix_stop(f);
}

static void test_oversize_default_25mib(void **state)
{
    /* The real limit: a 25 MiB + 1 declared body is refused, 25 MiB is read. */
    fix_t *f = fix_start(NULL);
    char *req = rd_xasprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                             25 * 1024 * 1024 + 1);
    assert_int_equal(simple(f, req, NULL), 413);
    free(req);
    size_t blen = 25 * 1024 * 1024;
    char *head = rd_xasprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: big\r\n"
                              "X-Hub-Signature-256: sha256=00\r\nContent-Length: %zu\r\n\r\n",
                              blen);
    size_t hl = strlen(head);
    char *full = rd_xmalloc(hl + blen);
    memcpy(full, head, hl);
    memset(full + hl, ' ', blen);
    client_t c;
    request(f, &c, full, hl + blen);
    assert_int_equal(resp_status(&c), 401); /* read completely, then refused by signature */
    client_free(&c);
    free(full);
    free(head);
    fix_stop(f);
}

static void test_body_budget(void **state)
{
    /* Bodies buffered over all connections are capped: a request crossing it gets 503. */
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.max_body_total = 1000;
    fix_t *f = fix_start(&o);
    char *body = rd_xmalloc(2000);
    memset(body, ' ', 2000);
    char *req = rd_xasprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
                             "%.*s",
                             2000, body);
    assert_int_equal(simple(f, req, NULL), 503);
    /* Under the budget it works, and the budget is released after each request. */
    char *ok = rd_xasprintf("POST /webhook HTTP/1.0\r\nHost: x\r\nContent-Length: 900\r\n\r\n"
                            "%.*s",
                            900, body);
    for (int i = 0; i < 3; i++)
        assert_int_equal(simple(f, ok, NULL), 401);
    free(ok);
    free(req);
    free(body);
    fix_stop(f);
}

static void test_slowloris(void **state)
{
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.header_timeout_ms = 200;
    o.body_timeout_ms = 300;
    fix_t *f = fix_start(&o);
    client_t c[3];
    clients_t cs = {c, 3};
    uint64_t t0 = uv_now(&f->loop);
    /* Headers never finish. */
    static const char part[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    client_start(&f->loop, &c[0], f->port, part, strlen(part), true);
    /* Headers done, body never finishes. */
    static const char body[] = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    client_start(&f->loop, &c[1], f->port, body, strlen(body), true);
    /* Connects and says nothing. */
    client_start(&f->loop, &c[2], f->port, "", 0, false);
    run_until(&f->loop, all_done, &cs, 30000);
    uint64_t took = uv_now(&f->loop) - t0;
    assert_true(took >= 150 && took < 3000);
    for (int i = 0; i < 3; i++) {
        assert_true(c[i].eof);
        assert_int_equal(c[i].resp_len, 0);
        client_free(&c[i]);
    }
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    assert_int_equal(st.timeouts, 3);
    assert_int_equal(st.open_connections, 0);
    /* A keep-alive connection left idle is closed by the same timeout. */
    client_t k;
    request(f, &k, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 34);
    assert_int_equal(resp_status(&k), 200);
    client_free(&k);
    fix_stop(f);
}

typedef struct {
    fix_t *f;
    size_t want;
} open_arg_t;

static bool server_has_open(void *arg)
{
    open_arg_t *a = arg;
    rd_listener_stats_t st;
    rd_listener_get_stats(a->f->l, &st);
    return st.open_connections >= a->want;
}

static void test_concurrent_1000(void **state)
{
    enum { N = 1000 };
    fix_t *f = fix_start(NULL);
    client_t *c = rd_xcalloc(N, sizeof(*c));
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    /* From 20 loopback addresses: one address holds at most 64 connections. */
    for (int i = 0; i < N; i++) {
        char from[32];
        snprintf(from, sizeof(from), "127.0.0.%d", 10 + i % 20);
        client_start_from(&f->loop, &c[i], f->port, req, strlen(req), false, from);
    }
    /* All 1000 connections open on the server at the same time... */
    open_arg_t oa = {f, N};
    run_until(&f->loop, server_has_open, &oa, 20000);
    /* ...then every client sends its request. */
    for (int i = 0; i < N; i++) {
        assert_true(c[i].connected);
        client_send(&c[i]);
    }
    clients_t cs = {c, N};
    run_until(&f->loop, all_done, &cs, 30000);
    for (int i = 0; i < N; i++) {
        if (resp_status(&c[i]) != 200)
            fail_msg("client %d: status %d", i, resp_status(&c[i]));
        client_free(&c[i]);
    }
    free(c);
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    assert_int_equal(st.connections, N);
    assert_int_equal(st.connections_refused, 0);
    fix_stop(f);
}

static void test_max_connections(void **state)
{
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.max_connections = 5;
    fix_t *f = fix_start(&o);
    client_t c[6];
    for (int i = 0; i < 5; i++)
        client_start(&f->loop, &c[i], f->port, "", 0, false);
    open_arg_t oa = {f, 5};
    run_until(&f->loop, server_has_open, &oa, 30000);
    /* The sixth is accepted and closed at once. */
    client_start(&f->loop, &c[5], f->port, "", 0, false);
    run_until(&f->loop, client_done, &c[5], 30000);
    assert_int_equal(c[5].resp_len, 0);
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    assert_int_equal(st.connections_refused, 1);
    assert_int_equal(st.open_connections, 5);
    /* Closing the listener closes the five idle connections too. */
    rd_listener_close(f->l, on_listener_done, f);
    clients_t cs = {c, 6};
    run_until(&f->loop, all_done, &cs, 30000);
    assert_true(f->closed);
    for (int i = 0; i < 6; i++)
        client_free(&c[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rd_webhook_dedup_free(f->app.dedup);
    free(f);
}

static void test_bind_failure(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.listen = "127.0.0.1:0";
    rd_listener_cbs_t cbs = {0};
    rd_listener_t *a, *b;
    assert_int_equal(rd_listener_start(&loop, &o, &cbs, &a), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", rd_listener_port(a));
    o.listen = addr;
    assert_int_equal(rd_listener_start(&loop, &o, &cbs, &b), RD_EIO);
    assert_null(b);
    o.listen = "nonsense";
    assert_int_equal(rd_listener_start(&loop, &o, &cbs, &b), RD_EINVAL);
    rd_listener_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_ipv6(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.listen = "[::1]:0";
    rd_listener_cbs_t cbs = {0};
    rd_listener_t *l;
    int rc = rd_listener_start(&loop, &o, &cbs, &l);
    if (rc == 0) {
        assert_true(rd_listener_port(l) > 0);
        rd_listener_close(l, NULL, NULL);
    } else {
        /* A host without IPv6 loopback: the failure is reported, nothing leaks. */
        print_message("no IPv6 loopback here: %s\n", rd_strerror(rc));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rd_logsink_setup(RD_LOG_WARN, RD_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_keepalive_pipelined),
        cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_webhook_no_callback),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_oversize_default_25mib),
        cmocka_unit_test(test_body_budget),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_concurrent_1000),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_bind_failure),
        cmocka_unit_test(test_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
