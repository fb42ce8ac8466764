/* test_log.c: line formats, level filter, escaping, and that secrets never
 * reach the output in either format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/log.h"

#define T0 INT64_C(1795982400123) /* 2026-11-29T20:00:00.123Z */

/* The test's sink: every line appended to one buffer, the last level kept. */
static char *g_buf;
static size_t g_len;
static rd_log_level_t g_last_level;
static int g_lines;

static void mem_sink(void *ctx, rd_log_level_t level, const char *line, size_t len)
{
    assert_ptr_equal(ctx, &g_buf);
    g_buf = realloc(g_buf, g_len + len + 1);
    assert_non_null(g_buf);
    memcpy(g_buf + g_len, line, len);
    g_len += len;
    g_buf[g_len] = '\0';
    g_last_level = level;
    g_lines++;
}

static int64_t fixed_clock(void)
{
    return T0;
}

static void log_setup(rd_log_level_t level, rd_log_format_t format)
{
    rd_log_configure(level, format);
    rd_log_set_sink(mem_sink, &g_buf);
    rd_log_set_clock(fixed_clock);
}

static int setup(void **state)
{
    (void)state;
    log_setup(RD_LOG_DEBUG, RD_LOG_TEXT);
    rd_log_set_journal(false);
    rd_log_clear_secrets();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_log_configure(RD_LOG_INFO, RD_LOG_TEXT);
    rd_log_set_sink(NULL, NULL);
    rd_log_set_clock(NULL);
    rd_log_set_journal(false);
    rd_log_clear_secrets();
    free(g_buf);
    g_buf = NULL;
    g_len = 0;
    g_lines = 0;
    return 0;
}

/* Everything written since setup (or the last take), as a heap string. */
static char *take(void)
{
    char *s = g_buf ? g_buf : strdup("");
    g_buf = NULL;
    g_len = 0;
    return s;
}

static void test_text_format(void **state)
{
    (void)state;
    rd_log(RD_LOG_INFO, "poller", "listed %d jobs for %s", 3, "octo-org/api");
    char *s = take();
    assert_string_equal(s,
                        "2026-11-29T20:00:00.123Z INFO poller: listed 3 jobs for octo-org/api\n");
    free(s);
    rd_warn("sched", "x");
    rd_error("sched", "y");
    rd_debug("sched", "z");
    s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z WARN sched: x\n"
                           "2026-11-29T20:00:00.123Z ERROR sched: y\n"
                           "2026-11-29T20:00:00.123Z DEBUG sched: z\n");
    free(s);
}

static void test_text_escapes_newlines(void **state)
{
    (void)state;
    rd_info("docker", "line1\nline2\r\x1b[31mred\ttab");
    char *s = take();
    assert_string_equal(
        s, "2026-11-29T20:00:00.123Z INFO docker: line1\\nline2\\r\\x1b[31mred\ttab\n");
    free(s);
}

static void test_json_format(void **state)
{
    (void)state;
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    rd_info("poller", "listed %d jobs", 3);
    char *s = take();
    assert_string_equal(s, "{\"ts\":\"2026-11-29T20:00:00.123Z\",\"level\":\"info\","
                           "\"component\":\"poller\",\"msg\":\"listed 3 jobs\"}\n");
    free(s);
}

static void test_json_escaping(void **state)
{
    (void)state;
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    const char *nasty = "q\"b\\s/n\nr\rt\tc\x01 u\xc3\xa9 bad\xff\xc3 end";
    rd_warn("child \"x\"", "%s", nasty);
    char *s = take();
    assert_non_null(strstr(s, "\\\"b\\\\s/n\\nr\\rt\\tc\\u0001 u\xc3\xa9 bad\\ufffd\\ufffd end"));
    /* exactly one line, and it parses */
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "level", &v));
    assert_string_equal(json_object_get_string(v), "warn");
    assert_true(json_object_object_get_ex(o, "component", &v));
    assert_string_equal(json_object_get_string(v), "child \"x\"");
    assert_true(json_object_object_get_ex(o, "msg", &v));
    assert_non_null(strstr(json_object_get_string(v), "q\"b\\s/n\nr\rt\tc\x01 u\xc3\xa9 bad"));
    json_object_put(o);
    free(s);
}

static void test_level_filter(void **state)
{
    (void)state;
    log_setup(RD_LOG_WARN, RD_LOG_TEXT);
    assert_false(rd_log_enabled(RD_LOG_DEBUG));
    assert_false(rd_log_enabled(RD_LOG_INFO));
    assert_true(rd_log_enabled(RD_LOG_WARN));
    assert_true(rd_log_enabled(RD_LOG_ERROR));
    rd_debug("a", "debug");
    rd_info("a", "info");
    rd_warn("a", "warn");
    rd_error("a", "error");
    char *s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z WARN a: warn\n"
                           "2026-11-29T20:00:00.123Z ERROR a: error\n");
    free(s);
}

static void test_parse(void **state)
{
    (void)state;
    rd_log_level_t l;
    rd_log_format_t f;
    assert_int_equal(rd_log_parse_level("debug", &l), 0);
    assert_int_equal(l, RD_LOG_DEBUG);
    assert_int_equal(rd_log_parse_level("INFO", &l), 0);
    assert_int_equal(l, RD_LOG_INFO);
    assert_int_equal(rd_log_parse_level("warn", &l), 0);
    assert_int_equal(l, RD_LOG_WARN);
    assert_int_equal(rd_log_parse_level("warning", &l), 0);
    assert_int_equal(l, RD_LOG_WARN);
    assert_int_equal(rd_log_parse_level("error", &l), 0);
    assert_int_equal(l, RD_LOG_ERROR);
    assert_true(rd_log_parse_level("verbose", &l) < 0);
    assert_true(rd_log_parse_level("", &l) < 0);
    assert_true(rd_log_parse_level(NULL, &l) < 0);
    assert_int_equal(rd_log_parse_format("text", &f), 0);
    assert_int_equal(f, RD_LOG_TEXT);
    assert_int_equal(rd_log_parse_format("json", &f), 0);
    assert_int_equal(f, RD_LOG_JSON);
    assert_true(rd_log_parse_format("xml", &f) < 0);
}

/* Secrets as the daemon registers them. None uses a recognisable prefix, so
 * only the registration can catch them. */
static const char *const PAT = "0123456789abcdef0123456789abcdef01234567";
static const char *const JIT = "eyJydW5uZXIiOnsiaWQiOjQyfQ/+abc/def+ghi/jkl==";
static const char *const WEBHOOK = "s3cr3t-webhook-value";

static void assert_clean(const char *s)
{
    if (strstr(s, PAT) || strstr(s, JIT) || strstr(s, WEBHOOK) ||
        strstr(s, "0123456789abcdef0123") || strstr(s, "s3cr3t-web") ||
        strstr(s, "eyJydW5uZXIiOnsi")) {
        print_error("secret leaked: %s\n", s);
        fail();
    }
}

static void log_secrets_every_way(void)
{
    rd_info("github", "token %s", PAT);
    rd_info("github", "Authorization: Bearer 0123456789abcdef01234%s", "56789abcdef01234567");
    rd_info("github", "0123456789abcdef0123456789abcdef01234567 in the format string");
    rd_info("supervisor", "jit=%s end", JIT);
    rd_info("supervisor", "jit=eyJydW5uZXIiOnsiaWQiOjQyfQ/+abc%s", "/def+ghi/jkl==");
    rd_info("supervisor", "body {\"encoded_jit_config\":\"%s\"}",
            "eyJydW5uZXIiOnsiaWQiOjQyfQ\\/+abc\\/def+ghi\\/jkl==");
    rd_info("listener", "secret=%s%s", "s3cr3t-", "webhook-value");
    rd_info("listener", "s3cr3t-web%s%c%s", "hook", '-', "value");
    rd_info("%s", "%s %s %s", PAT, JIT, WEBHOOK);
}

static void test_registered_secrets_text(void **state)
{
    (void)state;
    rd_log_add_secret(PAT);
    rd_log_add_secret(JIT);
    rd_log_add_secret(WEBHOOK);
    log_secrets_every_way();
    char *s = take();
    assert_clean(s);
    assert_non_null(strstr(s, "INFO github: token [REDACTED]\n"));
    assert_non_null(strstr(s, "jit=[REDACTED] end"));
    assert_non_null(strstr(s, "secret=[REDACTED]\n"));
    free(s);
}

static void test_registered_secrets_json(void **state)
{
    (void)state;
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    rd_log_add_secret(PAT);
    rd_log_add_secret(JIT);
    rd_log_add_secret(WEBHOOK);
    log_secrets_every_way();
    char *s = take();
    assert_clean(s);
    /* The JSON escaping of '/' in the output must not rebuild a secret either. */
    char *unescaped = strdup(s);
    char *w = unescaped;
    for (const char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] == '/')
            continue;
        *w++ = *r;
    }
    *w = '\0';
    assert_clean(unescaped);
    free(unescaped);
    assert_non_null(strstr(s, "\"msg\":\"token [REDACTED]\"}"));
    free(s);
}

static void test_secret_at_end_of_huge_message(void **state)
{
    (void)state;
    rd_log_add_secret(WEBHOOK);
    size_t n = 100000;
    char *pad = malloc(n + 1);
    memset(pad, 'x', n);
    pad[n] = '\0';
    rd_info("c", "%s%s", pad, WEBHOOK);
    char *s = take();
    assert_clean(s);
    assert_non_null(strstr(s, "x[REDACTED]\n"));
    free(s);
    free(pad);
}

static void test_forget_and_short(void **state)
{
    (void)state;
    rd_log_add_secret("short");
    rd_log_add_secret(WEBHOOK);
    rd_log_add_secret(WEBHOOK); /* twice is once */
    rd_info("c", "short %s", WEBHOOK);
    char *s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z INFO c: short [REDACTED]\n");
    free(s);
    rd_log_forget_secret(WEBHOOK);
    rd_info("c", "%s", WEBHOOK);
    s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z INFO c: s3cr3t-webhook-value\n");
    free(s);
}

static void test_longest_secret_wins(void **state)
{
    (void)state;
    rd_log_add_secret("abcdefgh");
    rd_log_add_secret("abcdefgh-ijklmnop");
    char out[128];
    rd_log_redact("x abcdefgh-ijklmnop y abcdefgh z", out, sizeof(out));
    assert_string_equal(out, "x [REDACTED] y [REDACTED] z");
}

typedef struct {
    const char *in;
    const char *want;
} redact_case_t;

static void test_token_patterns(void **state)
{
    (void)state;
    const redact_case_t cases[] = {
        {"tok ghp_16C7e42F292c6912E7710c838347Ae178B4a end", "tok [REDACTED] end"},
        {"gho_abcDEF123", "[REDACTED]"},
        {"ghu_abcDEF123,x", "[REDACTED],x"},
        {"ghs_abcDEF123.", "[REDACTED]."},
        {"ghr_abcDEF123", "[REDACTED]"},
        {"github_pat_11ABCDEFG0_abcdefXYZ123 ok", "[REDACTED] ok"},
        {"Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl done",
         "Bearer [REDACTED] done"},
        {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_def.", "Bearer [REDACTED]."},
        {"jwt=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.", "jwt=[REDACTED]."},
        /* not tokens */
        {"ghp_", "ghp_"},
        {"ghp_ x", "ghp_ x"},
        {"ghx_abcdef", "ghx_abcdef"},
        {"eyJ short", "eyJ short"},
        {"plain text 12345", "plain text 12345"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        size_t n = rd_log_redact(cases[i].in, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0)
            print_error("case %zu: got '%s' want '%s'\n", i, out, cases[i].want);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(out));
    }
}

static void test_token_patterns_logged(void **state)
{
    (void)state;
    rd_info("c", "ghp_%s and eyJhbGciOiJSUzI1NiJ9.%s", "16C7e42F292c6912E7710c838347Ae178B4a",
            "eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl");
    char *s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z INFO c: [REDACTED] and [REDACTED]\n");
    free(s);
}

static void test_redact_truncates_safely(void **state)
{
    (void)state;
    rd_log_add_secret(WEBHOOK);
    char out[12];
    size_t n = rd_log_redact("ab s3cr3t-webhook-value cd", out, sizeof(out));
    assert_int_equal(n, strlen(out));
    assert_true(n < sizeof(out));
    assert_null(strstr(out, "s3cr"));
    assert_string_equal(out, "ab [REDACTE");
    assert_int_equal(rd_log_redact("abc", out, 0), 0);
    char one[1];
    assert_int_equal(rd_log_redact("abc", one, 1), 0);
    assert_string_equal(one, "");
}

/* The core hands each finished line to the sink with its level, stamps it
 * with the installed clock, and without a sink writes nothing anywhere. */
static void test_sink_and_clock(void **state)
{
    (void)state;
    rd_warn("c", "one");
    assert_int_equal(g_lines, 1);
    assert_int_equal(g_last_level, RD_LOG_WARN);
    rd_error("c", "two");
    assert_int_equal(g_lines, 2);
    assert_int_equal(g_last_level, RD_LOG_ERROR);
    char *s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z WARN c: one\n"
                           "2026-11-29T20:00:00.123Z ERROR c: two\n");
    free(s);
    rd_log_set_clock(NULL);
    rd_info("c", "epoch");
    s = take();
    assert_string_equal(s, "1970-01-01T00:00:00.000Z INFO c: epoch\n");
    free(s);
    rd_log_set_sink(NULL, NULL);
    rd_info("c", "dropped");
    assert_int_equal(g_lines, 3);
    assert_null(g_buf);
}

/* Under the journal: "<N>" syslog priorities, no timestamp; JSON unchanged. */
static void test_journal_priorities(void **state)
{
    (void)state;
    rd_log_set_journal(true);
    rd_debug("c", "d");
    rd_info("c", "i");
    rd_warn("c", "w");
    rd_error("c", "e");
    char *s = take();
    assert_string_equal(s, "<7>DEBUG c: d\n<6>INFO c: i\n<4>WARN c: w\n<3>ERROR c: e\n");
    free(s);
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    rd_warn("c", "w");
    s = take();
    assert_string_equal(s, "{\"ts\":\"2026-11-29T20:00:00.123Z\",\"level\":\"warn\","
                           "\"component\":\"c\",\"msg\":\"w\"}\n");
    free(s);
}

static const char *json_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return json_object_get_string(v);
}

/* JSON lines carry the fields of the event's context; text lines do not change. */
static void test_json_context_fields(void **state)
{
    (void)state;
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    rd_log_add_secret("0123456789abcdef");
    const rd_log_ctx_t ctx = {.runner = "runnerd-a-linux-1",
                              .pool = "linux",
                              .scope = "repos/octo/api",
                              .job = INT64_C(9007199254740993)};
    rd_logc(RD_LOG_INFO, "supervisor", &ctx, "started");
    const rd_log_ctx_t some = {.pool = "p\"q", .scope = "tok 0123456789abcdef"};
    rd_logc(RD_LOG_WARN, "sched", &some, "x");
    rd_logc(RD_LOG_WARN, "sched", NULL, "none");
    char *s = take();
    char *second = strchr(s, '\n') + 1;
    char *third = strchr(second, '\n') + 1;
    second[-1] = third[-1] = '\0';
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    assert_string_equal(json_str(o, "runner"), "runnerd-a-linux-1");
    assert_string_equal(json_str(o, "pool"), "linux");
    assert_string_equal(json_str(o, "scope"), "repos/octo/api");
    json_object *job;
    assert_true(json_object_object_get_ex(o, "job", &job));
    assert_true(json_object_is_type(job, json_type_int));
    assert_int_equal(json_object_get_int64(job), INT64_C(9007199254740993));
    assert_string_equal(json_str(o, "msg"), "started");
    json_object_put(o);
    o = json_tokener_parse(second);
    assert_non_null(o);
    assert_null(json_str(o, "runner"));
    assert_string_equal(json_str(o, "pool"), "p\"q");
    assert_string_equal(json_str(o, "scope"), "tok [REDACTED]");
    assert_false(json_object_object_get_ex(o, "job", NULL));
    json_object_put(o);
    assert_string_equal(third, "{\"ts\":\"2026-11-29T20:00:00.123Z\",\"level\":\"warn\","
                               "\"component\":\"sched\",\"msg\":\"none\"}\n");
    free(s);
    log_setup(RD_LOG_DEBUG, RD_LOG_TEXT);
    rd_logc(RD_LOG_INFO, "supervisor", &ctx, "started");
    s = take();
    assert_string_equal(s, "2026-11-29T20:00:00.123Z INFO supervisor: started\n");
    free(s);
}

/* Bidi embeddings/overrides/isolates and C1 controls reorder or drive what a
 * viewer shows: escaped in text (and JSON) lines, as are bytes that are not
 * UTF-8 in text lines (a lone 0x9b is CSI to an 8-bit terminal). Other
 * non-ASCII text passes as it is. */
static void test_escapes_bidi_and_c1(void **state)
{
    (void)state;
    const char *spoof =
        "ok \xe2\x80\xae"
        "evil\xe2\x80\xac \xe2\x80\xaa\xe2\x80\xab\xe2\x80\xad"
        "\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9 c1 \xc2\x80\xc2\x9b[2J\xc2\x9f"
        " raw \x9b[31m caf\xc3\xa9 \xe2\x80\xa9 \xc2\xa0";
    rd_info("runner", "%s", spoof);
    char *s = take();
    assert_string_equal(
        s, "2026-11-29T20:00:00.123Z INFO runner: ok \\u202eevil\\u202c "
           "\\u202a\\u202b\\u202d\\u2066\\u2067\\u2068\\u2069 c1 "
           "\\u0080\\u009b[2J\\u009f raw \\x9b[31m caf\xc3\xa9 \xe2\x80\xa9 \xc2\xa0\n");
    free(s);
    log_setup(RD_LOG_DEBUG, RD_LOG_JSON);
    rd_info("runner", "%s", spoof);
    s = take();
    assert_non_null(strstr(s, "ok \\u202eevil\\u202c \\u202a\\u202b\\u202d\\u2066\\u2067\\u2068"
                              "\\u2069 c1 \\u0080\\u009b[2J\\u009f raw \\ufffd[31m caf\xc3\xa9"));
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    assert_non_null(strstr(json_str(o, "msg"), "ok \xe2\x80\xae"
                                               "evil"));
    json_object_put(o);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_escapes_newlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_secrets_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_secrets_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_at_end_of_huge_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_and_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_secret_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_patterns_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redact_truncates_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_and_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_context_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapes_bidi_and_c1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
