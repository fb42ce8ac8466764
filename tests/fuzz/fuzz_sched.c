/* fuzz_sched: the scheduler (rd_sched_plan) against the promises of sched.h
 * and DESIGN.md "Scheduling", on random pools, host capacity, scopes, queued
 * jobs and existing runners decoded from the input bytes.
 *
 * Checked for every plan: no start in a draining or backing-off pool or while
 * stopping; when anything starts, the runners afterwards fit every cap (pool
 * max_runners, host max_runners, cpus, memory, gpus); no job gets two runners,
 * nor one when a starting, idle or busy runner already covers it; a start for a
 * job is in the job's scope, in a pool allowed there that rd_sched_pick_pool
 * picks for it; stops name distinct idle runners; the same input gives the
 * same plan. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runnerd/core/sched.h"

#define MAXP 4
#define MAXS 4
#define MAXJ 24
#define MAXR 16

static const char *const label_set[] = {"self-hosted", "linux", "x64",    "arm64",
                                        "gpu",         "Linux", "docker", "big"};
#define NLABELS (sizeof(label_set) / sizeof(label_set[0]))

typedef struct {
    const uint8_t *p;
    size_t n;
} rd_t;

static unsigned take(rd_t *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

/* Labels from a bit mask over label_set. */
static size_t labels_from(unsigned mask, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < NLABELS; i++)
        if (mask & (1u << i))
            out[n++] = label_set[i];
    return n;
}

static bool same_plan(const rd_sched_plan_t *a, const rd_sched_plan_t *b)
{
    if (a->ndecisions != b->ndecisions || a->nstops != b->nstops || a->unmatched != b->unmatched)
        return false;
    for (size_t i = 0; i < a->ndecisions; i++) {
        const rd_sched_decision_t *x = &a->decisions[i], *y = &b->decisions[i];
        if (x->scope != y->scope || x->pool != y->pool || x->demand != y->demand ||
            x->supply != y->supply || x->start != y->start || x->limit != y->limit)
            return false;
        for (unsigned k = 0; k < x->start; k++)
            if (x->job_ids[k] != y->job_ids[k])
                return false;
    }
    for (size_t i = 0; i < a->nstops; i++)
        if (a->stop_keys[i] != b->stop_keys[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_t r = {data, size};
    fz_quiet_logs();

    rd_host_config_t host = {.cpus = 0.5 * (1 + take(&r) % 32),
                             .memory = (uint64_t)(1 + take(&r) % 64) << 30,
                             .arch = RD_ARCH_X64,
                             .gpus = take(&r) % 4,
                             .max_runners = 1 + take(&r) % 24};

    size_t npools = 1 + take(&r) % MAXP;
    rd_pool_t pools[MAXP];
    const char *plabels[MAXP][NLABELS];
    rd_sched_pool_t spools[MAXP];
    memset(pools, 0, sizeof(pools));
    for (size_t i = 0; i < npools; i++) {
        rd_pool_t *p = &pools[i];
        static const char *const names[MAXP] = {"p0", "p1", "p2", "p3"};
        p->name = (char *)names[i];
        p->nlabels = labels_from(take(&r) | 1u, plabels[i]);
        p->labels = (char **)plabels[i];
        p->cpus = 0.5 * (1 + take(&r) % 8);
        p->memory = (uint64_t)(1 + take(&r) % 16) << 29;
        unsigned g = take(&r);
        p->gpus = g % 3 == 0 ? g % 2 : 0;
        p->max_runners = take(&r) % 10;
        p->min_idle = take(&r) % 3;
        p->idle_timeout_ms = 1000 * (uint64_t)(take(&r) % 4);
        unsigned a = take(&r);
        p->arch = a & 1 ? RD_ARCH_ARM64 : RD_ARCH_X64;
        p->emulated = p->arch != RD_ARCH_X64;
        spools[i].pool = p;
        spools[i].draining = (a & 6) == 6;
        spools[i].backoff = (a & 24) == 24;
    }

    size_t nscopes = 1 + take(&r) % MAXS;
    size_t spidx[MAXS][MAXP];
    rd_sched_scope_t scopes[MAXS];
    static const char *const snames[MAXS] = {"repos/o/a", "repos/o/b", "orgs/o", "orgs/p"};
    for (size_t s = 0; s < nscopes; s++) {
        unsigned mask = take(&r);
        size_t n = 0;
        for (size_t i = 0; i < npools; i++)
            if (mask & (1u << i))
                spidx[s][n++] = i;
        scopes[s] = (rd_sched_scope_t){.name = snames[s], .pools = spidx[s], .npools = n};
    }

    size_t want_jobs = take(&r) % (MAXJ + 1), njobs = 0;
    rd_sched_job_t jobs[MAXJ];
    const char *jlabels[MAXJ][NLABELS];
    bool used[33] = {false};
    for (size_t w = 0; w < want_jobs; w++) {
        unsigned id = 1 + take(&r) % 32;
        unsigned lmask = take(&r), q = take(&r);
        /* The queued jobs come from the demand table, keyed by id: each id
         * once. A job id belongs to one scope, as on GitHub. */
        if (used[id])
            continue;
        used[id] = true;
        size_t j = njobs++;
        size_t nl = labels_from(lmask, jlabels[j]);
        jobs[j] = (rd_sched_job_t){.id = id,
                                   .scope = id % nscopes,
                                   .labels = jlabels[j],
                                   .nlabels = nl,
                                   .queued_ms = 1000 * (int64_t)(q % 16)};
    }

    size_t nrunners = take(&r) % (MAXR + 1);
    rd_sched_runner_t runners[MAXR];
    for (size_t k = 0; k < nrunners; k++) {
        unsigned s = take(&r), st = take(&r);
        size_t pool = take(&r) % npools;
        int64_t job = (st >> 2) % 3 == 0 ? 0 : 1 + take(&r) % 32;
        /* A runner's scope is gone ((size_t)-1), or its job's scope when it has one. */
        size_t scope = s % (nscopes + 1) == nscopes ? (size_t)-1 : s % (nscopes + 1);
        if (job != 0 && scope != (size_t)-1)
            scope = (size_t)job % nscopes;
        runners[k] = (rd_sched_runner_t){.key = 100 + k,
                                         .scope = scope,
                                         .pool = pool,
                                         .state = (rd_rstate_t)(st % 4),
                                         .job_id = job,
                                         .idle_since_ms = 1000 * (int64_t)(take(&r) % 8),
                                         .cpus = pools[pool].cpus,
                                         .memory = pools[pool].memory,
                                         .gpus = pools[pool].gpus};
    }

    rd_sched_input_t in = {.host = &host,
                           .pools = spools,
                           .npools = npools,
                           .scopes = scopes,
                           .nscopes = nscopes,
                           .jobs = jobs,
                           .njobs = njobs,
                           .runners = runners,
                           .nrunners = nrunners,
                           .now_ms = 10000,
                           .stopping = take(&r) % 8 == 0};

    rd_sched_plan_t plan;
    rd_sched_plan(&in, &plan);

    /* Capacity held now. */
    double cpus = 0;
    uint64_t mem = 0;
    unsigned gpus = 0, per_pool[MAXP] = {0};
    for (size_t k = 0; k < nrunners; k++) {
        cpus += runners[k].cpus;
        mem += runners[k].memory;
        gpus += runners[k].gpus;
        per_pool[runners[k].pool]++;
    }
    unsigned total = (unsigned)nrunners, starts = 0, gpu_starts = 0, pool_starts[MAXP] = {0};
    int64_t started[MAXJ * MAXP + 64];
    size_t nstarted = 0;

    for (size_t d = 0; d < plan.ndecisions; d++) {
        const rd_sched_decision_t *x = &plan.decisions[d];
        FZ_CHECK(x->scope < nscopes && x->pool < npools);
        FZ_CHECK(x->start == 0 || x->job_ids != NULL);
        if (x->start == 0)
            continue;
        FZ_CHECK(!in.stopping && !spools[x->pool].draining && !spools[x->pool].backoff);
        bool allowed = false;
        for (size_t i = 0; i < scopes[x->scope].npools; i++)
            allowed |= scopes[x->scope].pools[i] == x->pool;
        FZ_CHECK(allowed);
        starts += x->start;
        pool_starts[x->pool] += x->start;
        cpus += x->start * pools[x->pool].cpus;
        mem += x->start * pools[x->pool].memory;
        gpus += x->start * pools[x->pool].gpus;
        gpu_starts += pools[x->pool].gpus > 0 ? x->start : 0;
        for (unsigned k = 0; k < x->start; k++) {
            int64_t id = x->job_ids[k];
            if (id == 0)
                continue; /* a min_idle runner */
            /* A job of this scope that the pool is the pick for. */
            bool found = false;
            for (size_t j = 0; j < njobs && !found; j++) {
                if (jobs[j].id != id || jobs[j].scope != x->scope)
                    continue;
                found = rd_sched_pick_pool(spools, npools, scopes[x->scope].pools,
                                           scopes[x->scope].npools, jobs[j].labels,
                                           jobs[j].nlabels) == (int)x->pool;
            }
            FZ_CHECK(found);
            /* Not covered already, not started twice. */
            for (size_t q = 0; q < nrunners; q++) {
                const rd_sched_runner_t *rq = &runners[q];
                /* A runner whose scope is gone is being stopped: it covers nothing. */
                bool covers =
                    rq->state != RD_RSTATE_STOPPING && rq->scope != (size_t)-1 && rq->job_id == id;
                if (covers)
                    fprintf(stderr,
                            "job %lld started in scope %zu pool %zu, but runner key %llu "
                            "(scope %zu pool %zu state %d) is there for it\n",
                            (long long)id, x->scope, x->pool, (unsigned long long)rq->key,
                            rq->scope, rq->pool, (int)rq->state);
                FZ_CHECK(!covers);
            }
            for (size_t q = 0; q < nstarted; q++)
                FZ_CHECK(started[q] != id);
            if (nstarted < sizeof(started) / sizeof(started[0]))
                started[nstarted++] = id;
        }
    }
    if (starts > 0) {
        FZ_CHECK(total + starts <= host.max_runners);
        FZ_CHECK(cpus <= host.cpus + 1e-9);
        FZ_CHECK(mem <= host.memory);
    }
    /* Runners without GPUs do not need any: only starts that take GPUs must fit. */
    if (gpu_starts > 0)
        FZ_CHECK(gpus <= host.gpus);
    for (size_t p = 0; p < npools; p++)
        if (pool_starts[p] > 0)
            FZ_CHECK(per_pool[p] + pool_starts[p] <= pools[p].max_runners);

    for (size_t i = 0; i < plan.nstops; i++) {
        uint64_t key = plan.stop_keys[i];
        FZ_CHECK(key >= 100 && key < 100 + nrunners);
        FZ_CHECK(runners[key - 100].state == RD_RSTATE_IDLE);
        for (size_t j = 0; j < i; j++)
            FZ_CHECK(plan.stop_keys[j] != key);
    }
    FZ_CHECK(plan.unmatched <= njobs);

    rd_sched_plan_t again;
    rd_sched_plan(&in, &again);
    FZ_CHECK(same_plan(&plan, &again));
    rd_sched_plan_free(&again);
    rd_sched_plan_free(&plan);
    return 0;
}
