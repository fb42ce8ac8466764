/* test_ident.c: pool and target identity across reloads (ident.h): a reload
 * that keeps, reorders, renames, removes and re-adds pools and targets;
 * references held across two reloads stay valid and point at the newest
 * config; a removed pool's reference says removed; references outliving the
 * set; nothing leaks (ASan, valgrind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"

/* A config with the pools named in POOLS (space-separated) and repo targets REPOS. */
static rd_config_t *load(const char *pools, const char *repos)
{
    char *text = rd_xstrdup("github:\n"
                            "  api_url: http://127.0.0.1:1\n"
                            "  token_env: T\n"
                            "host:\n"
                            "  cpus: 8\n"
                            "  memory: 16GiB\n"
                            "  arch: x64\n"
                            "instance: t\n"
                            "pools:\n");
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", pools);
    for (char *sv = NULL, *w = strtok_r(buf, " ", &sv); w; w = strtok_r(NULL, " ", &sv)) {
        char *t = rd_xasprintf("%s  - name: %s\n"
                               "    labels: [self-hosted, %s]\n"
                               "    image: img\n"
                               "    cpus: 1\n"
                               "    memory: 1GiB\n",
                               text, w, w);
        free(text);
        text = t;
    }
    char *t = rd_xasprintf("%stargets:\n", text);
    free(text);
    text = t;
    snprintf(buf, sizeof(buf), "%s", repos);
    for (char *sv = NULL, *w = strtok_r(buf, " ", &sv); w; w = strtok_r(NULL, " ", &sv)) {
        t = rd_xasprintf("%s  - repo: %s\n", text, w);
        free(text);
        text = t;
    }
    rd_host_facts_t facts = {.cores = 8, .mem_total = 16ull << 30, .arch = RD_ARCH_X64};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("i.yaml", text, strlen(text), &facts, &cfg, &errs);
    if (rc != 0) {
        char *es = rd_config_errors_format(&errs);
        fputs(es, stderr);
        free(es);
    }
    rd_config_errors_free(&errs);
    free(text);
    assert_int_equal(rc, 0);
    return cfg;
}

/* Every live reference is the one at its position, and points at that entry. */
static void check_consistent(const rd_idents_t *set, const rd_config_t *cfg)
{
    for (size_t i = 0; i < cfg->npools; i++) {
        rd_pool_ref_t *p = rd_idents_pool(set, i);
        assert_non_null(p);
        assert_ptr_equal(rd_pool_ref_cfg(p), &cfg->pools[i]);
        assert_int_equal(rd_pool_ref_pos(p), i);
        assert_string_equal(rd_pool_ref_name(p), cfg->pools[i].name);
        assert_ptr_equal(rd_idents_pool_named(set, cfg->pools[i].name), p);
    }
    assert_null(rd_idents_pool(set, cfg->npools));
    for (size_t i = 0; i < cfg->ntargets; i++) {
        rd_target_ref_t *t = rd_idents_target(set, i);
        assert_non_null(t);
        assert_ptr_equal(rd_target_ref_cfg(t), &cfg->targets[i]);
        assert_int_equal(rd_target_ref_pos(t), i);
        assert_ptr_equal(rd_idents_target_scoped(set, cfg->targets[i].scope), t);
    }
    assert_null(rd_idents_target(set, cfg->ntargets));
}

/* Keep, reorder, rename, remove, re-add, over three configs, with holders. */
static void test_reloads(void **state)
{
    (void)state;
    rd_idents_t *set = rd_idents_new();
    rd_config_t *c1 = load("small big gpu", "octo/a octo/b octo/c");
    rd_idents_apply(set, c1);
    check_consistent(set, c1);

    /* A runner of each pool and target holds its references. */
    rd_pool_ref_t *small = rd_pool_ref_hold(rd_idents_pool(set, 0));
    rd_pool_ref_t *big = rd_pool_ref_hold(rd_idents_pool(set, 1));
    rd_pool_ref_t *gpu = rd_pool_ref_hold(rd_idents_pool(set, 2));
    rd_target_ref_t *ta = rd_target_ref_hold(rd_idents_target(set, 0));
    rd_target_ref_t *tb = rd_target_ref_hold(rd_idents_target(set, 1));
    rd_target_ref_t *tc = rd_target_ref_hold(rd_idents_target(set, 2));
    uint64_t small_id = rd_pool_ref_id(small), big_id = rd_pool_ref_id(big);
    assert_int_not_equal(small_id, big_id);
    assert_string_equal(rd_target_ref_scope(tb), "repos/octo/b");

    /* Reload 1: reordered (big first), gpu renamed to gpu2, target b removed, c first. */
    rd_config_t *c2 = load("big small gpu2", "octo/c octo/a");
    rd_idents_apply(set, c2);
    rd_config_free(c1);
    check_consistent(set, c2);
    assert_ptr_equal(rd_idents_pool(set, 0), big);
    assert_ptr_equal(rd_idents_pool(set, 1), small);
    assert_ptr_equal(rd_pool_ref_cfg(small), &c2->pools[1]);
    assert_int_equal(rd_pool_ref_pos(small), 1);
    assert_int_equal(rd_pool_ref_id(small), small_id);
    assert_string_equal(rd_pool_ref_cfg(big)->labels[1], "big");
    /* The renamed pool: the old reference says removed, the new name is another object. */
    assert_true(rd_pool_ref_removed(gpu));
    assert_null(rd_pool_ref_cfg(gpu));
    assert_int_equal(rd_pool_ref_pos(gpu), SIZE_MAX);
    assert_string_equal(rd_pool_ref_name(gpu), "gpu");
    assert_null(rd_idents_pool_named(set, "gpu"));
    rd_pool_ref_t *gpu2 = rd_idents_pool(set, 2);
    assert_ptr_not_equal(gpu2, gpu);
    assert_true(rd_pool_ref_id(gpu2) > big_id);
    assert_true(rd_target_ref_removed(tb));
    assert_null(rd_idents_target_scoped(set, "repos/octo/b"));
    assert_ptr_equal(rd_idents_target(set, 0), tc);
    assert_ptr_equal(rd_target_ref_cfg(ta), &c2->targets[1]);

    /* Reload 2: gpu and target b come back while their old references are held (a
     * runner still running): the same objects again. small is removed, nobody else
     * holds gpu2 (freed at once). */
    rd_config_t *c3 = load("gpu big", "octo/b octo/a octo/c");
    rd_idents_apply(set, c3);
    rd_config_free(c2);
    check_consistent(set, c3);
    assert_ptr_equal(rd_idents_pool(set, 0), gpu);
    assert_false(rd_pool_ref_removed(gpu));
    assert_ptr_equal(rd_pool_ref_cfg(gpu), &c3->pools[0]);
    assert_ptr_equal(rd_idents_pool(set, 1), big);
    assert_int_equal(rd_pool_ref_id(big), big_id);
    assert_true(rd_pool_ref_removed(small));
    assert_ptr_equal(rd_idents_target(set, 0), tb);
    assert_false(rd_target_ref_removed(tb));
    assert_ptr_equal(rd_target_ref_cfg(ta), &c3->targets[1]);
    assert_ptr_equal(rd_target_ref_cfg(tc), &c3->targets[2]);
    assert_null(rd_idents_pool_named(set, "gpu2"));

    /* The last holder of a removed pool lets go: freed (ASan would see a leak
     * otherwise); a later re-add is a new object with a new id. */
    rd_pool_ref_release(small);
    rd_config_t *c4 = load("small", "octo/a");
    rd_idents_apply(set, c4);
    rd_config_free(c3);
    check_consistent(set, c4);
    assert_true(rd_pool_ref_id(rd_idents_pool(set, 0)) > rd_pool_ref_id(gpu));
    assert_true(rd_pool_ref_removed(gpu));
    assert_true(rd_pool_ref_removed(big));
    assert_ptr_equal(rd_idents_target(set, 0), ta);

    rd_pool_ref_release(gpu);
    rd_pool_ref_release(big);
    rd_target_ref_release(tb);
    rd_target_ref_release(tc);
    rd_target_ref_release(ta);
    rd_idents_free(set);
    rd_config_free(c4);
}

/* Scopes compare case-insensitively, as GitHub compares owners and repositories. */
static void test_scope_case(void **state)
{
    (void)state;
    rd_idents_t *set = rd_idents_new();
    rd_config_t *c1 = load("p", "octo/a");
    rd_idents_apply(set, c1);
    rd_target_ref_t *t = rd_target_ref_hold(rd_idents_target(set, 0));
    rd_config_t *c2 = load("p", "Octo/A");
    rd_idents_apply(set, c2);
    rd_config_free(c1);
    assert_ptr_equal(rd_idents_target(set, 0), t);
    assert_ptr_equal(rd_idents_target_scoped(set, "repos/OCTO/a"), t);
    rd_target_ref_release(t);
    rd_idents_free(set);
    rd_config_free(c2);
}

/* A runner closing after the daemon freed the set: its references stay valid,
 * removed, and its release frees them. */
static void test_outlives_set(void **state)
{
    (void)state;
    rd_idents_t *set = rd_idents_new();
    rd_config_t *c = load("p q", "octo/a");
    rd_idents_apply(set, c);
    rd_pool_ref_t *q = rd_pool_ref_hold(rd_pool_ref_hold(rd_idents_pool(set, 1)));
    rd_target_ref_t *t = rd_target_ref_hold(rd_idents_target(set, 0));
    rd_idents_free(set);
    rd_config_free(c);
    assert_true(rd_pool_ref_removed(q));
    assert_string_equal(rd_pool_ref_name(q), "q");
    assert_true(rd_target_ref_removed(t));
    rd_pool_ref_release(q);
    assert_string_equal(rd_pool_ref_name(q), "q"); /* one hold left */
    rd_pool_ref_release(q);
    rd_target_ref_release(t);
    rd_pool_ref_release(NULL);
    rd_target_ref_release(NULL);
}

/* An apply with no config removes everything; an empty set answers NULL. */
static void test_empty(void **state)
{
    (void)state;
    rd_idents_t *set = rd_idents_new();
    assert_null(rd_idents_pool(set, 0));
    assert_null(rd_idents_pool_named(set, "p"));
    assert_null(rd_idents_target_scoped(set, "repos/o/r"));
    rd_config_t *c = load("p", "octo/a");
    rd_idents_apply(set, c);
    rd_pool_ref_t *p = rd_pool_ref_hold(rd_idents_pool(set, 0));
    rd_idents_apply(set, NULL);
    rd_config_free(c);
    assert_true(rd_pool_ref_removed(p));
    assert_null(rd_idents_pool(set, 0));
    assert_null(rd_idents_target(set, 0));
    rd_pool_ref_release(p);
    rd_idents_free(set);
}

/* Adoption: a container's pool and scope labels that the config does not name
 * (yet) get removed references, which a reload adding them revives. */
static void test_claim(void **state)
{
    (void)state;
    rd_idents_t *set = rd_idents_new();
    rd_config_t *c1 = load("p", "octo/a");
    rd_idents_apply(set, c1);
    assert_ptr_equal(rd_idents_pool_claim(set, "p"), rd_idents_pool(set, 0));
    assert_ptr_equal(rd_idents_target_claim(set, "repos/octo/A"), rd_idents_target(set, 0));
    rd_pool_ref_t *late = rd_pool_ref_hold(rd_idents_pool_claim(set, "late"));
    rd_target_ref_t *tb = rd_target_ref_hold(rd_idents_target_claim(set, "repos/octo/b"));
    assert_true(rd_pool_ref_removed(late));
    assert_true(rd_target_ref_removed(tb));
    assert_null(rd_idents_pool_named(set, "late"));
    rd_idents_pool_claim(set, "unheld"); /* dropped by the next apply (ASan: no leak) */
    rd_config_t *c2 = load("late p", "octo/b octo/a");
    rd_idents_apply(set, c2);
    rd_config_free(c1);
    check_consistent(set, c2);
    assert_ptr_equal(rd_idents_pool(set, 0), late);
    assert_ptr_equal(rd_pool_ref_cfg(late), &c2->pools[0]);
    assert_ptr_equal(rd_idents_target(set, 0), tb);
    rd_pool_ref_release(late);
    rd_target_ref_release(tb);
    rd_idents_free(set);
    rd_config_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reloads),      cmocka_unit_test(test_scope_case),
        cmocka_unit_test(test_outlives_set), cmocka_unit_test(test_empty),
        cmocka_unit_test(test_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
