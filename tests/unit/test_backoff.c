/* test_backoff.c: growth, cap, jitter bounds, hold and reset, with fixed randomness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runnerd/core/backoff.h"

/* rnd = 0 picks the low end d/2; rnd = UINT64_MAX % (span+1) may be anything,
 * so the high end is reached with rnd = span (d - d/2). */
static void test_growth_low_end(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 500);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 1000);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 2000);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 4000);
    assert_int_equal(b.failures, 4);
}

static void test_growth_high_end(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    /* d=1000: span 500 -> rnd 500 gives 1000 */
    assert_int_equal(rd_backoff_fail(&b, 0, 500), 1000);
    /* d=2000: span 1000 */
    assert_int_equal(rd_backoff_fail(&b, 0, 1000), 2000);
    /* d=4000: span 2000; rnd 2001 wraps to 0 -> 2000 */
    assert_int_equal(rd_backoff_fail(&b, 0, 2001), 2000);
}

static void test_cap(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    uint64_t last = 0;
    for (int i = 0; i < 100; i++)
        last = rd_backoff_fail(&b, 0, UINT64_MAX);
    assert_true(last <= 300000);
    assert_true(last >= 150000);
    /* exactly at the cap with the largest in-range rnd */
    assert_int_equal(rd_backoff_fail(&b, 0, 150000), 300000);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 150000);
    /* many failures never overflow */
    b.failures = 4000000000u;
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 150000);
}

static void test_jitter_bounds_random(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (int round = 0; round < 200; round++) {
        rd_backoff_t b;
        rd_backoff_init(&b, 1000, 300000);
        for (unsigned f = 1; f <= 20; f++) {
            uint64_t d = 1000;
            for (unsigned i = 1; i < f && d < 300000; i++)
                d *= 2;
            if (d > 300000)
                d = 300000;
            uint64_t got = rd_backoff_fail(&b, 1000, rd_rand_next(&seed));
            assert_in_range(got, d / 2, d);
        }
    }
}

static void test_until_and_remaining(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    assert_int_equal(rd_backoff_remaining(&b, 5000), 0);
    uint64_t d = rd_backoff_fail(&b, 10000, 0);
    assert_int_equal(d, 500);
    assert_int_equal(b.until_ms, 10500);
    assert_int_equal(rd_backoff_remaining(&b, 10000), 500);
    assert_int_equal(rd_backoff_remaining(&b, 10400), 100);
    assert_int_equal(rd_backoff_remaining(&b, 10500), 0);
    assert_int_equal(rd_backoff_remaining(&b, 20000), 0);
}

static void test_hold(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    rd_backoff_hold(&b, 60000);
    assert_int_equal(rd_backoff_remaining(&b, 0), 60000);
    assert_int_equal(b.failures, 0);
    /* a shorter hold does not shorten it */
    rd_backoff_hold(&b, 30000);
    assert_int_equal(b.until_ms, 60000);
    /* a failure whose delay ends earlier does not shorten it either */
    rd_backoff_fail(&b, 1000, 0);
    assert_int_equal(b.until_ms, 60000);
    /* a longer hold extends */
    rd_backoff_hold(&b, 90000);
    assert_int_equal(rd_backoff_remaining(&b, 30000), 60000);
}

static void test_success_resets(void **state)
{
    (void)state;
    rd_backoff_t b;
    rd_backoff_init(&b, 1000, 300000);
    for (int i = 0; i < 6; i++)
        rd_backoff_fail(&b, 0, 0);
    assert_int_equal(b.failures, 6);
    rd_backoff_success(&b);
    assert_int_equal(b.failures, 0);
    assert_int_equal(rd_backoff_remaining(&b, 0), 0);
    assert_int_equal(rd_backoff_fail(&b, 0, 0), 500);
}

static void test_rand_deterministic(void **state)
{
    (void)state;
    uint64_t a = 7, b = 7;
    for (int i = 0; i < 10; i++)
        assert_int_equal(rd_rand_next(&a), rd_rand_next(&b));
    uint64_t s = 0;
    /* splitmix64 reference value for seed 0 */
    assert_int_equal(rd_rand_next(&s), UINT64_C(0xE220A8397B1DCDAF));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_low_end),
        cmocka_unit_test(test_growth_high_end),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_jitter_bounds_random),
        cmocka_unit_test(test_until_and_remaining),
        cmocka_unit_test(test_hold),
        cmocka_unit_test(test_success_resets),
        cmocka_unit_test(test_rand_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
