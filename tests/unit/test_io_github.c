/* test_io_github.c: rd_github against a loopback server (python3 child), for
 * what needs the real client:
 *  - rd_github_reconfigure applies github.ca_file to new requests (a changed
 *    path, no ca_file, and the same path with the file replaced);
 *  - DELETE of a runner: expected answers (404 already gone, 422 still busy)
 *    are logged at debug, real failures (500, 403) at WARN.
 * Each test runs its own uv loop, closes the client and asserts
 * uv_loop_close() == 0. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/github.h"
#include "runnerd/io/logsink.h"

/* HTTP/1.0: every request on a new connection, so each one verifies the peer. */
static const char server_py[] =
    "import ssl, sys, threading\n"
    "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def out(self, code, body):\n"
    "        b = body.encode()\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', 'application/json; charset=utf-8')\n"
    "        self.send_header('Content-Length', str(len(b)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b)\n"
    "    def do_GET(self):\n"
    "        if '/actions/runners' in self.path:\n"
    "            self.out(200, '{\"total_count\":0,\"runners\":[]}')\n"
    "        else:\n"
    "            self.out(404, '{\"message\":\"Not Found\"}')\n"
    "    def do_DELETE(self):\n"
    "        rid = self.path.rsplit('/', 1)[-1]\n"
    "        if rid == '1': self.send_response(204); self.end_headers()\n"
    "        elif rid == '2': self.out(404, '{\"message\":\"Not Found\"}')\n"
    "        elif rid == '3': self.out(422, '{\"message\":\"Bad request - Runner is still "
    "running a job\"}')\n"
    "        elif rid == '4': self.out(500, '{\"message\":\"Server Error\"}')\n"
    "        else: self.out(403, '{\"message\":\"Resource not accessible by integration\"}')\n"
    "class S(ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    def handle_error(self, *a): pass\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "tls = S(('127.0.0.1', 0), H)\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "tls.socket = ctx.wrap_socket(tls.socket, server_side=True)\n"
    "threading.Thread(target=tls.serve_forever, daemon=True).start()\n"
    "print(srv.server_address[1], tls.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

static pid_t server_pid = -1;
static int server_port, tls_port;
static char tmpdir[64];
static char cert_path[128]; /* the server's self-signed certificate: a CA file that trusts it */
static char key_path[128];
static char other_path[128]; /* another self-signed certificate: does not trust the server */
static char other_key[128];

/* Write a self-signed certificate for IP:127.0.0.1 and its key (PEM). */
static int make_cert(const char *cert, const char *key)
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
    fc = fopen(cert, "w");
    fk = fopen(key, "w");
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

static int start_server(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rd-test-github-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    snprintf(other_path, sizeof(other_path), "%s/other.pem", tmpdir);
    snprintf(other_key, sizeof(other_key), "%s/other-key.pem", tmpdir);
    if (make_cert(cert_path, key_path) != 0 || make_cert(other_path, other_key) != 0) {
        fprintf(stderr, "could not make test certificates\n");
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
    setenv("RD_TEST_GH_TOKEN", "ghp_test_token_not_real_0000000000000", 1);
    setenv("RUNNERD_MAX_REQUEST_RATE", "0", 1);
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
    unlink(other_path);
    unlink(other_key);
    rmdir(tmpdir);
    return 0;
}

/* ------------------------------------------------------------ helpers */

typedef struct {
    uv_loop_t loop;
    rd_github_t *gh;
    bool closed;
} fixture_t;

static void gh_cfg(rd_github_config_t *c, const char *api_url, const char *ca_file)
{
    memset(c, 0, sizeof(*c));
    c->api_url = (char *)api_url;
    c->token_env = "RD_TEST_GH_TOKEN";
    c->token = "ghp_test_token_not_real_0000000000000"; /* read with the config, normally */
    c->poll_interval_ms = 15000;
    c->request_budget_per_hour = 100000;
    c->max_connections = 4;
    c->ca_file = (char *)ca_file;
}

static void fx_init(fixture_t *f, const char *api_url, const char *ca_file)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    rd_github_config_t c;
    gh_cfg(&c, api_url, ca_file);
    assert_int_equal(rd_github_new(&f->loop, &c, &f->gh), 0);
}

static void on_closed(void *ud)
{
    ((fixture_t *)ud)->closed = true;
}

static void fx_finish(fixture_t *f)
{
    rd_github_close(f->gh, on_closed, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

typedef struct {
    int called;
    int err;
} result_t;

static void runners_cb(void *ud, int err, const rd_gh_runners_t *runners)
{
    (void)runners;
    result_t *r = ud;
    r->called++;
    r->err = err;
}

static void done_cb(void *ud, int err)
{
    result_t *r = ud;
    r->called++;
    r->err = err;
}

/* One list-runners request on its own scope (a failure backs its scope off). */
static int list_once(fixture_t *f, const char *scope)
{
    result_t r = {0};
    assert_int_equal(rd_github_list_runners(f->gh, scope, runners_cb, &r), 0);
    while (r.called == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r.called, 1);
    return r.err;
}

static void reconfigure(fixture_t *f, const char *api_url, const char *ca_file)
{
    rd_github_config_t c;
    gh_cfg(&c, api_url, ca_file);
    assert_int_equal(rd_github_reconfigure(f->gh, &c), 0);
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "r");
    assert_non_null(in);
    size_t n = fread(buf, 1, sizeof(buf), in);
    fclose(in);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.new", to);
    FILE *out = fopen(tmp, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(out);
    assert_int_equal(rename(tmp, to), 0); /* replaced as an operator's tool would */
}

/* ------------------------------------------------------------ tests */

static void test_reconfigure_ca_file(void **state)
{
    (void)state;
    char *api = rd_xasprintf("https://127.0.0.1:%d", tls_port);
    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s/rotated.pem", tmpdir);
    copy_file(other_path, rotated);

    fixture_t f;
    fx_init(&f, api, NULL);
    /* The system store does not know the self-signed certificate. */
    assert_int_equal(list_once(&f, "repos/o/s1"), RD_EIO);
    /* SIGHUP with ca_file set: new requests trust it. */
    reconfigure(&f, api, cert_path);
    assert_int_equal(list_once(&f, "repos/o/s2"), 0);
    /* Another ca_file that does not trust the server: refused again. */
    reconfigure(&f, api, rotated);
    assert_int_equal(list_once(&f, "repos/o/s3"), RD_EIO);
    /* The same path, the file replaced by one that trusts the server: read anew. */
    copy_file(cert_path, rotated);
    reconfigure(&f, api, rotated);
    assert_int_equal(list_once(&f, "repos/o/s4"), 0);
    /* ca_file removed: back to the system store. */
    reconfigure(&f, api, NULL);
    assert_int_equal(list_once(&f, "repos/o/s5"), RD_EIO);
    fx_finish(&f);
    unlink(rotated);
    free(api);
}

/* The level word of the first log line that mentions needle ("" when none). */
static const char *level_of(const char *log, const char *needle, char *out, size_t outsz)
{
    out[0] = '\0';
    const char *p = strstr(log, needle);
    if (p == NULL)
        return out;
    const char *bol = p;
    while (bol > log && bol[-1] != '\n')
        bol--;
    const char *sp = strchr(bol, ' '); /* after the timestamp */
    if (sp == NULL || sp > p)
        return out;
    sp++;
    size_t n = strcspn(sp, " ");
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, sp, n);
    out[n] = '\0';
    return out;
}

static void test_delete_log_levels(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *logf = open_memstream(&buf, &len);
    assert_non_null(logf);
    rd_logsink_setup(RD_LOG_DEBUG, RD_LOG_TEXT, logf);

    char *api = rd_xasprintf("http://127.0.0.1:%d", server_port);
    fixture_t f;
    fx_init(&f, api, NULL);
    /* One scope each: a failing scope logs its later failures at debug. */
    static const struct {
        const char *scope;
        int64_t id;
        int err;
        const char *level; /* of github's line about it */
    } cases[] = {
        {"repos/o/a", 1, 0, ""},              /* 204: nothing to say */
        {"repos/o/b", 2, RD_ENOENT, "DEBUG"}, /* already gone: success */
        {"repos/o/c", 3, RD_EBUSY, "DEBUG"},  /* still running a job: the caller retries */
        {"repos/o/d", 4, RD_EIO, "WARN"},     /* 500 */
        {"orgs/e", 5, RD_EAUTH, "WARN"},      /* 403, not a rate limit */
    };
    result_t r[5] = {{0}};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(rd_github_delete_runner(f.gh, cases[i].scope, cases[i].id, done_cb, &r[i]),
                         0);
    for (;;) {
        int n = 0;
        for (size_t i = 0; i < 5; i++)
            n += r[i].called;
        if (n == 5)
            break;
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    fx_finish(&f);
    rd_logsink_setup(RD_LOG_INFO, RD_LOG_TEXT, stderr);
    fclose(logf);

    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(r[i].called, 1);
        assert_int_equal(r[i].err, cases[i].err);
        char needle[64], lvl[16];
        snprintf(needle, sizeof(needle), "/%s/actions/runners/%lld:", cases[i].scope,
                 (long long)cases[i].id);
        level_of(buf, needle, lvl, sizeof(lvl));
        if (strcmp(lvl, cases[i].level) != 0)
            printf("--- %s: level \"%s\", want \"%s\"; log:\n%s---\n", needle, lvl, cases[i].level,
                   buf);
        assert_string_equal(lvl, cases[i].level);
    }
    free(buf);
    free(api);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconfigure_ca_file),
        cmocka_unit_test(test_delete_log_levels),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
