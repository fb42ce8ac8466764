/* test_io_notify.c: the systemd notify messages, read from a datagram socket the test
 * binds (a file path and an abstract one), and the watchdog timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/logsink.h"
#include "runnerd/io/notify.h"

#ifndef WD_USEC
#define WD_USEC "100000"
#endif

typedef struct {
    int fd;
    char path[108];
} sock_t;

/* Bind a datagram socket at path ('@' = abstract) and point NOTIFY_SOCKET at it. */
static void sock_bind(sock_t *s, const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(s->path, sizeof(s->path), "%s", path);
    size_t len = strlen(path);
    memcpy(a.sun_path, path, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    if (path[0] == '@') {
        a.sun_path[0] = '\0';
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        unlink(path);
    }
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, alen), 0);
    setenv("NOTIFY_SOCKET", path, 1);
}

static void sock_close(sock_t *s)
{
    close(s->fd);
    if (s->path[0] == '/')
        unlink(s->path);
}

/* The next datagram, or "" when none is waiting. */
static char *recv_msg(sock_t *s, char *buf, size_t size)
{
    ssize_t n = recv(s->fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_messages(sock_t *s)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    rd_notify_t *n;
    assert_int_equal(rd_notify_open(&loop, &n), 0);
    assert_true(rd_notify_enabled(n));
    assert_int_equal(rd_notify_watchdog_usec(n), 0);
    /* The environment is cleaned for children. */
    assert_null(getenv("NOTIFY_SOCKET"));

    char buf[1024];
    assert_int_equal(rd_notify_ready(n, "polling 3 targets"), 0);
    assert_string_equal(recv_msg(s, buf, sizeof(buf)), "READY=1\nSTATUS=polling 3 targets");
    assert_int_equal(rd_notify_ready(n, NULL), 0);
    assert_string_equal(recv_msg(s, buf, sizeof(buf)), "READY=1");

    assert_int_equal(rd_notify_reloading(n, "reloading"), 0);
    recv_msg(s, buf, sizeof(buf));
    unsigned long long usec = 0;
    char status[64];
    assert_int_equal(
        sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%63[^\n]", &usec, status), 2);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
    assert_true(usec > 0 && usec <= now && now - usec < 5000000ull);
    assert_string_equal(status, "reloading");

    assert_int_equal(rd_notify_stopping(n, "draining 2 busy runners"), 0);
    assert_string_equal(recv_msg(s, buf, sizeof(buf)),
                        "STOPPING=1\nSTATUS=draining 2 busy runners");
    assert_int_equal(rd_notify_status(n, "%d idle,\n%d busy", 1, 2), 0);
    assert_string_equal(recv_msg(s, buf, sizeof(buf)), "STATUS=1 idle, 2 busy");
    /* Nothing else was sent. */
    assert_string_equal(recv_msg(s, buf, sizeof(buf)), "");

    rd_notify_close(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_path_socket(void **state)
{
    char path[108];
    snprintf(path, sizeof(path), "/tmp/runnerd-notify-test-%d.sock", (int)getpid());
    sock_t s;
    sock_bind(&s, path);
    test_messages(&s);
    sock_close(&s);
}

static void test_abstract_socket(void **state)
{
    char path[108];
    snprintf(path, sizeof(path), "@runnerd-notify-test-%d", (int)getpid());
    sock_t s;
    sock_bind(&s, path);
    test_messages(&s);
    sock_close(&s);
}

/* Counts the pings as they arrive and stops the loop at the sixth (or at a deadline far
 * beyond any load). A timed window would fail on a busy machine; timers never fire early,
 * so a floor on the time the sixth ping took is what proves the interval. */
typedef struct {
    sock_t *s;
    int pings;
    uint64_t last_ms;
} wd_watch_t;

static void on_wd_check(uv_timer_t *t)
{
    wd_watch_t *w = t->data;
    char buf[256];
    for (;;) {
        recv_msg(w->s, buf, sizeof(buf));
        if (buf[0] == '\0')
            break;
        if (strcmp(buf, "WATCHDOG=1") != 0)
            fail_msg("unexpected message '%s'", buf);
        w->pings++;
        w->last_ms = uv_now(t->loop);
    }
    if (w->pings >= 6)
        uv_stop(t->loop);
}

static void on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_watchdog(void **state)
{
    char path[108];
    snprintf(path, sizeof(path), "@runnerd-notify-wd-%d", (int)getpid());
    sock_t s;
    sock_bind(&s, path);
    setenv("WATCHDOG_USEC", WD_USEC, 1); /* 100 ms: a ping every 50 ms */
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);

    uv_loop_t loop;
    uv_loop_init(&loop);
    /* The watchdog timer starts from the loop's time now (or later): the sixth ping
     * cannot come before t0 + 300 ms. */
    uint64_t t0 = uv_now(&loop);
    rd_notify_t *n;
    assert_int_equal(rd_notify_open(&loop, &n), 0);
    assert_int_equal(rd_notify_watchdog_usec(n), strtoull(WD_USEC, NULL, 10));
    assert_null(getenv("WATCHDOG_USEC"));
    /* The watchdog timer alone does not keep the loop alive... */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    /* ...but pings while something else does: six, each at least half the watchdog
     * interval (50 ms) after the one before. */
    wd_watch_t w = {.s = &s};
    uv_timer_t check, deadline;
    uv_timer_init(&loop, &check);
    uv_timer_init(&loop, &deadline);
    check.data = &w;
    uv_timer_start(&check, on_wd_check, 5, 5);
    uv_timer_start(&deadline, on_deadline, 20000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (w.pings < 6)
        fail_msg("%d WATCHDOG=1 in 20 s, want 6 within about 300 ms", w.pings);
    if (w.last_ms - t0 < 6 * 50)
        fail_msg("6 pings within %llu ms: faster than every 50 ms",
                 (unsigned long long)(w.last_ms - t0));
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    rd_notify_close(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    sock_close(&s);
}

static void test_watchdog_other_pid(void **state)
{
    char path[108];
    snprintf(path, sizeof(path), "@runnerd-notify-wd2-%d", (int)getpid());
    sock_t s;
    sock_bind(&s, path);
    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_notify_t *n;
    assert_int_equal(rd_notify_open(&loop, &n), 0);
    assert_int_equal(rd_notify_watchdog_usec(n), 0);
    rd_notify_close(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    sock_close(&s);
}

static void test_disabled(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "100000", 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_notify_t *n;
    assert_int_equal(rd_notify_open(&loop, &n), 0);
    assert_false(rd_notify_enabled(n));
    assert_int_equal(rd_notify_watchdog_usec(n), 0);
    assert_int_equal(rd_notify_ready(n, "x"), 0);
    assert_int_equal(rd_notify_reloading(n, NULL), 0);
    assert_int_equal(rd_notify_stopping(n, NULL), 0);
    assert_int_equal(rd_notify_status(n, "y"), 0);
    rd_notify_close(n);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(rd_notify_open(&loop, &n), RD_EINVAL);
    assert_false(rd_notify_enabled(n));
    rd_notify_close(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_socket_gone(void **state)
{
    /* The supervisor's socket vanished: sends fail with RD_EIO, nothing crashes. */
    setenv("NOTIFY_SOCKET", "/tmp/runnerd-notify-nonexistent.sock", 1);
    unsetenv("WATCHDOG_USEC");
    uv_loop_t loop;
    uv_loop_init(&loop);
    rd_notify_t *n;
    assert_int_equal(rd_notify_open(&loop, &n), 0);
    assert_int_equal(rd_notify_ready(n, NULL), RD_EIO);
    rd_notify_close(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    rd_logsink_setup(RD_LOG_ERROR, RD_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket), cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_watchdog),    cmocka_unit_test(test_watchdog_other_pid),
        cmocka_unit_test(test_disabled),    cmocka_unit_test(test_socket_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
