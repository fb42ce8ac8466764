/* test_sched.c: the scheduler: caps, fairness, min_idle, pool choice,
 * coverage across rounds, stops, and a seeded property test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/backoff.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/sched.h"

#define GiB (UINT64_C(1) << 30)
#define MAXP 8
#define MAXS 8
#define MAXJ 256
#define MAXR 256

static const char *L_X64[] = {"self-hosted", "linux", "x64"};
static const char *L_X64_DOCKER[] = {"self-hosted", "linux", "x64", "docker"};
static const char *L_ARM64[] = {"self-hosted", "linux", "arm64"};
static const char *L_GPU[] = {"self-hosted", "linux", "x64", "gpu"};
static const char *J_SH[] = {"self-hosted"};
static const char *J_X64[] = {"self-hosted", "x64"};
static const char *J_LINUX[] = {"self-hosted", "linux"};
static const char *J_ARM64[] = {"self-hosted", "arm64"};
static const char *J_GPU[] = {"self-hosted", "gpu"};
static const char *J_WIN[] = {"self-hosted", "windows"};

typedef struct {
    rd_pool_t pools[MAXP];
    rd_sched_pool_t sp[MAXP];
    size_t np;
    rd_host_config_t host;
    rd_sched_scope_t scopes[MAXS];
    size_t scope_pools[MAXS][MAXP];
    char scope_names[MAXS][32];
    size_t ns;
    rd_sched_job_t jobs[MAXJ];
    size_t nj;
    rd_sched_runner_t runners[MAXR];
    size_t nr;
    int64_t now;
    bool stopping;
    rd_sched_plan_t plan;
} world_t;

static world_t *world_new(void)
{
    world_t *w = calloc(1, sizeof(*w));
    w->host.cpus = 64;
    w->host.memory = 256 * GiB;
    w->host.arch = RD_ARCH_X64;
    w->host.gpus = 0;
    w->host.max_runners = 100;
    w->now = 1000000000;
    return w;
}

static void world_free(world_t *w)
{
    rd_sched_plan_free(&w->plan);
    free(w);
}

#define LABELS(a) (a), RD_ARRAY_SIZE(a)

static size_t add_pool(world_t *w, const char *name, const char **labels, size_t nlabels,
                       double cpus, uint64_t memory, unsigned max)
{
    size_t i = w->np++;
    rd_pool_t *p = &w->pools[i];
    p->name = (char *)name;
    p->labels = (char **)labels;
    p->nlabels = nlabels;
    p->cpus = cpus;
    p->memory = memory;
    p->max_runners = max;
    p->idle_timeout_ms = 600000;
    p->arch = RD_ARCH_X64;
    w->sp[i].pool = p;
    return i;
}

/* A scope allowed every pool that exists when it is added (-1 terminated list otherwise). */
static size_t add_scope(world_t *w, const char *name, const int *pools)
{
    size_t s = w->ns++;
    snprintf(w->scope_names[s], sizeof(w->scope_names[s]), "%s", name);
    w->scopes[s].name = w->scope_names[s];
    size_t n = 0;
    if (pools == NULL) {
        for (size_t p = 0; p < w->np; p++)
            w->scope_pools[s][n++] = p;
    } else {
        for (; pools[n] >= 0; n++)
            w->scope_pools[s][n] = (size_t)pools[n];
    }
    w->scopes[s].pools = w->scope_pools[s];
    w->scopes[s].npools = n;
    return s;
}

static void add_job(world_t *w, int64_t id, size_t scope, const char **labels, size_t n,
                    int64_t queued_ms)
{
    rd_sched_job_t *j = &w->jobs[w->nj++];
    j->id = id;
    j->scope = scope;
    j->labels = labels;
    j->nlabels = n;
    j->queued_ms = queued_ms;
}

static void remove_job(world_t *w, int64_t id)
{
    for (size_t i = 0; i < w->nj; i++) {
        if (w->jobs[i].id == id) {
            memmove(&w->jobs[i], &w->jobs[i + 1], (w->nj - i - 1) * sizeof(w->jobs[0]));
            w->nj--;
            return;
        }
    }
    fail_msg("no job %lld", (long long)id);
}

static rd_sched_runner_t *add_runner(world_t *w, uint64_t key, size_t scope, size_t pool,
                                     rd_rstate_t state, int64_t job_id)
{
    rd_sched_runner_t *r = &w->runners[w->nr++];
    memset(r, 0, sizeof(*r));
    r->key = key;
    r->scope = scope;
    r->pool = pool;
    r->state = state;
    r->job_id = job_id;
    r->idle_since_ms = w->now;
    r->cpus = w->pools[pool].cpus;
    r->memory = w->pools[pool].memory;
    r->gpus = w->pools[pool].gpus;
    return r;
}

static rd_sched_runner_t *runner_by_key(world_t *w, uint64_t key)
{
    for (size_t i = 0; i < w->nr; i++)
        if (w->runners[i].key == key)
            return &w->runners[i];
    fail_msg("no runner %llu", (unsigned long long)key);
    return NULL;
}

static const rd_sched_plan_t *plan(world_t *w)
{
    rd_sched_plan_free(&w->plan);
    rd_sched_input_t in = {
        .host = &w->host,
        .pools = w->sp,
        .npools = w->np,
        .scopes = w->scopes,
        .nscopes = w->ns,
        .jobs = w->jobs,
        .njobs = w->nj,
        .runners = w->runners,
        .nrunners = w->nr,
        .now_ms = w->now,
        .stopping = w->stopping,
    };
    rd_sched_plan(&in, &w->plan);
    return &w->plan;
}

static const rd_sched_decision_t *decision(const rd_sched_plan_t *pl, size_t scope, size_t pool)
{
    for (size_t i = 0; i < pl->ndecisions; i++)
        if (pl->decisions[i].scope == scope && pl->decisions[i].pool == pool)
            return &pl->decisions[i];
    return NULL;
}

static unsigned total_starts(const rd_sched_plan_t *pl)
{
    unsigned n = 0;
    for (size_t i = 0; i < pl->ndecisions; i++)
        n += pl->decisions[i].start;
    return n;
}

/* Feed every start back as a STARTING runner for its job; returns how many. */
static unsigned apply_starts(world_t *w, uint64_t *next_key)
{
    unsigned n = 0;
    for (size_t i = 0; i < w->plan.ndecisions; i++) {
        const rd_sched_decision_t *d = &w->plan.decisions[i];
        for (unsigned k = 0; k < d->start; k++) {
            add_runner(w, (*next_key)++, d->scope, d->pool, RD_RSTATE_STARTING, d->job_ids[k]);
            n++;
        }
    }
    return n;
}

#define assert_decision(pl, s, p, dem, sup, st, lim)                                               \
    do {                                                                                           \
        const rd_sched_decision_t *d_ = decision((pl), (s), (p));                                  \
        assert_non_null(d_);                                                                       \
        assert_int_equal(d_->demand, (dem));                                                       \
        assert_int_equal(d_->supply, (sup));                                                       \
        assert_int_equal(d_->start, (st));                                                         \
        if (d_->limit != (lim))                                                                    \
            print_error("limit %s, want %s\n", rd_limit_name(d_->limit) ?: "none",                 \
                        rd_limit_name(lim) ?: "none");                                             \
        assert_int_equal(d_->limit, (lim));                                                        \
    } while (0)

static void test_limit_names(void **state)
{
    (void)state;
    assert_null(rd_limit_name(RD_LIMIT_NONE));
    assert_string_equal(rd_limit_name(RD_LIMIT_POOL_MAX), "pool_max");
    assert_string_equal(rd_limit_name(RD_LIMIT_HOST_MAX), "host_max");
    assert_string_equal(rd_limit_name(RD_LIMIT_HOST_CPUS), "host_cpus");
    assert_string_equal(rd_limit_name(RD_LIMIT_HOST_MEMORY), "host_memory");
    assert_string_equal(rd_limit_name(RD_LIMIT_HOST_GPUS), "host_gpus");
    assert_string_equal(rd_limit_name(RD_LIMIT_DRAINING), "draining");
    assert_string_equal(rd_limit_name(RD_LIMIT_BACKOFF), "backoff");
}

static void test_basic_starts_oldest_first(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 2, 4 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    add_job(w, 30, s, LABELS(J_X64), 300);
    add_job(w, 10, s, LABELS(J_X64), 100);
    add_job(w, 20, s, LABELS(J_LINUX), 200);
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->ndecisions, 1);
    assert_decision(pl, s, p, 3, 0, 3, RD_LIMIT_NONE);
    const rd_sched_decision_t *d = decision(pl, s, p);
    assert_int_equal(d->job_ids[0], 10);
    assert_int_equal(d->job_ids[1], 20);
    assert_int_equal(d->job_ids[2], 30);
    assert_int_equal(pl->unmatched, 0);
    assert_int_equal(pl->nstops, 0);
    world_free(w);
}

static void test_nothing_to_do(void **state)
{
    (void)state;
    world_t *w = world_new();
    add_pool(w, "x64", LABELS(L_X64), 2, 4 * GiB, 10);
    add_scope(w, "repos/o/r", NULL);
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->ndecisions, 0);
    assert_int_equal(pl->nstops, 0);
    assert_int_equal(pl->unmatched, 0);
    world_free(w);
}

static void five_jobs(world_t *w, size_t s)
{
    for (int i = 1; i <= 5; i++)
        add_job(w, i, s, LABELS(J_X64), i * 10);
}

static void test_cap_pool_max(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 3);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    /* a busy runner (on another job) and a stopping one count against the pool */
    add_runner(w, 1, s, p, RD_RSTATE_BUSY, 999);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 2, RD_LIMIT_POOL_MAX);
    add_runner(w, 2, s, p, RD_RSTATE_STOPPING, 0);
    pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 1, RD_LIMIT_POOL_MAX);
    world_free(w);
}

static void test_cap_host_max(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.max_runners = 4;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t q = add_pool(w, "arm", LABELS(L_ARM64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    /* runners of another pool use the host's slots too */
    add_runner(w, 1, s, q, RD_RSTATE_BUSY, 999);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 3, RD_LIMIT_HOST_MAX);
    world_free(w);
}

static void test_cap_host_cpus(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.cpus = 7;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 2, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 3, RD_LIMIT_HOST_CPUS);
    /* a busy runner holding its own (larger) cpus */
    rd_sched_runner_t *r = add_runner(w, 1, s, p, RD_RSTATE_BUSY, 999);
    r->cpus = 4;
    pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 1, RD_LIMIT_HOST_CPUS);
    world_free(w);
}

static void test_cap_fractional_cpus(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.cpus = 0.3;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 0.1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    const rd_sched_plan_t *pl = plan(w);
    /* 0.1 + 0.1 + 0.1 fits in 0.3 despite rounding */
    assert_decision(pl, s, p, 5, 0, 3, RD_LIMIT_HOST_CPUS);
    world_free(w);
}

static void test_cap_host_memory(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.memory = 10 * GiB;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 4 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 2, RD_LIMIT_HOST_MEMORY);
    /* more memory held than the host has (pool shrunk by reload): no underflow */
    rd_sched_runner_t *r = add_runner(w, 1, s, p, RD_RSTATE_BUSY, 999);
    r->memory = 12 * GiB;
    pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 0, RD_LIMIT_HOST_MEMORY);
    world_free(w);
}

static void test_cap_host_gpus(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.gpus = 3;
    size_t g = add_pool(w, "gpu", LABELS(L_GPU), 1, 1 * GiB, 10);
    w->pools[g].gpus = 1;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    for (int i = 1; i <= 5; i++)
        add_job(w, i, s, LABELS(J_GPU), i);
    for (int i = 6; i <= 8; i++)
        add_job(w, i, s, LABELS(J_X64), i);
    add_runner(w, 1, s, g, RD_RSTATE_BUSY, 999);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, g, 5, 0, 2, RD_LIMIT_HOST_GPUS);
    /* pools without gpus are not bound by the gpu cap */
    assert_decision(pl, s, p, 3, 0, 3, RD_LIMIT_NONE);
    /* a host without gpus never starts a gpu pool */
    w->host.gpus = 0;
    w->nr = 0;
    pl = plan(w);
    assert_decision(pl, s, g, 5, 0, 0, RD_LIMIT_HOST_GPUS);
    world_free(w);
}

static void test_cap_smaller_pool_still_fits(void **state)
{
    (void)state;
    /* A big pool hitting host_cpus does not stop a small pool from using what is left. */
    world_t *w = world_new();
    w->host.cpus = 5;
    size_t big = add_pool(w, "big", LABELS(L_GPU), 4, 1 * GiB, 10);
    size_t small = add_pool(w, "small", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    add_job(w, 1, s, LABELS(J_GPU), 1);
    add_job(w, 2, s, LABELS(J_GPU), 2);
    add_job(w, 3, s, LABELS(J_X64), 3);
    add_job(w, 4, s, LABELS(J_X64), 4);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, big, 2, 0, 1, RD_LIMIT_HOST_CPUS);
    assert_decision(pl, s, small, 2, 0, 1, RD_LIMIT_HOST_CPUS);
    world_free(w);
}

static void test_draining_backoff_stopping(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    five_jobs(w, s);
    w->sp[p].backoff = true;
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 0, RD_LIMIT_BACKOFF);
    w->sp[p].backoff = false;
    w->sp[p].draining = true;
    pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 0, RD_LIMIT_DRAINING);
    w->sp[p].draining = false;
    w->stopping = true;
    pl = plan(w);
    assert_decision(pl, s, p, 5, 0, 0, RD_LIMIT_DRAINING);
    world_free(w);
}

static void test_fairness_two_scopes(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.max_runners = 2;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t a = add_scope(w, "repos/o/a", NULL);
    size_t b = add_scope(w, "repos/o/b", NULL);
    for (int i = 1; i <= 10; i++)
        add_job(w, i, a, LABELS(J_X64), i);
    add_job(w, 100, b, LABELS(J_X64), 1000);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, a, p, 10, 0, 1, RD_LIMIT_HOST_MAX);
    assert_decision(pl, b, p, 1, 0, 1, RD_LIMIT_NONE);
    assert_int_equal(decision(pl, a, p)->job_ids[0], 1);
    assert_int_equal(decision(pl, b, p)->job_ids[0], 100);
    world_free(w);
}

static void test_fairness_order_by_oldest_job(void **state)
{
    (void)state;
    /* Capacity for 3 over three scopes with 2 jobs each: the scope with the
     * oldest job goes first and gets the odd start; order is not scope index. */
    world_t *w = world_new();
    w->host.max_runners = 4;
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t a = add_scope(w, "repos/o/a", NULL);
    size_t b = add_scope(w, "repos/o/b", NULL);
    size_t c = add_scope(w, "repos/o/c", NULL);
    add_job(w, 1, a, LABELS(J_X64), 300);
    add_job(w, 2, a, LABELS(J_X64), 301);
    add_job(w, 3, b, LABELS(J_X64), 200);
    add_job(w, 4, b, LABELS(J_X64), 201);
    add_job(w, 5, c, LABELS(J_X64), 100);
    add_job(w, 6, c, LABELS(J_X64), 101);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, c, p, 2, 0, 2, RD_LIMIT_NONE);
    assert_decision(pl, b, p, 2, 0, 1, RD_LIMIT_HOST_MAX);
    assert_decision(pl, a, p, 2, 0, 1, RD_LIMIT_HOST_MAX);
    world_free(w);
}

static void test_fairness_across_pools_within_scope(void **state)
{
    (void)state;
    /* One scope's jobs in two pools: its turns go to its oldest jobs,
     * whichever pool they are in. */
    world_t *w = world_new();
    w->host.max_runners = 3;
    size_t x = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t arm = add_pool(w, "arm", LABELS(L_ARM64), 1, 1 * GiB, 10);
    size_t a = add_scope(w, "repos/o/a", NULL);
    add_job(w, 1, a, LABELS(J_X64), 1);
    add_job(w, 2, a, LABELS(J_ARM64), 2);
    add_job(w, 3, a, LABELS(J_X64), 3);
    add_job(w, 4, a, LABELS(J_ARM64), 4);
    add_job(w, 5, a, LABELS(J_ARM64), 5);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, a, x, 2, 0, 2, RD_LIMIT_NONE);
    assert_decision(pl, a, arm, 3, 0, 1, RD_LIMIT_HOST_MAX);
    world_free(w);
}

static void test_min_idle(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    w->pools[p].min_idle = 2;
    size_t s = add_scope(w, "repos/o/r", NULL);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 0, 0, 2, RD_LIMIT_NONE);
    assert_int_equal(decision(pl, s, p)->job_ids[0], 0);
    assert_int_equal(decision(pl, s, p)->job_ids[1], 0);
    /* one warm runner exists: one more */
    add_runner(w, 1, s, p, RD_RSTATE_IDLE, 0);
    pl = plan(w);
    assert_decision(pl, s, p, 0, 1, 1, RD_LIMIT_NONE);
    add_runner(w, 2, s, p, RD_RSTATE_STARTING, 0);
    pl = plan(w);
    assert_decision(pl, s, p, 0, 2, 0, RD_LIMIT_NONE);
    /* a job arrives: an idle runner takes it, so one warm runner is missing */
    add_job(w, 7, s, LABELS(J_X64), 1);
    pl = plan(w);
    assert_decision(pl, s, p, 1, 2, 1, RD_LIMIT_NONE);
    assert_int_equal(decision(pl, s, p)->job_ids[0], 0);
    /* no runners, one job: 1 for the job then 2 warm */
    w->nr = 0;
    pl = plan(w);
    assert_decision(pl, s, p, 1, 0, 3, RD_LIMIT_NONE);
    const rd_sched_decision_t *d = decision(pl, s, p);
    assert_int_equal(d->job_ids[0], 7);
    assert_int_equal(d->job_ids[1], 0);
    assert_int_equal(d->job_ids[2], 0);
    /* min_idle is capped like any start */
    w->pools[p].max_runners = 2;
    pl = plan(w);
    assert_decision(pl, s, p, 1, 0, 2, RD_LIMIT_POOL_MAX);
    /* draining pools keep nothing warm */
    w->pools[p].max_runners = 10;
    w->sp[p].draining = true;
    w->nj = 0;
    pl = plan(w);
    assert_null(decision(pl, s, p));
    world_free(w);
}

static void test_min_idle_across_scopes(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    w->pools[p].min_idle = 1;
    int none[] = {-1};
    size_t s0 = add_scope(w, "repos/o/nopool", none);
    size_t s1 = add_scope(w, "repos/o/a", NULL);
    size_t s2 = add_scope(w, "repos/o/b", NULL);
    /* the first scope that allows the pool gets the warm runner */
    const rd_sched_plan_t *pl = plan(w);
    assert_null(decision(pl, s0, p));
    assert_decision(pl, s1, p, 0, 0, 1, RD_LIMIT_NONE);
    assert_null(decision(pl, s2, p));
    /* an idle runner in any scope of the pool satisfies min_idle */
    add_runner(w, 1, s2, p, RD_RSTATE_IDLE, 0);
    pl = plan(w);
    assert_int_equal(total_starts(pl), 0);
    world_free(w);
}

static void test_pick_pool_rules(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t wide = add_pool(w, "wide", LABELS(L_X64_DOCKER), 1, 1 * GiB, 10);
    size_t narrow = add_pool(w, "narrow", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t narrow2 = add_pool(w, "narrow2", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t emu = add_pool(w, "emu", LABELS(L_ARM64), 1, 1 * GiB, 10);
    w->pools[emu].emulated = true;
    w->pools[emu].arch = RD_ARCH_ARM64;
    size_t all[] = {wide, narrow, narrow2, emu};
    const char *j[] = {"self-hosted", "linux"};
    /* fewest labels, then first in the file */
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, all, 4, j, 2), (int)narrow);
    /* the allowed list is honoured and its order does not matter */
    size_t rev[] = {narrow2, wide, narrow};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, rev, 3, j, 2), (int)narrow);
    size_t only_wide[] = {wide};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, only_wide, 1, j, 2), (int)wide);
    /* a label only the wide pool has */
    const char *jd[] = {"docker"};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, all, 4, jd, 1), (int)wide);
    size_t not_wide[] = {narrow, narrow2};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, not_wide, 2, jd, 1), -1);
    /* native before emulated, even with more labels */
    size_t native_arm = add_pool(w, "native-arm-wide", LABELS(L_X64_DOCKER), 1, 1 * GiB, 10);
    static const char *L_ARM_WIDE[] = {"self-hosted", "linux", "arm64", "big", "extra"};
    w->pools[native_arm].labels = (char **)L_ARM_WIDE;
    w->pools[native_arm].nlabels = 5;
    size_t arms[] = {emu, native_arm};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, arms, 2, J_ARM64, 2), (int)native_arm);
    /* aliases work through pick */
    const char *ja[] = {"self-hosted", "aarch64"};
    size_t emu_only[] = {emu};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, emu_only, 1, ja, 2), (int)emu);
    /* draining loses to any other pool that serves the job */
    w->sp[narrow].draining = true;
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, all, 4, j, 2), (int)narrow2);
    w->sp[narrow2].draining = true;
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, all, 4, j, 2), (int)wide);
    /* ... but is chosen when it is the only one */
    size_t dr[] = {narrow};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, dr, 1, j, 2), (int)narrow);
    /* out-of-range indexes are ignored; empty labels match nothing */
    size_t bad[] = {99, narrow};
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, bad, 2, j, 2), (int)narrow);
    assert_int_equal(rd_sched_pick_pool(w->sp, w->np, all, 4, NULL, 0), -1);
    world_free(w);
}

static void test_each_job_counted_once(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t wide = add_pool(w, "wide", LABELS(L_X64_DOCKER), 1, 1 * GiB, 10);
    size_t narrow = add_pool(w, "narrow", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    add_job(w, 1, s, LABELS(J_SH), 1);
    add_job(w, 2, s, LABELS(J_X64), 2);
    static const char *J_DOCKER[] = {"self-hosted", "docker"};
    add_job(w, 3, s, LABELS(J_DOCKER), 3);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, narrow, 2, 0, 2, RD_LIMIT_NONE);
    assert_decision(pl, s, wide, 1, 0, 1, RD_LIMIT_NONE);
    assert_int_equal(total_starts(pl), 3);
    world_free(w);
}

static void test_only_draining_pool_serves(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "old", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    w->sp[p].draining = true;
    add_job(w, 1, s, LABELS(J_X64), 1);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 1, 0, 0, RD_LIMIT_DRAINING);
    assert_int_equal(pl->unmatched, 0);
    world_free(w);
}

static void test_unmatched(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t x = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t arm = add_pool(w, "arm", LABELS(L_ARM64), 1, 1 * GiB, 10);
    int only_x[] = {(int)x, -1};
    size_t a = add_scope(w, "repos/o/a", only_x);
    size_t b = add_scope(w, "repos/o/b", NULL);
    add_job(w, 9, a, LABELS(J_WIN), 1);   /* nobody */
    add_job(w, 3, a, LABELS(J_ARM64), 2); /* arm pool exists but is not a's */
    add_job(w, 5, b, LABELS(J_ARM64), 3); /* fine */
    add_job(w, 4, a, NULL, 0, 4);         /* no labels */
    add_job(w, 7, 42, LABELS(J_X64), 5);  /* scope out of range */
    add_job(w, 8, a, LABELS(J_X64), 6);   /* fine */
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->unmatched, 4);
    assert_int_equal(pl->unmatched_ids[0], 3);
    assert_int_equal(pl->unmatched_ids[1], 4);
    assert_int_equal(pl->unmatched_ids[2], 7);
    assert_int_equal(pl->unmatched_ids[3], 9);
    assert_decision(pl, a, x, 1, 0, 1, RD_LIMIT_NONE);
    assert_decision(pl, b, arm, 1, 0, 1, RD_LIMIT_NONE);
    assert_null(decision(pl, a, arm));
    assert_int_equal(total_starts(pl), 2);
    world_free(w);
}

static void test_supply_covers(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    size_t other = add_scope(w, "repos/o/other", NULL);
    five_jobs(w, s);
    add_runner(w, 1, s, p, RD_RSTATE_IDLE, 0);         /* free: covers job 1 */
    add_runner(w, 2, s, p, RD_RSTATE_STARTING, 4);     /* tied to job 4 */
    add_runner(w, 3, s, p, RD_RSTATE_BUSY, 5);         /* runs job 5, still shows queued */
    add_runner(w, 4, s, p, RD_RSTATE_BUSY, 12345);     /* runs another job: no supply */
    add_runner(w, 5, s, p, RD_RSTATE_STOPPING, 0);     /* no supply */
    add_runner(w, 6, other, p, RD_RSTATE_IDLE, 0);     /* other scope: no supply here */
    add_runner(w, 7, other, p, RD_RSTATE_STARTING, 2); /* other scope's runner cannot cover 2 */
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 5, 3, 2, RD_LIMIT_NONE);
    const rd_sched_decision_t *d = decision(pl, s, p);
    assert_int_equal(d->job_ids[0], 2);
    assert_int_equal(d->job_ids[1], 3);
    assert_decision(pl, other, p, 0, 2, 0, RD_LIMIT_NONE);
    world_free(w);
}

static void test_busy_beats_starting_for_same_job(void **state)
{
    (void)state;
    /* Runner A was started for job 1; runner B (started for job 2) got job 1
     * and the list still shows both queued. A is now free and covers job 2. */
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    add_job(w, 1, s, LABELS(J_X64), 1);
    add_job(w, 2, s, LABELS(J_X64), 2);
    add_runner(w, 1, s, p, RD_RSTATE_STARTING, 1);
    add_runner(w, 2, s, p, RD_RSTATE_BUSY, 1);
    const rd_sched_plan_t *pl = plan(w);
    assert_decision(pl, s, p, 2, 2, 0, RD_LIMIT_NONE);
    world_free(w);
}

static void test_rounds_never_double_start(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.max_runners = 4; /* fewer than the jobs: starts trickle in over rounds */
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t a = add_scope(w, "repos/o/a", NULL);
    size_t b = add_scope(w, "repos/o/b", NULL);
    for (int i = 1; i <= 4; i++)
        add_job(w, i, a, LABELS(J_X64), i);
    for (int i = 5; i <= 6; i++)
        add_job(w, i, b, LABELS(J_X64), i);
    uint64_t key = 1;
    int64_t started_for[16] = {0};
    size_t nstarted = 0;
    for (int round = 0; round < 6; round++) {
        plan(w);
        if (round == 1) {
            /* jobs 3 and 4 wait for capacity; 1 and 2 are covered */
            assert_decision(&w->plan, a, p, 4, 2, 0, RD_LIMIT_HOST_MAX);
            assert_decision(&w->plan, b, p, 2, 2, 0, RD_LIMIT_NONE);
        }
        for (size_t i = 0; i < w->plan.ndecisions; i++) {
            const rd_sched_decision_t *d = &w->plan.decisions[i];
            for (unsigned k = 0; k < d->start; k++) {
                for (size_t m = 0; m < nstarted; m++)
                    assert_true(started_for[m] != d->job_ids[k]);
                started_for[nstarted++] = d->job_ids[k];
            }
        }
        apply_starts(w, &key);
        /* Every other round, runners come online and take their jobs, which
         * GitHub keeps listing as queued for a while. */
        if (round % 2 == 1) {
            for (size_t r = 0; r < w->nr; r++)
                w->runners[r].state = RD_RSTATE_BUSY;
        }
        if (round == 3) {
            /* the list catches up: busy jobs leave, their runners finish */
            for (size_t r = 0; r < w->nr; r++)
                remove_job(w, w->runners[r].job_id);
            w->nr = 0;
        }
    }
    assert_int_equal(nstarted, 6);
    world_free(w);
}

static void test_rounds_starting_then_busy_swapped(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    for (int i = 1; i <= 3; i++)
        add_job(w, i, s, LABELS(J_X64), i);
    uint64_t key = 1;
    plan(w);
    assert_int_equal(apply_starts(w, &key), 3);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(total_starts(plan(w)), 0);
        assert_decision(&w->plan, s, p, 3, 3, 0, RD_LIMIT_NONE);
    }
    /* GitHub hands the jobs out in another order than they were started for */
    w->runners[0].state = RD_RSTATE_BUSY;
    w->runners[0].job_id = 3;
    w->runners[1].state = RD_RSTATE_BUSY;
    w->runners[1].job_id = 1;
    w->runners[2].state = RD_RSTATE_IDLE;
    assert_int_equal(total_starts(plan(w)), 0);
    w->runners[2].state = RD_RSTATE_BUSY;
    w->runners[2].job_id = 2;
    assert_int_equal(total_starts(plan(w)), 0);
    /* a new job appears: exactly one more */
    add_job(w, 4, s, LABELS(J_X64), 4);
    assert_int_equal(total_starts(plan(w)), 1);
    assert_int_equal(decision(&w->plan, s, p)->job_ids[0], 4);
    world_free(w);
}

/* The ledger's swap rule (rd_ledger_runner_runs) seen from the plan: runner i
 * is "runnerd-i", key i + 1, started for job_ids[i]. */
static rd_ledger_t *ledger_for(const world_t *w)
{
    rd_ledger_t *l = rd_ledger_new();
    for (size_t i = 0; i < w->nr; i++) {
        char name[32];
        snprintf(name, sizeof(name), "runnerd-%zu", i);
        rd_ledger_runner_started(l, w->runners[i].key, name, (int)w->runners[i].scope,
                                 (int)w->runners[i].pool, w->runners[i].job_id, 0);
    }
    return l;
}

static void runs(rd_ledger_t *l, size_t who, int64_t job)
{
    char name[32];
    snprintf(name, sizeof(name), "runnerd-%zu", who);
    rd_ledger_runner_runs(l, name, job, 0, NULL);
}

static void ties(world_t *w, const rd_ledger_t *l)
{
    for (size_t i = 0; i < w->nr; i++)
        w->runners[i].job_id = rd_ledger_runner_job(l, w->runners[i].key, -1);
}

/* GitHub gives job 3 to the runner started for job 4 (it came online first)
 * and job 4 to the one started for job 3; a poll sees job 3 in_progress on the
 * first while job 4 still shows queued, and a runner list already shows both
 * busy. The swap keeps job 4 covered: no third runner. */
static void test_confirm_job_swaps_within_pool(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "arm64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "orgs/o", NULL);
    add_job(w, 3, s, LABELS(J_X64), 1);
    add_job(w, 4, s, LABELS(J_X64), 2);
    add_runner(w, 1, s, p, RD_RSTATE_BUSY, 3);
    add_runner(w, 2, s, p, RD_RSTATE_BUSY, 4);
    rd_ledger_t *l = ledger_for(w);
    runs(l, 1, 3);
    ties(w, l);
    assert_int_equal(w->runners[0].job_id, 4);
    assert_int_equal(w->runners[1].job_id, 3);
    remove_job(w, 3); /* the poll saw it in_progress */
    assert_int_equal(total_starts(plan(w)), 0);
    /* without the swap the runner started for job 3 would cover nothing */
    w->runners[0].job_id = 3;
    assert_int_equal(total_starts(plan(w)), 1);
    /* the same word again, and the second runner's own: nothing moves */
    runs(l, 1, 3);
    runs(l, 0, 4);
    ties(w, l);
    assert_int_equal(w->runners[0].job_id, 4);
    assert_int_equal(w->runners[1].job_id, 3);
    /* job 0 (no job) is not a word about anything; an unknown runner neither */
    runs(l, 0, 0);
    runs(l, 7, 3);
    ties(w, l);
    assert_int_equal(w->runners[0].job_id, 4);
    assert_int_equal(w->runners[1].job_id, 3);
    rd_ledger_free(l);
    world_free(w);
}

/* Runners of another pool, and runners whose job GitHub already named, keep theirs. */
static void test_confirm_job_keeps_other_pools_and_known(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p0 = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t p1 = add_pool(w, "gpu", LABELS(L_GPU), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "orgs/o", NULL);
    add_runner(w, 1, s, p0, RD_RSTATE_BUSY, 1);
    add_runner(w, 2, s, p1, RD_RSTATE_BUSY, 2);
    add_runner(w, 3, s, p1, RD_RSTATE_BUSY, 3);
    rd_ledger_t *l = ledger_for(w);
    runs(l, 2, 3); /* GitHub names job 3's runner */
    /* the pool-1 runner started for job 2 takes job 1: the pool-0 runner started
     * for job 1 may not be able to run job 2, so it is not counted against it */
    runs(l, 1, 1);
    ties(w, l);
    assert_int_equal(w->runners[0].job_id, 1);
    assert_int_equal(w->runners[1].job_id, 1);
    /* a later word about job 3 elsewhere moves nothing from its known runner */
    runs(l, 1, 3);
    ties(w, l);
    assert_int_equal(w->runners[2].job_id, 3);
    assert_int_equal(w->runners[1].job_id, 3);
    rd_ledger_free(l);
    world_free(w);
}

/* Property: N runners of one pool started for N distinct jobs; GitHub hands
 * the jobs out in a random permutation, and polls reveal it one runner at a
 * time in a random order while the job list still shows every job queued and
 * the runner list shows every runner busy. After every reveal the runners
 * account for exactly the N jobs (no job uncovered, so no start), and once all
 * are revealed each runner holds the job it really runs. */
static void test_confirm_job_property(void **state)
{
    (void)state;
    uint64_t seed = 20261205;
    for (int iter = 0; iter < 300; iter++) {
        world_t *w = world_new();
        size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 100);
        size_t q = add_pool(w, "gpu", LABELS(L_GPU), 1, 1 * GiB, 100);
        size_t s = add_scope(w, "orgs/o", NULL);
        size_t n = 1 + rd_rand_next(&seed) % 12;
        size_t real[MAXR], order[MAXR];
        for (size_t i = 0; i < n; i++) {
            add_job(w, (int64_t)(100 + i), s, LABELS(J_X64), (int64_t)i);
            add_runner(w, i + 1, s, p, RD_RSTATE_BUSY, (int64_t)(100 + i));
            real[i] = order[i] = i;
        }
        /* a gpu runner of the other pool, started for a job of its own */
        add_job(w, 999, s, LABELS(J_GPU), 50);
        add_runner(w, n + 1, s, q, RD_RSTATE_BUSY, 999);
        rd_ledger_t *l = ledger_for(w);
        for (size_t i = n; i > 1; i--) {
            size_t k = rd_rand_next(&seed) % i, t = real[i - 1];
            real[i - 1] = real[k];
            real[k] = t;
            k = rd_rand_next(&seed) % i;
            t = order[i - 1];
            order[i - 1] = order[k];
            order[k] = t;
        }
        size_t reveal = 1 + rd_rand_next(&seed) % n;
        for (size_t k = 0; k < reveal; k++) {
            size_t who = order[k];
            runs(l, who, (int64_t)(100 + real[who]));
            ties(w, l);
            bool held[MAXR] = {false};
            for (size_t i = 0; i < n; i++) {
                int64_t id = w->runners[i].job_id - 100;
                assert_true(id >= 0 && (size_t)id < n);
                assert_false(held[id]);
                held[id] = true;
            }
            assert_int_equal(w->runners[n].job_id, 999);
            assert_int_equal(total_starts(plan(w)), 0);
        }
        for (size_t k = 0; k < reveal; k++)
            assert_int_equal(w->runners[order[k]].job_id, (int64_t)(100 + real[order[k]]));
        if (reveal == n)
            for (size_t i = 0; i < n; i++)
                assert_int_equal(w->runners[i].job_id, (int64_t)(100 + real[i]));
        rd_ledger_free(l);
        world_free(w);
    }
}

static bool stopped(const rd_sched_plan_t *pl, uint64_t key)
{
    for (size_t i = 0; i < pl->nstops; i++)
        if (pl->stop_keys[i] == key)
            return true;
    return false;
}

static void test_stops_idle_timeout(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    int64_t to = (int64_t)w->pools[p].idle_timeout_ms;
    add_runner(w, 1, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = w->now - to - 5; /* oldest */
    add_runner(w, 2, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = w->now - to;     /* just due */
    add_runner(w, 3, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = w->now - to + 1; /* not yet */
    add_runner(w, 4, s, p, RD_RSTATE_STARTING, 0);
    add_runner(w, 5, s, p, RD_RSTATE_BUSY, 77);
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->nstops, 2);
    assert_int_equal(pl->stop_keys[0], 1);
    assert_int_equal(pl->stop_keys[1], 2);
    /* demand keeps runners: 3 jobs, supply 4 -> only one may go, the longest idle */
    for (int i = 1; i <= 3; i++)
        add_job(w, i, s, LABELS(J_X64), i);
    pl = plan(w);
    assert_int_equal(pl->nstops, 1);
    assert_int_equal(pl->stop_keys[0], 1);
    /* min_idle keeps one more */
    w->pools[p].min_idle = 1;
    pl = plan(w);
    assert_int_equal(pl->nstops, 0);
    world_free(w);
}

static void test_stops_min_idle_across_scopes(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    w->pools[p].min_idle = 2;
    size_t a = add_scope(w, "repos/o/a", NULL);
    size_t b = add_scope(w, "repos/o/b", NULL);
    int64_t old = w->now - 10 * (int64_t)w->pools[p].idle_timeout_ms;
    add_runner(w, 1, a, p, RD_RSTATE_IDLE, 0)->idle_since_ms = old;
    add_runner(w, 2, b, p, RD_RSTATE_IDLE, 0)->idle_since_ms = old + 1;
    add_runner(w, 3, b, p, RD_RSTATE_IDLE, 0)->idle_since_ms = old + 2;
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->nstops, 1);
    assert_int_equal(pl->stop_keys[0], 1);
    assert_int_equal(total_starts(pl), 0);
    world_free(w);
}

static void test_stops_keep_runner_tied_to_queued_job(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    int64_t old = w->now - 10 * (int64_t)w->pools[p].idle_timeout_ms;
    add_job(w, 1, s, LABELS(J_X64), 1);
    add_runner(w, 1, s, p, RD_RSTATE_IDLE, 1)->idle_since_ms = old; /* started for job 1 */
    add_runner(w, 2, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = old + 1;
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->nstops, 1);
    assert_int_equal(pl->stop_keys[0], 2);
    world_free(w);
}

static void test_stops_draining_stopping_gone(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t q = add_pool(w, "old", LABELS(L_X64_DOCKER), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    w->sp[q].draining = true;
    w->pools[p].min_idle = 5;
    add_job(w, 1, s, LABELS(J_X64), 1);
    add_runner(w, 1, s, q, RD_RSTATE_IDLE, 0);          /* draining pool: stop now */
    add_runner(w, 2, s, q, RD_RSTATE_BUSY, 1);          /* busy: never stopped */
    add_runner(w, 3, s, p, RD_RSTATE_IDLE, 0);          /* recent, min_idle: kept */
    add_runner(w, 4, (size_t)-1, p, RD_RSTATE_IDLE, 0); /* its scope is gone */
    add_runner(w, 5, s, p, RD_RSTATE_STARTING, 0);
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->nstops, 2);
    assert_true(stopped(pl, 1));
    assert_true(stopped(pl, 4));
    /* a runner in a gone scope still holds capacity */
    w->host.max_runners = 5;
    pl = plan(w);
    assert_int_equal(total_starts(pl), 0);
    assert_decision(pl, s, p, 1, 2, 0, RD_LIMIT_HOST_MAX);
    /* daemon stopping: every idle runner goes, nothing starts */
    w->host.max_runners = 100;
    w->stopping = true;
    pl = plan(w);
    assert_int_equal(pl->nstops, 3);
    assert_true(stopped(pl, 1));
    assert_true(stopped(pl, 3));
    assert_true(stopped(pl, 4));
    assert_int_equal(total_starts(pl), 0);
    world_free(w);
}

static void test_stops_shrunk_max_runners(void **state)
{
    (void)state;
    world_t *w = world_new();
    size_t p = add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    size_t s = add_scope(w, "repos/o/r", NULL);
    /* recently idle (idle_timeout far off), min_idle 4 of max 4, then a reload
     * lowers max_runners to 2 and min_idle to 1 */
    w->pools[p].min_idle = 4;
    add_job(w, 1, s, LABELS(J_X64), 1);
    add_runner(w, 1, s, p, RD_RSTATE_IDLE, 1)->idle_since_ms = w->now - 4000; /* tied to job 1 */
    add_runner(w, 2, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = w->now - 3000;
    add_runner(w, 3, s, p, RD_RSTATE_IDLE, 0)->idle_since_ms = w->now - 2000;
    add_runner(w, 4, s, p, RD_RSTATE_BUSY, 99);
    const rd_sched_plan_t *pl = plan(w);
    assert_int_equal(pl->nstops, 0);
    w->pools[p].max_runners = 2;
    w->pools[p].min_idle = 1;
    pl = plan(w);
    /* 4 live, max 2: two idle ones go, untied first (longest idle first); busy stays */
    assert_int_equal(pl->nstops, 2);
    assert_true(stopped(pl, 2));
    assert_true(stopped(pl, 3));
    assert_int_equal(total_starts(pl), 0);
    /* max 1: the tied one goes too, never the busy one */
    w->pools[p].max_runners = 1;
    w->pools[p].min_idle = 0;
    pl = plan(w);
    assert_int_equal(pl->nstops, 3);
    assert_false(stopped(pl, 4));
    /* a stopping runner no longer counts; host max_runners shrinks the same way */
    w->pools[p].max_runners = 10;
    runner_by_key(w, 3)->state = RD_RSTATE_STOPPING;
    w->host.max_runners = 2;
    pl = plan(w);
    assert_int_equal(pl->nstops, 1);
    assert_true(stopped(pl, 2));
    world_free(w);
}

static void test_deterministic(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->host.max_runners = 5;
    add_pool(w, "x64", LABELS(L_X64), 1, 1 * GiB, 10);
    add_pool(w, "arm", LABELS(L_ARM64), 1, 1 * GiB, 10);
    for (int s = 0; s < 4; s++) {
        char n[16];
        snprintf(n, sizeof(n), "repos/o/%d", s);
        add_scope(w, n, NULL);
    }
    /* equal queued times everywhere: ties must still break the same way */
    for (int i = 1; i <= 20; i++)
        add_job(w, i, (size_t)(i % 4), (i % 3) ? J_X64 : J_ARM64, 2, 500);
    plan(w);
    rd_sched_plan_t first = w->plan;
    memset(&w->plan, 0, sizeof(w->plan));
    /* same jobs in reverse input order */
    for (size_t i = 0; i < w->nj / 2; i++) {
        rd_sched_job_t t = w->jobs[i];
        w->jobs[i] = w->jobs[w->nj - 1 - i];
        w->jobs[w->nj - 1 - i] = t;
    }
    plan(w);
    assert_int_equal(first.ndecisions, w->plan.ndecisions);
    for (size_t i = 0; i < first.ndecisions; i++) {
        const rd_sched_decision_t *x = &first.decisions[i], *y = &w->plan.decisions[i];
        assert_int_equal(x->scope, y->scope);
        assert_int_equal(x->pool, y->pool);
        assert_int_equal(x->start, y->start);
        assert_int_equal(x->limit, y->limit);
        for (unsigned k = 0; k < x->start; k++)
            assert_int_equal(x->job_ids[k], y->job_ids[k]);
    }
    assert_int_equal(total_starts(&first), 5);
    rd_sched_plan_free(&first);
    world_free(w);
}

/* Random worlds: caps never exceeded, starts never exceed uncovered demand +
 * min_idle, no job gets two runners, stops only idle runners. */
static void test_property_random(void **state)
{
    (void)state;
    static const char **pool_labels[] = {L_X64, L_X64_DOCKER, L_ARM64, L_GPU};
    static const size_t pool_nlabels[] = {3, 4, 3, 4};
    static const char **job_labels[] = {J_SH, J_X64, J_LINUX, J_ARM64, J_GPU, J_WIN};
    static const size_t job_nlabels[] = {1, 2, 2, 2, 2, 2};
    uint64_t seed = 20261129;
    for (int iter = 0; iter < 3000; iter++) {
        world_t *w = world_new();
        w->host.cpus = (double)(1 + rd_rand_next(&seed) % 16);
        w->host.memory = (1 + rd_rand_next(&seed) % 32) * GiB;
        w->host.gpus = (unsigned)(rd_rand_next(&seed) % 3);
        w->host.max_runners = (unsigned)(rd_rand_next(&seed) % 12);
        w->stopping = rd_rand_next(&seed) % 20 == 0;
        size_t np = 1 + rd_rand_next(&seed) % 4;
        for (size_t p = 0; p < np; p++) {
            size_t kind = rd_rand_next(&seed) % 4;
            add_pool(w, "p", pool_labels[kind], pool_nlabels[kind],
                     0.5 * (double)(1 + rd_rand_next(&seed) % 6),
                     (1 + rd_rand_next(&seed) % 8) * GiB / 2, (unsigned)(rd_rand_next(&seed) % 6));
            w->pools[p].gpus = kind == 3 ? (unsigned)(rd_rand_next(&seed) % 2) : 0;
            w->pools[p].min_idle = (unsigned)(rd_rand_next(&seed) % 3);
            w->pools[p].emulated = kind == 2 && rd_rand_next(&seed) % 2;
            w->pools[p].idle_timeout_ms = rd_rand_next(&seed) % 1000;
            w->sp[p].draining = rd_rand_next(&seed) % 8 == 0;
            w->sp[p].backoff = rd_rand_next(&seed) % 8 == 0;
        }
        size_t ns = 1 + rd_rand_next(&seed) % 4;
        for (size_t s = 0; s < ns; s++) {
            int allowed[MAXP + 1];
            size_t n = 0;
            for (size_t p = 0; p < np; p++)
                if (rd_rand_next(&seed) % 4 != 0)
                    allowed[n++] = (int)p;
            allowed[n] = -1;
            add_scope(w, "s", allowed);
        }
        size_t nj = rd_rand_next(&seed) % 30;
        for (size_t j = 0; j < nj; j++) {
            size_t kind = rd_rand_next(&seed) % 6;
            add_job(w, (int64_t)(1 + rd_rand_next(&seed) % 40), rd_rand_next(&seed) % ns,
                    job_labels[kind], job_nlabels[kind], (int64_t)(rd_rand_next(&seed) % 50));
        }
        /* ids unique */
        for (size_t j = 0; j < w->nj; j++)
            for (size_t k = j + 1; k < w->nj; k++)
                if (w->jobs[k].id == w->jobs[j].id)
                    w->jobs[k].id = 1000 + (int64_t)k;
        size_t nr = rd_rand_next(&seed) % 20;
        for (size_t r = 0; r < nr; r++) {
            size_t p = rd_rand_next(&seed) % np;
            size_t s = rd_rand_next(&seed) % 10 == 0 ? (size_t)-1 : rd_rand_next(&seed) % ns;
            rd_rstate_t st = (rd_rstate_t)(rd_rand_next(&seed) % 4);
            int64_t job = rd_rand_next(&seed) % 2 ? (int64_t)(rd_rand_next(&seed) % 45) : 0;
            rd_sched_runner_t *run = add_runner(w, 1000 + r, s, p, st, job);
            run->idle_since_ms = w->now - (int64_t)(rd_rand_next(&seed) % 2000);
        }

        const rd_sched_plan_t *pl = plan(w);

        /* capacity */
        unsigned host_n = (unsigned)w->nr, host_new = 0, gpus_used = 0, gpus_new = 0;
        double cpus_used = 0;
        uint64_t mem_used = 0;
        unsigned pool_n[MAXP] = {0}, pool_new[MAXP] = {0};
        for (size_t r = 0; r < w->nr; r++) {
            pool_n[w->runners[r].pool]++;
            cpus_used += w->runners[r].cpus;
            mem_used += w->runners[r].memory;
            gpus_used += w->runners[r].gpus;
        }
        for (size_t i = 0; i < pl->ndecisions; i++) {
            const rd_sched_decision_t *d = &pl->decisions[i];
            const rd_pool_t *pool = &w->pools[d->pool];
            pool_new[d->pool] += d->start;
            host_new += d->start;
            cpus_used += d->start * pool->cpus;
            mem_used += d->start * pool->memory;
            gpus_used += d->start * pool->gpus;
            gpus_new += d->start * pool->gpus;
            if (d->start > 0) {
                assert_false(w->stopping);
                assert_false(w->sp[d->pool].draining);
                assert_false(w->sp[d->pool].backoff);
            }
            if (d->start > 0 && d->limit == RD_LIMIT_NONE)
                assert_non_null(d->job_ids);
        }
        if (host_new > 0) {
            assert_true(host_n + host_new <= w->host.max_runners);
            assert_true(cpus_used <= w->host.cpus + 1e-6);
            assert_true(mem_used <= w->host.memory);
        }
        if (gpus_new > 0)
            assert_true(gpus_used <= w->host.gpus);
        for (size_t p = 0; p < np; p++)
            if (pool_new[p] > 0)
                assert_true(pool_n[p] + pool_new[p] <= w->pools[p].max_runners);

        /* starts <= uncovered demand + min_idle; each job at most once, never a covered one */
        unsigned uncovered = 0, min_idle = 0;
        bool seen[2000] = {false};
        for (size_t j = 0; j < w->nj; j++) {
            const rd_sched_job_t *job = &w->jobs[j];
            bool cov = false;
            for (size_t r = 0; r < w->nr; r++) {
                const rd_sched_runner_t *run = &w->runners[r];
                if (run->job_id == job->id && run->scope == job->scope &&
                    run->state != RD_RSTATE_STOPPING)
                    cov = true;
            }
            if (!cov)
                uncovered++;
            for (size_t i = 0; i < pl->ndecisions; i++) {
                const rd_sched_decision_t *d = &pl->decisions[i];
                for (unsigned k = 0; k < d->start; k++) {
                    if (d->job_ids[k] != job->id)
                        continue;
                    assert_false(cov);
                    assert_false(seen[job->id]);
                    seen[job->id] = true;
                    assert_int_equal(d->scope, job->scope);
                    const rd_sched_scope_t *sc = &w->scopes[job->scope];
                    assert_int_equal(d->pool,
                                     rd_sched_pick_pool(w->sp, w->np, sc->pools, sc->npools,
                                                        job->labels, job->nlabels));
                }
            }
        }
        for (size_t p = 0; p < np; p++)
            min_idle += w->pools[p].min_idle;
        assert_true(host_new <= uncovered + min_idle);

        /* stops: idle runners only, each once */
        for (size_t i = 0; i < pl->nstops; i++) {
            assert_int_equal(runner_by_key(w, pl->stop_keys[i])->state, RD_RSTATE_IDLE);
            for (size_t k = i + 1; k < pl->nstops; k++)
                assert_true(pl->stop_keys[i] != pl->stop_keys[k]);
        }
        /* demand adds up: matched + unmatched = jobs */
        unsigned dem = 0;
        for (size_t i = 0; i < pl->ndecisions; i++)
            dem += pl->decisions[i].demand;
        assert_int_equal(dem + pl->unmatched, w->nj);
        world_free(w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_names),
        cmocka_unit_test(test_basic_starts_oldest_first),
        cmocka_unit_test(test_nothing_to_do),
        cmocka_unit_test(test_cap_pool_max),
        cmocka_unit_test(test_cap_host_max),
        cmocka_unit_test(test_cap_host_cpus),
        cmocka_unit_test(test_cap_fractional_cpus),
        cmocka_unit_test(test_cap_host_memory),
        cmocka_unit_test(test_cap_host_gpus),
        cmocka_unit_test(test_cap_smaller_pool_still_fits),
        cmocka_unit_test(test_draining_backoff_stopping),
        cmocka_unit_test(test_fairness_two_scopes),
        cmocka_unit_test(test_fairness_order_by_oldest_job),
        cmocka_unit_test(test_fairness_across_pools_within_scope),
        cmocka_unit_test(test_min_idle),
        cmocka_unit_test(test_min_idle_across_scopes),
        cmocka_unit_test(test_pick_pool_rules),
        cmocka_unit_test(test_each_job_counted_once),
        cmocka_unit_test(test_only_draining_pool_serves),
        cmocka_unit_test(test_unmatched),
        cmocka_unit_test(test_supply_covers),
        cmocka_unit_test(test_busy_beats_starting_for_same_job),
        cmocka_unit_test(test_rounds_never_double_start),
        cmocka_unit_test(test_rounds_starting_then_busy_swapped),
        cmocka_unit_test(test_confirm_job_swaps_within_pool),
        cmocka_unit_test(test_confirm_job_keeps_other_pools_and_known),
        cmocka_unit_test(test_confirm_job_property),
        cmocka_unit_test(test_stops_idle_timeout),
        cmocka_unit_test(test_stops_min_idle_across_scopes),
        cmocka_unit_test(test_stops_keep_runner_tied_to_queued_job),
        cmocka_unit_test(test_stops_draining_stopping_gone),
        cmocka_unit_test(test_stops_shrunk_max_runners),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_property_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
