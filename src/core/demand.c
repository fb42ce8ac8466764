/* demand.c: the table of queued jobs, a sorted array keyed by job id, with an
 * index by repository.
 *
 * A sorted array of pointers: lookups are binary searches, iteration is in id
 * order for free (deterministic plans and logs), and each rd_job_t stays at one
 * address until it is removed, so callers may hold a pointer across inserts.
 * Inserts cost a memmove; with the few thousand queued jobs a build farm sees
 * at worst, that is cheaper than hashing and sorting on every iteration (ids
 * mostly grow, so most inserts are appends). The per-repository lists make a
 * poll's reconcile cost the jobs of that repository, not of the whole table:
 * with one scan per poll, a cycle over N repositories cost O(N^2) (issue 14). */
#include "runnerd/core/demand.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"
#include "runnerd/core/index.h"

/* The jobs of one repository, in no order. */
typedef struct {
    rd_job_t **v;
    size_t n, cap;
} repo_jobs_t;

struct rd_demand {
    rd_job_t **jobs; /* sorted by id, unique */
    size_t n, cap;
    rd_namemap_t by_repo; /* repository (case-insensitive) -> repo_jobs_t */
};

rd_demand_t *rd_demand_new(void)
{
    return rd_xcalloc(1, sizeof(rd_demand_t));
}

static void repo_link(rd_demand_t *d, rd_job_t *j)
{
    repo_jobs_t *rj = rd_namemap_get(&d->by_repo, j->repo);
    if (rj == NULL) {
        rj = rd_xcalloc(1, sizeof(*rj));
        rd_namemap_put(&d->by_repo, j->repo, rj);
    }
    if (rj->n == rj->cap) {
        rj->cap = rj->cap ? rj->cap * 2 : 4;
        rj->v = rd_xrealloc(rj->v, rj->cap * sizeof(*rj->v));
    }
    rj->v[rj->n++] = j;
}

static void repo_unlink(rd_demand_t *d, const rd_job_t *j)
{
    repo_jobs_t *rj = rd_namemap_get(&d->by_repo, j->repo);
    if (rj == NULL)
        return;
    for (size_t i = 0; i < rj->n; i++) {
        if (rj->v[i] == j) {
            rj->v[i] = rj->v[--rj->n];
            break;
        }
    }
    if (rj->n == 0) {
        rd_namemap_remove(&d->by_repo, j->repo);
        free(rj->v);
        free(rj);
    }
}

static void job_free(rd_job_t *j)
{
    if (j == NULL)
        return;
    free(j->repo);
    rd_strv_free(j->labels, j->nlabels);
    free(j);
}

static void repos_free(rd_demand_t *d)
{
    for (size_t i = 0; i < d->by_repo.cap; i++) {
        repo_jobs_t *rj = d->by_repo.vals[i];
        if (rj != NULL) {
            free(rj->v);
            free(rj);
        }
    }
    rd_namemap_free(&d->by_repo);
}

void rd_demand_free(rd_demand_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        job_free(d->jobs[i]);
    free(d->jobs);
    repos_free(d);
    free(d);
}

/* Index of the first job with id >= ID. */
static size_t lower_bound(const rd_demand_t *d, int64_t id)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->jobs[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void set_labels(rd_job_t *j, const char *const *labels, size_t nlabels)
{
    rd_strv_free(j->labels, j->nlabels);
    j->labels = rd_xcalloc(nlabels + 1, sizeof(char *));
    for (size_t i = 0; i < nlabels; i++)
        j->labels[i] = rd_xstrdup(labels[i] ? labels[i] : "");
    j->nlabels = nlabels;
}

bool rd_demand_upsert(rd_demand_t *d, int64_t id, int64_t run_id, const char *repo,
                      const char *const *labels, size_t nlabels, int64_t queued_ms, int64_t now_ms,
                      int target)
{
    size_t at = lower_bound(d, id);
    rd_job_t *j;
    bool fresh = at == d->n || d->jobs[at]->id != id;
    if (fresh) {
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->jobs = rd_xrealloc(d->jobs, d->cap * sizeof(rd_job_t *));
        }
        memmove(&d->jobs[at + 1], &d->jobs[at], (d->n - at) * sizeof(rd_job_t *));
        j = rd_xcalloc(1, sizeof(rd_job_t));
        j->id = id;
        d->jobs[at] = j;
        d->n++;
    } else {
        j = d->jobs[at];
    }
    j->run_id = run_id;
    if (repo != NULL && (j->repo == NULL || strcmp(j->repo, repo) != 0)) {
        if (j->repo != NULL)
            repo_unlink(d, j);
        free(j->repo);
        j->repo = rd_xstrdup(repo);
        repo_link(d, j);
    } else if (j->repo == NULL) {
        j->repo = rd_xstrdup("");
        repo_link(d, j);
    }
    set_labels(j, labels, nlabels);
    /* created_at never changes; a source that does not know it passes 0. */
    if (queued_ms != 0 || fresh)
        j->queued_ms = queued_ms;
    /* A late, slow poll must not make a job look more recently seen than a
     * webhook delivery that already refreshed it. */
    if (now_ms > j->seen_ms)
        j->seen_ms = now_ms;
    j->target = target;
    return fresh;
}

bool rd_demand_remove(rd_demand_t *d, int64_t id)
{
    size_t at = lower_bound(d, id);
    if (at == d->n || d->jobs[at]->id != id)
        return false;
    repo_unlink(d, d->jobs[at]);
    job_free(d->jobs[at]);
    memmove(&d->jobs[at], &d->jobs[at + 1], (d->n - at - 1) * sizeof(rd_job_t *));
    d->n--;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

size_t rd_demand_reconcile(rd_demand_t *d, const char *repo, const int64_t *seen, size_t nseen,
                           int64_t poll_started_ms, rd_demand_drop_fn on_drop, void *ud)
{
    /* GitHub compares owner and repository names case-insensitively (so does the index). */
    repo_jobs_t *rj = rd_namemap_get(&d->by_repo, repo);
    if (rj == NULL)
        return 0;
    int64_t *sorted = rd_xcalloc(nseen + 1, sizeof(int64_t));
    if (nseen > 0)
        memcpy(sorted, seen, nseen * sizeof(int64_t));
    qsort(sorted, nseen, sizeof(int64_t), cmp_i64);
    /* Collect first: removing the last job of the repository frees its list. */
    int64_t *drop = rd_xcalloc(rj->n + 1, sizeof(int64_t));
    size_t ndrop = 0;
    for (size_t i = 0; i < rj->n; i++) {
        const rd_job_t *j = rj->v[i];
        if (j->seen_ms < poll_started_ms &&
            bsearch(&j->id, sorted, nseen, sizeof(int64_t), cmp_i64) == NULL)
            drop[ndrop++] = j->id;
    }
    for (size_t i = 0; i < ndrop; i++) {
        if (on_drop != NULL)
            on_drop(ud, rd_demand_get(d, drop[i]));
        rd_demand_remove(d, drop[i]);
    }
    free(drop);
    free(sorted);
    return ndrop;
}

void rd_demand_retarget(rd_demand_t *d, const int *map, size_t nmap)
{
    size_t w = 0;
    for (size_t i = 0; i < d->n; i++) {
        rd_job_t *j = d->jobs[i];
        if (j->target >= 0 && (size_t)j->target < nmap) {
            int to = map[j->target];
            if (to < 0) {
                job_free(j);
                continue;
            }
            j->target = to;
        } else if (j->target >= 0) {
            /* Outside the map: no longer known; the next poll or plan finds
             * its target again by repository name. */
            j->target = -1;
        }
        d->jobs[w++] = j;
    }
    d->n = w;
    /* rebuild the repository index (a reload: rare) */
    repos_free(d);
    for (size_t i = 0; i < d->n; i++)
        repo_link(d, d->jobs[i]);
}

rd_job_t *rd_demand_get(const rd_demand_t *d, int64_t id)
{
    size_t at = lower_bound(d, id);
    return at < d->n && d->jobs[at]->id == id ? d->jobs[at] : NULL;
}

size_t rd_demand_count(const rd_demand_t *d)
{
    return d->n;
}

rd_job_t *rd_demand_next(const rd_demand_t *d, size_t *it)
{
    if (*it >= d->n)
        return NULL;
    return d->jobs[(*it)++];
}
