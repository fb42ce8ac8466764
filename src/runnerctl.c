/* runnerctl.c: command-line companion of runnerd. Reads GET /status (docs/status.md)
 * from the daemon's listener and prints it as aligned tables, or passes the JSON
 * through with --json; steers the daemon (reload, drain, resume, stop, pause,
 * unpause) through its control socket (DESIGN.md section 6). */
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/io/logsink.h"
#include "runnerd/io/readfile.h"
#include "yamltree.h"

#define DEFAULT_URL "http://127.0.0.1:9464"
#define DEFAULT_SOCKET "/run/runnerd/runnerd.sock"
#define DEFAULT_CONFIG "/etc/runnerd/runnerd.yaml"
#define MAX_BODY (16u * 1024 * 1024)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: runnerctl [--url URL | -c FILE] [--timeout SECONDS] COMMAND [--json]\n"
            "       runnerctl [-s SOCKET | -c FILE] reload | drain POOL | resume POOL |\n"
            "                 stop RUNNER [--force] | pause SCOPE | unpause SCOPE\n"
            "\n"
            "Commands (read GET URL/status from runnerd's listener):\n"
            "  status    summary: daemon, config, host, jobs, GitHub API, then the tables\n"
            "  pools     one line per pool\n"
            "  runners   one line per runner\n"
            "  targets   one line per target\n"
            "Commands (through the control socket; exit 1 when refused):\n"
            "  reload         validate and apply the config; FILE:LINE:COL errors when refused\n"
            "  drain POOL     start nothing in POOL, stop its idle runners (resume POOL undoes)\n"
            "  stop RUNNER    stop one runner; a busy one only with --force (fails its job)\n"
            "  pause SCOPE    the target orgs/ORG or repos/OWNER/REPO starts nothing (unpause)\n"
            "\n"
            "Options:\n"
            "  -s SOCKET         the control socket (default: control_socket: of -c FILE, else\n"
            "                    " DEFAULT_SOCKET ")\n"
            "  --url URL         runnerd's listen address (default: $RUNNERCTL_URL, else the\n"
            "                    listen: of %s when it has one, else %s)\n"
            "  -c, --config FILE take the address from this runnerd config's listen:\n"
            "  --timeout SECONDS give up after this long (default 5)\n"
            "  --json            print the JSON (status: the whole document;\n"
            "                    pools/runners/targets: that array)\n"
            "  --version, --help\n",
            DEFAULT_CONFIG, DEFAULT_URL);
}

/* ---- the address from a config file ---- */

/* The URL for a config's top-level listen: ("HOST:PORT" or "[V6]:PORT"), or NULL with
 * *why set (a message) when the file cannot be read or has no listen:. A wildcard
 * host is reached over loopback. */
static char *url_from_config(const char *file, const char **why)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = rd_read_file(file, MAX_BODY, 0, &buf, &len);
    if (rc != 0) {
        *why = rc == RD_ERANGE ? "too large for a configuration file" : "cannot read it";
        return NULL;
    }
    rd_ynode_t *root = NULL;
    rd_yaml_error_t yerr;
    char *url = NULL;
    *why = "not valid YAML";
    if (rd_yaml_parse(buf, len, &root, &yerr) != 0)
        goto out;
    *why = "no listen: in it";
    if (root == NULL || root->kind != RD_YNODE_MAP)
        goto out;
    for (size_t i = 0; i < root->u.map.n; i++) {
        const rd_ynode_t *k = root->u.map.v[i].key, *v = root->u.map.v[i].value;
        if (k->kind != RD_YNODE_SCALAR || strcmp(k->u.scalar.s, "listen") != 0)
            continue;
        if (v->kind != RD_YNODE_SCALAR || rd_ynode_is_null(v) || v->u.scalar.s[0] == '\0')
            goto out;
        const char *a = v->u.scalar.s;
        const char *port = strrchr(a, ':');
        if (port == NULL)
            goto out;
        size_t hl = (size_t)(port - a);
        if ((hl == 7 && strncmp(a, "0.0.0.0", 7) == 0) || hl == 0)
            url = rd_xasprintf("http://127.0.0.1%s", port);
        else if (hl == 4 && strncmp(a, "[::]", 4) == 0)
            url = rd_xasprintf("http://[::1]%s", port);
        else
            url = rd_xasprintf("http://%s", a);
        break;
    }
out:
    rd_ynode_free(root);
    free(buf);
    return url;
}

/* ---- fetching ---- */

typedef struct {
    char *p;
    size_t len;
    bool too_big;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > MAX_BODY) {
        b->too_big = true;
        return 0;
    }
    b->p = rd_xrealloc(b->p, b->len + n + 1);
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* GET base/status into *out; prints the error and returns non-zero on failure. */
static int fetch_status(const char *base, long timeout_s, body_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    char *url = rd_xasprintf("%.*s/status", (int)bl, base);
    char err[CURL_ERROR_SIZE] = "";
    CURL *c = curl_easy_init();
    if (c == NULL) {
        fprintf(stderr, "runnerctl: cannot initialise libcurl\n");
        free(url);
        return 1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "runnerctl/" RD_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "runnerctl: cannot read %s: %s\n", url,
                out->too_big ? "response too large" : (err[0] ? err : curl_easy_strerror(rc)));
        ret = 1;
    } else if (status != 200) {
        fprintf(stderr, "runnerctl: %s answered HTTP %ld%s%s", url, status, out->p ? ": " : "\n",
                out->p ? out->p : "");
        if (out->p && out->len && out->p[out->len - 1] != '\n')
            fputc('\n', stderr);
        ret = 1;
    }
    free(url);
    if (ret != 0) {
        free(out->p);
        out->p = NULL;
    }
    return ret;
}

/* ---- JSON helpers that tolerate missing keys ---- */

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

static bool has_int(json_object *o, const char *k, int64_t *out)
{
    json_object *v = get(o, k);
    if (v == NULL ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static int64_t geti(json_object *o, const char *k)
{
    int64_t v = 0;
    has_int(o, k, &v);
    return v;
}

static double getd(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v ? json_object_get_double(v) : 0;
}

static const char *gets(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *str_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static bool getb(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* "2h05m", "3m07s", "42s". */
static void fmt_dur(int64_t s, char *out, size_t n)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, n, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, n, "%llds", (long long)s);
}

static void fmt_bytes(double b, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.1f%s" : "%.0f%s", b, units[u]);
}

/* "a,b,c" from an array of strings; "-" when null or empty. */
static char *join(json_object *arr)
{
    if (arr == NULL || !json_object_is_type(arr, json_type_array) ||
        json_object_array_length(arr) == 0)
        return rd_xstrdup("-");
    size_t n = json_object_array_length(arr), len = 0;
    char *s = rd_xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(arr, i));
        size_t vl = strlen(v ? v : "");
        s = rd_xrealloc(s, len + vl + 2);
        if (i)
            s[len++] = ',';
        memcpy(s + len, v ? v : "", vl);
        len += vl;
        s[len] = '\0';
    }
    return s;
}

/* ---- aligned tables ---- */

#define MAXCOLS 10

typedef struct {
    size_t ncols;
    const char *head[MAXCOLS];
    bool right[MAXCOLS]; /* right-align (numbers) */
    char **cells;        /* rows * ncols heap strings */
    size_t rows;
} table_t;

static void table_init(table_t *t, size_t ncols, const char *const *head, const char *align)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        t->head[i] = head[i];
        t->right[i] = align[i] == 'r';
    }
}

static void table_row(table_t *t, ...)
{
    va_list ap;
    va_start(ap, t);
    t->cells = rd_xrealloc(t->cells, (t->rows + 1) * t->ncols * sizeof(char *));
    for (size_t i = 0; i < t->ncols; i++) {
        const char *v = va_arg(ap, const char *);
        t->cells[t->rows * t->ncols + i] = rd_xstrdup(v ? v : "-");
    }
    t->rows++;
    va_end(ap);
}

static void table_print(table_t *t, FILE *f)
{
    size_t w[MAXCOLS];
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *v = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
            bool last = c + 1 == t->ncols;
            if (t->right[c])
                fprintf(f, "%*s", (int)w[c], v);
            else if (last)
                fputs(v, f);
            else
                fprintf(f, "%-*s", (int)w[c], v);
            if (!last)
                fputs("  ", f);
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
}

static json_object *array_of(json_object *doc, const char *k)
{
    json_object *a = get(doc, k);
    return a && json_object_is_type(a, json_type_array) ? a : NULL;
}

static void print_pools(json_object *doc, FILE *f)
{
    static const char *const head[] = {"POOL", "MAX",    "RUNNING", "STARTING", "IDLE",
                                       "BUSY", "QUEUED", "STATE",   "LABELS"};
    table_t t;
    table_init(&t, 9, head, "lrrrrrrll");
    json_object *a = array_of(doc, "pools");
    int64_t now = geti(doc, "now");
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *p = json_object_array_get_idx(a, i);
        char n[6][24], state[64];
        const char *keys[6] = {"max", "running", "starting", "idle", "busy", "queued"};
        for (int k = 0; k < 6; k++)
            snprintf(n[k], sizeof(n[k]), "%lld", (long long)geti(p, keys[k]));
        int64_t until;
        if (getb(p, "draining"))
            snprintf(state, sizeof(state), "draining");
        else if (getb(p, "degraded") && has_int(p, "backoff_until", &until)) {
            char d[32];
            fmt_dur(until - now, d, sizeof(d));
            snprintf(state, sizeof(state), "degraded (retry in %s)", d);
        } else if (getb(p, "degraded"))
            snprintf(state, sizeof(state), "degraded");
        else
            snprintf(state, sizeof(state), "ok");
        if (getb(p, "emulated")) {
            size_t l = strlen(state);
            snprintf(state + l, sizeof(state) - l, ", emulated %s", str_or(gets(p, "arch"), "?"));
        }
        char *labels = join(get(p, "labels"));
        table_row(&t, gets(p, "name"), n[0], n[1], n[2], n[3], n[4], n[5], state, labels);
        free(labels);
    }
    table_print(&t, f);
}

static void print_runners(json_object *doc, FILE *f)
{
    static const char *const head[] = {"RUNNER", "POOL", "SCOPE", "STATE", "AGE", "JOB"};
    table_t t;
    table_init(&t, 6, head, "llllrl");
    json_object *a = array_of(doc, "runners");
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *r = json_object_array_get_idx(a, i);
        char age[32], job[32] = "-", state[48];
        fmt_dur(geti(r, "age_s"), age, sizeof(age));
        int64_t id;
        if (has_int(r, "job_id", &id))
            snprintf(job, sizeof(job), "%lld", (long long)id);
        snprintf(state, sizeof(state), "%s%s", str_or(gets(r, "state"), "-"),
                 getb(r, "adopted") ? " (adopted)" : "");
        table_row(&t, gets(r, "name"), gets(r, "pool"), gets(r, "scope"), state, age, job);
    }
    table_print(&t, f);
}

static void print_targets(json_object *doc, FILE *f)
{
    static const char *const head[] = {"TARGET", "REPOS",   "POOLS", "LAST POLL",
                                       "QUEUED", "BACKOFF", "ERROR"};
    table_t t;
    table_init(&t, 7, head, "lllrrll");
    json_object *a = array_of(doc, "targets");
    int64_t now = geti(doc, "now");
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *tg = json_object_array_get_idx(a, i);
        char last[48] = "never", queued[24], backoff[48] = "-";
        int64_t v;
        if (has_int(tg, "last_poll", &v)) {
            char d[32];
            fmt_dur(now - v, d, sizeof(d));
            snprintf(last, sizeof(last), "%s ago", d);
        }
        snprintf(queued, sizeof(queued), "%lld", (long long)geti(tg, "queued"));
        if (has_int(tg, "backoff_until", &v) && v > now) {
            char d[32];
            fmt_dur(v - now, d, sizeof(d));
            snprintf(backoff, sizeof(backoff), "%s", d);
        }
        char *repos = join(get(tg, "repos"));
        char *pools = join(get(tg, "pools"));
        table_row(&t, gets(tg, "scope"), repos, pools, last, queued, backoff,
                  gets(tg, "last_error"));
        free(repos);
        free(pools);
    }
    table_print(&t, f);
}

static void print_status(json_object *doc, FILE *f)
{
    int64_t now = geti(doc, "now");
    char up[32];
    fmt_dur(now - geti(doc, "started_at"), up, sizeof(up));
    fprintf(f, "runnerd %s, instance %s, %s, up %s\n", str_or(gets(doc, "version"), "?"),
            str_or(gets(doc, "instance"), "?"), str_or(gets(doc, "state"), "?"), up);

    json_object *c = get(doc, "config");
    fprintf(f, "config:   %s, reloads %lld ok / %lld failed\n", str_or(gets(c, "path"), "?"),
            (long long)geti(c, "reloads_ok"), (long long)geti(c, "reloads_failed"));
    if (gets(c, "last_error"))
        fprintf(f, "          last reload refused: %s\n", gets(c, "last_error"));

    json_object *h = get(doc, "host");
    char mu[32], mt[32];
    fmt_bytes((double)geti(h, "memory_used"), mu, sizeof(mu));
    fmt_bytes((double)geti(h, "memory"), mt, sizeof(mt));
    fprintf(f, "host:     %s, cpus %g/%g, memory %s/%s, gpus %lld/%lld, runners %lld/%lld\n",
            str_or(gets(h, "arch"), "?"), getd(h, "cpus_used"), getd(h, "cpus"), mu, mt,
            (long long)geti(h, "gpus_used"), (long long)geti(h, "gpus"),
            (long long)geti(h, "runners"), (long long)geti(h, "max_runners"));

    json_object *j = get(doc, "jobs");
    fprintf(f, "jobs:     %lld queued, %lld unmatched (no pool serves them)\n",
            (long long)geti(j, "queued"), (long long)geti(j, "unmatched"));

    json_object *g = get(doc, "github");
    json_object *rl = get(g, "rate_limit");
    json_object *rq = get(g, "requests");
    int64_t rem, lim, reset;
    fprintf(f, "github:   %s (%s), ", str_or(gets(g, "api_url"), "?"),
            str_or(gets(g, "auth"), "?"));
    if (has_int(rl, "remaining", &rem) && has_int(rl, "limit", &lim)) {
        fprintf(f, "rate limit %lld/%lld left", (long long)rem, (long long)lim);
        if (has_int(rl, "reset", &reset)) {
            char d[32];
            fmt_dur(reset - now, d, sizeof(d));
            fprintf(f, ", resets in %s", d);
        }
    } else {
        fprintf(f, "rate limit unknown");
    }
    fprintf(f, "\n          requests 2xx=%lld 3xx=%lld 4xx=%lld 5xx=%lld error=%lld\n",
            (long long)geti(rq, "2xx"), (long long)geti(rq, "3xx"), (long long)geti(rq, "4xx"),
            (long long)geti(rq, "5xx"), (long long)geti(rq, "error"));

    json_object *w = get(doc, "webhook");
    if (getb(w, "enabled")) {
        json_object *d = get(w, "deliveries");
        fprintf(f, "webhook:  %lld accepted, %lld duplicate, %lld bad signature, %lld malformed\n",
                (long long)geti(d, "accepted"), (long long)geti(d, "duplicate"),
                (long long)geti(d, "bad_signature"), (long long)geti(d, "malformed"));
    } else {
        fprintf(f, "webhook:  off (polling only)\n");
    }
    fputc('\n', f);
    print_pools(doc, f);
    fputc('\n', f);
    print_runners(doc, f);
    fputc('\n', f);
    print_targets(doc, f);
}

/* ---- the control socket ---- */

/* The control_socket: of a runnerd config, or NULL (absent, unreadable). */
static char *socket_from_config(const char *file)
{
    char *buf = NULL;
    size_t len = 0;
    if (rd_read_file(file, MAX_BODY, 0, &buf, &len) != 0)
        return NULL;
    rd_ynode_t *root = NULL;
    rd_yaml_error_t yerr;
    char *path = NULL;
    if (rd_yaml_parse(buf, len, &root, &yerr) == 0 && root != NULL && root->kind == RD_YNODE_MAP) {
        for (size_t i = 0; i < root->u.map.n; i++) {
            const rd_ynode_t *k = root->u.map.v[i].key, *v = root->u.map.v[i].value;
            if (k->kind == RD_YNODE_SCALAR && strcmp(k->u.scalar.s, "control_socket") == 0 &&
                v->kind == RD_YNODE_SCALAR && !rd_ynode_is_null(v))
                path = rd_xstrdup(v->u.scalar.s);
        }
    }
    rd_ynode_free(root);
    free(buf);
    return path;
}

/* One request to the control socket; prints the answer. 0 when it was done,
 * 1 when refused or unreachable. */
static int control(const char *sock, const char *method, const char *path, long timeout_s)
{
    char err[CURL_ERROR_SIZE] = "";
    body_t body = {0};
    char *url = rd_xasprintf("http://localhost%s", path);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        free(url);
        fprintf(stderr, "runnerctl: cannot initialise libcurl\n");
        return 1;
    }
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    /* A reload validates the whole file: give it more than a status read. */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s * 6);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "runnerctl/" RD_VERSION_STRING);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(url);
    if (rc != CURLE_OK) {
        fprintf(stderr, "runnerctl: cannot reach runnerd's control socket %s: %s\n", sock,
                err[0] ? err : curl_easy_strerror(rc));
        free(body.p);
        return 1;
    }
    json_object *doc = body.p ? json_tokener_parse(body.p) : NULL;
    const char *result = doc ? gets(doc, "result") : NULL;
    const char *error = doc ? gets(doc, "error") : NULL;
    json_object *errs = doc ? get(doc, "errors") : NULL;
    int code = status >= 200 && status < 300 ? 0 : 1;
    if (code == 0) {
        if (result != NULL)
            printf("%s\n", result);
        else if (body.p != NULL)
            fputs(body.p, stdout);
    } else {
        fprintf(stderr, "runnerctl: %s\n", error ? error : "refused");
        for (size_t i = 0; errs && json_object_is_type(errs, json_type_array) &&
                           i < json_object_array_length(errs);
             i++)
            fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errs, i)));
        if (error == NULL && errs == NULL)
            fprintf(stderr, "runnerctl: HTTP %ld\n", status);
    }
    json_object_put(doc);
    free(body.p);
    return code;
}

/* Percent-encode a query value (scopes hold '/'). */
static char *qenc(const char *s)
{
    char *out = rd_xmalloc(strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '/')
            *o++ = (char)ch;
        else
            o += sprintf(o, "%%%02X", ch);
    }
    *o = '\0';
    return out;
}

/* A pool or runner name as a path segment: no '/', '?', '%' or spaces. */
static bool plain_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == '?' || *s == '%' || *s == '#' || (unsigned char)*s <= ' ')
            return false;
    return true;
}

static int steer(const char *sock, const char *cmd, const char *arg, bool force, long timeout)
{
    char *path = NULL;
    if (strcmp(cmd, "reload") == 0) {
        path = rd_xstrdup("/v1/reload");
    } else if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "resume") == 0) {
        path = rd_xasprintf("/v1/pools/%s/%s", arg, cmd);
    } else if (strcmp(cmd, "stop") == 0) {
        path = rd_xasprintf("/v1/runners/%s/stop%s", arg, force ? "?force=1" : "");
    } else {
        char *q = qenc(arg);
        path = rd_xasprintf("/v1/targets/%s?scope=%s",
                            strcmp(cmd, "pause") == 0 ? "pause" : "resume", q);
        free(q);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = control(sock, "POST", path, timeout);
    curl_global_cleanup();
    free(path);
    return rc;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    const char *config = NULL;
    char *config_url = NULL;
    long timeout = 5;
    bool json = false, force = false;
    const char *cmd = NULL, *arg = NULL, *sock = NULL;
    rd_logsink_install_abort_hook();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--force") == 0) {
            force = true;
        } else if ((strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) && i + 1 < argc) {
            sock = argv[++i];
        } else if (strcmp(a, "--url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strncmp(a, "--url=", 6) == 0) {
            url = a + 6;
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            config = a + 9;
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            timeout = atol(argv[++i]);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("runnerctl %s\n", RD_VERSION_STRING);
            return 0;
        } else if (a[0] == '-' || arg != NULL) {
            fprintf(stderr, "runnerctl: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (cmd == NULL) {
            cmd = a;
        } else {
            arg = a;
        }
    }
    if (timeout <= 0)
        timeout = 5;
    if (cmd == NULL) {
        usage(stderr);
        return 2;
    }
    /* Steering goes to the control socket (mode 0660: the service's user and
     * group), never to the listener, which has no authentication. */
    static const char *const steering[] = {"reload", "drain", "resume", "stop", "pause", "unpause"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(steering); i++) {
        if (strcmp(cmd, steering[i]) != 0)
            continue;
        bool needs_arg = i > 0;
        if (needs_arg != (arg != NULL) || (force && strcmp(cmd, "stop") != 0) ||
            (needs_arg && i < 4 && !plain_name(arg)) || json) {
            fprintf(stderr, "runnerctl: %s %s\n", cmd,
                    needs_arg ? (arg ? "takes one plain name (and --force only with stop)"
                                     : "needs a name")
                              : "takes no argument");
            usage(stderr);
            return 2;
        }
        char *from_cfg = sock == NULL && config != NULL ? socket_from_config(config) : NULL;
        const char *path = sock ? sock : from_cfg ? from_cfg : DEFAULT_SOCKET;
        int rc = path[0] == '\0' ? (fprintf(stderr, "runnerctl: control_socket is off\n"), 1)
                                 : steer(path, cmd, arg ? arg : "", force, timeout);
        free(from_cfg);
        return rc;
    }
    if (arg != NULL || force) {
        fprintf(stderr, "runnerctl: %s takes no argument\n", cmd);
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "status") && strcmp(cmd, "pools") && strcmp(cmd, "runners") &&
        strcmp(cmd, "targets")) {
        fprintf(stderr, "runnerctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    /* Where runnerd listens: --url, else -c FILE's listen:, else $RUNNERCTL_URL, else
     * the default config's listen: when it has one, else the default address. */
    if (url == NULL && config != NULL) {
        const char *why = NULL;
        config_url = url_from_config(config, &why);
        if (config_url == NULL) {
            fprintf(stderr, "runnerctl: %s: %s (runnerd's listener address comes from listen:)\n",
                    config, why);
            return 1;
        }
        url = config_url;
    }
    if (url == NULL) {
        url = getenv("RUNNERCTL_URL");
        if (url == NULL || *url == '\0') {
            const char *why = NULL;
            config_url = url_from_config(DEFAULT_CONFIG, &why);
            url = config_url ? config_url : DEFAULT_URL;
        }
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    body_t body;
    int rc = fetch_status(url, timeout, &body);
    curl_global_cleanup();
    if (rc != 0) {
        free(config_url);
        return 1;
    }

    struct json_tokener *tok = json_tokener_new();
    json_object *doc = json_tokener_parse_ex(tok, body.p, (int)body.len);
    bool bad = json_tokener_get_error(tok) != json_tokener_success || doc == NULL ||
               !json_object_is_type(doc, json_type_object);
    json_tokener_free(tok);
    if (bad) {
        fprintf(stderr, "runnerctl: %s/status did not return a JSON object\n", url);
        json_object_put(doc);
        free(body.p);
        free(config_url);
        return 1;
    }
    free(config_url);

    if (json && strcmp(cmd, "status") == 0) {
        fwrite(body.p, 1, body.len, stdout);
        if (body.len == 0 || body.p[body.len - 1] != '\n')
            putchar('\n');
    } else if (json) {
        json_object *a = get(doc, cmd);
        puts(a ? json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
               : "[]");
    } else if (strcmp(cmd, "status") == 0) {
        print_status(doc, stdout);
    } else if (strcmp(cmd, "pools") == 0) {
        print_pools(doc, stdout);
    } else if (strcmp(cmd, "runners") == 0) {
        print_runners(doc, stdout);
    } else {
        print_targets(doc, stdout);
    }
    json_object_put(doc);
    free(body.p);
    return ferror(stdout) ? 1 : 0;
}
