/* http.h: HTTP client on libcurl-multi driven by a libuv loop (I/O module).
 *
 * One rd_http_t per loop: one curl multi handle, uv_poll_t per socket, one
 * uv_timer_t for curl's timeouts, completed transfers drained after every
 * curl_multi_socket_action. Connection reuse, HTTP/2 when offered, at most
 * max_connections per host, bodies capped.
 *
 * Behaviour callers rely on (see src/http.c):
 *  - Redirects are not followed: a 3xx arrives as is, with `location` set, and
 *    the caller decides (GitHub answers 301 for renamed repositories).
 *  - Errors in rd_http_response_t.error: RD_ERANGE body over max_body;
 *    RD_EIO connect refused, connect or total timeout, reset, TLS failure;
 *    RD_EPROTO malformed HTTP / bad content encoding; RD_EINVAL bad URL or a
 *    scheme other than http/https; RD_ECANCELED rd_http_cancel/rd_http_close.
 *    On error, status is 0, body is "" and the header fields are NULL / -1.
 *  - Bodies are always NUL-terminated ("" when empty, e.g. 304 or HEAD).
 *  - Compressed encodings are requested and decoded transparently; max_body
 *    applies to the decoded size.
 *  - max_connections caps both per-host and total connections of the client;
 *    extra requests queue inside libcurl. Over https HTTP/2 is negotiated when
 *    the server offers it and requests multiplex on one connection.
 *  - Callbacks may start new requests, cancel others or call rd_http_close.
 *  - Request headers and bodies are never logged. */
#ifndef RUNNERD_HTTP_H
#define RUNNERD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rd_http rd_http_t;

typedef struct {
    unsigned max_connections;    /* per host; 0 = 8 */
    uint64_t connect_timeout_ms; /* 0 = 10 s */
    uint64_t total_timeout_ms;   /* 0 = 30 s */
    size_t max_body;             /* 0 = 16 MiB; larger responses fail with RD_ERANGE */
    const char *ca_file;         /* NULL = system store */
    const char *user_agent;      /* "runnerd/VERSION" */
} rd_http_options_t;

typedef struct {
    int error;          /* 0, or RD_E*: transport failure (status is then 0) */
    const char *errmsg; /* curl's error text when error != 0 */
    /* error == RD_EIO because the request ran out of time (connect or total
     * timeout): the server may still be working on it, unlike after a reset */
    int timed_out;
    long status; /* HTTP status */
    char *body;  /* NUL-terminated; owned by the response */
    size_t body_len;
    /* Selected headers (NULL when absent), owned by the response. */
    char *etag;
    char *link;
    char *retry_after;
    char *location;
    char *content_type;
    /* x-ratelimit-*; -1 when absent */
    int64_t rl_limit;
    int64_t rl_remaining;
    int64_t rl_used;
    int64_t rl_reset; /* epoch seconds */
    char *rl_resource;
    uint64_t elapsed_ms;
} rd_http_response_t;

/** Called once per request, on the loop thread. The response is freed after it returns. */
typedef void (*rd_http_cb)(void *ud, const rd_http_response_t *res);

typedef struct rd_http_req rd_http_req_t;

int rd_http_new(uv_loop_t *loop, const rd_http_options_t *opts, rd_http_t **out);
/** Cancel everything in flight (callbacks get RD_ECANCELED, from the loop) and close;
 *  closed_cb(ud) (may be NULL) when all handles are closed and h is freed. New
 *  requests after this return RD_ECANCELED. Then uv_loop_close() can succeed. */
void rd_http_close(rd_http_t *h, void (*closed_cb)(void *ud), void *ud);

/**
 * Start a request. headers: NULL-terminated "Name: value" strings (copied).
 * body may be NULL. On success returns 0 and (if out_req) a handle usable
 * with rd_http_cancel until the callback runs; on failure returns RD_E* and
 * the callback is never called.
 */
int rd_http_request(rd_http_t *h, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t body_len, rd_http_cb cb, void *ud,
                    rd_http_req_t **out_req);
/** Cancel one request: its callback runs with error RD_ECANCELED from the loop, not from inside
 * this call. */
void rd_http_cancel(rd_http_t *h, rd_http_req_t *req);

/**
 * Verify TLS peers of requests started from now on against ca_file (copied;
 * NULL = the system store); requests in flight keep theirs. A connection is
 * reused only by requests with the same ca_file (libcurl compares it), and a CA
 * store libcurl cached before this call is not used again, so a file replaced
 * in place at the same path is read anew (SIGHUP after a CA rotation).
 */
void rd_http_set_ca_file(rd_http_t *h, const char *ca_file);

/** Requests currently in flight. */
size_t rd_http_inflight(const rd_http_t *h);

#endif
