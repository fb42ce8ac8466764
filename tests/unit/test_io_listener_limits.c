/* test_io_listener_limits.c: the listener's memory and connection bounds under hostile
 * clients (issue 17 F1, F2), with raw non-blocking sockets so a test controls exactly
 * what a client reads and from which address it connects:
 *  - a client that pipelines 1 MiB of GET /metrics and reads nothing gets only a
 *    bounded number of them parsed and answered; once it reads, every one is answered;
 *  - 1,100 idle connections from one address leave /healthz answering, from loopback
 *    and from that address too (its longest-idle connections make room);
 *  - connections with a request under way are never evicted: past the cap they refuse;
 *  - the last slots are kept for loopback clients. */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/listener.h"
#include "runnerd/io/logsink.h"

#define BODY_SIZE 1024

typedef struct {
    uv_loop_t loop;
    rd_listener_t *l;
    int port;
    int metrics_calls;
    char body[BODY_SIZE];
} fix_t;

static char *cb_metrics(void *ud, size_t *len)
{
    fix_t *f = ud;
    f->metrics_calls++;
    char *s = rd_xmalloc(BODY_SIZE);
    memcpy(s, f->body, BODY_SIZE);
    *len = BODY_SIZE;
    return s;
}

static bool cb_healthz(void *ud, char *reason, size_t size)
{
    (void)ud;
    (void)reason;
    (void)size;
    return true;
}

static uint64_t scaled(uint64_t ms)
{
    const char *scale = getenv("RD_TEST_TIMEOUT_SCALE");
    if (scale != NULL && atoi(scale) > 1)
        ms *= (uint64_t)atoi(scale);
    return ms;
}

static fix_t *fix_start(const rd_listener_opts_t *in, const char *listen)
{
    fix_t *f = rd_xcalloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    memset(f->body, 'm', BODY_SIZE);
    f->body[BODY_SIZE - 1] = '\n';
    rd_listener_opts_t o;
    if (in)
        o = *in;
    else
        rd_listener_opts_default(&o);
    o.listen = listen ? listen : "127.0.0.1:0";
    rd_listener_cbs_t cbs = {.ud = f, .metrics = cb_metrics, .healthz = cb_healthz};
    assert_int_equal(rd_listener_start(&f->loop, &o, &cbs, &f->l), 0);
    f->port = rd_listener_port(f->l);
    return f;
}

static void fix_stop(fix_t *f)
{
    rd_listener_close(f->l, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

/* One loop turn for the listener, then a short wait so the kernel moves bytes. */
static void spin(fix_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static rd_listener_stats_t stats(fix_t *f)
{
    rd_listener_stats_t st;
    rd_listener_get_stats(f->l, &st);
    return st;
}

/* A non-blocking client socket from address `from` (NULL: any) to 127.0.0.1 or `to`. */
static int client(fix_t *f, const char *from, const char *to, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (from != NULL) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            fail_msg("bind %s: %s", from, strerror(errno));
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, to ? to : "127.0.0.1", &a.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (rc != 0 && errno != EINPROGRESS)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

/* Send req on a fresh connection and read until EOF; returns the HTTP status or -1 when
 * the connection was closed without an answer. */
static int ask(fix_t *f, const char *from, const char *to, const char *req)
{
    int fd = client(f, from, to, 0);
    size_t sent = 0, len = strlen(req);
    char buf[4096];
    size_t got = 0;
    uint64_t start = uv_now(&f->loop);
    for (;;) {
        if (uv_now(&f->loop) - start > scaled(10000))
            fail_msg("no answer within 10 s");
        if (sent < len) {
            ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != ENOTCONN)
                break; /* reset: refused */
        }
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != ENOTCONN))
            break;
        if (n > 0)
            got += (size_t)n;
        spin(f);
        uv_update_time(&f->loop);
    }
    close(fd);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    return atoi(buf + 9);
}

/* F1: pipelined requests whose answers are not read. */
static void test_pipelined_unread(void **state)
{
    (void)state;
    fix_t *f = fix_start(NULL, NULL);
    static const char one[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { N = 30000 }; /* 1 MiB of requests */
    size_t rl = strlen(one), total = rl * N;
    char *reqs = rd_xmalloc(total);
    for (size_t i = 0; i < N; i++)
        memcpy(reqs + i * rl, one, rl);
    int fd = client(f, NULL, NULL, 32 * 1024);
    size_t sent = 0;
    /* Phase 1: send for a while, read nothing. */
    uv_update_time(&f->loop);
    uint64_t start = uv_now(&f->loop);
    while (uv_now(&f->loop) - start < 1500) {
        if (sent < total) {
            ssize_t n = send(fd, reqs + sent, total - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        spin(f);
        uv_update_time(&f->loop);
    }
    int parsed = f->metrics_calls;
    print_message("unread: %zu of %zu bytes sent, %d requests answered\n", sent, total, parsed);
    /* Unbounded, all 30,000 are parsed and their 33 MiB of answers queued in memory.
     * Bounded: what the socket buffers take plus 256 KiB of queue. */
    if (parsed >= 10000)
        fail_msg("%d pipelined requests answered while none was read", parsed);
    /* Phase 2: the client reads; every request is answered, in order, nothing lost. */
    size_t got = 0, head = 0;
    char buf[65536];
    char first[512] = "";
    start = uv_now(&f->loop);
    while (head == 0 || got < (head + BODY_SIZE) * N) {
        if (uv_now(&f->loop) - start > scaled(60000))
            fail_msg("only %zu bytes of answers after 60 s (%d requests answered)", got,
                     f->metrics_calls);
        if (sent < total) {
            ssize_t n = send(fd, reqs + sent, total - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
            if (got < sizeof(first) - 1) {
                size_t k =
                    (size_t)n < sizeof(first) - 1 - got ? (size_t)n : sizeof(first) - 1 - got;
                memcpy(first + got, buf, k);
                char *e = strstr(first, "\r\n\r\n");
                if (e != NULL && head == 0)
                    head = (size_t)(e - first) + 4;
            }
            got += (size_t)n;
        }
        if (n == 0)
            fail_msg("connection closed after %zu bytes", got);
        spin(f);
        uv_update_time(&f->loop);
    }
    assert_int_equal(f->metrics_calls, N);
    assert_int_equal(got, (head + BODY_SIZE) * N);
    assert_int_equal(strncmp(first, "HTTP/1.1 200 OK\r\n", 17), 0);
    close(fd);
    free(reqs);
    fix_stop(f);
}

/* F2: 1,100 idle connections from one address. */
static void test_one_address_flood(void **state)
{
    (void)state;
    fix_t *f = fix_start(NULL, NULL);
    enum { N = 1100 };
    int *fds = rd_xcalloc(N, sizeof(*fds));
    for (int i = 0; i < N; i++) {
        fds[i] = client(f, "127.0.0.2", NULL, 0);
        if (i % 64 == 0)
            spin(f);
    }
    uv_update_time(&f->loop);
    uint64_t start = uv_now(&f->loop);
    rd_listener_stats_t st = stats(f);
    while (st.connections + st.connections_refused < N) {
        if (uv_now(&f->loop) - start > scaled(20000))
            fail_msg("only %llu of %d connections seen", (unsigned long long)st.connections, N);
        spin(f);
        uv_update_time(&f->loop);
        st = stats(f);
    }
    print_message("flood: %llu accepted, %llu refused, %llu evicted, %zu open\n",
                  (unsigned long long)st.connections, (unsigned long long)st.connections_refused,
                  (unsigned long long)st.connections_evicted, st.open_connections);
    /* A health check from loopback, and from the flooding address itself, is answered. */
    assert_int_equal(ask(f, "127.0.0.1", NULL, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
    assert_int_equal(ask(f, "127.0.0.2", NULL, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
    assert_true(st.open_connections <= 64);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    free(fds);
    fix_stop(f);
}

/* Connections with a request under way are not evicted: past the cap a new one from
 * that address is refused; other addresses are served. */
static void test_busy_not_evicted(void **state)
{
    (void)state;
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.max_per_address = 4;
    fix_t *f = fix_start(&o, NULL);
    int fds[4];
    static const char part[] = "GET /healthz HTTP/1.1\r\nX-Slow: ";
    for (int i = 0; i < 4; i++)
        fds[i] = client(f, "127.0.0.3", NULL, 0);
    uv_update_time(&f->loop);
    uint64_t start = uv_now(&f->loop);
    while (stats(f).open_connections < 4) {
        if (uv_now(&f->loop) - start > scaled(10000))
            fail_msg("connections not accepted");
        spin(f);
        uv_update_time(&f->loop);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(send(fds[i], part, strlen(part), MSG_NOSIGNAL), (ssize_t)strlen(part));
    for (int i = 0; i < 20; i++)
        spin(f);
    assert_int_equal(ask(f, "127.0.0.3", NULL, "GET /healthz HTTP/1.0\r\n\r\n"), -1);
    assert_int_equal(ask(f, "127.0.0.4", NULL, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
    rd_listener_stats_t st = stats(f);
    assert_int_equal(st.connections_refused, 1);
    assert_int_equal(st.connections_evicted, 0);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    fix_stop(f);
}

/* A local IPv4 address that is not loopback (docker0, eth0), or false. */
static bool other_address(char *out, size_t size)
{
    struct ifaddrs *ifs = NULL;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (struct ifaddrs *i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
        if ((ntohl(a->sin_addr.s_addr) >> 24) == 127)
            continue;
        found = inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)size) != NULL;
    }
    freeifaddrs(ifs);
    return found;
}

/* The last loopback_reserve slots take loopback clients only. */
static void test_loopback_reserve(void **state)
{
    (void)state;
    char other[64];
    if (!other_address(other, sizeof(other))) {
        /* Said, not silent: without a second address the reserve cannot be told apart. */
        print_message("no non-loopback IPv4 address here: the reserve is not tested\n");
        return;
    }
    rd_listener_opts_t o;
    rd_listener_opts_default(&o);
    o.max_connections = 12;
    o.loopback_reserve = 4;
    fix_t *f = fix_start(&o, "0.0.0.0:0");
    int fds[10];
    for (int i = 0; i < 10; i++)
        fds[i] = client(f, other, other, 0);
    uv_update_time(&f->loop);
    uint64_t start = uv_now(&f->loop);
    rd_listener_stats_t st = stats(f);
    while (st.connections + st.connections_refused < 10) {
        if (uv_now(&f->loop) - start > scaled(10000))
            fail_msg("connections not seen");
        spin(f);
        uv_update_time(&f->loop);
        st = stats(f);
    }
    assert_int_equal(st.connections, 8);
    assert_int_equal(st.connections_refused, 2);
    assert_int_equal(ask(f, other, other, "GET /healthz HTTP/1.0\r\n\r\n"), -1);
    assert_int_equal(ask(f, "127.0.0.1", NULL, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    fix_stop(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rd_logsink_setup(RD_LOG_WARN, RD_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_unread),
        cmocka_unit_test(test_one_address_flood),
        cmocka_unit_test(test_busy_not_evicted),
        cmocka_unit_test(test_loopback_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
