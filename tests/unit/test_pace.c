/* test_pace.c: request budget and poll pacing over simulated time. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/pace.h"

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

/* N targets polled once at `now` (2 requests each, none charged); the first
 * `active` of them saw queued jobs. */
static void poll_all(rd_pace_t *p, rd_pace_target_t *ts, size_t n, size_t active, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        if (!ts[i].registered)
            rd_pace_target_add(p, &ts[i]);
        rd_pace_target_polled(p, &ts[i], now, now + 100, 2, 0, i < active);
    }
}

static void test_intervals(void **state)
{
    (void)state;
    /* No pressure: active and idle targets alike are polled every poll_interval. */
    rd_pace_config_t cfg = {
        .budget_per_hour = 1000000, .max_rate_per_s = -1, .poll_interval_ms = 15000};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    rd_pace_target_t t = {0};
    rd_pace_target_add(p, &t);
    assert_int_equal(rd_pace_target_due(p, &t), 0); /* never polled: due now */
    int64_t now = T0;
    rd_pace_target_polled(p, &t, now, now + 100, 2, 2, true);
    assert_int_equal(rd_pace_target_due(p, &t), now + 15000);
    now += 11 * 60000; /* past the 10 min active window: idle */
    rd_pace_target_polled(p, &t, now, now + 100, 2, 0, false);
    assert_true(t.idle);
    assert_int_equal(rd_pace_target_due(p, &t), now + 15000);
    assert_true(rd_pace_idle_factor(p) == 1.0);
    rd_pace_target_remove(p, &t);
    rd_pace_free(p);

    /* 1 active + 10 idle targets, 2 requests per poll each, every 15 s: 22 requests
     * per 15 s. A rate cap whose 80% allows 6 per 15 s (0.5/s): the idle targets
     * slow down just enough, 20 / (6 - 2) = 5 times; the active one keeps 15 s. */
    rd_pace_target_t ts[11];
    memset(ts, 0, sizeof ts);
    cfg.max_rate_per_s = 0.5;
    p = rd_pace_new(&cfg, T0);
    poll_all(p, ts, 11, 1, T0);
    assert_false(ts[0].idle);
    assert_true(ts[1].idle);
    assert_true(fabs(rd_pace_idle_factor(p) - 5.0) < 1e-9);
    assert_true(fabs(rd_pace_stretch(p) - 1.0) < 1e-9);
    assert_true(llabs(rd_pace_target_due(p, &ts[0]) - (T0 + 15000)) <= 1);
    assert_true(llabs(rd_pace_target_due(p, &ts[5]) - (T0 + 75000)) <= 1);
    /* A job in an idle one (webhook): back to the active interval at once. The idle
     * ones would need 18 / (6 - 4) = 9 times, over their cap of 8, so every interval
     * stretches a little: (4 + 18 / 8) / 6. */
    rd_pace_target_activate(p, &ts[5], T0 + 1000);
    assert_true(fabs(rd_pace_idle_factor(p) - 8.0) < 1e-9);
    double st = (4.0 + 18.0 / 8.0) / 6.0;
    assert_true(fabs(rd_pace_stretch(p) - st) < 1e-9);
    assert_true(llabs(rd_pace_target_due(p, &ts[5]) - T0 - (int64_t)(15000 * st)) <= 1);
    assert_true(llabs(rd_pace_target_due(p, &ts[6]) - T0 - (int64_t)(120000 * st)) <= 1);
    for (size_t i = 0; i < 11; i++)
        rd_pace_target_remove(p, &ts[i]);
    rd_pace_free(p);

    /* Half that cap (3 per 15 s): idle targets at their cap (8 x 15 s) are still too
     * many, so every interval stretches by (2 + 20 / 8) / 3 = 1.5. */
    memset(ts, 0, sizeof ts);
    cfg.max_rate_per_s = 0.25;
    p = rd_pace_new(&cfg, T0);
    poll_all(p, ts, 11, 1, T0);
    assert_true(fabs(rd_pace_idle_factor(p) - 8.0) < 1e-9);
    assert_true(fabs(rd_pace_stretch(p) - 1.5) < 1e-9);
    assert_true(llabs(rd_pace_target_due(p, &ts[0]) - (T0 + 22500)) <= 1);
    assert_true(llabs(rd_pace_target_due(p, &ts[1]) - (T0 + 180000)) <= 1);
    for (size_t i = 0; i < 11; i++)
        rd_pace_target_remove(p, &ts[i]);
    rd_pace_free(p);

    /* The idle cap is at most 5 min even with a long poll interval x 8. */
    memset(ts, 0, sizeof ts);
    cfg.poll_interval_ms = 60000;
    cfg.max_rate_per_s = 0.001;
    p = rd_pace_new(&cfg, T0);
    poll_all(p, ts, 11, 0, T0);
    assert_true(fabs(rd_pace_idle_factor(p) - 5.0) < 1e-9);
    assert_true(
        llabs(rd_pace_target_due(p, &ts[3]) - T0 - (int64_t)(300000 * rd_pace_stretch(p))) <= 1);
    for (size_t i = 0; i < 11; i++)
        rd_pace_target_remove(p, &ts[i]);
    rd_pace_free(p);
}

/* The documented defaults (budget 4000/h, 12 requests/s) and 50 repositories, one
 * with jobs, mostly 304s: all of them fit, so an idle repository is polled every
 * poll_interval too (a job queued there is seen within 15 s without webhooks). */
static void test_small_fleet_full_rate(void **state)
{
    (void)state;
    rd_pace_config_t cfg = {.poll_interval_ms = 15000};
    rd_pace_t *p = rd_pace_new(&cfg, T0);
    rd_pace_target_t ts[50];
    memset(ts, 0, sizeof ts);
    poll_all(p, ts, 50, 1, T0);
    int64_t now = T0 + 11 * 60000;
    poll_all(p, ts, 50, 1, now); /* a second poll: the cost averages see the 304s */
    assert_true(ts[7].idle);
    assert_true(rd_pace_idle_factor(p) == 1.0);
    assert_true(rd_pace_stretch(p) == 1.0);
    assert_int_equal(rd_pace_target_due(p, &ts[7]), now + 15000);
    for (size_t i = 0; i < 50; i++)
        rd_pace_target_remove(p, &ts[i]);
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
        cmocka_unit_test(test_budget_gate),     cmocka_unit_test(test_burst_after_idle),
        cmocka_unit_test(test_intervals),       cmocka_unit_test(test_small_fleet_full_rate),
        cmocka_unit_test(test_hour_mostly_304), cmocka_unit_test(test_hour_all_charged),
        cmocka_unit_test(test_priority_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
