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
#include <unistd.h>

#include "runnerd/core/log.h"

#define T0 INT64_C(1795982400123) /* 2026-11-29T20:00:00.123Z */

static FILE *g_out;

static int setup(void **state)
{
    (void)state;
    g_out = tmpfile();
    if (g_out == NULL)
        return -1;
    rd_log_setup(RD_LOG_DEBUG, RD_LOG_TEXT, g_out);
    rd_log_set_time_ms(T0);
    rd_log_clear_secrets();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_log_setup(RD_LOG_INFO, RD_LOG_TEXT, NULL);
    rd_log_set_time_ms(-1);
    rd_log_clear_secrets();
    fclose(g_out);
    return 0;
}

/* Everything written since setup (or the last take), as a heap string. */
static char *take(void)
{
    long end = ftell(g_out);
    assert_true(end >= 0);
    char *s = calloc(1, (size_t)end + 1);
    rewind(g_out);
    size_t n = fread(s, 1, (size_t)end, g_out);
    assert_int_equal(n, (size_t)end);
    rewind(g_out);
    assert_int_equal(ftruncate(fileno(g_out), 0), 0);
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
    rd_log_setup(RD_LOG_DEBUG, RD_LOG_JSON, g_out);
    rd_info("poller", "listed %d jobs", 3);
    char *s = take();
    assert_string_equal(s, "{\"ts\":\"2026-11-29T20:00:00.123Z\",\"level\":\"info\","
                           "\"component\":\"poller\",\"msg\":\"listed 3 jobs\"}\n");
    free(s);
}

static void test_json_escaping(void **state)
{
    (void)state;
    rd_log_setup(RD_LOG_DEBUG, RD_LOG_JSON, g_out);
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
    rd_log_setup(RD_LOG_WARN, RD_LOG_TEXT, g_out);
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
    rd_log_setup(RD_LOG_DEBUG, RD_LOG_JSON, g_out);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
