/* demand.c: the table of queued jobs, a sorted array keyed by job id.
 *
 * A sorted array of pointers: lookups are binary searches, iteration is in id
 * order for free (deterministic plans and logs), and each rd_job_t stays at one
 * address until it is removed, so callers may hold a pointer across inserts.
 * Inserts cost a memmove; with the few thousand queued jobs a build farm sees
 * at worst, that is cheaper than hashing and sorting on every iteration. */
#include "runnerd/core/demand.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"

struct rd_demand {
    rd_job_t **jobs; /* sorted by id, unique */
    size_t n, cap;
};

rd_demand_t *rd_demand_new(void)
{
    return rd_xcalloc(1, sizeof(rd_demand_t));
}

static void job_free(rd_job_t *j)
{
    if (j == NULL)
        return;
    free(j->repo);
    rd_strv_free(j->labels, j->nlabels);
    free(j);
}

void rd_demand_free(rd_demand_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        job_free(d->jobs[i]);
    free(d->jobs);
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
        free(j->repo);
        j->repo = rd_xstrdup(repo);
    } else if (j->repo == NULL) {
        j->repo = rd_xstrdup("");
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
                           int64_t poll_started_ms)
{
    int64_t *sorted = rd_xcalloc(nseen + 1, sizeof(int64_t));
    if (nseen > 0)
        memcpy(sorted, seen, nseen * sizeof(int64_t));
    qsort(sorted, nseen, sizeof(int64_t), cmp_i64);
    size_t dropped = 0, w = 0;
    for (size_t i = 0; i < d->n; i++) {
        rd_job_t *j = d->jobs[i];
        /* GitHub compares owner and repository names case-insensitively. */
        bool drop = strcasecmp(j->repo, repo) == 0 && j->seen_ms < poll_started_ms &&
                    bsearch(&j->id, sorted, nseen, sizeof(int64_t), cmp_i64) == NULL;
        if (drop) {
            job_free(j);
            dropped++;
        } else {
            d->jobs[w++] = j;
        }
    }
    d->n = w;
    free(sorted);
    return dropped;
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
}

rd_job_t *rd_demand_get(rd_demand_t *d, int64_t id)
{
    size_t at = lower_bound(d, id);
    return at < d->n && d->jobs[at]->id == id ? d->jobs[at] : NULL;
}

size_t rd_demand_count(const rd_demand_t *d)
{
    return d->n;
}

rd_job_t *rd_demand_next(rd_demand_t *d, size_t *it)
{
    if (*it >= d->n)
        return NULL;
    return d->jobs[(*it)++];
}
