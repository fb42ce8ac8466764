/* test_metrics.c: the exposition is valid Prometheus text format 0.0.4 and says what the
 * snapshot says. The checker below implements the format's rules that a scraper enforces. */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/metrics.h"

/* ---- a small exposition-format checker ---- */

#define MAXFAM 128
#define MAXSERIES 4096

typedef struct {
    char name[128];
    char type[16];
    bool help, has_type, has_samples;
    /* histogram state */
    double last_le;
    double last_bucket;
    double inf_bucket;
    bool has_inf;
    double count;
    bool has_count, has_sum;
} fam_t;

typedef struct {
    fam_t fam[MAXFAM];
    size_t nfam;
    char *series[MAXSERIES];
    size_t nseries;
    char err[256];
} checker_t;

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static fam_t *fam_get(checker_t *c, const char *name, bool create)
{
    for (size_t i = 0; i < c->nfam; i++)
        if (strcmp(c->fam[i].name, name) == 0)
            return &c->fam[i];
    if (!create || c->nfam == MAXFAM)
        return NULL;
    fam_t *f = &c->fam[c->nfam++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->last_le = -INFINITY;
    return f;
}

static bool parse_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return true;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return true;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return true;
    }
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0';
}

/* Returns false and sets c->err on the first violation. */
static bool check_line(checker_t *c, char *line)
{
    if (line[0] == '#') {
        char kw[8], name[128];
        int off = 0;
        if (sscanf(line, "# %7s %127s %n", kw, name, &off) < 2)
            return true; /* a plain comment */
        if (strcmp(kw, "HELP") == 0) {
            fam_t *f = fam_get(c, name, true);
            if (f->help) {
                snprintf(c->err, sizeof(c->err), "second HELP for %s", name);
                return false;
            }
            f->help = true;
            return true;
        }
        if (strcmp(kw, "TYPE") == 0) {
            fam_t *f = fam_get(c, name, true);
            const char *type = line + off;
            if (f->has_type || f->has_samples) {
                snprintf(c->err, sizeof(c->err), "TYPE for %s repeated or after samples", name);
                return false;
            }
            if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
                strcmp(type, "summary") && strcmp(type, "untyped")) {
                snprintf(c->err, sizeof(c->err), "bad type '%s'", type);
                return false;
            }
            f->has_type = true;
            snprintf(f->type, sizeof(f->type), "%s", type);
            return true;
        }
        return true;
    }
    /* sample: name [{labels}] value */
    char *p = line;
    if (!is_name_start(*p)) {
        snprintf(c->err, sizeof(c->err), "bad metric name in '%s'", line);
        return false;
    }
    while (is_name_char(*p))
        p++;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(p - line), line);
    char le[256] = "";
    char *labels_start = p;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char lname[64];
            char *ls = p;
            if (!is_name_start(*p)) {
                snprintf(c->err, sizeof(c->err), "bad label name in '%s'", line);
                return false;
            }
            while (is_name_char(*p))
                p++;
            snprintf(lname, sizeof(lname), "%.*s", (int)(p - ls), ls);
            if (p[0] != '=' || p[1] != '"') {
                snprintf(c->err, sizeof(c->err), "label without =\" in '%s'", line);
                return false;
            }
            p += 2;
            char val[256];
            size_t vl = 0;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n') {
                    snprintf(c->err, sizeof(c->err), "unterminated label value in '%s'", line);
                    return false;
                }
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                        snprintf(c->err, sizeof(c->err), "bad escape in '%s'", line);
                        return false;
                    }
                    p++;
                }
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
                p++;
            }
            val[vl] = '\0';
            p++;
            if (strcmp(lname, "le") == 0)
                snprintf(le, sizeof(le), "%s", val);
            if (*p == ',')
                p++;
            else if (*p != '}') {
                snprintf(c->err, sizeof(c->err), "expected , or } in '%s'", line);
                return false;
            }
        }
        p++;
    }
    char series[512];
    snprintf(series, sizeof(series), "%.*s", (int)(p - line), line);
    (void)labels_start;
    if (*p != ' ') {
        snprintf(c->err, sizeof(c->err), "no space before value in '%s'", line);
        return false;
    }
    p++;
    double v;
    if (!parse_value(p, &v)) {
        snprintf(c->err, sizeof(c->err), "bad value '%s' in '%s'", p, line);
        return false;
    }
    for (size_t i = 0; i < c->nseries; i++)
        if (strcmp(c->series[i], series) == 0) {
            snprintf(c->err, sizeof(c->err), "duplicate series %.200s", series);
            return false;
        }
    if (c->nseries < MAXSERIES)
        c->series[c->nseries++] = rd_xstrdup(series);

    /* Find the family: exact, or a histogram's _bucket/_sum/_count. */
    fam_t *f = fam_get(c, name, false);
    const char *suffix = "";
    if (f == NULL) {
        static const char *const sfx[] = {"_bucket", "_sum", "_count"};
        for (size_t i = 0; i < 3 && f == NULL; i++) {
            size_t nl = strlen(name), sl = strlen(sfx[i]);
            if (nl > sl && strcmp(name + nl - sl, sfx[i]) == 0) {
                char base[128];
                snprintf(base, sizeof(base), "%.*s", (int)(nl - sl), name);
                f = fam_get(c, base, false);
                if (f != NULL && strcmp(f->type, "histogram") != 0)
                    f = NULL;
                suffix = sfx[i];
            }
        }
    }
    if (f == NULL || !f->has_type || !f->help) {
        snprintf(c->err, sizeof(c->err), "sample %s without HELP and TYPE before it", name);
        return false;
    }
    f->has_samples = true;
    if (strcmp(f->type, "histogram") == 0) {
        if (*suffix == '\0') {
            snprintf(c->err, sizeof(c->err), "histogram sample %s without suffix", name);
            return false;
        }
        if (strcmp(suffix, "_bucket") == 0) {
            double lev;
            if (le[0] == '\0' || !parse_value(le, &lev)) {
                snprintf(c->err, sizeof(c->err), "bucket without le in '%s'", line);
                return false;
            }
            if (lev <= f->last_le || v < f->last_bucket) {
                snprintf(c->err, sizeof(c->err), "buckets not increasing at '%s'", line);
                return false;
            }
            f->last_le = lev;
            f->last_bucket = v;
            if (isinf(lev)) {
                f->has_inf = true;
                f->inf_bucket = v;
            }
        } else if (strcmp(suffix, "_count") == 0) {
            /* One series (label set) ends with its _count: it must equal its
             * +Inf bucket; the next label set starts its buckets again. */
            if (!f->has_inf || f->inf_bucket != v) {
                snprintf(c->err, sizeof(c->err), "histogram %s: _count %g without equal +Inf",
                         f->name, v);
                return false;
            }
            f->has_count = true;
            f->count = v;
            f->has_inf = false;
            f->last_le = -INFINITY;
            f->last_bucket = 0;
        } else {
            f->has_sum = true;
        }
    }
    if (strcmp(f->type, "counter") == 0 && v < 0) {
        snprintf(c->err, sizeof(c->err), "negative counter '%s'", line);
        return false;
    }
    return true;
}

/* Check a whole exposition; fails the test with the first violation. */
static void check_exposition(const char *text)
{
    checker_t *c = rd_xcalloc(1, sizeof(*c));
    size_t n = strlen(text);
    if (n == 0 || text[n - 1] != '\n')
        fail_msg("exposition does not end with a newline");
    char *copy = rd_xstrdup(text);
    char *save = NULL;
    bool ok = true;
    for (char *line = strtok_r(copy, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save))
        ok = check_line(c, line);
    for (size_t i = 0; ok && i < c->nfam; i++) {
        fam_t *f = &c->fam[i];
        if (strcmp(f->type, "histogram") == 0 && f->has_samples &&
            (f->has_inf || !f->has_count || !f->has_sum)) {
            snprintf(c->err, sizeof(c->err), "histogram %s: +Inf/_count/_sum missing or unequal",
                     f->name);
            ok = false;
        }
    }
    free(copy);
    for (size_t i = 0; i < c->nseries; i++)
        free(c->series[i]);
    if (!ok) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", c->err);
        free(c);
        fail_msg("invalid exposition: %s", msg);
    }
    free(c);
}

/* The value of one exact series line ("name{labels}"), or fail. */
static double sample(const char *text, const char *series)
{
    size_t sl = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, sl) == 0 && p[sl] == ' ')
            return strtod(p + sl + 1, NULL);
    }
    fail_msg("series %s not found", series);
    return NAN;
}

static void test_checker_rejects(void **state)
{
    /* The checker itself must catch the mistakes it is there for. */
    static const char *const bad[] = {
        "x 1\n",                                        /* no TYPE */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",     /* unterminated */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n", /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",       /* duplicate */
        "# HELP x h\n# TYPE x gauge\nx one\n",          /* bad value */
        "# HELP x h\n# TYPE x counter\nx -1\n",         /* negative counter */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n", /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++) {
        checker_t *c = rd_xcalloc(1, sizeof(*c));
        char *copy = rd_xstrdup(bad[i]);
        char *save = NULL;
        bool ok = true;
        for (char *l = strtok_r(copy, "\n", &save); l && ok; l = strtok_r(NULL, "\n", &save))
            ok = check_line(c, l);
        for (size_t j = 0; ok && j < c->nfam; j++) {
            fam_t *f = &c->fam[j];
            if (strcmp(f->type, "histogram") == 0 && f->inf_bucket != f->count)
                ok = false;
        }
        for (size_t j = 0; j < c->nseries; j++)
            free(c->series[j]);
        free(copy);
        free(c);
        if (ok)
            fail_msg("checker accepted bad input %zu: %s", i, bad[i]);
    }
}

static void test_empty_snapshot(void **state)
{
    rd_metrics_snapshot_t s;
    rd_metrics_snapshot_init(&s);
    size_t len = 0;
    char *text = rd_metrics_render(&s, &len);
    assert_int_equal(len, strlen(text));
    check_exposition(text);
    /* Unknown rate limit: not exported at all rather than a fake 0. */
    assert_null(strstr(text, "runnerd_github_rate_limit_remaining"));
    assert_non_null(strstr(text, "runnerd_build_info{version=\"" RD_VERSION_STRING "\""));
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_count"), 0);
    free(text);
}

static void test_full_snapshot(void **state)
{
    rd_metrics_pool_t pools[2];
    memset(pools, 0, sizeof(pools));
    pools[0].name = "linux-x64";
    pools[0].queued_jobs = 3;
    pools[0].runners[RD_METRICS_RSTATE_STARTING] = 1;
    pools[0].runners[RD_METRICS_RSTATE_IDLE] = 2;
    pools[0].runners[RD_METRICS_RSTATE_BUSY] = 4;
    pools[0].max_runners = 8;
    pools[0].starts_total = 17;
    pools[0].failures_total = 2;
    pools[1].name = "arm\"64\\x\nweird"; /* escaping */
    pools[1].degraded = true;
    pools[1].draining = true;

    rd_metrics_snapshot_t s;
    rd_metrics_snapshot_init(&s);
    s.instance = "build-01";
    s.start_time_s = 1764446400.5;
    s.pools = pools;
    s.npools = 2;
    s.unmatched_jobs = 1;
    s.queued_jobs_all = 4;
    rd_metrics_hist_init(&pools[0].queue_wait, RD_METRICS_HIST_QUEUE_WAIT);
    rd_metrics_hist_observe(&pools[0].queue_wait, 0.4);
    rd_metrics_hist_observe(&pools[0].queue_wait, 45);
    rd_metrics_hist_observe(&pools[0].queue_wait, 7200); /* over an hour: +Inf only */
    rd_metrics_hist_init(&pools[0].startup, RD_METRICS_HIST_STARTUP);
    rd_metrics_hist_observe(&pools[0].startup, 3);
    rd_metrics_hist_init(&pools[0].job_duration, RD_METRICS_HIST_DURATION);
    rd_metrics_hist_observe(&pools[0].job_duration, 600); /* on the bound */
    rd_metrics_hist_observe(&pools[0].job_duration, 601);
    s.api_requests[RD_METRICS_HTTP_2XX] = 100;
    s.api_requests[RD_METRICS_HTTP_3XX] = 40;
    s.api_requests[RD_METRICS_HTTP_ERROR] = 1;
    s.rate_limit_remaining = 4321;
    s.rate_limit_limit = 5000;
    s.rate_limit_reset_s = 1764450000;
    rd_metrics_hist_observe(&s.poll_duration, 0.01);
    rd_metrics_hist_observe(&s.poll_duration, 0.05); /* on the bound: le is inclusive */
    rd_metrics_hist_observe(&s.poll_duration, 0.3);
    rd_metrics_hist_observe(&s.poll_duration, 120);
    s.webhook_deliveries[RD_METRICS_WEBHOOK_ACCEPTED] = 9;
    s.webhook_deliveries[RD_METRICS_WEBHOOK_BAD_SIGNATURE] = 1;
    s.reloads_ok = 2;
    s.reloads_failed = 1;
    s.last_reload_success_s = 1764446500;
    s.targets = 3;
    s.targets_backoff = 1;

    char *text = rd_metrics_render(&s, NULL);
    check_exposition(text);
    assert_int_equal((int)sample(text, "runnerd_queued_jobs{pool=\"linux-x64\"}"), 3);
    assert_int_equal((int)sample(text, "runnerd_runners{pool=\"linux-x64\",state=\"busy\"}"), 4);
    assert_int_equal((int)sample(text, "runnerd_runners{pool=\"linux-x64\",state=\"starting\"}"),
                     1);
    assert_int_equal(
        (int)sample(text, "runnerd_runners{pool=\"arm\\\"64\\\\x\\nweird\",state=\"idle\"}"), 0);
    assert_int_equal((int)sample(text, "runnerd_pool_degraded{pool=\"arm\\\"64\\\\x\\nweird\"}"),
                     1);
    assert_int_equal((int)sample(text, "runnerd_runner_starts_total{pool=\"linux-x64\"}"), 17);
    assert_int_equal((int)sample(text, "runnerd_runner_failures_total{pool=\"linux-x64\"}"), 2);
    assert_int_equal((int)sample(text, "runnerd_github_requests_total{class=\"3xx\"}"), 40);
    assert_int_equal((int)sample(text, "runnerd_github_requests_total{class=\"error\"}"), 1);
    assert_int_equal((int)sample(text, "runnerd_github_rate_limit_remaining"), 4321);
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_bucket{le=\"0.05\"}"), 2);
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_bucket{le=\"0.5\"}"), 3);
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_bucket{le=\"60\"}"), 3);
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_bucket{le=\"+Inf\"}"), 4);
    assert_int_equal((int)sample(text, "runnerd_poll_duration_seconds_count"), 4);
    assert_true(fabs(sample(text, "runnerd_poll_duration_seconds_sum") - 120.36) < 1e-6);
    assert_int_equal((int)sample(text, "runnerd_webhook_deliveries_total{result=\"accepted\"}"), 9);
    assert_int_equal(
        (int)sample(text, "runnerd_webhook_deliveries_total{result=\"bad_signature\"}"), 1);
    assert_int_equal((int)sample(text, "runnerd_config_reloads_total{result=\"failed\"}"), 1);
    assert_int_equal((int)sample(text, "runnerd_unmatched_jobs"), 1);
    assert_int_equal((int)sample(text, "runnerd_all_queued_jobs"), 4);
    /* The contract's three histograms, by pool (DESIGN.md section 6). */
    assert_int_equal(
        (int)sample(text, "runnerd_job_queue_wait_seconds_bucket{pool=\"linux-x64\",le=\"1\"}"), 1);
    assert_int_equal(
        (int)sample(text, "runnerd_job_queue_wait_seconds_bucket{pool=\"linux-x64\",le=\"60\"}"),
        2);
    assert_int_equal(
        (int)sample(text, "runnerd_job_queue_wait_seconds_bucket{pool=\"linux-x64\",le=\"3600\"}"),
        2);
    assert_int_equal(
        (int)sample(text, "runnerd_job_queue_wait_seconds_bucket{pool=\"linux-x64\",le=\"+Inf\"}"),
        3);
    assert_int_equal((int)sample(text, "runnerd_job_queue_wait_seconds_count{pool=\"linux-x64\"}"),
                     3);
    assert_true(fabs(sample(text, "runnerd_job_queue_wait_seconds_sum{pool=\"linux-x64\"}") -
                     7245.4) < 1e-6);
    assert_int_equal(
        (int)sample(text, "runnerd_runner_startup_seconds_bucket{pool=\"linux-x64\",le=\"2\"}"), 0);
    assert_int_equal(
        (int)sample(text, "runnerd_runner_startup_seconds_bucket{pool=\"linux-x64\",le=\"5\"}"), 1);
    assert_int_equal(
        (int)sample(text, "runnerd_job_duration_seconds_bucket{pool=\"linux-x64\",le=\"600\"}"), 1);
    assert_int_equal(
        (int)sample(text, "runnerd_job_duration_seconds_bucket{pool=\"linux-x64\",le=\"1200\"}"),
        2);
    /* A pool with no observation: every bucket present, zero. */
    assert_int_equal((int)sample(text, "runnerd_job_duration_seconds_bucket{pool=\"arm\\\"64\\\\x"
                                       "\\nweird\",le=\"+Inf\"}"),
                     0);
    assert_true(sample(text, "runnerd_start_time_seconds") == 1764446400.5);
    assert_non_null(strstr(text, "instance=\"build-01\""));
    free(text);
}

/* Prometheus naming (promtool check metrics): _total only on counters, and every
 * counter ends in _total; histograms and times in seconds. */
static void test_names(void **state)
{
    rd_metrics_pool_t pool = {.name = "p"};
    rd_metrics_snapshot_t s;
    rd_metrics_snapshot_init(&s);
    s.pools = &pool;
    s.npools = 1;
    s.rate_limit_remaining = 1;
    s.rate_limit_limit = 1;
    s.rate_limit_reset_s = 1;
    s.start_time_s = 1;
    s.last_reload_success_s = 1;
    char *text = rd_metrics_render(&s, NULL);
    int hists = 0;
    for (const char *p = strstr(text, "# TYPE "); p != NULL; p = strstr(p + 1, "# TYPE ")) {
        char name[128], type[32];
        assert_int_equal(sscanf(p, "# TYPE %127s %31s", name, type), 2);
        size_t n = strlen(name);
        bool total = n > 6 && strcmp(name + n - 6, "_total") == 0;
        if (strcmp(type, "counter") == 0) {
            if (!total)
                fail_msg("counter %s does not end in _total", name);
        } else if (total) {
            fail_msg("%s %s ends in _total", type, name);
        }
        if (strcmp(type, "histogram") == 0) {
            assert_non_null(strstr(name, "_seconds"));
            hists++;
        }
    }
    assert_int_equal(hists, 4);
    free(text);
}

static void test_escape(void **state)
{
    char out[64];
    rd_metrics_escape_label("a\\b\"c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\\b\\\"c\\nd");
    /* Truncation never splits an escape and always terminates. */
    rd_metrics_escape_label("\"\"\"", out, 4);
    assert_string_equal(out, "\\\"");
    rd_metrics_escape_label(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_many_pools(void **state)
{
    /* Output bigger than the initial buffer. */
    enum { N = 300 };
    rd_metrics_pool_t *pools = rd_xcalloc(N, sizeof(*pools));
    char **names = rd_xcalloc(N, sizeof(*names));
    for (int i = 0; i < N; i++) {
        names[i] = rd_xasprintf("pool-%03d", i);
        pools[i].name = names[i];
        pools[i].queued_jobs = i;
    }
    rd_metrics_snapshot_t s;
    rd_metrics_snapshot_init(&s);
    s.pools = pools;
    s.npools = N;
    char *text = rd_metrics_render(&s, NULL);
    check_exposition(text);
    assert_int_equal((int)sample(text, "runnerd_queued_jobs{pool=\"pool-299\"}"), 299);
    free(text);
    rd_strv_free(names, N);
    free(pools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects), cmocka_unit_test(test_empty_snapshot),
        cmocka_unit_test(test_full_snapshot),   cmocka_unit_test(test_escape),
        cmocka_unit_test(test_many_pools),      cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
