/* test_ghjson.c: GitHub JSON parsers against the published example payloads,
 * and against malformed and wrongly typed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/github/%s", RD_SRC_DIR, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = rd_xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
        fail_msg("short read %s", path);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

#define S(lit) lit, sizeof(lit) - 1

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(rd_parse_rfc3339_ms("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(rd_parse_rfc3339_ms("2016-07-11T22:14:10Z", &ms), 0);
    assert_int_equal(ms, 1468275250000LL);
    /* 12:13:35.123-08:00 == 20:13:35.123Z */
    assert_int_equal(rd_parse_rfc3339_ms("2020-01-22T12:13:35.123-08:00", &ms), 0);
    assert_int_equal(ms, 1579724015123LL);
    int64_t z;
    assert_int_equal(rd_parse_rfc3339_ms("2020-01-22T20:13:35.123Z", &z), 0);
    assert_int_equal(ms, z);
    assert_int_equal(rd_parse_rfc3339_ms("2020-01-23T01:43:35.123+05:30", &ms), 0);
    assert_int_equal(ms, z);
    assert_int_equal(rd_parse_rfc3339_ms("2020-01-22T20:13:35.1Z", &ms), 0);
    assert_int_equal(ms, z - 23);
    assert_int_equal(rd_parse_rfc3339_ms("2020-01-22T20:13:35.123456789Z", &ms), 0);
    assert_int_equal(ms, z);
    assert_int_equal(rd_parse_rfc3339_ms("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 1709164800000LL);
    assert_int_equal(rd_parse_rfc3339_ms("1969-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, -1000);
    const char *bad[] = {"",
                         "2020-01-22",
                         "2020-01-22T20:13:35",
                         "2020-13-01T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "2020-01-22T24:00:00Z",
                         "2020-01-22T20:13:35.Z",
                         "2020-01-22T20:13:35+0800",
                         "2020-01-22T20:13:35Zjunk",
                         "2020-01-22X20:13:35Z",
                         "20a0-01-22T20:13:35Z"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++) {
        if (rd_parse_rfc3339_ms(bad[i], &ms) != RD_EINVAL)
            fail_msg("accepted bad time %s", bad[i]);
    }
    assert_int_equal(rd_parse_rfc3339_ms(NULL, &ms), RD_EINVAL);
}

static void test_runs_fixture(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("workflow-runs-list.json", &len);
    rd_gh_runs_t runs;
    assert_int_equal(rd_ghjson_parse_runs(b, len, &runs), 0);
    assert_int_equal(runs.total_count, 1);
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs.v[0].id, 30433642);
    assert_int_equal(runs.v[0].status, RD_GH_QUEUED);
    rd_gh_runs_free(&runs);
    free(b);

    assert_int_equal(rd_ghjson_parse_runs(S("{\"total_count\":0,\"workflow_runs\":[]}"), &runs), 0);
    assert_int_equal(runs.n, 0);
    rd_gh_runs_free(&runs);
    assert_int_equal(
        rd_ghjson_parse_runs(S("{\"workflow_runs\":[{\"id\":5,\"status\":null}]}"), &runs), 0);
    assert_int_equal(runs.total_count, -1);
    assert_int_equal(runs.v[0].status, RD_GH_OTHER);
    rd_gh_runs_free(&runs);
}

static void test_jobs_fixture(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("workflow-run-jobs-list.json", &len);
    rd_gh_jobs_t jobs;
    assert_int_equal(rd_ghjson_parse_jobs(b, len, &jobs), 0);
    assert_int_equal(jobs.total_count, 1);
    assert_int_equal(jobs.n, 1);
    rd_gh_job_t *j = &jobs.v[0];
    assert_int_equal(j->id, 399444496);
    assert_int_equal(j->run_id, 29679449);
    assert_int_equal(j->status, RD_GH_COMPLETED);
    assert_int_equal(j->nlabels, 3);
    assert_string_equal(j->labels[0], "self-hosted");
    assert_string_equal(j->labels[2], "bar");
    assert_int_equal(j->runner_id, 1);
    assert_string_equal(j->runner_name, "my runner");
    assert_int_equal(j->created_ms, 0); /* the spec example omits created_at */
    assert_null(j->repo);
    rd_gh_jobs_free(&jobs);
    free(b);

    b = slurp("workflow-job.json", &len);
    rd_gh_job_t one;
    assert_int_equal(rd_ghjson_parse_job(b, len, &one), 0);
    assert_int_equal(one.id, 399444496);
    assert_int_equal(one.nlabels, 3);
    rd_gh_job_clear(&one);
    free(b);

    const char q[] = "{\"jobs\":[{\"id\":7,\"run_id\":3,\"status\":\"queued\",\"labels\":[],"
                     "\"created_at\":\"2021-09-13T02:21:13Z\",\"runner_id\":null,"
                     "\"runner_name\":null}]}";
    assert_int_equal(rd_ghjson_parse_jobs(S(q), &jobs), 0);
    assert_int_equal(jobs.v[0].status, RD_GH_QUEUED);
    assert_int_equal(jobs.v[0].runner_id, 0);
    assert_null(jobs.v[0].runner_name);
    assert_int_equal(jobs.v[0].nlabels, 0);
    assert_int_equal(jobs.v[0].created_ms, 1631499673000LL);
    rd_gh_jobs_free(&jobs);
}

static void test_runners_fixture(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("runners-list.json", &len);
    rd_gh_runners_t rs;
    assert_int_equal(rd_ghjson_parse_runners(b, len, &rs), 0);
    assert_int_equal(rs.total_count, 2);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.v[0].id, 23);
    assert_string_equal(rs.v[0].name, "linux_runner");
    assert_true(rs.v[0].online);
    assert_true(rs.v[0].busy);
    assert_int_equal(rs.v[0].nlabels, 3);
    assert_string_equal(rs.v[0].labels[1], "X64");
    assert_int_equal(rs.v[1].id, 24);
    assert_false(rs.v[1].online);
    assert_false(rs.v[1].busy);
    assert_int_equal(rs.v[1].nlabels, 4);
    assert_string_equal(rs.v[1].labels[3], "no-gpu");
    rd_gh_runners_free(&rs);
    free(b);

    b = slurp("runner.json", &len);
    rd_gh_runner_t r;
    assert_int_equal(rd_ghjson_parse_runner(b, len, &r), 0);
    assert_int_equal(r.id, 23);
    assert_string_equal(r.name, "MBP");
    assert_true(r.online);
    assert_true(r.busy);
    rd_gh_runner_clear(&r);
    free(b);
}

static void test_jit_and_tokens(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("jit-config-response.json", &len);
    int64_t id;
    char *enc;
    assert_int_equal(rd_ghjson_parse_jitconfig(b, len, &id, &enc), 0);
    assert_int_equal(id, 23);
    assert_string_equal(enc, "abc123");
    free(enc);
    free(b);

    char *tok;
    int64_t exp;
    b = slurp("registration-token.json", &len);
    assert_int_equal(rd_ghjson_parse_token(b, len, &tok, &exp), 0);
    assert_string_equal(tok, "LLBF3JGZDX3P5PMEXLND6TS6FCWO6");
    assert_int_equal(exp, 1579724015123LL);
    free(tok);
    free(b);

    b = slurp("installation-token.json", &len);
    assert_int_equal(rd_ghjson_parse_token(b, len, &tok, &exp), 0);
    assert_string_equal(tok, "ghs_16C7e42F292c6912E7710c838347Ae178B4a");
    assert_int_equal(exp, 1468275250000LL);
    free(tok);
    free(b);

    assert_int_equal(
        rd_ghjson_parse_token(S("{\"token\":\"x\",\"expires_at\":\"soon\"}"), &tok, &exp),
        RD_EPROTO);
    assert_null(tok);
    assert_int_equal(rd_ghjson_parse_token(S("{\"token\":\"\",\"expires_at\":"
                                             "\"2016-07-11T22:14:10Z\"}"),
                                           &tok, &exp),
                     RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_jitconfig(S("{\"runner\":{\"id\":\"1\"},"
                                                 "\"encoded_jit_config\":\"a\"}"),
                                               &id, &enc),
                     RD_EPROTO);
    assert_null(enc);
    assert_int_equal(rd_ghjson_parse_jitconfig(S("{\"runner\":{\"id\":1}}"), &id, &enc), RD_EPROTO);
}

static void test_installations(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("installation.json", &len);
    int64_t id;
    char *acc;
    assert_int_equal(rd_ghjson_parse_installation(b, len, &id, &acc), 0);
    assert_int_equal(id, 1);
    assert_string_equal(acc, "github");
    free(acc);
    free(b);

    b = slurp("app-installations-list.json", &len);
    int64_t *ids;
    char **accs;
    size_t n;
    assert_int_equal(rd_ghjson_parse_installations(b, len, &ids, &accs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_string_equal(accs[0], "octocat");
    free(ids);
    rd_strv_free(accs, n);
    free(b);

    assert_int_equal(rd_ghjson_parse_installations(
                         S("[{\"id\":1,\"account\":null},{\"id\":\"2\"}]"), &ids, &accs, &n),
                     RD_EPROTO);
    assert_null(ids);
    assert_int_equal(n, 0);
    assert_int_equal(rd_ghjson_parse_installation(S("{\"id\":9,\"account\":null}"), &id, &acc), 0);
    assert_int_equal(id, 9);
    assert_null(acc);
}

static void test_repos(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("org-repos-list.json", &len);
    rd_gh_repos_t rs;
    assert_int_equal(rd_ghjson_parse_repos(b, len, &rs), 0);
    assert_int_equal(rs.total_count, -1);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].name, "Hello-World");
    assert_string_equal(rs.v[0].full_name, "octocat/Hello-World");
    assert_false(rs.v[0].archived);
    assert_false(rs.v[0].disabled);
    rd_gh_repos_free(&rs);
    free(b);

    b = slurp("installation-repositories-list.json", &len);
    assert_int_equal(rd_ghjson_parse_repos(b, len, &rs), 0);
    assert_int_equal(rs.total_count, 1);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].full_name, "octocat/Hello-World");
    rd_gh_repos_free(&rs);
    free(b);

    assert_int_equal(
        rd_ghjson_parse_repos(S("[{\"name\":\"a\",\"full_name\":\"o/a\",\"archived\":true},"
                                "{\"name\":\"b\",\"full_name\":\"o/b\",\"disabled\":true}]"),
                              &rs),
        0);
    assert_int_equal(rs.n, 2);
    assert_true(rs.v[0].archived);
    assert_true(rs.v[1].disabled);
    rd_gh_repos_free(&rs);
    assert_int_equal(
        rd_ghjson_parse_repos(S("[{\"name\":\"a\",\"full_name\":\"o/a\"},"
                                "{\"name\":\"b\",\"full_name\":\"o/b\",\"archived\":1}]"),
                              &rs),
        RD_EPROTO);
    assert_int_equal(rs.n, 0);
    assert_null(rs.v);
}

static void test_groups(void **state)
{
    (void)state;
    size_t len;
    char *b = slurp("runner-groups-org-list.json", &len);
    rd_gh_groups_t gs;
    assert_int_equal(rd_ghjson_parse_groups(b, len, &gs), 0);
    assert_int_equal(gs.total_count, 3);
    assert_int_equal(gs.n, 3);
    assert_int_equal(gs.v[0].id, 1);
    assert_string_equal(gs.v[0].name, "Default");
    assert_int_equal(gs.v[2].id, 3);
    assert_string_equal(gs.v[2].name, "expensive-hardware");
    rd_gh_groups_free(&gs);
    free(b);
}

static void test_errors(void **state)
{
    (void)state;
    size_t len;
    char *m, *d;
    char *b = slurp("error-primary-rate-limit.go-github-test.json", &len);
    assert_int_equal(rd_ghjson_parse_error(b, len, &m, &d), 0);
    assert_non_null(strstr(m, "API rate limit exceeded"));
    assert_non_null(strstr(d, "#abuse-rate-limits"));
    free(m);
    free(d);
    free(b);
    b = slurp("error-secondary-rate-limit.go-github-test.json", &len);
    assert_int_equal(rd_ghjson_parse_error(b, len, &m, &d), 0);
    assert_non_null(strstr(m, "abuse detection mechanism"));
    free(m);
    free(d);
    free(b);
    assert_int_equal(rd_ghjson_parse_error(S("{}"), &m, &d), 0);
    assert_null(m);
    assert_null(d);
    assert_int_equal(rd_ghjson_parse_error(S("[]"), &m, &d), RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_error(S("{\"message\":5}"), &m, &d), RD_EPROTO);
    assert_null(m);
}

static void test_webhooks(void **state)
{
    (void)state;
    static const struct {
        const char *file, *action;
        rd_gh_status_t status;
        int64_t id, run_id, runner_id;
        const char *repo, *label0;
        size_t nlabels;
        int64_t created_ms;
    } cases[] = {
        {"webhook-workflow_job-queued.json", "queued", RD_GH_QUEUED, 289782451, 2202229078, 5,
         "Codertocat/Hello-World", "ubuntu-latest", 1, 1631499673000LL},
        {"webhook-workflow_job-queued-with-deployment.json", "queued", RD_GH_WAITING, 12877621891LL,
         4747967848LL, 0, "lineville/elastic-machines-testing", "self-hosted", 2, 1681938732000LL},
        {"webhook-workflow_job-waiting.json", "waiting", RD_GH_WAITING, 12877621891LL, 4747967848LL,
         0, "lineville/elastic-machines-testing", "self-hosted", 2, 1681938732000LL},
        {"webhook-workflow_job-in_progress.json", "in_progress", RD_GH_IN_PROGRESS, 289782451,
         2202229078, 5, "Codertocat/Hello-World", "ubuntu-latest", 1, 1631499673000LL},
        {"webhook-workflow_job-in_progress-with-queued-steps.json", "in_progress",
         RD_GH_IN_PROGRESS, 14541957942LL, 5373506832LL, 6, "wolfy1339/github-events-schemas",
         "ubuntu-latest", 1, 1687750289000LL},
        {"webhook-workflow_job-completed.json", "completed", RD_GH_COMPLETED, 289782451, 2202229078,
         5, "Codertocat/Hello-World", "ubuntu-latest", 1, 1628159638000LL},
        {"webhook-workflow_job-completed-failure.json", "completed", RD_GH_COMPLETED, 289782451,
         2202229078, 5, "Codertocat/Hello-World", "ubuntu-latest", 1, 1628159638000LL},
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(cases); i++) {
        size_t len;
        char *b = slurp(cases[i].file, &len);
        char *action;
        rd_gh_job_t j;
        if (rd_ghjson_parse_workflow_job_event(b, len, &action, &j) != 0)
            fail_msg("%s: parse failed", cases[i].file);
        assert_string_equal(action, cases[i].action);
        assert_int_equal(j.status, cases[i].status);
        assert_int_equal(j.id, cases[i].id);
        assert_int_equal(j.run_id, cases[i].run_id);
        assert_int_equal(j.runner_id, cases[i].runner_id);
        assert_string_equal(j.repo, cases[i].repo);
        assert_int_equal(j.nlabels, cases[i].nlabels);
        assert_string_equal(j.labels[0], cases[i].label0);
        assert_int_equal(j.created_ms, cases[i].created_ms);
        if (cases[i].runner_id == 0)
            assert_null(j.runner_name);
        free(action);
        rd_gh_job_clear(&j);
        free(b);
    }
}

/* Bad shapes must give RD_EPROTO and leave nothing allocated (ASan checks the latter). */
static void compact_is(const char *body, size_t len, const char *want)
{
    size_t n = 0;
    char *c = rd_ghjson_compact(body, len, &n);
    if (want == NULL) {
        assert_null(c);
        return;
    }
    assert_non_null(c);
    assert_string_equal(c, want);
    assert_int_equal(n, strlen(want));
    free(c);
}

/* The one-pass compactor (no json-c tree): what it keeps, how it filters
 * nested objects, and what it refuses: what json-c's strict mode refuses, so
 * also comments, single quotes and "True", which json-c took outside it. */
static void test_compact_scanner(void **state)
{
    (void)state;
    compact_is(S(" { \"id\" : 1 , \"url\": \"x\", \"status\":\"queued\" } \n"),
               "{\"id\":1,\"status\":\"queued\"}");
    /* kept objects are filtered too; dropped ones are skipped whole */
    compact_is(S("{\"labels\":[{\"id\":3,\"name\":\"x\",\"type\":\"custom\"}],"
                 "\"repository\":{\"id\":9,\"owner\":{\"login\":\"o\"}}}"),
               "{\"labels\":[{\"id\":3,\"name\":\"x\"}]}");
    compact_is(S("[{\"full_name\":\"a/b\",\"archived\":false,\"x\":[1,2,{}]},{}]"),
               "[{\"full_name\":\"a/b\",\"archived\":false},{}]");
    /* values are copied verbatim (escapes, numbers, non-ASCII bytes) */
    compact_is(S("{\"name\":\"a\\\"b\\u00e9\\n\xc3\xa9\",\"total_count\":-1.5e+3}"),
               "{\"name\":\"a\\\"b\\u00e9\\n\xc3\xa9\",\"total_count\":-1.5e+3}");
    /* a key compares decoded, as json-c stores it: cut at a NUL */
    compact_is(S("{\"i\\u0064\":1,\"id\\u0000x\":2,\"id2\":3}"),
               "{\"i\\u0064\":1,\"id\\u0000x\":2}");
    /* deeper than 8 levels reads as null */
    compact_is(S("{\"jobs\":[{\"labels\":[[[[[[[1,[2]]]]]]]]}]}"),
               "{\"jobs\":[{\"labels\":[[[[[[null]]]]]]}]}");
    /* what json-c's strict mode also takes, in a dropped field; NULs after the end */
    compact_is(S("{\"x\":[NaN,-Infinity,Infinity,00,1.],\"id\":1}\0\0 "), "{\"id\":1}");
    compact_is(S("[]"), "[]");
    compact_is(S("\"s\""), "\"s\"");
    /* refused: not one complete JSON document */
    static const char *const bad[] = {
        "null",
        "{",
        "{\"id\":1",
        "{\"id\":1}}",
        "{\"id\":1,}",
        "[1,]",
        "[,1]",
        "{\"id\" 1}",
        "{id:1}",
        "{'id':1}",
        "{\"x\":True}",
        "{\"x\":nul}",
        "{\"x\":\"abc}",
        "{\"x\":\"\\q\"}",
        "{\"x\":\"\\u12G4\"}",
        "{\"x\":-}",
        "{\"x\":.5}",
        "/* c */ {}",
        "{} /* c */",
        "\v{}",
        "{\"a\":1} {\"b\":2}",
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++)
        compact_is(bad[i], strlen(bad[i]), NULL);
    /* nesting beyond 64 is refused rather than recursed into */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    compact_is(deep, sizeof(deep), NULL);
    compact_is(deep + 40, 120, "[[[[[[[[[null]]]]]]]]]");
}

/* Compaction keeps exactly what the list parsers read: every list fixture
 * parses to the same structs from its compacted form, which is much smaller;
 * a key no list parser reads is gone. */
static void test_compact(void **state)
{
    (void)state;
    static const char *const lists[] = {"workflow-runs-list.json",
                                        "workflow-run-jobs-list.json",
                                        "runners-list.json",
                                        "org-repos-list.json",
                                        "installation-repositories-list.json",
                                        "runner-groups-org-list.json"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(lists); i++) {
        size_t len, clen = 0;
        char *body = slurp(lists[i], &len);
        char *c = rd_ghjson_compact(body, len, &clen);
        assert_non_null(c);
        assert_true(clen < len);
        assert_null(strstr(c, "html_url"));
        if (i == 0) {
            rd_gh_runs_t a, b;
            assert_int_equal(rd_ghjson_parse_runs(body, len, &a), 0);
            assert_int_equal(rd_ghjson_parse_runs(c, clen, &b), 0);
            assert_int_equal(a.n, b.n);
            assert_int_equal(a.total_count, b.total_count);
            for (size_t k = 0; k < a.n; k++) {
                assert_int_equal(a.v[k].id, b.v[k].id);
                assert_int_equal(a.v[k].status, b.v[k].status);
            }
            rd_gh_runs_free(&a);
            rd_gh_runs_free(&b);
        } else if (i == 1) {
            rd_gh_jobs_t a, b;
            assert_int_equal(rd_ghjson_parse_jobs(body, len, &a), 0);
            assert_int_equal(rd_ghjson_parse_jobs(c, clen, &b), 0);
            assert_int_equal(a.n, b.n);
            for (size_t k = 0; k < a.n; k++) {
                assert_int_equal(a.v[k].id, b.v[k].id);
                assert_int_equal(a.v[k].run_id, b.v[k].run_id);
                assert_int_equal(a.v[k].status, b.v[k].status);
                assert_int_equal(a.v[k].created_ms, b.v[k].created_ms);
                assert_int_equal(a.v[k].runner_id, b.v[k].runner_id);
                assert_int_equal(a.v[k].nlabels, b.v[k].nlabels);
                for (size_t l = 0; l < a.v[k].nlabels; l++)
                    assert_string_equal(a.v[k].labels[l], b.v[k].labels[l]);
                assert_true((a.v[k].runner_name == NULL) == (b.v[k].runner_name == NULL));
            }
            rd_gh_jobs_free(&a);
            rd_gh_jobs_free(&b);
        } else if (i == 2) {
            rd_gh_runners_t a, b;
            assert_int_equal(rd_ghjson_parse_runners(body, len, &a), 0);
            assert_int_equal(rd_ghjson_parse_runners(c, clen, &b), 0);
            assert_int_equal(a.n, b.n);
            for (size_t k = 0; k < a.n; k++) {
                assert_int_equal(a.v[k].id, b.v[k].id);
                assert_string_equal(a.v[k].name, b.v[k].name);
                assert_int_equal(a.v[k].online, b.v[k].online);
                assert_int_equal(a.v[k].busy, b.v[k].busy);
                assert_int_equal(a.v[k].nlabels, b.v[k].nlabels);
            }
            rd_gh_runners_free(&a);
            rd_gh_runners_free(&b);
        } else if (i == 3 || i == 4) {
            rd_gh_repos_t a, b;
            assert_int_equal(rd_ghjson_parse_repos(body, len, &a), 0);
            assert_int_equal(rd_ghjson_parse_repos(c, clen, &b), 0);
            assert_int_equal(a.n, b.n);
            for (size_t k = 0; k < a.n; k++) {
                assert_string_equal(a.v[k].full_name, b.v[k].full_name);
                assert_int_equal(a.v[k].archived, b.v[k].archived);
                assert_int_equal(a.v[k].disabled, b.v[k].disabled);
            }
            rd_gh_repos_free(&a);
            rd_gh_repos_free(&b);
        } else {
            rd_gh_groups_t a, b;
            assert_int_equal(rd_ghjson_parse_groups(body, len, &a), 0);
            assert_int_equal(rd_ghjson_parse_groups(c, clen, &b), 0);
            assert_int_equal(a.n, b.n);
            for (size_t k = 0; k < a.n; k++)
                assert_int_equal(a.v[k].id, b.v[k].id);
            rd_gh_groups_free(&a);
            rd_gh_groups_free(&b);
        }
        free(c);
        free(body);
    }
    size_t n;
    assert_null(rd_ghjson_compact(S("{\"id\":1} x"), &n));
    assert_null(rd_ghjson_compact(S(""), &n));
}

/* Issue 17 F9: a string with a NUL inside is refused, not cut at the NUL (a label
 * "self-hosted\u0000x" must never match "self-hosted"). */
static void test_nul_strings(void **state)
{
    (void)state;
    rd_gh_jobs_t jl;
    assert_int_equal(rd_ghjson_parse_jobs(S("{\"total_count\":1,\"jobs\":[{\"id\":1,\"run_id\":2,"
                                            "\"status\":\"queued\",\"labels\":[\"self-hosted"
                                            "\\u0000x\"]}]}"),
                                          &jl),
                     RD_EPROTO);
    assert_int_equal(jl.n, 0);
    /* The same without the NUL parses (the test is about the NUL only). */
    assert_int_equal(rd_ghjson_parse_jobs(S("{\"total_count\":1,\"jobs\":[{\"id\":1,\"run_id\":2,"
                                            "\"status\":\"queued\",\"labels\":[\"self-hosted"
                                            "x\"]}]}"),
                                          &jl),
                     0);
    rd_gh_jobs_free(&jl);
    char *action = NULL;
    rd_gh_job_t j;
    assert_int_equal(
        rd_ghjson_parse_workflow_job_event(
            S("{\"action\":\"queued\",\"repository\":{\"full_name\":\"o/r\"},\"workflow_job\":"
              "{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"self-hosted\\u0000x\"]}"
              "}"),
            &action, &j),
        RD_EPROTO);
    assert_null(action);
    assert_int_equal(
        rd_ghjson_parse_workflow_job_event(
            S("{\"action\":\"queued\",\"repository\":{\"full_name\":\"o/r\\u0000/evil\"},"
              "\"workflow_job\":{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[]}}"),
            &action, &j),
        RD_EPROTO);
    rd_gh_runners_t rl;
    assert_int_equal(rd_ghjson_parse_runners(
                         S("{\"total_count\":1,\"runners\":[{\"id\":1,\"name\":\"r\\u0000x\","
                           "\"status\":\"online\",\"busy\":false,\"labels\":[]}]}"),
                         &rl),
                     RD_EPROTO);
    rd_gh_repos_t rp;
    assert_int_equal(
        rd_ghjson_parse_repos(S("[{\"name\":\"a\",\"full_name\":\"o/a\\u0000\"}]"), &rp),
        RD_EPROTO);
    int64_t id;
    char *enc = NULL;
    assert_int_equal(rd_ghjson_parse_jitconfig(S("{\"runner\":{\"id\":5},\"encoded_jit_config\":"
                                                 "\"abc\\u0000def\"}"),
                                               &id, &enc),
                     RD_EPROTO);
    assert_null(enc);
}

/* Issue 17 F10: ids outside 1..2^53 are refused; json-c saturates what does not
 * fit in 64 bits (a runner id of 2^70 read as INT64_MAX, and DELETE went there). */
static void test_id_range(void **state)
{
    (void)state;
    int64_t id = 0;
    char *enc = NULL;
    static const char *const bad[] = {
        "1180591620717411303424", /* 2^70 */
        "18446744073709551616",   /* 2^64 */
        "9223372036854775807",    /* INT64_MAX */
        "9007199254740993",       /* 2^53 + 1 */
        "0",
        "-1",
    };
    char buf[256];
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++) {
        int n = snprintf(buf, sizeof(buf),
                         "{\"runner\":{\"id\":%s},\"encoded_jit_config\":\"abc\"}", bad[i]);
        assert_int_equal(rd_ghjson_parse_jitconfig(buf, (size_t)n, &id, &enc), RD_EPROTO);
        assert_int_equal(id, 0);
        assert_null(enc);
        rd_gh_jobs_t jl;
        n = snprintf(buf, sizeof(buf),
                     "{\"jobs\":[{\"id\":%s,\"run_id\":2,\"status\":\"queued\",\"labels\":[]}]}",
                     bad[i]);
        assert_int_equal(rd_ghjson_parse_jobs(buf, (size_t)n, &jl), RD_EPROTO);
        n = snprintf(buf, sizeof(buf),
                     "{\"jobs\":[{\"id\":1,\"run_id\":%s,\"status\":\"queued\",\"labels\":[]}]}",
                     bad[i]);
        assert_int_equal(rd_ghjson_parse_jobs(buf, (size_t)n, &jl), RD_EPROTO);
    }
    assert_int_equal(
        rd_ghjson_parse_jitconfig(S("{\"runner\":{\"id\":9007199254740992},\"encoded_jit_config\":"
                                    "\"abc\"}"),
                                  &id, &enc),
        0);
    assert_int_equal(id, (int64_t)1 << 53);
    free(enc);
    /* runner_id: null and 0 mean none; past 2^53 is refused like any id. */
    rd_gh_jobs_t jl;
    assert_int_equal(rd_ghjson_parse_jobs(S("{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":"
                                            "\"queued\",\"runner_id\":0,\"labels\":[]}]}"),
                                          &jl),
                     0);
    rd_gh_jobs_free(&jl);
    assert_int_equal(rd_ghjson_parse_jobs(S("{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":"
                                            "\"queued\",\"runner_id\":1180591620717411303424,"
                                            "\"labels\":[]}]}"),
                                          &jl),
                     RD_EPROTO);
    rd_gh_runners_t rl;
    assert_int_equal(
        rd_ghjson_parse_runners(S("{\"runners\":[{\"id\":1180591620717411303424,\"name\":\"r\","
                                  "\"status\":\"online\",\"busy\":false,\"labels\":[]}]}"),
                                &rl),
        RD_EPROTO);
    int64_t iid;
    char *acc = NULL;
    assert_int_equal(rd_ghjson_parse_installation(S("{\"id\":-3,\"account\":null}"), &iid, &acc),
                     RD_EPROTO);
}

/* Issue 17 F8: an org listing keeps only the org's repositories. */
static void test_keep_org(void **state)
{
    (void)state;
    rd_gh_repos_t l;
    assert_int_equal(rd_ghjson_parse_repos(S("[{\"name\":\"a\",\"full_name\":\"acme/a\"},"
                                             "{\"name\":\"x\",\"full_name\":\"victim/x\"},"
                                             "{\"name\":\"B\",\"full_name\":\"ACME/b\"},"
                                             "{\"name\":\"y/z\",\"full_name\":\"acme/y/z\"},"
                                             "{\"name\":\"c\",\"full_name\":\"acme/other\"},"
                                             "{\"name\":\"d\",\"full_name\":\"acmeinc/d\"}]"),
                                           &l),
                     0);
    char *first = NULL;
    assert_int_equal(rd_ghjson_repos_keep_org(&l, "acme", &first), 4);
    assert_string_equal(first, "victim/x");
    free(first);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].full_name, "acme/a");
    assert_string_equal(l.v[1].full_name, "ACME/b");
    assert_int_equal(rd_ghjson_repos_keep_org(&l, "acme", NULL), 0);
    rd_gh_repos_free(&l);
}

static void test_malformed(void **state)
{
    (void)state;
    rd_gh_jobs_t jobs;
    rd_gh_runs_t runs;
    rd_gh_runners_t runners;
    rd_gh_groups_t groups;
    rd_gh_job_t job;
    static const char *bad_jobs[] = {
        "",
        "{",
        "null",
        "[]",
        "{\"jobs\":{}}",
        "{\"jobs\":[1]}",
        "{\"total_count\":\"1\",\"jobs\":[]}",
        "{\"jobs\":[]} trailing",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"a\"]},"
        "{\"id\":\"2\",\"run_id\":2,\"status\":\"queued\",\"labels\":[]}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"a\",3]}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":5,\"labels\":[]}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\"}]}",
        "{\"jobs\":[{\"id\":1.5,\"run_id\":2,\"status\":\"queued\",\"labels\":[]}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"x\"],"
        "\"created_at\":\"yesterday\"}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"x\"],"
        "\"runner_name\":7}]}",
        "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[\"x\"],"
        "\"runner_id\":\"7\"}]}",
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad_jobs); i++) {
        if (rd_ghjson_parse_jobs(bad_jobs[i], strlen(bad_jobs[i]), &jobs) != RD_EPROTO)
            fail_msg("accepted bad jobs[%zu]: %s", i, bad_jobs[i]);
        assert_int_equal(jobs.n, 0);
        assert_null(jobs.v);
    }
    assert_int_equal(rd_ghjson_parse_jobs(NULL, 0, &jobs), RD_EPROTO);
    /* Truncated input (a cut-off response). */
    const char full[] = "{\"jobs\":[{\"id\":1,\"run_id\":2,\"status\":\"queued\",\"labels\":[]}]}";
    for (size_t cut = 0; cut + 1 < sizeof(full) - 1; cut++)
        assert_int_equal(rd_ghjson_parse_jobs(full, cut, &jobs), RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_jobs(S(full), &jobs), 0);
    rd_gh_jobs_free(&jobs);

    assert_int_equal(rd_ghjson_parse_job(S("{\"id\":1}"), &job), RD_EPROTO);
    assert_null(job.labels);
    assert_int_equal(rd_ghjson_parse_job(S("<html>"), &job), RD_EPROTO);

    assert_int_equal(
        rd_ghjson_parse_runs(S("{\"workflow_runs\":[{\"id\":1,\"status\":1}]}"), &runs), RD_EPROTO);
    assert_int_equal(
        rd_ghjson_parse_runs(S("{\"workflow_runs\":[{\"id\":1},{\"status\":\"queued\"}]}"), &runs),
        RD_EPROTO);
    assert_int_equal(runs.n, 0);
    assert_int_equal(rd_ghjson_parse_runs(S("{\"runs\":[]}"), &runs), RD_EPROTO);

    assert_int_equal(rd_ghjson_parse_runners(S("{\"runners\":[{\"id\":1,\"name\":\"a\",\"status\":"
                                               "\"online\",\"busy\":false,\"labels\":[{\"name\":"
                                               "\"x\"},{\"id\":2}]}]}"),
                                             &runners),
                     RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_runners(S("{\"runners\":[{\"id\":1,\"name\":\"a\",\"status\":"
                                               "\"online\",\"busy\":\"no\",\"labels\":[]}]}"),
                                             &runners),
                     RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_runners(S("{\"runners\":[{\"id\":1,\"name\":\"a\",\"status\":"
                                               "\"online\",\"busy\":false,\"labels\":[\"x\"]}]}"),
                                             &runners),
                     RD_EPROTO);
    assert_null(runners.v);
    assert_int_equal(rd_ghjson_parse_groups(S("{\"runner_groups\":[{\"id\":1}]}"), &groups),
                     RD_EPROTO);
    assert_int_equal(rd_ghjson_parse_groups(S("{\"runner_groups\":[{\"id\":1,\"name\":\"a\"},"
                                              "{\"id\":\"2\",\"name\":\"b\"}]}"),
                                            &groups),
                     RD_EPROTO);
    assert_null(groups.v);

    char *action;
    assert_int_equal(rd_ghjson_parse_workflow_job_event(S("{\"action\":\"queued\",\"repository\":"
                                                          "{\"full_name\":\"o/r\"}}"),
                                                        &action, &job),
                     RD_EPROTO);
    assert_null(action);
    assert_int_equal(rd_ghjson_parse_workflow_job_event(
                         S("{\"action\":\"queued\",\"repository\":{},\"workflow_job\":{\"id\":1,"
                           "\"run_id\":2,\"status\":\"queued\",\"labels\":[\"a\"]}}"),
                         &action, &job),
                     RD_EPROTO);
    assert_null(job.labels);
    assert_int_equal(rd_ghjson_parse_workflow_job_event(
                         S("{\"action\":\"queued\",\"repository\":{\"full_name\":\"o/r\"},"
                           "\"workflow_job\":{\"id\":1,\"run_id\":2,\"status\":\"queued\","
                           "\"labels\":[\"a\"]}}"),
                         &action, &job),
                     0);
    assert_string_equal(job.repo, "o/r");
    free(action);
    rd_gh_job_clear(&job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),         cmocka_unit_test(test_runs_fixture),
        cmocka_unit_test(test_jobs_fixture),    cmocka_unit_test(test_runners_fixture),
        cmocka_unit_test(test_jit_and_tokens),  cmocka_unit_test(test_installations),
        cmocka_unit_test(test_repos),           cmocka_unit_test(test_groups),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_webhooks),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_compact),
        cmocka_unit_test(test_compact_scanner), cmocka_unit_test(test_nul_strings),
        cmocka_unit_test(test_id_range),        cmocka_unit_test(test_keep_org),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
