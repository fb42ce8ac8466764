/* test_pace.c: request budget and poll pacing over simulated time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/common.h"
#include "runnerd/pace.h"

#define T0 1790000000000LL /* an arbitrary epoch ms */
#define HOUR_MS 3600000LL

static uint64_t rng_state = 42;
static double rnd01(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / (double)(1ULL << 53);
}

static void test_budget_gate(void **state)
{
    (void)state;
    rd_pace_config_t cfg = {.budget_per_hour = 100, .max_rate_per_s = -1};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    int64_t now = T0;
    /* Polls may use 90 of 100. */
    for (int i = 0; i < 90; i++) {
        assert_true(rd_pace_request_at(p, now, false) <= now);
        rd_pace_charge(p, now);
        now += 10;
    }
    int64_t at = rd_pace_request_at(p, now, false);
    assert_int_equal(at, (T0 / 1000 + 3600) * 1000); /* when the first charge leaves the hour */
    /* Priority requests still have 10. */
    for (int i = 0; i < 10; i++) {
        assert_true(rd_pace_request_at(p, now, true) <= now);
        rd_pace_charge(p, now);
    }
    assert_true(rd_pace_request_at(p, now, true) > now);
    assert_int_equal(rd_pace_used(p, now), 100);
    /* A 304 gives its charge back. */
    rd_pace_refund(p, T0, now);
    assert_int_equal(rd_pace_used(p, now), 99);
    assert_true(rd_pace_request_at(p, now, true) <= now);
    /* An hour later everything has left the window. */
    assert_int_equal(rd_pace_used(p, now + HOUR_MS), 0);
    assert_true(rd_pace_request_at(p, now + HOUR_MS, false) <= now + HOUR_MS);
    /* Refunds of charges that already left the window do nothing. */
    rd_pace_refund(p, T0, now + HOUR_MS);
    assert_int_equal(rd_pace_used(p, now + HOUR_MS), 0);
    rd_pace_free(p);
}

/* After a quiet spell the rate bucket is full: `burst` requests go at once, then
 * the sustained rate applies. */
/* 100 registrations at once do not wait behind the polls' rate cap: they have a
 * bucket of their own (burst 100, then 10,000/h), and still count in the budget. */
static void test_priority_bucket(void **state)
{
    (void)state;
    rd_pace_config_t cfg = {.budget_per_hour = 100000};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    int64_t now = T0;
    /* Drain the polls' bucket (burst 60). */
    for (int i = 0; i < 60; i++) {
        assert_true(rd_pace_request_at(p, now, false) <= now);
        rd_pace_charge(p, now);
    }
    assert_true(rd_pace_request_at(p, now, false) > now);
    for (int i = 0; i < 100; i++) {
        assert_true(rd_pace_request_at(p, now, true) <= now);
        rd_pace_charge_priority(p, now);
    }
    int64_t at = rd_pace_request_at(p, now, true);
    assert_true(at > now);
    assert_true(at <= now + 400); /* one token every 360 ms at 10,000/h */
    assert_int_equal(rd_pace_used(p, now), 160);
    rd_pace_free(p);
}

static void test_burst_after_idle(void **state)
{
    (void)state;
    rd_pace_config_t cfg = {.budget_per_hour = 100000, .max_rate_per_s = 20, .burst = 50};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    int64_t now = T0;
    for (int i = 0; i < 50; i++) {
        assert_true(rd_pace_request_at(p, now, false) <= now);
        rd_pace_charge(p, now);
    }
    int64_t at = rd_pace_request_at(p, now, false);
    assert_int_equal(at, now + 50); /* 1/20 s */
    /* Sustained: 100 more requests take ~5 s. */
    for (int i = 0; i < 100; i++) {
        int64_t t = rd_pace_request_at(p, now, false);
        if (t > now)
            now = t;
        rd_pace_charge(p, now);
    }
    assert_in_range(now - T0, 4900, 5100);
    /* Idle 10 s: a full burst is available again. */
    now += 10000;
    for (int i = 0; i < 50; i++) {
        assert_true(rd_pace_request_at(p, now, false) <= now);
        rd_pace_charge(p, now);
    }
    assert_true(rd_pace_request_at(p, now, false) > now);
    rd_pace_free(p);
}

static void test_intervals(void **state)
{
    (void)state;
    rd_pace_config_t cfg = {
        .budget_per_hour = 1000000, .max_rate_per_s = -1, .poll_interval_ms = 15000};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    rd_pace_target_t t = {0};
    rd_pace_target_add(p, &t);
    assert_int_equal(rd_pace_target_due(p, &t), 0); /* never polled: due now */
    int64_t now = T0;
    rd_pace_target_polled(p, &t, now, now + 100, 2, 2, true);
    assert_int_equal(rd_pace_target_due(p, &t), now + 15000);
    /* Stays at the base interval within 10 min of the last job. */
    now += 5 * 60000;
    rd_pace_target_polled(p, &t, now, now + 100, 2, 0, false);
    assert_int_equal(rd_pace_target_due(p, &t), now + 15000);
    /* Then doubles after each empty poll: 30 s, 60 s, 120 s, 120 s (8 x 15 s). */
    now += 6 * 60000;
    int64_t expect[] = {30000, 60000, 120000, 120000};
    for (size_t i = 0; i < RD_ARRAY_SIZE(expect); i++) {
        rd_pace_target_polled(p, &t, now, now + 100, 2, 0, false);
        assert_int_equal(rd_pace_target_due(p, &t) - now, expect[i]);
        now += expect[i];
    }
    /* A job (webhook) brings it straight back to the base interval. */
    rd_pace_target_activate(p, &t, now);
    assert_int_equal(rd_pace_target_due(p, &t), t.last_poll_ms + 15000);
    rd_pace_target_remove(p, &t);
    rd_pace_free(p);

    /* The idle cap is at most 5 min even with a long poll interval x 8. */
    cfg.poll_interval_ms = 60000;
    p = rd_pace_new(&cfg, T0);
    rd_pace_target_t u = {0};
    rd_pace_target_add(p, &u);
    now = T0;
    for (int i = 0; i < 6; i++) {
        rd_pace_target_polled(p, &u, now, now, 2, 0, false);
        now = rd_pace_target_due(p, &u);
    }
    assert_int_equal(rd_pace_target_due(p, &u) - u.last_poll_ms, 300000);
    rd_pace_free(p);
}

typedef struct {
    rd_pace_target_t pt;
    bool active;
    unsigned polls;
} sim_target_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Largest count of times[] (sorted) inside any window of length w. */
static size_t max_in_window(const int64_t *times, size_t n, int64_t w)
{
    size_t best = 0, lo = 0;
    for (size_t hi = 0; hi < n; hi++) {
        while (times[hi] - times[lo] >= w)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

/*
 * 1000 repositories, 10 of them with queued jobs all along, budget 4000/h,
 * polls every 15 s. Each poll sends 2 requests (queued and in_progress runs),
 * plus 1 (jobs) for active targets; each is charged with probability
 * p_changed, else a refunded 304. Polls run one after the other, each request
 * when the pacer allows it.
 */
static void simulate(double p_changed, int64_t duration, unsigned *active_polls, unsigned *idle_min,
                     unsigned *idle_max)
{
    enum { N = 1000, NACTIVE = 10 };
    rd_pace_config_t cfg = {.budget_per_hour = 4000, .poll_interval_ms = 15000};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    sim_target_t *ts = rd_xcalloc(N, sizeof(*ts));
    for (size_t i = 0; i < N; i++) {
        ts[i].active = i < NACTIVE;
        rd_pace_target_add(p, &ts[i].pt);
    }
    size_t cap = 1 << 20, ncharged = 0, nsent = 0;
    int64_t *charged = rd_xmalloc(cap * sizeof(int64_t));
    int64_t *sent = rd_xmalloc(cap * sizeof(int64_t));
    int64_t now = T0, end = T0 + duration;
    while (now < end) {
        size_t pick = 0;
        int64_t best = INT64_MAX;
        for (size_t i = 0; i < N; i++) {
            int64_t d = rd_pace_target_due(p, &ts[i].pt);
            if (d < best) {
                best = d;
                pick = i;
            }
        }
        if (best > now)
            now = best;
        if (now >= end)
            break;
        sim_target_t *t = &ts[pick];
        unsigned nreq = t->active ? 3 : 2, nch = 0;
        int64_t started = now;
        for (unsigned r = 0; r < nreq; r++) {
            int64_t at = rd_pace_request_at(p, now, false);
            if (at > now)
                now = at;
            rd_pace_charge(p, now);
            assert_true(nsent < cap);
            sent[nsent++] = now;
            int64_t charged_at = now;
            now += 20; /* response time */
            if (rnd01() < p_changed) {
                charged[ncharged++] = charged_at;
                nch++;
            } else {
                rd_pace_refund(p, charged_at, now);
            }
        }
        rd_pace_target_polled(p, &t->pt, started, now, nreq, nch, t->active);
        t->polls++;
    }
    /* Charged requests in any sliding hour stay inside the budget. */
    qsort(charged, ncharged, sizeof(int64_t), cmp_i64);
    size_t worst = max_in_window(charged, ncharged, HOUR_MS);
    print_message("p_changed=%.2f sent=%zu charged=%zu worst-hour=%zu stretch=%.2f\n", p_changed,
                  nsent, ncharged, worst, rd_pace_stretch(p));
    assert_true(worst <= 4000);
    /* The rate cap (12/s, burst 60) holds for every request sent: never more
     * than 780 in a minute (GitHub's secondary limit is 900). */
    assert_true(max_in_window(sent, nsent, 1000) <= 12 + 60);
    assert_true(max_in_window(sent, nsent, 60000) <= 12 * 60 + 60);

    *active_polls = UINT32_MAX;
    *idle_min = UINT32_MAX;
    *idle_max = 0;
    for (size_t i = 0; i < N; i++) {
        if (ts[i].active) {
            if (ts[i].polls < *active_polls)
                *active_polls = ts[i].polls;
        } else {
            if (ts[i].polls < *idle_min)
                *idle_min = ts[i].polls;
            if (ts[i].polls > *idle_max)
                *idle_max = ts[i].polls;
        }
    }
    print_message("  active min polls=%u idle polls %u..%u\n", *active_polls, *idle_min, *idle_max);
    for (size_t i = 0; i < N; i++)
        rd_pace_target_remove(p, &ts[i].pt);
    free(charged);
    free(sent);
    free(ts);
    rd_pace_free(p);
}

static void test_hour_mostly_304(void **state)
{
    (void)state;
    unsigned act, imin, imax;
    simulate(0.05, HOUR_MS, &act, &imin, &imax);
    /* Active targets are polled far more often than idle ones. */
    assert_true(act > 2 * imax);
    assert_true(act >= 100); /* close to every 15 s (240/h) */
    /* Idle ones still get regular polls (every 2 min, stretched to ~4 min by the rate cap). */
    assert_true(imin >= 12);
}

static void test_hour_all_charged(void **state)
{
    (void)state;
    unsigned act, imin, imax;
    /* Worst case: no ETag ever helps. Two hours, to see the window slide. */
    simulate(1.0, 2 * HOUR_MS, &act, &imin, &imax);
    assert_true(act > imax);
    assert_true(imin >= 1); /* nobody starves */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_gate),      cmocka_unit_test(test_burst_after_idle),
        cmocka_unit_test(test_intervals),        cmocka_unit_test(test_hour_mostly_304),
        cmocka_unit_test(test_hour_all_charged), cmocka_unit_test(test_priority_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
