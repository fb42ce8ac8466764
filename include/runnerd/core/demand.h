/* demand.h: the table of queued jobs, keyed by job id (pure).
 *
 * Polls and webhook deliveries feed it; the scheduler reads it. A job leaves
 * the table when GitHub no longer reports it queued: a poll of its repository
 * that does not list it (rd_demand_reconcile), or a webhook saying it started,
 * completed or was cancelled (rd_demand_remove). */
#ifndef RUNNERD_DEMAND_H
#define RUNNERD_DEMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;
    int64_t run_id;
    char *repo;    /* "owner/name" as GitHub spells it */
    char **labels; /* runs-on */
    size_t nlabels;
    int64_t queued_ms;     /* created_at, ms since the epoch */
    int64_t seen_ms;       /* last time a poll or delivery reported it queued */
    int target;            /* index of the config target serving it, -1 for none */
    bool unmatched_logged; /* "no pool serves this job" was logged once */
} rd_job_t;

typedef struct rd_demand rd_demand_t;

rd_demand_t *rd_demand_new(void);
void rd_demand_free(rd_demand_t *d);

/**
 * Insert or refresh a queued job (copies everything it is given). Returns true
 * when the job was not in the table before.
 */
bool rd_demand_upsert(rd_demand_t *d, int64_t id, int64_t run_id, const char *repo,
                      const char *const *labels, size_t nlabels, int64_t queued_ms, int64_t now_ms,
                      int target);
/** Remove a job; true when it was there. */
bool rd_demand_remove(rd_demand_t *d, int64_t id);
/** Called with each job rd_demand_reconcile drops, just before it is freed. */
typedef void (*rd_demand_drop_fn)(void *ud, const rd_job_t *j);
/**
 * A complete poll of REPO saw exactly the queued job ids in `seen`: drop the
 * other jobs of that repository that were last seen before `poll_started_ms`
 * (a webhook that arrived during the poll is kept). Returns how many were
 * dropped; on_drop (may be NULL) is told each.
 */
size_t rd_demand_reconcile(rd_demand_t *d, const char *repo, const int64_t *seen, size_t nseen,
                           int64_t poll_started_ms, rd_demand_drop_fn on_drop, void *ud);
/** Drop every job of a target (target removed by reload); renumber targets via map (old->new, -1
 * drop). */
void rd_demand_retarget(rd_demand_t *d, const int *map, size_t nmap);

rd_job_t *rd_demand_get(const rd_demand_t *d, int64_t id);
size_t rd_demand_count(const rd_demand_t *d);
/**
 * Iterate: pass *it = 0 first; returns NULL at the end. Order is by job id.
 * Do not upsert or remove while iterating (positions shift). A job's address
 * stays the same from its insertion until its removal.
 */
rd_job_t *rd_demand_next(const rd_demand_t *d, size_t *it);

#endif
