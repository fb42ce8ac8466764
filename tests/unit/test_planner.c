/* test_planner.c: daemon state -> scheduler input -> plan lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/planner.h"
#include "runnerd/core/sched.h"

static const char *CFG = "github:\n"
                         "  api_url: http://127.0.0.1:1\n"
                         "  token_env: T\n"
                         "host:\n"
                         "  cpus: 4\n"
                         "  memory: 8GiB\n"
                         "  arch: x64\n"
                         "  max_runners: 10\n"
                         "instance: test\n"
                         "pools:\n"
                         "  - name: small\n"
                         "    labels: [self-hosted, linux, x64]\n"
                         "    image: img\n"
                         "    cpus: 1\n"
                         "    memory: 1GiB\n"
                         "    max_runners: 8\n"
                         "targets:\n"
                         "  - repo: octo/a\n"
                         "  - org: octo\n";

static rd_config_t *load_text(const char *text)
{
    rd_host_facts_t facts = {
        .cores = 4, .mem_total = 8ull << 30, .arch = RD_ARCH_X64, .hostname = "h"};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("t.yaml", text, strlen(text), &facts, &cfg, &errs);
    if (rc != 0) {
        char *es = rd_config_errors_format(&errs);
        fputs(es, stderr);
        free(es);
    }
    rd_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

static rd_config_t *load(void)
{
    return load_text(CFG);
}

/* One queued job, as a poll of its repository reports it (target from the config). */
static void add(rd_ledger_t *l, const rd_config_t *cfg, int64_t id, const char *repo,
                const char **labels, size_t nlabels, int64_t created_ms)
{
    rd_gh_job_t j = {.id = id,
                     .run_id = 10,
                     .labels = (char **)labels,
                     .nlabels = nlabels,
                     .created_ms = created_ms};
    (void)cfg; /* the ledger has it: it finds the target */
    rd_ledger_poll_t ev = {.repo = repo, .started_ms = 1, .queued = &j, .nqueued = 1};
    /* one poll per job: a poll of the same repository started earlier would drop
     * the others, so each starts before the previous one's sighting */
    rd_ledger_poll(l, &ev, 2000, NULL);
}

static char *plan_text(const rd_planner_state_t *st)
{
    rd_planner_input_t pi;
    rd_planner_build(st, &pi);
    rd_sched_plan_t plan;
    rd_sched_plan(&pi.in, &plan);
    char *buf = rd_planner_format_plan(&pi, &plan);
    rd_sched_plan_free(&plan);
    rd_planner_input_free(&pi);
    return buf;
}

static void test_plan_lines(void **state)
{
    (void)state;
    rd_config_t *cfg = load();
    rd_ledger_t *d = rd_ledger_new();
    rd_ledger_set_config(d, cfg);
    const char *labels[] = {"self-hosted", "linux", "X64"};
    const char *win[] = {"self-hosted", "windows"};
    add(d, cfg, 1, "octo/a", labels, 3, 1000);
    add(d, cfg, 2, "octo/a", labels, 3, 1001);
    add(d, cfg, 3, "octo/b", labels, 3, 1002);
    add(d, cfg, 4, "octo/b", win, 2, 1003);
    add(d, cfg, 5, "other/c", labels, 3, 1004); /* not watched */

    rd_planner_state_t st = {.cfg = cfg, .ledger = d, .now_ms = 5000};
    char *out = plan_text(&st);
    assert_string_equal(out,
                        "{\"scope\":\"repos/octo/a\",\"pool\":\"small\",\"demand\":2,\"supply\":0,"
                        "\"start\":2,\"limit\":null}\n"
                        "{\"scope\":\"orgs/octo\",\"pool\":\"small\",\"demand\":1,\"supply\":0,"
                        "\"start\":1,\"limit\":null}\n"
                        "{\"unmatched\":1}\n");
    free(out);
    rd_ledger_free(d);
    rd_config_free(cfg);
}

static void test_retired_pool_holds_capacity(void **state)
{
    (void)state;
    rd_config_t *cfg = load();
    rd_ledger_t *d = rd_ledger_new();
    rd_ledger_set_config(d, cfg);
    const char *labels[] = {"self-hosted", "linux", "x64"};
    for (int i = 1; i <= 6; i++)
        add(d, cfg, i, "octo/a", labels, 3, 1000 + i);
    /* Three busy runners of a pool that a reload removed hold 3 of the 4 cpus. */
    rd_idents_t *ids = rd_idents_new();
    rd_idents_apply(ids, cfg);
    rd_pool_ref_t *gone = rd_pool_ref_hold(rd_idents_pool_claim(ids, "gone"));
    rd_planner_runner_t rs[3];
    for (int i = 0; i < 3; i++) {
        rs[i] = (rd_planner_runner_t){.key = (uint64_t)i + 1,
                                      .pool = gone,
                                      .target = rd_idents_target(ids, 0),
                                      .state = RD_RSTATE_BUSY,
                                      .job_id = 100 + i,
                                      .cpus = 1,
                                      .memory = 1ull << 30};
    }
    rd_planner_state_t st = {.cfg = cfg, .ledger = d, .runners = rs, .nrunners = 3, .now_ms = 5000};
    rd_planner_input_t pi;
    rd_planner_build(&st, &pi);
    assert_int_equal(pi.npools, 2);
    assert_string_equal(rd_planner_pool_name(&pi, 1), "gone");
    assert_true(pi.pools[1].draining);
    rd_sched_plan_t plan;
    rd_sched_plan(&pi.in, &plan);
    unsigned starts = 0;
    for (size_t i = 0; i < plan.ndecisions; i++)
        starts += plan.decisions[i].start;
    assert_int_equal(starts, 1);
    rd_sched_plan_free(&plan);
    rd_planner_input_free(&pi);
    rd_pool_ref_release(gone);
    rd_idents_free(ids);
    rd_ledger_free(d);
    rd_config_free(cfg);
}

static void test_runner_of_removed_target(void **state)
{
    (void)state;
    rd_config_t *cfg = load();
    rd_ledger_t *d = rd_ledger_new();
    rd_ledger_set_config(d, cfg);
    rd_idents_t *ids = rd_idents_new();
    rd_idents_apply(ids, cfg);
    rd_target_ref_t *gone = rd_target_ref_hold(rd_idents_target_claim(ids, "repos/gone/x"));
    rd_planner_runner_t r = {.key = 7,
                             .pool = rd_idents_pool(ids, 0),
                             .target = gone,
                             .state = RD_RSTATE_IDLE,
                             .idle_since_ms = 1,
                             .cpus = 1,
                             .memory = 1ull << 30};
    rd_planner_state_t st = {.cfg = cfg, .ledger = d, .runners = &r, .nrunners = 1, .now_ms = 5000};
    rd_planner_input_t pi;
    rd_planner_build(&st, &pi);
    assert_int_equal(pi.runners[0].scope, (size_t)-1);
    assert_int_equal(pi.runners[0].pool, 0);
    rd_planner_input_free(&pi);
    rd_target_ref_release(gone);
    rd_idents_free(ids);
    rd_ledger_free(d);
    rd_config_free(cfg);
}

/* Fleet mode (docs/fleet.md): the broker assigns a scaleset target's jobs; a webhook's or a
 * stale poll's job for it is neither demand nor unmatched, and its scope gets no starts. */
static void test_scaleset_target_is_not_planned(void **state)
{
    (void)state;
    char *text = rd_xasprintf("%s    discovery: scaleset\n", CFG);
    rd_config_t *cfg = load_text(text);
    free(text);
    rd_ledger_t *d = rd_ledger_new();
    rd_ledger_set_config(d, cfg);
    const char *labels[] = {"self-hosted", "linux", "x64"};
    add(d, cfg, 1, "octo/a", labels, 3, 1000);
    add(d, cfg, 3, "octo/b", labels, 3, 1002);
    rd_planner_state_t st = {.cfg = cfg, .ledger = d, .now_ms = 5000};
    char *out = plan_text(&st);
    assert_string_equal(out,
                        "{\"scope\":\"repos/octo/a\",\"pool\":\"small\",\"demand\":1,\"supply\":0,"
                        "\"start\":1,\"limit\":null}\n"
                        "{\"unmatched\":0}\n");
    free(out);
    rd_ledger_free(d);
    rd_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_lines),
        cmocka_unit_test(test_scaleset_target_is_not_planned),
        cmocka_unit_test(test_retired_pool_holds_capacity),
        cmocka_unit_test(test_runner_of_removed_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
