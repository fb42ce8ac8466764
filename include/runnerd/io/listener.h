/* listener.h: the HTTP listener (I/O: uv_tcp + http-parser) for /metrics,
 * /healthz, /status and /webhook.
 *
 * The listener owns the sockets, parsing, limits and timeouts; the daemon owns
 * every answer, through the callbacks below, which are called on the loop
 * thread and must not block. */
#ifndef RUNNERD_LISTENER_H
#define RUNNERD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct rd_listener rd_listener_t;

/*
 * Callbacks the daemon supplies. A NULL callback makes its route answer 404.
 *
 * metrics:  GET /metrics. Return the Prometheus text (rd_metrics_render) as a heap
 *           string, which the listener frees; *len gets its length. NULL -> 500.
 * healthz:  GET /healthz. Return true when healthy (200 "ok"); false gives 503 with
 *           `reason` (write a NUL-terminated line into reason, at most reason_size bytes).
 * status:   GET /status. Return the JSON document of docs/status.md as a heap string
 *           (freed by the listener); *len gets its length. NULL -> 500.
 * webhook:  POST /webhook. event, delivery, signature and content_type are the values
 *           of the X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256 and
 *           Content-Type headers, or NULL when absent; body/len the raw body (not NUL-terminated;
 * valid only during the call). Return the HTTP status and set *message to a static string for the
 * response body. The daemon calls rd_webhook_process() and applies its outcome. Bodies over the
 * limit never reach it (413).
 */
typedef struct {
    void *ud;
    char *(*metrics)(void *ud, size_t *len);
    bool (*healthz)(void *ud, char *reason, size_t reason_size);
    char *(*status)(void *ud, size_t *len);
    int (*webhook)(void *ud, const char *event, const char *delivery, const char *signature,
                   const char *content_type, const char *body, size_t len, const char **message);
} rd_listener_cbs_t;

typedef struct {
    const char *listen;         /* "127.0.0.1:9464", "[::1]:9464", "localhost:9464"; port 0 = any */
    size_t max_header_bytes;    /* request line + headers; over it: 431 (default 16 KiB) */
    size_t max_headers;         /* header lines; over it: 431 (default 100) */
    size_t max_body_webhook;    /* POST /webhook body; over it: 413 (default 25 MiB) */
    size_t max_body_other;      /* any other request's body; over it: 413 (default 4 KiB) */
    size_t max_body_total;      /* bodies buffered over all connections; over it: 503 (64 MiB) */
    uint64_t header_timeout_ms; /* accept (or the previous response) to end of headers (10 s) */
    uint64_t body_timeout_ms;   /* end of headers to end of body (30 s) */
    size_t max_connections;     /* beyond it new connections are accepted and closed (1024) */
    /* Connections from one client address; at it, a new one replaces that address's
     * longest-idle connection (no request under way), or is closed when none is (64). */
    size_t max_per_address;
    /* Of max_connections, this many are kept for loopback clients (health checks) (8). */
    size_t loopback_reserve;
    /* Answer bytes queued and not yet taken by the peer beyond which a connection's
     * pipelined requests are no longer parsed nor read, until the peer reads (256 KiB). */
    size_t max_unwritten;
} rd_listener_opts_t;

/* Counters since start, for logs and metrics. */
typedef struct {
    uint64_t connections;         /* accepted and served */
    uint64_t connections_refused; /* accepted and closed at once: a connection cap reached */
    uint64_t connections_evicted; /* idle connections closed for a new one from their address */
    uint64_t requests;            /* complete requests answered */
    uint64_t timeouts;            /* connections closed by the header/body timeout */
    uint64_t bad_requests;        /* 400 (parse errors) */
    uint64_t too_large;           /* 413 and 431 */
    uint64_t webhook_too_large;   /* 413 on /webhook: count as webhook result "too_large" */
    size_t open_connections;
} rd_listener_stats_t;

/** Fill opts with the defaults above (listen = NULL). */
void rd_listener_opts_default(rd_listener_opts_t *opts);

/**
 * Parse "HOST:PORT" (IPv4 literal or "localhost") or "[IPv6]:PORT" into addr.
 * Returns 0 or RD_EINVAL.
 */
int rd_listener_parse_addr(const char *listen, struct sockaddr_storage *addr);

/**
 * Bind and listen on opts->listen. cbs is copied. Returns 0 and *out, or a
 * negative RD_E* code (bad address, bind failure: logged).
 */
int rd_listener_start(uv_loop_t *loop, const rd_listener_opts_t *opts, const rd_listener_cbs_t *cbs,
                      rd_listener_t **out);

/** The bound port (useful after listening on port 0). */
int rd_listener_port(const rd_listener_t *l);

/** Replace the callbacks (e.g. after a reload changed the daemon's state object). */
void rd_listener_set_cbs(rd_listener_t *l, const rd_listener_cbs_t *cbs);

void rd_listener_get_stats(const rd_listener_t *l, rd_listener_stats_t *out);

/**
 * Stop listening and close every connection (pending responses are dropped).
 * The listener is freed once all its handles are closed; done(arg), when not
 * NULL, is called then. After that the loop holds none of its handles.
 */
void rd_listener_close(rd_listener_t *l, void (*done)(void *arg), void *arg);

#endif
