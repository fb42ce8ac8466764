/* test_io_http.c: rd_http against a loopback HTTP/1.1 server (python3 child).
 *
 * The server is a small ThreadingHTTPServer started once per test binary; it
 * counts connections open at the same time, so the max_connections cap is
 * checked from the server's side. Every test runs its own uv loop, closes the
 * client and asserts uv_loop_close() == 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "runnerd/core/common.h"
#include "runnerd/io/http.h"

static const char server_py[] =
    "import ssl, sys, threading, time\n"
    "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
    "from urllib.parse import urlparse, parse_qs\n"
    "lock = threading.Lock()\n"
    "st = {'cur': 0, 'max': 0, 'conns': 0}\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    disable_nagle_algorithm = True\n"
    "    tagged = False\n"
    "    def tag(self):\n"
    "        if self.tagged: return\n"
    "        self.tagged = True\n"
    "        with lock:\n"
    "            st['cur'] += 1; st['conns'] += 1; st['max'] = max(st['max'], st['cur'])\n"
    "    def finish(self):\n"
    "        try:\n"
    "            super().finish()\n"
    "        finally:\n"
    "            if self.tagged:\n"
    "                with lock: st['cur'] -= 1\n"
    "    def log_message(self, *a): pass\n"
    "    def out(self, code, body, hdrs=()):\n"
    "        b = body.encode() if isinstance(body, str) else body\n"
    "        self.send_response(code)\n"
    "        for k, v in hdrs: self.send_header(k, v)\n"
    "        if code not in (204, 304): self.send_header('Content-Length', str(len(b)))\n"
    "        self.end_headers()\n"
    "        if code not in (204, 304) and self.command != 'HEAD': self.wfile.write(b)\n"
    "    def do_GET(self):\n"
    "        u = urlparse(self.path); q = parse_qs(u.query); p = u.path\n"
    "        if 'X-Count' in self.headers: self.tag()\n"
    "        if p == '/hello':\n"
    "            self.out(200, 'hello', [('ETag', '\"abc\"'),\n"
    "                ('Link', '<http://127.0.0.1/x?page=2>; rel=\"next\"'),\n"
    "                ('X-RateLimit-Limit', '5000'), ('x-ratelimit-remaining', '4999'),\n"
    "                ('X-RATELIMIT-USED', '1'), ('X-RateLimit-Reset', '1700000000'),\n"
    "                ('X-RateLimit-Resource', 'core'), ('Retry-After', '7'),\n"
    "                ('Content-Type', 'application/json; charset=utf-8'),\n"
    "                ('Location', 'http://127.0.0.1/elsewhere')])\n"
    "        elif p == '/echo':\n"
    "            self.out(200, 'ua=%s;x=%s;method=%s' % (self.headers.get('User-Agent'),\n"
    "                self.headers.get('X-Test'), self.command))\n"
    "        elif p == '/etag':\n"
    "            if self.headers.get('If-None-Match') == '\"v1\"': self.out(304, '', [('ETag', "
    "'\"v1\"')])\n"
    "            else: self.out(200, 'fresh', [('ETag', '\"v1\"')])\n"
    "        elif p == '/big':\n"
    "            self.out(200, b'x' * int(q['n'][0]))\n"
    "        elif p == '/chunked':\n"
    "            n = int(q['n'][0])\n"
    "            self.send_response(200); self.send_header('Transfer-Encoding', 'chunked'); "
    "self.end_headers()\n"
    "            try:\n"
    "                for i in range(n // 1000): self.wfile.write(b'3e8\\r\\n' + b'y' * 1000 + "
    "b'\\r\\n')\n"
    "                self.wfile.write(b'0\\r\\n\\r\\n')\n"
    "            except OSError: pass\n"
    "        elif p == '/slow':\n"
    "            time.sleep(int(q['ms'][0]) / 1000.0); self.out(200, 'slow')\n"
    "        elif p == '/stats':\n"
    "            with lock: s = '%d %d %d' % (st['max'], st['cur'], st['conns'])\n"
    "            self.out(200, s)\n"
    "        elif p == '/reset':\n"
    "            with lock: st['max'] = 0; st['conns'] = 0\n"
    "            self.out(200, 'ok')\n"
    "        elif p == '/close':\n"
    "            self.close_connection = True\n"
    "            self.out(200, 'bye', [('Connection', 'close')])\n"
    "        else: self.out(404, 'nope')\n"
    "    do_HEAD = do_GET\n"
    "    def do_POST(self):\n"
    "        n = int(self.headers.get('Content-Length', '0'))\n"
    "        b = self.rfile.read(n)\n"
    "        self.out(201, b'%s:' % self.command.encode() + b)\n"
    "    do_PUT = do_POST\n"
    "    do_PATCH = do_POST\n"
    "    def do_DELETE(self): self.out(204, '')\n"
    "class S(ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    def handle_error(self, *a): pass\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "tls = S(('127.0.0.1', 0), H)\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "ctx.set_alpn_protocols(['http/1.1'])\n"
    "tls.socket = ctx.wrap_socket(tls.socket, server_side=True)\n"
    "threading.Thread(target=tls.serve_forever, daemon=True).start()\n"
    "print(srv.server_address[1], tls.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

static pid_t server_pid = -1;
static int server_port; /* plain HTTP */
static int tls_port;    /* HTTPS with a self-signed certificate for IP 127.0.0.1 */
static char tmpdir[64];
static char cert_path[128]; /* also the CA file that trusts it */
static char key_path[128];

/* Write a self-signed certificate for IP:127.0.0.1 and its key (PEM). */
static int make_cert(void)
{
    int rc = -1;
    EVP_PKEY *k = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *fc = NULL, *fk = NULL;
    if (k == NULL || x == NULL)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    if (ext == NULL)
        goto out;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(x, k, EVP_sha256()) == 0)
        goto out;
    fc = fopen(cert_path, "w");
    fk = fopen(key_path, "w");
    if (fc == NULL || fk == NULL)
        goto out;
    if (PEM_write_X509(fc, x) != 1 || PEM_write_PrivateKey(fk, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    rc = 0;
out:
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url(const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return rd_xasprintf("http://127.0.0.1:%d%s", server_port, path);
}

static int start_server(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rd-test-http-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    if (make_cert() != 0) {
        fprintf(stderr, "could not make a test certificate\n");
        return -1;
    }
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", "-c", server_py, cert_path, key_path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = {0};
    size_t n = 0;
    while (n < sizeof(buf) - 1) {
        ssize_t k = read(p[0], buf + n, 1);
        if (k <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    close(p[0]);
    server_pid = pid;
    if (sscanf(buf, "%d %d", &server_port, &tls_port) != 2 || server_port <= 0 || tls_port <= 0) {
        fprintf(stderr, "test server did not start\n");
        return -1;
    }
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    unlink(cert_path);
    unlink(key_path);
    rmdir(tmpdir);
    return 0;
}

/* ------------------------------------------------------------ helpers */

typedef struct {
    int called;
    int error;
    long status;
    char *body;
    size_t body_len;
    char *etag, *link, *retry_after, *location, *content_type, *rl_resource;
    int64_t rl_limit, rl_remaining, rl_used, rl_reset;
    uint64_t elapsed_ms;
    char *errmsg;
} result_t;

static char *dup_or_null(const char *s)
{
    return s ? rd_xstrdup(s) : NULL;
}

static void result_free(result_t *r)
{
    free(r->body);
    free(r->etag);
    free(r->link);
    free(r->retry_after);
    free(r->location);
    free(r->content_type);
    free(r->rl_resource);
    free(r->errmsg);
    memset(r, 0, sizeof(*r));
}

static void on_result(void *ud, const rd_http_response_t *res)
{
    result_t *r = ud;
    r->called++;
    r->error = res->error;
    r->status = res->status;
    assert_non_null(res->body);
    assert_int_equal(strlen(res->body), res->body_len);
    r->body = rd_xstrndup(res->body, res->body_len);
    r->body_len = res->body_len;
    r->etag = dup_or_null(res->etag);
    r->link = dup_or_null(res->link);
    r->retry_after = dup_or_null(res->retry_after);
    r->location = dup_or_null(res->location);
    r->content_type = dup_or_null(res->content_type);
    r->rl_resource = dup_or_null(res->rl_resource);
    r->rl_limit = res->rl_limit;
    r->rl_remaining = res->rl_remaining;
    r->rl_used = res->rl_used;
    r->rl_reset = res->rl_reset;
    r->elapsed_ms = res->elapsed_ms;
    r->errmsg = dup_or_null(res->errmsg);
    if (res->error != 0)
        assert_non_null(res->errmsg);
}

typedef struct {
    uv_loop_t loop;
    rd_http_t *h;
    int closed;
} fixture_t;

static void on_closed(void *ud)
{
    ((fixture_t *)ud)->closed++;
}

static void fx_init(fixture_t *f, const rd_http_options_t *opts)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    rd_http_options_t def = {.user_agent = "runnerd-test/1"};
    assert_int_equal(rd_http_new(&f->loop, opts ? opts : &def, &f->h), 0);
}

static void fx_finish(fixture_t *f)
{
    rd_http_close(f->h, on_closed, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void get(fixture_t *f, const char *u, const char *const *hdrs, result_t *r)
{
    assert_int_equal(rd_http_request(f->h, "GET", u, hdrs, NULL, 0, on_result, r, NULL), 0);
}

/* ------------------------------------------------------------ tests */

static void test_get_headers(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t r = {0}, e = {0};
    char *u1 = url("/hello"), *u2 = url("/echo");
    const char *hdrs[] = {"X-Test: 42", "Authorization: Bearer secret", NULL};
    get(&f, u1, NULL, &r);
    get(&f, u2, hdrs, &e);
    assert_int_equal(rd_http_inflight(f.h), 2);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(rd_http_inflight(f.h), 0);

    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.etag, "\"abc\"");
    assert_string_equal(r.link, "<http://127.0.0.1/x?page=2>; rel=\"next\"");
    assert_string_equal(r.retry_after, "7");
    assert_string_equal(r.location, "http://127.0.0.1/elsewhere");
    assert_string_equal(r.content_type, "application/json; charset=utf-8");
    assert_string_equal(r.rl_resource, "core");
    assert_int_equal(r.rl_limit, 5000);
    assert_int_equal(r.rl_remaining, 4999);
    assert_int_equal(r.rl_used, 1);
    assert_int_equal(r.rl_reset, 1700000000);

    assert_int_equal(e.called, 1);
    assert_int_equal(e.status, 200);
    assert_string_equal(e.body, "ua=runnerd-test/1;x=42;method=GET");
    assert_null(e.etag);
    assert_int_equal(e.rl_limit, -1);
    assert_int_equal(e.rl_remaining, -1);
    result_free(&r);
    result_free(&e);
    free(u1);
    free(u2);
    fx_finish(&f);
}

static void test_not_modified(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t a = {0}, b = {0};
    char *u = url("/etag");
    get(&f, u, NULL, &a);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "fresh");
    char *inm = rd_xasprintf("If-None-Match: %s", a.etag);
    const char *hdrs[] = {inm, NULL};
    get(&f, u, hdrs, &b);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(b.called, 1);
    assert_int_equal(b.error, 0);
    assert_int_equal(b.status, 304);
    assert_int_equal(b.body_len, 0);
    assert_string_equal(b.etag, "\"v1\"");
    free(inm);
    free(u);
    result_free(&a);
    result_free(&b);
    fx_finish(&f);
}

static void test_methods(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t p = {0}, d = {0}, hd = {0}, pe = {0};
    char *u = url("/echo");
    const char body[] = "{\"name\":\"r1\"}";
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    assert_int_equal(rd_http_request(f.h, "POST", u, hdrs, body, strlen(body), on_result, &p, NULL),
                     0);
    assert_int_equal(rd_http_request(f.h, "DELETE", u, NULL, NULL, 0, on_result, &d, NULL), 0);
    assert_int_equal(rd_http_request(f.h, "HEAD", u, NULL, NULL, 0, on_result, &hd, NULL), 0);
    assert_int_equal(rd_http_request(f.h, "PATCH", u, NULL, "{}", 2, on_result, &pe, NULL), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(p.status, 201);
    assert_string_equal(p.body, "POST:{\"name\":\"r1\"}");
    assert_int_equal(d.status, 204);
    assert_int_equal(d.error, 0);
    assert_int_equal(hd.status, 200);
    assert_int_equal(hd.body_len, 0);
    assert_int_equal(pe.status, 201);
    assert_string_equal(pe.body, "PATCH:{}");
    free(u);
    result_free(&p);
    result_free(&d);
    result_free(&hd);
    result_free(&pe);
    fx_finish(&f);
}

static void test_body_cap(void **state)
{
    (void)state;
    fixture_t f;
    rd_http_options_t o = {.max_body = 2000};
    fx_init(&f, &o);
    result_t exact = {0}, cl = {0}, ch = {0}, chok = {0};
    char *u1 = url("/big?n=2000"), *u2 = url("/big?n=50000"), *u3 = url("/chunked?n=50000"),
         *u4 = url("/chunked?n=2000");
    get(&f, u1, NULL, &exact);
    get(&f, u2, NULL, &cl);
    get(&f, u3, NULL, &ch);
    get(&f, u4, NULL, &chok);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(exact.error, 0);
    assert_int_equal(exact.body_len, 2000);
    assert_int_equal(cl.called, 1);
    assert_int_equal(cl.error, RD_ERANGE);
    assert_int_equal(cl.status, 0);
    assert_int_equal(ch.called, 1);
    assert_int_equal(ch.error, RD_ERANGE);
    assert_int_equal(chok.error, 0);
    assert_int_equal(chok.body_len, 2000);
    free(u1);
    free(u2);
    free(u3);
    free(u4);
    result_free(&exact);
    result_free(&cl);
    result_free(&ch);
    result_free(&chok);
    fx_finish(&f);
}

static void test_total_timeout(void **state)
{
    (void)state;
    fixture_t f;
    rd_http_options_t o = {.total_timeout_ms = 300};
    fx_init(&f, &o);
    result_t r = {0};
    char *u = url("/slow?ms=3000");
    get(&f, u, NULL, &r);
    uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, RD_EIO);
    assert_int_equal(r.status, 0);
    assert_true(ms < 2000);
    assert_true(r.elapsed_ms >= 250);
    free(u);
    result_free(&r);
    fx_finish(&f);
}

/* A listening socket whose accept queue is full drops new SYNs, so connecting
 * to it hangs: the connect timeout must fire. Loopback only. */
static void test_connect_timeout(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    int fill[8];
    for (int i = 0; i < 8; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        int rc = connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
        assert_true(rc == 0 || errno == EINPROGRESS);
    }
    usleep(50000);

    fixture_t f;
    rd_http_options_t o = {.connect_timeout_ms = 300, .total_timeout_ms = 5000};
    fx_init(&f, &o);
    result_t r = {0};
    char *u = rd_xasprintf("http://127.0.0.1:%d/", ntohs(sa.sin_port));
    get(&f, u, NULL, &r);
    uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, RD_EIO);
    assert_true(ms >= 250);
    assert_true(ms < 3000);
    free(u);
    result_free(&r);
    fx_finish(&f);
    for (int i = 0; i < 8; i++)
        close(fill[i]);
    close(lfd);
}

static void test_connection_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd); /* bound, never listened: the port now refuses */

    fixture_t f;
    fx_init(&f, NULL);
    result_t r = {0};
    char *u = rd_xasprintf("http://127.0.0.1:%d/", ntohs(sa.sin_port));
    get(&f, u, NULL, &r);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, RD_EIO);
    assert_int_equal(r.status, 0);
    assert_non_null(r.errmsg);
    free(u);
    result_free(&r);
    fx_finish(&f);
}

static void test_bad_request_args(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t r = {0};
    rd_http_req_t *req = (rd_http_req_t *)&r;
    assert_int_equal(rd_http_request(f.h, "GET", NULL, NULL, NULL, 0, on_result, &r, &req),
                     RD_EINVAL);
    assert_null(req);
    /* A scheme curl will not speak is refused when the transfer runs. */
    assert_int_equal(
        rd_http_request(f.h, "GET", "ftp://127.0.0.1/x", NULL, NULL, 0, on_result, &r, NULL), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, RD_EINVAL);
    result_free(&r);
    fx_finish(&f);
}

#define MANY 200

static void test_many_concurrent_capped(void **state)
{
    (void)state;
    fixture_t f;
    rd_http_options_t o = {.max_connections = 4};
    fx_init(&f, &o);
    result_t reset = {0};
    char *ur = url("/reset");
    get(&f, ur, NULL, &reset);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(reset.status, 200);

    result_t *rs = rd_xcalloc(MANY, sizeof(*rs));
    char *u = url("/slow?ms=10");
    const char *count[] = {"X-Count: 1", NULL};
    for (int i = 0; i < MANY; i++)
        get(&f, u, count, &rs[i]);
    assert_int_equal(rd_http_inflight(f.h), MANY);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(rs[i].called, 1);
        assert_int_equal(rs[i].error, 0);
        assert_int_equal(rs[i].status, 200);
        result_free(&rs[i]);
    }
    result_t st = {0};
    char *us = url("/stats");
    get(&f, us, NULL, &st);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    int maxc = 0, cur = 0, conns = 0;
    assert_int_equal(sscanf(st.body, "%d %d %d", &maxc, &cur, &conns), 3);
    printf("# server saw max %d concurrent connections, %d opened for %d requests\n", maxc, conns,
           MANY + 1);
    assert_true(maxc >= 1);
    assert_true(maxc <= 4);
    /* Connections are reused, not opened per request. */
    assert_true(conns <= 8);
    free(rs);
    free(u);
    free(ur);
    free(us);
    result_free(&reset);
    result_free(&st);
    fx_finish(&f);
}

/* The server closes every connection: sockets (and their fd numbers) churn, so
 * uv_poll handles are closed and re-created for reused descriptors. */
static void test_connection_churn(void **state)
{
    (void)state;
    fixture_t f;
    rd_http_options_t o = {.max_connections = 2};
    fx_init(&f, &o);
    enum { N = 60 };
    result_t *rs = rd_xcalloc(N, sizeof(*rs));
    char *u = url("/close");
    for (int i = 0; i < N; i++)
        get(&f, u, NULL, &rs[i]);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].called, 1);
        assert_int_equal(rs[i].error, 0);
        assert_string_equal(rs[i].body, "bye");
        result_free(&rs[i]);
    }
    free(rs);
    free(u);
    fx_finish(&f);
}

typedef struct {
    int polls;
    int referenced;
    uv_handle_t *last;
} poll_count_t;

static void count_poll(uv_handle_t *hd, void *arg)
{
    poll_count_t *c = arg;
    if (hd->type != UV_POLL || uv_is_closing(hd))
        return;
    c->polls++;
    c->referenced += uv_has_ref(hd);
    c->last = hd;
}

/* A kept-alive connection keeps its one poll handle between requests (no
 * epoll_ctl and ioctl per request, issue 14), unreferenced so that an idle
 * client does not keep the loop running; the next request reuses it. */
static void test_keepalive_poll_reused(void **state)
{
    (void)state;
    fixture_t f;
    rd_http_options_t o = {.max_connections = 1, .user_agent = "runnerd-test/1"};
    fx_init(&f, &o);
    char *u = url("/hello");
    uv_handle_t *first = NULL;
    for (int i = 0; i < 3; i++) {
        result_t r = {0};
        get(&f, u, NULL, &r);
        uv_run(&f.loop, UV_RUN_DEFAULT); /* returns: the idle poll is unreferenced */
        assert_int_equal(r.called, 1);
        assert_int_equal(r.status, 200);
        poll_count_t c = {0};
        uv_walk(&f.loop, count_poll, &c);
        assert_int_equal(c.polls, 1);
        assert_int_equal(c.referenced, 0);
        if (first == NULL)
            first = c.last;
        assert_ptr_equal(c.last, first);
        result_free(&r);
    }
    free(u);
    fx_finish(&f);
}

/* HTTPS: trusted through ca_file; refused without it (the system store does not
 * know this self-signed certificate). */
static void test_tls_ca_file(void **state)
{
    (void)state;
    char *u = rd_xasprintf("https://127.0.0.1:%d/hello", tls_port);
    fixture_t f;
    rd_http_options_t o = {.ca_file = cert_path};
    fx_init(&f, &o);
    result_t ok = {0}, ok2 = {0};
    get(&f, u, NULL, &ok);
    get(&f, u, NULL, &ok2);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(ok.error, 0);
    assert_int_equal(ok.status, 200);
    assert_string_equal(ok.body, "hello");
    assert_string_equal(ok.etag, "\"abc\"");
    assert_int_equal(ok2.status, 200);
    result_free(&ok);
    result_free(&ok2);
    fx_finish(&f);

    fixture_t g;
    fx_init(&g, NULL);
    result_t bad = {0};
    get(&g, u, NULL, &bad);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    assert_int_equal(bad.called, 1);
    assert_int_equal(bad.error, RD_EIO);
    assert_int_equal(bad.status, 0);
    result_free(&bad);
    fx_finish(&g);
    free(u);
}

static void test_cancel(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t r = {0}, ok = {0};
    rd_http_req_t *req = NULL;
    char *u = url("/slow?ms=2000"), *u2 = url("/hello");
    assert_int_equal(rd_http_request(f.h, "GET", u, NULL, NULL, 0, on_result, &r, &req), 0);
    assert_non_null(req);
    get(&f, u2, NULL, &ok);
    /* Let the slow request reach the server first. */
    uv_run(&f.loop, UV_RUN_ONCE);
    rd_http_cancel(f.h, req);
    assert_int_equal(r.called, 0); /* never from inside rd_http_cancel */
    uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(r.called, 1);
    assert_int_equal(r.error, RD_ECANCELED);
    assert_int_equal(r.status, 0);
    assert_int_equal(ok.called, 1);
    assert_int_equal(ok.status, 200);
    assert_true(ms < 1500);
    assert_int_equal(rd_http_inflight(f.h), 0);
    free(u);
    free(u2);
    result_free(&r);
    result_free(&ok);
    fx_finish(&f);
}

/* A callback that cancels another request and starts a new one. */
typedef struct {
    fixture_t *f;
    result_t self;
    rd_http_req_t *victim;
    result_t *victim_res;
    result_t follow;
    char *follow_url;
    int close_now;
    int start_after_close_rc;
} reentrant_t;

static void on_reentrant(void *ud, const rd_http_response_t *res)
{
    reentrant_t *re = ud;
    on_result(&re->self, res);
    rd_http_cancel(re->f->h, re->victim);
    assert_int_equal(re->victim_res->called, 0);
    if (re->close_now) {
        rd_http_close(re->f->h, on_closed, re->f);
        re->start_after_close_rc = rd_http_request(re->f->h, "GET", re->follow_url, NULL, NULL, 0,
                                                   on_result, &re->follow, NULL);
    } else {
        assert_int_equal(rd_http_request(re->f->h, "GET", re->follow_url, NULL, NULL, 0, on_result,
                                         &re->follow, NULL),
                         0);
    }
}

static void test_reentrant_callbacks(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t slow = {0};
    reentrant_t re = {.f = &f, .victim_res = &slow};
    char *u1 = url("/hello"), *u2 = url("/slow?ms=2000");
    re.follow_url = url("/echo");
    assert_int_equal(rd_http_request(f.h, "GET", u2, NULL, NULL, 0, on_result, &slow, &re.victim),
                     0);
    assert_int_equal(rd_http_request(f.h, "GET", u1, NULL, NULL, 0, on_reentrant, &re, NULL), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(re.self.called, 1);
    assert_int_equal(re.self.status, 200);
    assert_int_equal(slow.called, 1);
    assert_int_equal(slow.error, RD_ECANCELED);
    assert_int_equal(re.follow.called, 1);
    assert_int_equal(re.follow.status, 200);
    free(u1);
    free(u2);
    free(re.follow_url);
    result_free(&slow);
    result_free(&re.self);
    result_free(&re.follow);
    fx_finish(&f);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t slow = {0}, other = {0};
    reentrant_t re = {.f = &f, .victim_res = &slow, .close_now = 1};
    char *u1 = url("/hello"), *u2 = url("/slow?ms=2000");
    re.follow_url = url("/echo");
    assert_int_equal(rd_http_request(f.h, "GET", u2, NULL, NULL, 0, on_result, &slow, &re.victim),
                     0);
    assert_int_equal(rd_http_request(f.h, "GET", u2, NULL, NULL, 0, on_result, &other, NULL), 0);
    assert_int_equal(rd_http_request(f.h, "GET", u1, NULL, NULL, 0, on_reentrant, &re, NULL), 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_true(ms < 1500);
    assert_int_equal(f.closed, 1);
    assert_int_equal(re.self.called, 1);
    assert_int_equal(slow.called, 1);
    assert_int_equal(slow.error, RD_ECANCELED);
    assert_int_equal(other.called, 1);
    assert_int_equal(other.error, RD_ECANCELED);
    assert_int_equal(re.start_after_close_rc, RD_ECANCELED);
    assert_int_equal(re.follow.called, 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    free(u1);
    free(u2);
    free(re.follow_url);
    result_free(&slow);
    result_free(&other);
    result_free(&re.self);
}

static void test_close_in_flight(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    result_t rs[5] = {0};
    char *u = url("/slow?ms=2000");
    for (int i = 0; i < 5; i++)
        get(&f, u, NULL, &rs[i]);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    rd_http_close(f.h, on_closed, &f);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rs[i].called, 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_true(ms < 1500);
    assert_int_equal(f.closed, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rs[i].called, 1);
        assert_int_equal(rs[i].error, RD_ECANCELED);
        result_free(&rs[i]);
    }
    assert_int_equal(uv_loop_close(&f.loop), 0);
    free(u);
}

static void test_close_idle_unused(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, NULL);
    fx_finish(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* The server is on loopback: never let an inherited proxy setting intercept it. */
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(proxies); i++)
        unsetenv(proxies[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_headers),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_total_timeout),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_bad_request_args),
        cmocka_unit_test(test_many_concurrent_capped),
        cmocka_unit_test(test_connection_churn),
        cmocka_unit_test(test_keepalive_poll_reused),
        cmocka_unit_test(test_tls_ca_file),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_reentrant_callbacks),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_close_idle_unused),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
