/* sched.c: the scheduler, a pure function (DESIGN.md section 3 "Scheduling").
 *
 * One call of rd_sched_plan() goes through these steps, all over plain arrays
 * sorted with total orders (ties broken by index), so the same input always
 * gives the same plan:
 *
 *  1. Each queued job is given to one pool of its scope (rd_sched_pick_pool);
 *     jobs no allowed pool serves are "unmatched".
 *  2. Runners cover jobs. A runner whose job_id is a queued job of its scope
 *     covers that job (busy runners first: GitHub's job lists lag by up to a
 *     minute, so a job a runner already runs may still show queued). Other
 *     starting or idle runners are free supply and cover the oldest uncovered
 *     jobs of their (scope, pool). What stays uncovered needs a start.
 *  3. min_idle: a pool whose leftover free runners (over all scopes) are fewer
 *     than min_idle wants warm runners; they are started in the pool's first
 *     allowed scope (the first scope, in config order, whose pool list names
 *     the pool), after every job-driven start.
 *  4. Starts are granted one at a time under every cap (pool max, host max,
 *     free cpus, memory, gpus). Scopes take turns, ordered by their oldest
 *     uncovered job, so one busy repository cannot starve the rest.
 *  5. Idle runners are stopped when their pool drains, the daemon stops, their
 *     scope is gone, or they have been idle past the pool's idle_timeout while
 *     supply exceeds demand + min_idle (longest idle first), or their pool or
 *     the host has more runners than a (reloaded, lower) max_runners allows. */
#include "runnerd/core/sched.h"

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/labels.h"

/* Floating point slack when comparing cpu counts (0.1 + 0.2 > 0.3). */
#define CPU_EPS 1e-9

const char *rd_limit_name(rd_limit_t limit)
{
    switch (limit) {
    case RD_LIMIT_NONE:
        return NULL;
    case RD_LIMIT_POOL_MAX:
        return "pool_max";
    case RD_LIMIT_HOST_MAX:
        return "host_max";
    case RD_LIMIT_HOST_CPUS:
        return "host_cpus";
    case RD_LIMIT_HOST_MEMORY:
        return "host_memory";
    case RD_LIMIT_HOST_GPUS:
        return "host_gpus";
    case RD_LIMIT_DRAINING:
        return "draining";
    case RD_LIMIT_BACKOFF:
        return "backoff";
    }
    return NULL;
}

/* Preference between two pools that both serve a job: a pool that is not
 * draining, then native before emulated, then fewer labels (the more specific
 * pool is left for jobs that need it), then the first in the file. */
static bool pool_better(const rd_sched_pool_t *pools, size_t a, size_t b)
{
    const rd_sched_pool_t *pa = &pools[a], *pb = &pools[b];
    if (pa->draining != pb->draining)
        return !pa->draining;
    if (pa->pool->emulated != pb->pool->emulated)
        return !pa->pool->emulated;
    if (pa->pool->nlabels != pb->pool->nlabels)
        return pa->pool->nlabels < pb->pool->nlabels;
    return a < b;
}

int rd_sched_pick_pool(const rd_sched_pool_t *pools, size_t npools, const size_t *allowed,
                       size_t nallowed, const char *const *labels, size_t nlabels)
{
    int best = -1;
    for (size_t i = 0; i < nallowed; i++) {
        size_t p = allowed[i];
        if (p >= npools || pools[p].pool == NULL)
            continue;
        const rd_pool_t *spec = pools[p].pool;
        if (!rd_labels_match(labels, nlabels, (const char *const *)spec->labels, spec->nlabels))
            continue;
        if (best < 0 || pool_better(pools, p, (size_t)best))
            best = (int)p;
    }
    return best;
}

/* Per (scope, pool) working state. */
typedef struct {
    unsigned demand;
    unsigned supply;
    unsigned free;  /* starting/idle runners not tied to a specific queued job */
    unsigned spare; /* free runners left after covering the oldest uncovered jobs */
    size_t *need;   /* uncovered jobs (indexes into in->jobs), oldest first */
    size_t nneed;
    unsigned warm; /* min_idle starts wanted here */
    unsigned start;
    rd_limit_t limit;
    bool blocked;     /* a cap stopped further starts */
    int64_t *job_ids; /* granted: job ids, then 0 for warm runners */
} entry_t;

typedef struct {
    int64_t id;
    size_t job;
} id_index_t;

typedef struct {
    const rd_sched_input_t *in;
    size_t npools;
    entry_t *e; /* nscopes * npools */
    /* capacity in use, including starts granted so far */
    unsigned *pool_count;
    unsigned host_count;
    double cpus_used;
    uint64_t mem_used;
    uint64_t gpus_used;
} ctx_t;

static entry_t *entry_at(ctx_t *c, size_t scope, size_t pool)
{
    return &c->e[scope * c->npools + pool];
}

/* A job's place in age order: oldest queued first, then lowest id. */
typedef struct {
    int64_t queued_ms;
    int64_t id;
    size_t job;
} age_t;

static int cmp_age(const void *a, const void *b)
{
    const age_t *x = a, *y = b;
    if (x->queued_ms != y->queued_ms)
        return x->queued_ms < y->queued_ms ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->job < y->job ? -1 : x->job > y->job;
}

static int cmp_id_index(const void *a, const void *b)
{
    const id_index_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->job < y->job ? -1 : x->job > y->job;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The queued job with this id in this scope, or -1. */
static long find_job(const rd_sched_input_t *in, const id_index_t *ids, size_t nids, int64_t id,
                     size_t scope)
{
    if (id == 0)
        return -1;
    size_t lo = 0, hi = nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < nids && ids[lo].id == id; lo++) {
        if (in->jobs[ids[lo].job].scope == scope)
            return (long)ids[lo].job;
    }
    return -1;
}

/* Whether one more runner of pool p fits; the cap that stops it otherwise. */
static rd_limit_t check_caps(const ctx_t *c, size_t p)
{
    const rd_sched_input_t *in = c->in;
    const rd_sched_pool_t *sp = &in->pools[p];
    const rd_pool_t *pool = sp->pool;
    const rd_host_config_t *host = in->host;
    if (in->stopping || sp->draining)
        return RD_LIMIT_DRAINING;
    if (sp->backoff)
        return RD_LIMIT_BACKOFF;
    if (c->pool_count[p] >= pool->max_runners)
        return RD_LIMIT_POOL_MAX;
    if (c->host_count >= host->max_runners)
        return RD_LIMIT_HOST_MAX;
    if (host->cpus - c->cpus_used + CPU_EPS < pool->cpus)
        return RD_LIMIT_HOST_CPUS;
    if (c->mem_used > host->memory || host->memory - c->mem_used < pool->memory)
        return RD_LIMIT_HOST_MEMORY;
    if (pool->gpus > 0 && (c->gpus_used > host->gpus || host->gpus - c->gpus_used < pool->gpus))
        return RD_LIMIT_HOST_GPUS;
    return RD_LIMIT_NONE;
}

/* Try to start one runner for entry (s, p); job_id 0 = a warm runner. */
static bool grant(ctx_t *c, size_t s, size_t p, int64_t job_id)
{
    entry_t *e = entry_at(c, s, p);
    if (e->blocked)
        return false;
    rd_limit_t lim = check_caps(c, p);
    if (lim != RD_LIMIT_NONE) {
        e->blocked = true;
        e->limit = lim;
        return false;
    }
    const rd_pool_t *pool = c->in->pools[p].pool;
    c->pool_count[p]++;
    c->host_count++;
    c->cpus_used += pool->cpus;
    c->mem_used += pool->memory;
    c->gpus_used += pool->gpus;
    if (e->job_ids == NULL) {
        /* Never more starts than needs plus warm runners. */
        e->job_ids = rd_xcalloc(e->nneed + e->warm + 1, sizeof(int64_t));
    }
    e->job_ids[e->start++] = job_id;
    return true;
}

/* A scope's turn order: its oldest uncovered job. */
typedef struct {
    size_t scope;
    const rd_sched_job_t *oldest; /* NULL when it needs nothing */
    size_t *items;                /* uncovered jobs of the scope over all pools, oldest first */
    size_t nitems;
    size_t next;
} turn_t;

static int cmp_turn(const void *a, const void *b)
{
    const turn_t *x = a, *y = b;
    if ((x->oldest == NULL) != (y->oldest == NULL))
        return x->oldest == NULL ? 1 : -1;
    if (x->oldest != NULL) {
        if (x->oldest->queued_ms != y->oldest->queued_ms)
            return x->oldest->queued_ms < y->oldest->queued_ms ? -1 : 1;
        if (x->oldest->id != y->oldest->id)
            return x->oldest->id < y->oldest->id ? -1 : 1;
    }
    return x->scope < y->scope ? -1 : x->scope > y->scope;
}

typedef struct {
    size_t runner;
    int64_t idle_since_ms;
    uint64_t key;
} idle_t;

static int cmp_idle(const void *a, const void *b)
{
    const idle_t *x = a, *y = b;
    if (x->idle_since_ms != y->idle_since_ms)
        return x->idle_since_ms < y->idle_since_ms ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->runner < y->runner ? -1 : x->runner > y->runner;
}

static bool scope_allows(const rd_sched_scope_t *sc, size_t p)
{
    for (size_t i = 0; i < sc->npools; i++)
        if (sc->pools[i] == p)
            return true;
    return false;
}

void rd_sched_plan(const rd_sched_input_t *in, rd_sched_plan_t *out)
{
    memset(out, 0, sizeof(*out));
    const size_t ns = in->nscopes, np = in->npools, nj = in->njobs, nr = in->nrunners;
    ctx_t c = {.in = in, .npools = np};
    c.e = rd_xcalloc(ns * np + 1, sizeof(entry_t));
    c.pool_count = rd_xcalloc(np + 1, sizeof(unsigned));
    int *job_pool = rd_xcalloc(nj + 1, sizeof(int));
    bool *covered = rd_xcalloc(nj + 1, sizeof(bool));
    age_t *ages = rd_xcalloc(nj + 1, sizeof(age_t));
    size_t *by_age = rd_xcalloc(nj + 1, sizeof(size_t));
    bool *needed = rd_xcalloc(nj + 1, sizeof(bool)); /* uncovered, waits for a start */
    id_index_t *ids = rd_xcalloc(nj + 1, sizeof(id_index_t));
    bool *tied = rd_xcalloc(nr + 1, sizeof(bool));    /* runner covers a specific queued job */
    bool *stopped = rd_xcalloc(nr + 1, sizeof(bool)); /* in out->stop_keys */
    size_t nids = 0;

    /* 1. Each job to one pool. */
    out->unmatched_ids = rd_xcalloc(nj + 1, sizeof(int64_t));
    for (size_t j = 0; j < nj; j++) {
        const rd_sched_job_t *job = &in->jobs[j];
        job_pool[j] = -1;
        ages[j].queued_ms = job->queued_ms;
        ages[j].id = job->id;
        ages[j].job = j;
        if (job->scope < ns) {
            const rd_sched_scope_t *sc = &in->scopes[job->scope];
            job_pool[j] =
                rd_sched_pick_pool(in->pools, np, sc->pools, sc->npools, job->labels, job->nlabels);
        }
        if (job_pool[j] < 0) {
            out->unmatched_ids[out->unmatched++] = job->id;
            continue;
        }
        entry_at(&c, job->scope, (size_t)job_pool[j])->demand++;
        ids[nids].id = job->id;
        ids[nids].job = j;
        nids++;
    }
    qsort(out->unmatched_ids, out->unmatched, sizeof(int64_t), cmp_i64);
    qsort(ids, nids, sizeof(id_index_t), cmp_id_index);
    qsort(ages, nj, sizeof(age_t), cmp_age);
    for (size_t k = 0; k < nj; k++)
        by_age[k] = ages[k].job;

    /* 2. Capacity in use and supply. Busy runners claim their jobs first: the
     * runner that really runs a job wins over one merely started for it. */
    for (size_t r = 0; r < nr; r++) {
        const rd_sched_runner_t *run = &in->runners[r];
        c.host_count++;
        c.cpus_used += run->cpus;
        c.mem_used += run->memory;
        c.gpus_used += run->gpus;
        if (run->pool < np)
            c.pool_count[run->pool]++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t r = 0; r < nr; r++) {
            const rd_sched_runner_t *run = &in->runners[r];
            bool busy = run->state == RD_RSTATE_BUSY;
            bool avail = run->state == RD_RSTATE_STARTING || run->state == RD_RSTATE_IDLE;
            if ((pass == 0 && !busy) || (pass == 1 && !avail))
                continue;
            if (run->scope >= ns || run->pool >= np)
                continue;
            entry_t *e = entry_at(&c, run->scope, run->pool);
            long j = find_job(in, ids, nids, run->job_id, run->scope);
            if (busy) {
                if (j >= 0) {
                    e->supply++;
                    covered[j] = true;
                    tied[r] = true;
                }
                continue;
            }
            e->supply++;
            if (j >= 0 && !covered[j]) {
                covered[j] = true;
                tied[r] = true;
            } else {
                e->free++;
            }
        }
    }

    /* Free runners cover the oldest uncovered jobs of their (scope, pool). */
    for (size_t i = 0; i < ns * np; i++)
        c.e[i].spare = c.e[i].free;
    for (size_t k = 0; k < nj; k++) {
        size_t j = by_age[k];
        if (job_pool[j] < 0 || covered[j])
            continue;
        entry_t *e = entry_at(&c, in->jobs[j].scope, (size_t)job_pool[j]);
        if (e->spare > 0) {
            e->spare--;
            continue;
        }
        if (e->need == NULL)
            e->need = rd_xcalloc(e->demand + 1, sizeof(size_t));
        e->need[e->nneed++] = j;
        needed[j] = true;
    }

    /* 3. min_idle, per pool over all scopes, placed in its first allowed scope. */
    for (size_t p = 0; p < np; p++) {
        const rd_pool_t *pool = in->pools[p].pool;
        if (pool == NULL || pool->min_idle == 0 || in->pools[p].draining || in->stopping)
            continue;
        unsigned spare = 0;
        for (size_t s = 0; s < ns; s++)
            spare += entry_at(&c, s, p)->spare;
        if (spare >= pool->min_idle)
            continue;
        for (size_t s = 0; s < ns; s++) {
            if (scope_allows(&in->scopes[s], p)) {
                entry_at(&c, s, p)->warm = pool->min_idle - spare;
                break;
            }
        }
    }

    /* 4. Grant starts, scopes taking turns by their oldest uncovered job. */
    turn_t *turns = rd_xcalloc(ns + 1, sizeof(turn_t));
    for (size_t s = 0; s < ns; s++) {
        turns[s].scope = s;
        size_t total = 0;
        for (size_t p = 0; p < np; p++)
            total += entry_at(&c, s, p)->nneed;
        turns[s].items = rd_xcalloc(total + 1, sizeof(size_t));
    }
    for (size_t k = 0; k < nj; k++) {
        size_t j = by_age[k];
        if (!needed[j])
            continue;
        turn_t *t = &turns[in->jobs[j].scope];
        if (t->oldest == NULL)
            t->oldest = &in->jobs[j];
        t->items[t->nitems++] = j;
    }
    qsort(turns, ns, sizeof(turn_t), cmp_turn);
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t ti = 0; ti < ns; ti++) {
            turn_t *t = &turns[ti];
            /* Skip past jobs whose (scope, pool) a cap has stopped; take the
             * first one that can still start. */
            for (size_t i = t->next; i < t->nitems; i++) {
                size_t j = t->items[i];
                if (j == SIZE_MAX)
                    continue;
                size_t p = (size_t)job_pool[j];
                if (grant(&c, t->scope, p, in->jobs[j].id)) {
                    t->items[i] = SIZE_MAX;
                    progress = true;
                    break;
                }
            }
            while (t->next < t->nitems && t->items[t->next] == SIZE_MAX)
                t->next++;
        }
    }
    /* Warm runners last: queued jobs come before keeping a pool warm. */
    for (size_t p = 0; p < np; p++) {
        for (size_t s = 0; s < ns; s++) {
            entry_t *e = entry_at(&c, s, p);
            for (unsigned w = 0; w < e->warm; w++)
                if (!grant(&c, s, p, 0))
                    break;
        }
    }

    /* 5. Stops. */
    out->stop_keys = rd_xcalloc(nr + 1, sizeof(uint64_t));
    idle_t *idle = rd_xcalloc(nr + 1, sizeof(idle_t));
    size_t nidle = 0;
    for (size_t r = 0; r < nr; r++) {
        const rd_sched_runner_t *run = &in->runners[r];
        if (run->state != RD_RSTATE_IDLE)
            continue;
        bool gone = run->scope >= ns || run->pool >= np || in->pools[run->pool].pool == NULL;
        if (gone || in->stopping || in->pools[run->pool].draining) {
            out->stop_keys[out->nstops++] = run->key;
            stopped[r] = true;
            continue;
        }
        const rd_pool_t *pool = in->pools[run->pool].pool;
        if (tied[r])
            continue; /* waiting for the queued job it was started for */
        if (in->now_ms - run->idle_since_ms < (int64_t)pool->idle_timeout_ms)
            continue;
        idle[nidle].runner = r;
        idle[nidle].idle_since_ms = run->idle_since_ms;
        idle[nidle].key = run->key;
        nidle++;
    }
    qsort(idle, nidle, sizeof(idle_t), cmp_idle);
    /* Per pool: how many runners beyond demand + min_idle may go. */
    long *allowance = rd_xcalloc(np + 1, sizeof(long));
    unsigned *excess = rd_xcalloc(ns * np + 1, sizeof(unsigned));
    for (size_t p = 0; p < np; p++) {
        long total = 0;
        for (size_t s = 0; s < ns; s++) {
            entry_t *e = entry_at(&c, s, p);
            excess[s * np + p] = e->supply > e->demand ? e->supply - e->demand : 0;
            total += excess[s * np + p];
        }
        const rd_pool_t *pool = in->pools[p].pool;
        allowance[p] = total - (long)(pool ? pool->min_idle : 0);
    }
    for (size_t i = 0; i < nidle; i++) {
        const rd_sched_runner_t *run = &in->runners[idle[i].runner];
        unsigned *ex = &excess[run->scope * np + run->pool];
        if (*ex == 0 || allowance[run->pool] <= 0)
            continue;
        (*ex)--;
        allowance[run->pool]--;
        out->stop_keys[out->nstops++] = run->key;
        stopped[idle[i].runner] = true;
    }

    /* A shrunk limit (a reload lowered a pool's or the host's max_runners): idle
     * runners over it stop now, not at their idle timeout. Runners not tied to a
     * queued job go first, longest idle first; busy ones are never stopped. */
    unsigned *live = rd_xcalloc(np + 1, sizeof(unsigned));
    unsigned host_live = 0;
    nidle = 0;
    for (size_t r = 0; r < nr; r++) {
        const rd_sched_runner_t *run = &in->runners[r];
        if (run->state == RD_RSTATE_STOPPING || stopped[r])
            continue;
        host_live++;
        if (run->pool < np)
            live[run->pool]++;
        if (run->state != RD_RSTATE_IDLE)
            continue;
        idle[nidle].runner = r;
        /* tied runners sort after every untied one */
        idle[nidle].idle_since_ms = tied[r] ? INT64_MAX : run->idle_since_ms;
        idle[nidle].key = run->key;
        nidle++;
    }
    qsort(idle, nidle, sizeof(idle_t), cmp_idle);
    for (size_t i = 0; i < nidle; i++) {
        const rd_sched_runner_t *run = &in->runners[idle[i].runner];
        const rd_pool_t *pool = run->pool < np ? in->pools[run->pool].pool : NULL;
        bool over_pool = pool != NULL && live[run->pool] > pool->max_runners;
        bool over_host = host_live > in->host->max_runners;
        if (!over_pool && !over_host)
            continue;
        if (run->pool < np)
            live[run->pool]--;
        host_live--;
        out->stop_keys[out->nstops++] = run->key;
        stopped[idle[i].runner] = true;
    }
    free(live);

    /* Decisions, by scope then pool. */
    out->decisions = rd_xcalloc(ns * np + 1, sizeof(rd_sched_decision_t));
    for (size_t s = 0; s < ns; s++) {
        for (size_t p = 0; p < np; p++) {
            entry_t *e = entry_at(&c, s, p);
            rd_limit_t lim = e->start < e->nneed + e->warm ? e->limit : RD_LIMIT_NONE;
            if (e->demand == 0 && e->supply == 0 && e->start == 0 && lim == RD_LIMIT_NONE) {
                free(e->job_ids);
                continue;
            }
            rd_sched_decision_t *d = &out->decisions[out->ndecisions++];
            d->scope = s;
            d->pool = p;
            d->demand = e->demand;
            d->supply = e->supply;
            d->start = e->start;
            d->limit = lim;
            d->job_ids = e->job_ids;
        }
    }

    for (size_t s = 0; s < ns; s++)
        free(turns[s].items);
    for (size_t i = 0; i < ns * np; i++)
        free(c.e[i].need);
    free(turns);
    free(idle);
    free(allowance);
    free(excess);
    free(c.e);
    free(c.pool_count);
    free(job_pool);
    free(covered);
    free(ages);
    free(by_age);
    free(needed);
    free(ids);
    free(tied);
    free(stopped);
}

void rd_sched_plan_free(rd_sched_plan_t *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->ndecisions; i++)
        free(plan->decisions[i].job_ids);
    free(plan->decisions);
    free(plan->stop_keys);
    free(plan->unmatched_ids);
    memset(plan, 0, sizeof(*plan));
}
