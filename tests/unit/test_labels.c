/* test_labels.c: table-driven tests of GitHub label matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "runnerd/core/labels.h"

#define MAXL 8

typedef struct {
    const char *job[MAXL];    /* NULL-terminated */
    const char *runner[MAXL]; /* NULL-terminated */
    bool want;
} match_case_t;

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (n < MAXL && v[n] != NULL)
        n++;
    return n;
}

static const match_case_t match_cases[] = {
    /* exact subsets */
    {{"self-hosted"}, {"self-hosted", "linux", "x64"}, true},
    {{"self-hosted", "linux"}, {"self-hosted", "linux", "x64"}, true},
    {{"self-hosted", "linux", "x64"}, {"self-hosted", "linux", "x64"}, true},
    {{"linux", "self-hosted"}, {"self-hosted", "linux", "x64"}, true},
    {{"self-hosted", "linux", "x64", "gpu"}, {"self-hosted", "linux", "x64"}, false},
    {{"windows"}, {"self-hosted", "linux", "x64"}, false},
    {{"ubuntu-latest"}, {"self-hosted", "linux", "x64"}, false},
    /* case-insensitive */
    {{"Self-Hosted", "LINUX"}, {"self-hosted", "linux", "x64"}, true},
    {{"self-hosted", "linux"}, {"SELF-HOSTED", "Linux"}, true},
    {{"X64"}, {"x64"}, true},
    {{"GPU"}, {"gpu"}, true},
    /* architecture aliases */
    {{"amd64"}, {"self-hosted", "x64"}, true},
    {{"x86_64"}, {"self-hosted", "x64"}, true},
    {{"X86_64"}, {"self-hosted", "AMD64"}, true},
    {{"x64"}, {"self-hosted", "amd64"}, true},
    {{"x64"}, {"self-hosted", "x86_64"}, true},
    {{"aarch64"}, {"self-hosted", "arm64"}, true},
    {{"arm64"}, {"self-hosted", "AArch64"}, true},
    {{"ARM64"}, {"self-hosted", "arm64"}, true},
    /* aliases never cross architectures */
    {{"arm64"}, {"self-hosted", "x64"}, false},
    {{"x64"}, {"self-hosted", "arm64"}, false},
    {{"aarch64"}, {"self-hosted", "amd64"}, false},
    {{"arm"}, {"self-hosted", "arm64"}, false},
    {{"arm64"}, {"self-hosted", "arm"}, false},
    {{"x86"}, {"self-hosted", "x64"}, false},
    {{"amd"}, {"self-hosted", "amd64"}, false},
    /* empty job labels match nothing */
    {{NULL}, {"self-hosted", "linux"}, false},
    {{NULL}, {NULL}, false},
    /* a runner without labels serves nothing */
    {{"self-hosted"}, {NULL}, false},
    /* no prefix or substring matching */
    {{"linux"}, {"linux-x64"}, false},
    {{"linux-x64"}, {"linux"}, false},
    {{"self"}, {"self-hosted"}, false},
    {{"self-hosted "}, {"self-hosted"}, false},
    /* duplicates in the job are fine */
    {{"linux", "LINUX", "linux"}, {"self-hosted", "linux"}, true},
    /* mixed alias and case in one job */
    {{"Self-Hosted", "Linux", "AMD64", "docker"}, {"self-hosted", "linux", "x64", "docker"}, true},
    {{"self-hosted", "linux", "aarch64", "docker"},
     {"self-hosted", "linux", "x64", "docker"},
     false},
    /* custom labels */
    {{"self-hosted", "big-mem"}, {"self-hosted", "linux", "x64", "big-mem"}, true},
    {{"self-hosted", "big_mem"}, {"self-hosted", "linux", "x64", "big-mem"}, false},
};

static void test_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const match_case_t *c = &match_cases[i];
        bool got = rd_labels_match(c->job, count(c->job), c->runner, count(c->runner));
        if (got != c->want) {
            print_error("case %zu: job[0]=%s runner[0]=%s: got %d want %d\n", i,
                        c->job[0] ? c->job[0] : "(none)", c->runner[0] ? c->runner[0] : "(none)",
                        got, c->want);
        }
        assert_int_equal(got, c->want);
    }
    assert_true(sizeof(match_cases) / sizeof(match_cases[0]) >= 30);
}

static void test_match_null_arrays(void **state)
{
    (void)state;
    const char *runner[] = {"self-hosted"};
    assert_false(rd_labels_match(NULL, 0, runner, 1));
    const char *job[] = {"self-hosted"};
    assert_false(rd_labels_match(job, 1, NULL, 0));
}

typedef struct {
    const char *label;
    bool want;
} valid_case_t;

static void test_valid_table(void **state)
{
    (void)state;
    char long_ok[257], long_bad[258];
    memset(long_ok, 'a', 256);
    long_ok[256] = '\0';
    memset(long_bad, 'a', 257);
    long_bad[257] = '\0';
    const valid_case_t cases[] = {
        {"self-hosted", true}, {"linux", true},      {"x64", true},
        {"my label", true},    {"gpu:a100", true},   {"a", true},
        {long_ok, true},       {long_bad, false},    {"", false},
        {" leading", false},   {"trailing ", false}, {"a,b", false},
        {",", false},          {"tab\there", false}, {"new\nline", false},
        {"esc\x1b[0m", false}, {"del\x7f", false},   {"caf\xc3\xa9", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = rd_label_valid(cases[i].label);
        if (got != cases[i].want)
            print_error("valid case %zu: got %d want %d\n", i, got, cases[i].want);
        assert_int_equal(got, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_null_arrays),
        cmocka_unit_test(test_valid_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
