/* fuzz_listener: the listener's HTTP request handling (src/listener.c:
 * http-parser callbacks, header and body limits, keep-alive, pipelining,
 * routing) and, behind /webhook, rd_webhook_process.
 *
 * The parser is not reachable as a pure function: it lives in the listener's
 * read callback. So the target starts one listener on 127.0.0.1 (port chosen
 * by the kernel) with a loop it owns, and for each input opens one loopback
 * connection, writes the input as the raw request bytes, half-closes, reads
 * every response until the listener closes, and waits until the listener has
 * no connection left. A request whose X-Hub-Signature-256 is "sha256=fuzz"
 * gets the body signed with the right secret by the callback, so that the
 * fuzzer reaches the JSON behind the HMAC.
 *
 * The input's first byte is a mode: bit 0 makes the client a lazy reader
 * (it reads nothing until its input is written or the socket refuses more),
 * and /metrics answers 32 KiB, so pipelined requests fill the listener's write
 * queue past its (lowered) bound: parsing pauses and resumes (issue 17 F1).
 * The rest is the raw request bytes. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "fuzz_common.h"
#include "runnerd/core/common.h"
#include "runnerd/core/webhook.h"
#include "runnerd/io/listener.h"

#define SECRET "fuzz-listener-secret"

static uv_loop_t loop;
static rd_listener_t *listener;
static int port;
static rd_webhook_dedup_t *dedup; /* one per input */

#define METRICS_SIZE (32 * 1024)

static char *cb_metrics(void *ud, size_t *len)
{
    static const char line[] = "# TYPE runnerd_up gauge\nrunnerd_up 1\n";
    char *text = rd_xmalloc(METRICS_SIZE);
    for (size_t i = 0; i < METRICS_SIZE; i++)
        text[i] = line[i % (sizeof(line) - 1)];
    *len = METRICS_SIZE;
    return text;
}

static bool cb_healthz(void *ud, char *reason, size_t reason_size)
{
    snprintf(reason, reason_size, "fuzzing");
    return false;
}

static char *cb_status(void *ud, size_t *len)
{
    *len = 2;
    return rd_xstrdup("{}");
}

static int cb_webhook(void *ud, const char *event, const char *delivery, const char *signature,
                      const char *content_type, const char *body, size_t len, const char **message)
{
    char sig[RD_WEBHOOK_SIG_SIZE];
    if (signature != NULL && strcmp(signature, "sha256=fuzz") == 0) {
        rd_webhook_sign(SECRET, strlen(SECRET), body, len, sig);
        signature = sig;
    }
    rd_webhook_outcome_t o;
    rd_webhook_process(SECRET, strlen(SECRET), dedup, event, delivery, signature, content_type,
                       body, len, 1700000000000LL, &o);
    int st = o.http_status;
    *message = o.message;
    rd_webhook_outcome_clear(&o);
    return st;
}

static const rd_listener_cbs_t cbs = {
    .metrics = cb_metrics, .healthz = cb_healthz, .status = cb_status, .webhook = cb_webhook};

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does */
    fz_quiet_logs();
    if (uv_loop_init(&loop) != 0)
        abort();
    rd_listener_opts_t opts;
    rd_listener_opts_default(&opts);
    opts.listen = "127.0.0.1:0";
    opts.max_body_webhook = 256 * 1024;
    opts.header_timeout_ms = 3000; /* backstops: a hang shows as a libFuzzer timeout */
    opts.body_timeout_ms = 3000;
    opts.max_unwritten = 4096; /* a couple of pipelined /metrics pause the parser */
    if (rd_listener_start(&loop, &opts, &cbs, &listener) != 0)
        abort();
    port = rd_listener_port(listener);
    if (port <= 0)
        abort();
}

typedef struct {
    uv_poll_t poll;
    int fd;
    const uint8_t *data;
    size_t size, sent;
    bool write_done, closed;
    bool lazy; /* read only once the input is written or the socket takes no more */
    size_t received;
} client_t;

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = rd_container_of((uv_poll_t *)h, client_t, poll);
    close(c->fd);
    c->closed = true;
}

static void client_finish(client_t *c)
{
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_client_closed);
}

static void on_client(uv_poll_t *p, int status, int events)
{
    client_t *c = rd_container_of(p, client_t, poll);
    if (uv_is_closing((uv_handle_t *)p))
        return;
    if (status < 0) {
        client_finish(c);
        return;
    }
    if ((events & UV_WRITABLE) && !c->write_done) {
        while (c->sent < c->size) {
            ssize_t n = send(c->fd, c->data + c->sent, c->size - c->sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    if (c->lazy) {
                        /* The listener stopped reading until we read: do. */
                        c->lazy = false;
                        uv_poll_start(&c->poll, UV_WRITABLE | UV_READABLE, on_client);
                    }
                    break;
                }
                c->sent = c->size; /* the listener closed on us: stop writing */
                break;
            }
            c->sent += (size_t)n;
        }
        if (c->sent == c->size) {
            c->write_done = true;
            shutdown(c->fd, SHUT_WR);
            uv_poll_start(&c->poll, UV_READABLE, on_client);
        }
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        char buf[16384];
        for (;;) {
            ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
            if (n > 0) {
                c->received += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                break;
            /* EOF or reset: the listener is done with this connection. */
            client_finish(c);
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listener == NULL)
        setup();
    dedup = rd_webhook_dedup_new(16, 3600 * 1000);

    client_t c;
    memset(&c, 0, sizeof(c));
    if (size > 0) {
        c.lazy = (data[0] & 1) != 0;
        data++;
        size--;
    }
    c.data = data;
    c.size = size;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FZ_CHECK(c.fd >= 0);
    if (c.lazy) {
        int small = 4096; /* the kernel holds few answers: the listener's queue fills */
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(c.fd, (struct sockaddr *)&sa, sizeof(sa));
    FZ_CHECK(rc == 0 || errno == EINPROGRESS);
    FZ_CHECK(uv_poll_init_socket(&loop, &c.poll, c.fd) == 0);
    FZ_CHECK(uv_poll_start(&c.poll, c.lazy ? UV_WRITABLE : UV_WRITABLE | UV_READABLE, on_client) ==
             0);

    while (!c.closed)
        uv_run(&loop, UV_RUN_ONCE);
    /* Let the listener notice the close and release the connection. */
    rd_listener_stats_t st;
    for (;;) {
        rd_listener_get_stats(listener, &st);
        if (st.open_connections == 0)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    FZ_CHECK(st.connections_refused == 0);

    rd_webhook_dedup_free(dedup);
    dedup = NULL;
    return 0;
}
