/* control.h: the local control socket (DESIGN.md section 6): HTTP/1.1 over a
 * Unix socket, mode 0660, one request per connection. What a request does is
 * the handler's business (src/io/daemon_control.c); this module owns the
 * socket, reading and bounding requests, and writing the answer. */
#ifndef RUNNERD_IO_CONTROL_H
#define RUNNERD_IO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

typedef struct rd_control rd_control_t;

/** One parsed request. path has no query; query is "" when absent. */
typedef struct {
    const char *method;
    const char *path;
    const char *query;
    uid_t uid; /* the peer's (SO_PEERCRED); (uid_t)-1 when unknown */
    pid_t pid;
} rd_control_request_t;

/** The handler's answer: an HTTP status and a JSON body (heap, taken over). */
typedef struct {
    int status;
    char *body;
} rd_control_reply_t;

typedef void (*rd_control_handler_fn)(void *ud, const rd_control_request_t *req,
                                      rd_control_reply_t *out);

/**
 * Listen on PATH. A stale socket left by a dead daemon is replaced; RD_EEXIST
 * when a live daemon answers on PATH or PATH is not a socket, RD_ENOENT when
 * its directory is missing, RD_EIO otherwise (the caller warns and runs on).
 */
int rd_control_open(uv_loop_t *loop, const char *path, rd_control_handler_fn fn, void *ud,
                    rd_control_t **out);
/** Close the socket and every connection, unlink PATH; frees on the last close. */
void rd_control_close(rd_control_t *c);

/** The value of KEY in a query string ("a=1&b=2"), percent-decoded, heap; NULL when absent. */
char *rd_control_query_get(const char *query, const char *key);

#endif
