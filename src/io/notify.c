/* notify.c: systemd notify protocol over an AF_UNIX datagram socket (no libsystemd). */
#include "runnerd/io/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

struct rd_notify {
    uv_timer_t watchdog;
    bool timer_init;
    int fd;
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_usec;
};

static void on_watchdog(uv_timer_t *t)
{
    rd_notify_t *n = rd_container_of(t, rd_notify_t, watchdog);
    rd_notify_send(n, "WATCHDOG=1");
}

/* Parse a decimal unsigned integer that must fill the whole string. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
        return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

static int setup_socket(rd_notify_t *n, const char *path)
{
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path))
        return RD_EINVAL;
    memset(&n->addr, 0, sizeof(n->addr));
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL, and the length counts no terminator. */
        n->addr.sun_path[0] = '\0';
        n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n->fd < 0)
        return RD_EIO;
    return 0;
}

int rd_notify_open(uv_loop_t *loop, rd_notify_t **out)
{
    rd_notify_t *n = rd_xcalloc(1, sizeof(*n));
    n->fd = -1;
    *out = n;

    const char *path = getenv("NOTIFY_SOCKET");
    const char *wusec = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    int rc = 0;
    uint64_t usec = 0, pid = 0;

    if (path != NULL && *path != '\0') {
        rc = setup_socket(n, path);
        if (rc != 0)
            rd_warn("notify", "NOTIFY_SOCKET '%s' is unusable: %s", path, rd_strerror(rc));
    }
    if (n->fd >= 0 && parse_u64(wusec, &usec) && usec > 0) {
        bool ours = wpid == NULL || (parse_u64(wpid, &pid) && pid == (uint64_t)getpid());
        if (ours)
            n->watchdog_usec = usec;
    }
    /* Children (docker CLI, runners) must not talk to our supervisor. */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    if (n->watchdog_usec > 0) {
        uint64_t ms = n->watchdog_usec / 2000;
        if (ms == 0)
            ms = 1;
        uv_timer_init(loop, &n->watchdog);
        n->timer_init = true;
        uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
        uv_unref((uv_handle_t *)&n->watchdog);
        rd_info("notify", "systemd watchdog every %llu ms", (unsigned long long)ms);
    }
    return rc;
}

bool rd_notify_enabled(const rd_notify_t *n)
{
    return n != NULL && n->fd >= 0;
}

uint64_t rd_notify_watchdog_usec(const rd_notify_t *n)
{
    return n ? n->watchdog_usec : 0;
}

int rd_notify_send(rd_notify_t *n, const char *msg)
{
    if (!rd_notify_enabled(n))
        return 0;
    ssize_t r;
    do {
        r = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
                   (const struct sockaddr *)&n->addr, n->addrlen);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        rd_debug("notify", "sendto NOTIFY_SOCKET: %s", strerror(errno));
        return RD_EIO;
    }
    return 0;
}

/* "PREFIX" + optional "\nSTATUS=<status with newlines flattened>". */
static int send_with_status(rd_notify_t *n, const char *prefix, const char *status)
{
    if (!rd_notify_enabled(n))
        return 0;
    char *msg = status ? rd_xasprintf("%s\nSTATUS=%s", prefix, status) : rd_xstrdup(prefix);
    if (status) {
        for (char *p = msg + strlen(prefix) + 1; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    int rc = rd_notify_send(n, msg);
    free(msg);
    return rc;
}

int rd_notify_ready(rd_notify_t *n, const char *status)
{
    return send_with_status(n, "READY=1", status);
}

int rd_notify_reloading(rd_notify_t *n, const char *status)
{
    if (!rd_notify_enabled(n))
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);
    return send_with_status(n, prefix, status);
}

int rd_notify_stopping(rd_notify_t *n, const char *status)
{
    return send_with_status(n, "STOPPING=1", status);
}

int rd_notify_status(rd_notify_t *n, const char *fmt, ...)
{
    if (!rd_notify_enabled(n))
        return 0;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char *msg = rd_xasprintf("STATUS=%s", text);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int rc = rd_notify_send(n, msg);
    free(msg);
    return rc;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(rd_container_of((uv_timer_t *)h, rd_notify_t, watchdog));
}

void rd_notify_close(rd_notify_t *n)
{
    if (n == NULL)
        return;
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    if (n->timer_init)
        uv_close((uv_handle_t *)&n->watchdog, on_timer_closed);
    else
        free(n);
}
