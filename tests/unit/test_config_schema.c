/* test_config_schema.c: the config's key tables (src/core/config_int.h) against
 * docs/configuration.md, and the tables' own consistency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_int.h"

/* The key tables (config_int.h) and docs/configuration.md agree: each section's
 * table in the docs has a row per key, no more, with the same default; every
 * key has a line of help. A key added to the schema without its docs fails here. */
static void check_section_docs(const char *doc, const char *heading, const rd_cfg_key_t *keys,
                               size_t nkeys, bool has_default_column)
{
    const char *sec = strstr(doc, heading);
    if (sec == NULL)
        fail_msg("docs/configuration.md has no \"%s\"", heading);
    const char *end = strstr(sec + strlen(heading), "\n### ");
    if (end == NULL)
        end = strstr(sec + strlen(heading), "\n## ");
    size_t seen = 0;
    for (const char *l = sec; l != NULL && l < end; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "| `", 3) != 0)
            continue;
        const char *kend = strchr(l + 3, '`');
        assert_non_null(kend);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(kend - l - 3), l + 3);
        size_t i;
        for (i = 0; i < nkeys; i++)
            if (strcmp(keys[i].name, key) == 0)
                break;
        if (i == nkeys)
            fail_msg("%s: the docs list `%s`, the schema has no such key", heading, key);
        seen++;
        if (!has_default_column || keys[i].def == NULL)
            continue;
        /* | `key` | type | `default` | notes | */
        const char *col = l;
        for (int bars = 0; bars < 3; col++)
            bars += *col == '|';
        char want[96];
        snprintf(want, sizeof want, " `%s` |", keys[i].def);
        if (strncmp(col, want, strlen(want)) != 0)
            fail_msg("%s: `%s`: the docs' default is not %s", heading, key, want);
    }
    for (size_t i = 0; i < nkeys; i++) {
        /* A section (github, host, docker) has its own heading instead of a row. */
        char sub[80];
        snprintf(sub, sizeof sub, "\n### %s\n", keys[i].name);
        seen += keys[i].type == RD_CFG_CUSTOM && keys[i].parse == NULL && strstr(doc, sub) != NULL;
    }
    if (seen != nkeys)
        fail_msg("%s: %zu keys in the schema, %zu in the docs", heading, nkeys, seen);
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].help == NULL || keys[i].help[0] == '\0')
            fail_msg("%s: `%s` has no help line", heading, keys[i].name);
}

static void test_schema_matches_docs(void **state)
{
    (void)state;
    FILE *fp = fopen(RD_SRC_DIR "/docs/configuration.md", "r");
    assert_non_null(fp);
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof doc - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    check_section_docs(doc, "### github\n", rd_cfg_github_keys, rd_cfg_ngithub_keys, true);
    check_section_docs(doc, "### host\n", rd_cfg_host_keys, rd_cfg_nhost_keys, true);
    check_section_docs(doc, "### docker\n", rd_cfg_docker_keys, rd_cfg_ndocker_keys, true);
    check_section_docs(doc, "### top level\n", rd_cfg_root_keys, rd_cfg_nroot_keys, true);
    check_section_docs(doc, "### pools[]\n", rd_cfg_pool_keys, rd_cfg_npool_keys, true);
    check_section_docs(doc, "### targets[]\n", rd_cfg_target_keys, rd_cfg_ntarget_keys, false);
}

/* Every plain default reads back without an error through its own row (a
 * default that its own range refuses would fail every load). */
static void test_defaults_parse(void **state)
{
    (void)state;
    const char *yaml = "github:\n  token_env: T\npools:\n  - name: p\n    labels: [x]\n"
                       "    image: i\ntargets:\n  - repo: o/r\n";
    rd_host_facts_t f = {.cores = 4, .mem_total = 8ULL << 30, .arch = RD_ARCH_X64, .hostname = "h"};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    assert_int_equal(rd_config_load_buffer("t.yaml", yaml, strlen(yaml), &f, &cfg, &errs), 0);
    assert_int_equal(cfg->github.poll_interval_ms, 15000);
    assert_int_equal(cfg->github.request_budget_per_hour, 4000);
    assert_int_equal(cfg->pools[0].memory, 2ULL << 30);
    assert_int_equal(cfg->pools[0].startup_timeout_ms, 300000);
    assert_int_equal(cfg->pools[0].pull, RD_PULL_MISSING);
    assert_string_equal(cfg->docker.binary, "docker");
    rd_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_matches_docs),
        cmocka_unit_test(test_defaults_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
