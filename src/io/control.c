/* control.c: the control socket. A Unix stream socket (mode 0660: the
 * service's user and group) speaking just enough HTTP/1.1: one request per
 * connection, no body, answer, close. Requests are bounded (8 KiB of head, 10 s
 * to send it) and at most 16 connections are open, so a stuck client cannot
 * hold the loop or memory. */
#include "runnerd/io/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

#define LOGC "control"
#define MAX_HEAD 8192
#define MAX_CONNS 16
#define REQ_TIMEOUT_MS 10000

typedef struct conn conn_t;

struct rd_control {
    uv_pipe_t server;
    char *path;
    rd_control_handler_fn fn;
    void *ud;
    conn_t *conns;
    size_t nconns;
    bool closing;
    bool server_closed; /* freed once this is set and no connection is left */
};

struct conn {
    conn_t *next;
    rd_control_t *ctl;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t wr;
    char head[MAX_HEAD + 1];
    size_t len;
    char *out;
    bool answered;
    int open; /* handles not yet closed */
};

static void conn_unlink(conn_t *c)
{
    rd_control_t *ctl = c->ctl;
    for (conn_t **pp = &ctl->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            ctl->nconns--;
            break;
        }
}

static void maybe_free(rd_control_t *ctl)
{
    if (ctl->server_closed && ctl->nconns == 0) {
        free(ctl->path);
        free(ctl);
    }
}

static void server_closed(uv_handle_t *h)
{
    rd_control_t *ctl = rd_container_of((uv_pipe_t *)h, rd_control_t, server);
    ctl->server_closed = true;
    maybe_free(ctl);
}

static void conn_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->open > 0)
        return;
    rd_control_t *ctl = c->ctl;
    conn_unlink(c);
    free(c->out);
    free(c);
    maybe_free(ctl);
}

static void conn_close(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static const char *reason(int st)
{
    switch (st) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Request Header Fields Too Large";
    case 422:
        return "Unprocessable Entity";
    case 503:
        return "Service Unavailable";
    }
    return "Error";
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(rd_container_of(w, conn_t, wr));
}

static void answer(conn_t *c, int st, char *body)
{
    if (c->answered) {
        free(body);
        return;
    }
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    const char *b = body ? body : "{}";
    c->out = rd_xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                          st, reason(st), strlen(b), b);
    free(body);
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)strlen(c->out));
    if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &buf, 1, on_written) != 0)
        conn_close(c);
}

static char *error_body(const char *msg)
{
    return rd_xasprintf("{\"error\":\"%s\"}\n", msg);
}

/* The request line of a complete head: dispatch it. */
static void dispatch(conn_t *c)
{
    char *eol = strstr(c->head, "\r\n");
    if (eol == NULL)
        eol = strchr(c->head, '\n');
    if (eol != NULL)
        *eol = '\0';
    char method[16], target[1024], version[16];
    if (sscanf(c->head, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        answer(c, 400, error_body("malformed request line"));
        return;
    }
    char *q = strchr(target, '?');
    if (q != NULL)
        *q++ = '\0';
    rd_control_request_t req = {
        .method = method, .path = target, .query = q ? q : "", .uid = (uid_t)-1, .pid = 0};
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        req.uid = cred.uid;
        req.pid = cred.pid;
    }
    rd_control_reply_t rep = {.status = 500, .body = NULL};
    c->ctl->fn(c->ctl->ud, &req, &rep);
    answer(c, rep.status, rep.body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    size_t room = MAX_HEAD - c->len;
    *buf = uv_buf_init(c->head + c->len, (unsigned)(room ? room : 1));
    if (room == 0)
        buf->base = NULL, buf->len = 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->head[c->len] = '\0';
    if (strstr(c->head, "\r\n\r\n") != NULL || strstr(c->head, "\n\n") != NULL)
        dispatch(c);
    else if (c->len >= MAX_HEAD)
        answer(c, 413, error_body("request head over 8 KiB"));
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (!c->answered)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    rd_control_t *ctl = rd_container_of((uv_pipe_t *)server, rd_control_t, server);
    if (status != 0 || ctl->closing)
        return;
    conn_t *c = rd_xcalloc(1, sizeof(*c));
    c->ctl = ctl;
    if (uv_pipe_init(server->loop, &c->pipe, 0) != 0) {
        free(c);
        return;
    }
    c->pipe.data = c;
    c->open = 1;
    c->next = ctl->conns;
    ctl->conns = c;
    ctl->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || ctl->nconns > MAX_CONNS) {
        uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
        return;
    }
    uv_timer_init(server->loop, &c->timer);
    c->timer.data = c;
    c->open = 2;
    uv_timer_start(&c->timer, on_timeout, REQ_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0)
        conn_close(c);
}

/* Is a daemon answering on PATH? */
static bool socket_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return alive;
}

int rd_control_open(uv_loop_t *loop, const char *path, rd_control_handler_fn fn, void *ud,
                    rd_control_t **out)
{
    *out = NULL;
    struct stat st;
    /* The directory first: the common miss is /run/runnerd outside the unit. */
    const char *slash = strrchr(path, '/');
    if (slash != NULL && slash != path) {
        char *dir = rd_xasprintf("%.*s", (int)(slash - path), path);
        int r = stat(dir, &st);
        free(dir);
        if (r != 0 && errno == ENOENT)
            return RD_ENOENT;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || socket_alive(path))
            return RD_EEXIST;
        unlink(path); /* stale: its daemon is gone */
    }
    rd_control_t *ctl = rd_xcalloc(1, sizeof(*ctl));
    ctl->fn = fn;
    ctl->ud = ud;
    ctl->path = rd_xstrdup(path);
    int rc = uv_pipe_init(loop, &ctl->server, 0);
    if (rc != 0) {
        free(ctl->path);
        free(ctl);
        return RD_EIO;
    }
    /* Created 0660 from the start (the loop is the only thread): group members
     * (the service's group) may steer the daemon, others may not even connect. */
    mode_t old = umask(0117);
    rc = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (rc == 0 && chmod(path, 0660) != 0)
        rc = UV_EIO;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    if (rc != 0) {
        int err = rc == UV_ENOENT ? RD_ENOENT : rc == UV_EADDRINUSE ? RD_EEXIST : RD_EIO;
        ctl->closing = true;
        uv_close((uv_handle_t *)&ctl->server, server_closed);
        return err;
    }
    *out = ctl;
    return 0;
}

void rd_control_close(rd_control_t *ctl)
{
    if (ctl == NULL || ctl->closing)
        return;
    ctl->closing = true;
    unlink(ctl->path);
    for (conn_t *c = ctl->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&ctl->server, server_closed);
}

char *rd_control_query_get(const char *query, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            char *v = rd_xmalloc(n - kl);
            size_t o = 0;
            for (size_t i = kl + 1; i < n; i++) {
                if (p[i] == '%' && i + 2 < n && rd_hexval(p[i + 1]) >= 0 &&
                    rd_hexval(p[i + 2]) >= 0) {
                    v[o++] = (char)(rd_hexval(p[i + 1]) * 16 + rd_hexval(p[i + 2]));
                    i += 2;
                } else {
                    v[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            v[o] = '\0';
            return v;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}
