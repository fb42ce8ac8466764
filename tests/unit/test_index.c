/* test_index.c: the hash indexes (index.h) against a plain array model:
 * random puts, replaces and removes (with tombstones and growth), ids 0 and
 * INT64_MIN refused, names compared ASCII-case-insensitively. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/backoff.h"
#include "runnerd/core/cfgindex.h"
#include "runnerd/core/config.h"
#include "runnerd/core/index.h"

static void test_idmap_basics(void **state)
{
    (void)state;
    rd_idmap_t m;
    rd_idmap_init(&m);
    assert_null(rd_idmap_get(&m, 5));
    assert_null(rd_idmap_remove(&m, 5));
    int a = 1, b = 2;
    assert_null(rd_idmap_put(&m, 5, &a));
    assert_ptr_equal(rd_idmap_get(&m, 5), &a);
    assert_ptr_equal(rd_idmap_put(&m, 5, &b), &a); /* replace returns the old value */
    assert_int_equal(rd_idmap_count(&m), 1);
    assert_null(rd_idmap_put(&m, 0, &a)); /* reserved ids are ignored */
    assert_null(rd_idmap_put(&m, INT64_MIN, &a));
    assert_null(rd_idmap_get(&m, 0));
    assert_int_equal(rd_idmap_count(&m), 1);
    assert_null(rd_idmap_put(&m, -7, &a)); /* negative ids are ids */
    assert_ptr_equal(rd_idmap_get(&m, -7), &a);
    assert_ptr_equal(rd_idmap_remove(&m, 5), &b);
    assert_null(rd_idmap_get(&m, 5));
    assert_int_equal(rd_idmap_count(&m), 1);
    rd_idmap_free(&m);
}

#define MODEL 512

static void test_idmap_random_model(void **state)
{
    (void)state;
    uint64_t seed = 42;
    static int64_t keys[MODEL];
    static uintptr_t vals[MODEL];
    for (int round = 0; round < 20; round++) {
        rd_idmap_t m;
        rd_idmap_init(&m);
        size_t n = 0;
        for (int op = 0; op < 20000; op++) {
            /* a small key space: many hits, replaces and removes (tombstones) */
            int64_t k = (int64_t)(rd_rand_next(&seed) % 700) - 100;
            if (k == 0)
                continue;
            size_t at = n;
            for (size_t i = 0; i < n; i++)
                if (keys[i] == k)
                    at = i;
            uintptr_t v = (uintptr_t)rd_rand_next(&seed) | 1;
            switch (rd_rand_next(&seed) % 3) {
            case 0:
            case 1:
                if (at == n && n == MODEL)
                    break;
                assert_ptr_equal(rd_idmap_put(&m, k, (void *)v), at < n ? (void *)vals[at] : NULL);
                if (at == n)
                    keys[n++] = k;
                vals[at] = v;
                break;
            case 2:
                assert_ptr_equal(rd_idmap_remove(&m, k), at < n ? (void *)vals[at] : NULL);
                if (at < n) {
                    keys[at] = keys[n - 1];
                    vals[at] = vals[n - 1];
                    n--;
                }
                break;
            }
            assert_int_equal(rd_idmap_count(&m), n);
        }
        for (size_t i = 0; i < n; i++)
            assert_ptr_equal(rd_idmap_get(&m, keys[i]), (void *)vals[i]);
        rd_idmap_free(&m);
    }
}

static void test_namemap_case_insensitive(void **state)
{
    (void)state;
    rd_namemap_t m;
    rd_namemap_init(&m);
    int a = 1, b = 2;
    char key[] = "Octo-Org/API";
    assert_null(rd_namemap_put(&m, key, &a));
    key[0] = 'X'; /* the key was copied */
    assert_ptr_equal(rd_namemap_get(&m, "octo-org/api"), &a);
    assert_ptr_equal(rd_namemap_get(&m, "OCTO-ORG/API"), &a);
    assert_null(rd_namemap_get(&m, "octo-org/api2"));
    assert_ptr_equal(rd_namemap_put(&m, "octo-org/Api", &b), &a);
    assert_int_equal(rd_namemap_count(&m), 1);
    assert_ptr_equal(rd_namemap_remove(&m, "OCTO-org/api"), &b);
    assert_null(rd_namemap_get(&m, "octo-org/api"));
    assert_null(rd_namemap_remove(&m, "octo-org/api"));
    rd_namemap_free(&m);
}

static void test_namemap_many(void **state)
{
    (void)state;
    rd_namemap_t m;
    rd_namemap_init(&m);
    char k[32];
    for (uintptr_t i = 1; i <= 20000; i++) {
        snprintf(k, sizeof(k), "Owner/Repo%05u", (unsigned)i);
        assert_null(rd_namemap_put(&m, k, (void *)i));
    }
    for (uintptr_t i = 1; i <= 20000; i += 2) { /* remove the odd ones: tombstones */
        snprintf(k, sizeof(k), "owner/repo%05u", (unsigned)i);
        assert_ptr_equal(rd_namemap_remove(&m, k), (void *)i);
    }
    for (uintptr_t i = 1; i <= 20000; i++) {
        snprintf(k, sizeof(k), "OWNER/REPO%05u", (unsigned)i);
        assert_ptr_equal(rd_namemap_get(&m, k), i % 2 ? NULL : (void *)i);
    }
    for (uintptr_t i = 1; i <= 20000; i += 2) { /* and back: reuses the slots */
        snprintf(k, sizeof(k), "owner/repo%05u", (unsigned)i);
        assert_null(rd_namemap_put(&m, k, (void *)i));
    }
    assert_int_equal(rd_namemap_count(&m), 20000);
    assert_true(m.cap <= 65536); /* tombstones did not make it grow without bound */
    rd_namemap_free(&m);
}

/* The config index answers exactly as the linear rd_config_target_for_repo: repo
 * targets before org targets, the first in the file among equals, `repos:`
 * filters, names compared case-insensitively. */
static void test_cfgindex_matches_config(void **state)
{
    (void)state;
    static const char *Y = "github:\n"
                           "  api_url: http://127.0.0.1:1\n"
                           "  token_env: T\n"
                           "host:\n"
                           "  cpus: 4\n"
                           "  memory: 8GiB\n"
                           "  arch: x64\n"
                           "  max_runners: 10\n"
                           "instance: t\n"
                           "pools:\n"
                           "  - name: p\n"
                           "    labels: [self-hosted]\n"
                           "    image: img\n"
                           "    cpus: 1\n"
                           "    memory: 1GiB\n"
                           "targets:\n"
                           "  - org: Octo\n"
                           "    repos: [api, Web]\n"
                           "  - repo: octo/api\n"
                           "  - repo: other/x\n"
                           "  - org: other\n"
                           "  - org: filtered\n"
                           "    repos: [only]\n";
    rd_host_facts_t facts = {
        .cores = 4, .mem_total = 8ull << 30, .arch = RD_ARCH_X64, .hostname = "h"};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("i.yaml", Y, strlen(Y), &facts, &cfg, &errs);
    if (rc != 0) {
        char *es = rd_config_errors_format(&errs);
        fputs(es, stderr);
        free(es);
    }
    rd_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    rd_cfgindex_t *x = rd_cfgindex_new(cfg);
    const char *repos[] = {"octo/api",      "OCTO/API",     "octo/web",       "Octo/WEB",
                           "octo/other",    "other/x",      "other/y",        "filtered/only",
                           "filtered/ONLY", "filtered/not", "nobody/x",       "noslash",
                           "octo/",         "/api",         "octo/api/extra", ""};
    for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
        assert_int_equal(rd_cfgindex_target_for_repo(x, repos[i]),
                         rd_config_target_for_repo(cfg, repos[i]));
    assert_int_equal(rd_cfgindex_target_for_repo(x, "octo/api"), 1); /* repo before org */
    assert_int_equal(rd_cfgindex_target_for_repo(x, "octo/web"), 0);
    assert_int_equal(rd_cfgindex_target_for_repo(x, "octo/other"), -1); /* filtered out */
    assert_int_equal(rd_cfgindex_target_for_repo(x, "other/y"), 3);
    assert_int_equal(rd_cfgindex_target_for_repo(x, "filtered/not"), -1);
    for (size_t i = 0; i < cfg->ntargets; i++)
        assert_int_equal(rd_cfgindex_target_by_scope(x, cfg->targets[i].scope), (int)i);
    assert_int_equal(rd_cfgindex_target_by_scope(x, "repos/none/x"), -1);
    rd_cfgindex_free(x);
    rd_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_basics),
        cmocka_unit_test(test_idmap_random_model),
        cmocka_unit_test(test_namemap_case_insensitive),
        cmocka_unit_test(test_namemap_many),
        cmocka_unit_test(test_cfgindex_matches_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
