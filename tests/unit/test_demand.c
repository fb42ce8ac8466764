/* test_demand.c: the queued-job table: upsert/refresh, remove, id order,
 * reconcile after a poll, retarget after a reload, and a random model check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/backoff.h"
#include "runnerd/core/demand.h"

static const char *L[] = {"self-hosted", "linux", "x64"};

static void test_upsert_and_get(void **state)
{
    (void)state;
    rd_demand_t *d = rd_demand_new();
    assert_int_equal(rd_demand_count(d), 0);
    assert_null(rd_demand_get(d, 1));

    char repo[] = "octo-org/api";
    char l0[] = "self-hosted", l1[] = "gpu";
    const char *labels[] = {l0, l1};
    assert_true(rd_demand_upsert(d, 42, 7, repo, labels, 2, 1000, 5000, 3));
    /* everything was copied */
    repo[0] = 'X';
    l0[0] = 'X';
    l1[0] = 'X';
    rd_job_t *j = rd_demand_get(d, 42);
    assert_non_null(j);
    assert_int_equal(j->id, 42);
    assert_int_equal(j->run_id, 7);
    assert_string_equal(j->repo, "octo-org/api");
    assert_int_equal(j->nlabels, 2);
    assert_string_equal(j->labels[0], "self-hosted");
    assert_string_equal(j->labels[1], "gpu");
    assert_int_equal(j->queued_ms, 1000);
    assert_int_equal(j->seen_ms, 5000);
    assert_int_equal(j->target, 3);
    assert_false(j->unmatched_logged);
    j->unmatched_logged = true;

    /* refresh: not new, same address, fields updated, the log flag kept */
    assert_false(rd_demand_upsert(d, 42, 7, "octo-org/api", L, 3, 1000, 6000, 2));
    assert_ptr_equal(rd_demand_get(d, 42), j);
    assert_int_equal(j->nlabels, 3);
    assert_string_equal(j->labels[2], "x64");
    assert_int_equal(j->seen_ms, 6000);
    assert_int_equal(j->target, 2);
    assert_true(j->unmatched_logged);
    /* a source without created_at keeps it; an older report keeps seen_ms */
    assert_false(rd_demand_upsert(d, 42, 7, "octo-org/api", L, 3, 0, 5500, 2));
    assert_int_equal(j->queued_ms, 1000);
    assert_int_equal(j->seen_ms, 6000);
    assert_int_equal(rd_demand_count(d), 1);

    /* a job without labels is stored as such */
    assert_true(rd_demand_upsert(d, 43, 7, "octo-org/api", NULL, 0, 1000, 6000, -1));
    assert_int_equal(rd_demand_get(d, 43)->nlabels, 0);
    rd_demand_free(d);
}

static void test_remove(void **state)
{
    (void)state;
    rd_demand_t *d = rd_demand_new();
    for (int64_t id = 1; id <= 5; id++)
        rd_demand_upsert(d, id, 1, "o/r", L, 3, 0, 0, 0);
    assert_true(rd_demand_remove(d, 3));
    assert_false(rd_demand_remove(d, 3));
    assert_false(rd_demand_remove(d, 99));
    assert_null(rd_demand_get(d, 3));
    assert_non_null(rd_demand_get(d, 2));
    assert_non_null(rd_demand_get(d, 4));
    assert_int_equal(rd_demand_count(d), 4);
    assert_true(rd_demand_remove(d, 1));
    assert_true(rd_demand_remove(d, 5));
    assert_int_equal(rd_demand_count(d), 2);
    rd_demand_free(d);
    rd_demand_free(NULL);
}

static void test_iteration_in_id_order(void **state)
{
    (void)state;
    rd_demand_t *d = rd_demand_new();
    const int64_t ids[] = {500, 3, 9000000000LL, 42, 7, 1, 600};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        rd_demand_upsert(d, ids[i], 1, "o/r", L, 3, 0, 0, 0);
    const int64_t want[] = {1, 3, 7, 42, 500, 600, 9000000000LL};
    size_t it = 0, k = 0;
    rd_job_t *j;
    while ((j = rd_demand_next(d, &it)) != NULL) {
        assert_true(k < sizeof(want) / sizeof(want[0]));
        assert_int_equal(j->id, want[k]);
        k++;
    }
    assert_int_equal(k, 7);
    assert_null(rd_demand_next(d, &it));
    rd_demand_free(d);
}

static void test_reconcile(void **state)
{
    (void)state;
    rd_demand_t *d = rd_demand_new();
    /* repo a: 1, 2, 3 seen at 100; 4 delivered by webhook at 250 (during the poll) */
    rd_demand_upsert(d, 1, 1, "octo/a", L, 3, 0, 100, 0);
    rd_demand_upsert(d, 2, 1, "octo/a", L, 3, 0, 100, 0);
    rd_demand_upsert(d, 3, 1, "octo/a", L, 3, 0, 100, 0);
    rd_demand_upsert(d, 4, 1, "octo/a", L, 3, 0, 250, 0);
    /* repo b: not polled now */
    rd_demand_upsert(d, 5, 1, "octo/b", L, 3, 0, 100, 1);
    /* the poll started at 200 and saw only job 2 queued */
    const int64_t seen[] = {2};
    assert_int_equal(rd_demand_reconcile(d, "octo/a", seen, 1, 200, NULL, NULL), 2);
    assert_null(rd_demand_get(d, 1));
    assert_non_null(rd_demand_get(d, 2));
    assert_null(rd_demand_get(d, 3));
    assert_non_null(rd_demand_get(d, 4)); /* webhook during the poll: kept */
    assert_non_null(rd_demand_get(d, 5)); /* other repo: kept */
    /* job seen exactly at poll start: not "before", kept */
    rd_demand_upsert(d, 6, 1, "octo/a", L, 3, 0, 300, 0);
    assert_int_equal(rd_demand_reconcile(d, "octo/a", seen, 1, 300, NULL, NULL),
                     1); /* drops 4 only */
    assert_non_null(rd_demand_get(d, 6));
    assert_null(rd_demand_get(d, 4));
    /* repository names compare case-insensitively */
    assert_int_equal(rd_demand_reconcile(d, "OCTO/B", NULL, 0, 1000, NULL, NULL), 1);
    assert_null(rd_demand_get(d, 5));
    /* an empty poll drops everything older of that repo; unseen order of ids is fine */
    const int64_t seen2[] = {99, 6};
    assert_int_equal(rd_demand_reconcile(d, "octo/a", seen2, 2, 1000, NULL, NULL), 1); /* job 2 */
    assert_int_equal(rd_demand_count(d), 1);
    assert_non_null(rd_demand_get(d, 6));
    rd_demand_free(d);
}

static void test_retarget(void **state)
{
    (void)state;
    rd_demand_t *d = rd_demand_new();
    rd_demand_upsert(d, 1, 1, "o/a", L, 3, 0, 0, 0);
    rd_demand_upsert(d, 2, 1, "o/b", L, 3, 0, 0, 1);
    rd_demand_upsert(d, 3, 1, "o/c", L, 3, 0, 0, 2);
    rd_demand_upsert(d, 4, 1, "o/d", L, 3, 0, 0, -1);
    rd_demand_upsert(d, 5, 1, "o/e", L, 3, 0, 0, 7);
    /* target 1 removed; 2 becomes 1; 0 stays */
    const int map[] = {0, -1, 1};
    rd_demand_retarget(d, map, 3);
    assert_int_equal(rd_demand_count(d), 4);
    assert_int_equal(rd_demand_get(d, 1)->target, 0);
    assert_null(rd_demand_get(d, 2));
    assert_int_equal(rd_demand_get(d, 3)->target, 1);
    assert_int_equal(rd_demand_get(d, 4)->target, -1);
    assert_int_equal(rd_demand_get(d, 5)->target, -1);
    /* still sorted */
    size_t it = 0;
    int64_t last = 0;
    rd_job_t *j;
    while ((j = rd_demand_next(d, &it)) != NULL) {
        assert_true(j->id > last);
        last = j->id;
    }
    rd_demand_free(d);
}

/* Random operations against a plain presence array. */
static void test_random_model(void **state)
{
    (void)state;
    enum { N = 300 };
    bool present[N] = {false};
    rd_demand_t *d = rd_demand_new();
    uint64_t seed = 99;
    for (int op = 0; op < 20000; op++) {
        int64_t id = (int64_t)(rd_rand_next(&seed) % N);
        if (rd_rand_next(&seed) % 3) {
            bool fresh = rd_demand_upsert(d, id, id, "o/r", L, 1 + id % 3, id, op, 0);
            assert_int_equal(fresh, !present[id]);
            present[id] = true;
        } else {
            assert_int_equal(rd_demand_remove(d, id), present[id]);
            present[id] = false;
        }
    }
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        n += present[i];
        rd_job_t *j = rd_demand_get(d, i);
        assert_int_equal(j != NULL, present[i]);
        if (j) {
            assert_int_equal(j->nlabels, 1 + i % 3);
            assert_string_equal(j->repo, "o/r");
        }
    }
    assert_int_equal(rd_demand_count(d), n);
    size_t it = 0;
    int64_t last = -1;
    rd_job_t *j;
    size_t k = 0;
    while ((j = rd_demand_next(d, &it)) != NULL) {
        assert_true(j->id > last);
        last = j->id;
        k++;
    }
    assert_int_equal(k, n);
    rd_demand_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_and_get),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_iteration_in_id_order),
        cmocka_unit_test(test_reconcile),
        cmocka_unit_test(test_retarget),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
