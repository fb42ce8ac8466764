/* ledger.c: the demand ledger (see ledger.h for the rules it owns).
 *
 * State: the queued-job table (demand.c), the runners with the job each is
 * counted against, the ring of jobs a webhook said started or finished
 * ("recent", hashed), the ring of jobs a finished runner most likely took
 * ("taken"), and the ring of jobs that left the queue while no runner GitHub
 * named ran them ("departed": some runner took them unseen). Every rule is
 * applied when its event arrives, so the table the planner reads is always the
 * corrected one. */
#include "runnerd/core/ledger.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/cfgindex.h"
#include "runnerd/core/common.h"
#include "runnerd/core/index.h"
#include "runnerd/core/labels.h"
#include "runnerd/core/log.h"

#define LOGC "sched"
#define RECENT_JOBS 4096
#define TAKEN_JOBS 256
#define DEPARTED_JOBS 256

typedef struct {
    uint64_t key;
    char *name;
    int target;
    int pool;
    rd_runner_state_t state;
    int64_t job;      /* the job it is counted against; 0 = none */
    bool known;       /* job is GitHub's word (a poll or webhook saw it in_progress on it) */
    bool job_unknown; /* adopted before it took a job */
    bool seen;        /* in the latest snapshot */
} lrunner_t;

typedef struct {
    int64_t job;
    int pool;              /* the pool of the runner that took it */
    int64_t until_seen_ms; /* a sighting of the job queued before this is stale */
    bool active;           /* false once a later poll listed the job queued */
} taken_t;

/* A job a poll no longer listed queued while no runner GitHub named ran it:
 * some runner took it unseen (a job shorter than a poll interval), and that
 * runner's exit is counted against it. */
typedef struct {
    int64_t job;
    int target;
    char **labels;
    size_t nlabels;
    int64_t until_ms; /* an exit after this is not counted against it */
    bool active;
} departed_t;

struct rd_ledger {
    const rd_config_t *cfg; /* borrowed (rd_ledger_set_config); NULL before the first */
    rd_cfgindex_t *index;   /* of the current config; NULL before the first */
    rd_demand_t *jobs;
    lrunner_t *runners;
    size_t nrunners, caprunners;
    rd_idmap_t runner_by_key; /* key -> 1 + index into runners */

    int64_t recent[RECENT_JOBS];
    size_t recent_next;
    rd_idmap_t recent_slot; /* job id -> 1 + its latest slot in recent[] */

    taken_t taken[TAKEN_JOBS];
    size_t taken_next;
    size_t taken_active;

    departed_t departed[DEPARTED_JOBS];
    size_t departed_next;
    size_t departed_active;

    rd_namemap_t polled; /* repository -> int64_t*: start of the latest poll applied */
};

void rd_ledger_actions_clear(rd_ledger_actions_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].name);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

static void act(rd_ledger_actions_t *a, rd_ledger_action_kind_t kind, const char *name, int64_t job)
{
    if (a == NULL || name == NULL)
        return;
    a->v = rd_xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
    a->v[a->n].kind = kind;
    a->v[a->n].name = rd_xstrdup(name);
    a->v[a->n].job_id = job;
    a->n++;
}

rd_ledger_t *rd_ledger_new(void)
{
    rd_ledger_t *l = rd_xcalloc(1, sizeof(*l));
    l->jobs = rd_demand_new();
    return l;
}

void rd_ledger_free(rd_ledger_t *l)
{
    if (l == NULL)
        return;
    rd_demand_free(l->jobs);
    rd_cfgindex_free(l->index);
    for (size_t i = 0; i < l->nrunners; i++)
        free(l->runners[i].name);
    free(l->runners);
    rd_idmap_free(&l->runner_by_key);
    rd_idmap_free(&l->recent_slot);
    for (size_t i = 0; i < DEPARTED_JOBS; i++)
        rd_strv_free(l->departed[i].labels, l->departed[i].nlabels);
    for (size_t i = 0; i < l->polled.cap; i++)
        if (l->polled.vals != NULL)
            free(l->polled.vals[i]);
    rd_namemap_free(&l->polled);
    free(l);
}

/* ------------------------------------------------------------------ */
/* Corrections                                                         */

static void recent_add(rd_ledger_t *l, int64_t id)
{
    size_t slot = l->recent_next;
    int64_t old = l->recent[slot];
    if (old != 0 && (uintptr_t)rd_idmap_get(&l->recent_slot, old) == slot + 1)
        rd_idmap_remove(&l->recent_slot, old);
    l->recent[slot] = id;
    rd_idmap_put(&l->recent_slot, id, (void *)(uintptr_t)(slot + 1));
    l->recent_next = (slot + 1) % RECENT_JOBS;
}

static bool recent_has(const rd_ledger_t *l, int64_t id)
{
    return rd_idmap_get(&l->recent_slot, id) != NULL;
}

static void taken_add(rd_ledger_t *l, int64_t job, int pool, int64_t now_ms)
{
    taken_t *t = &l->taken[l->taken_next];
    l->taken_next = (l->taken_next + 1) % TAKEN_JOBS;
    if (t->active)
        l->taken_active--;
    t->job = job;
    t->pool = pool;
    t->until_seen_ms = now_ms + RD_LEDGER_TAKEN_MARGIN_MS;
    t->active = true;
    l->taken_active++;
    rd_demand_remove(l->jobs, job);
}

/* Whether a sighting of job `id` queued as of seen_ms is stale because a
 * runner took the job after it (GitHub's lists lag: the margin); a fresh
 * sighting ends the correction (the runner ran another job after all). */
static bool taken_stale(rd_ledger_t *l, int64_t id, int64_t seen_ms)
{
    if (l->taken_active == 0)
        return false;
    bool stale = false;
    for (size_t i = 0; i < TAKEN_JOBS; i++) {
        taken_t *t = &l->taken[i];
        if (!t->active || t->job != id)
            continue;
        if (seen_ms < t->until_seen_ms) {
            stale = true;
        } else {
            t->active = false;
            l->taken_active--;
        }
    }
    if (stale)
        rd_debug(LOGC,
                 "job %" PRId64 ": its runner ran a job and exited; not demand"
                 " until a poll lists it queued again",
                 id);
    return stale;
}

typedef struct {
    rd_ledger_t *l;
    int64_t now_ms;
} drop_ctx_t;

/* rd_demand_reconcile dropped job j: a poll no longer lists it queued. Unless
 * a runner GitHub named runs it, record it for the exit of the runner that
 * took it unseen. */
static void departed_add(void *ud, const rd_job_t *j)
{
    drop_ctx_t *c = ud;
    rd_ledger_t *l = c->l;
    for (size_t i = 0; i < l->nrunners; i++)
        if (l->runners[i].known && l->runners[i].job == j->id)
            return;
    departed_t *d = &l->departed[l->departed_next];
    l->departed_next = (l->departed_next + 1) % DEPARTED_JOBS;
    if (d->active)
        l->departed_active--;
    rd_strv_free(d->labels, d->nlabels);
    d->job = j->id;
    d->target = j->target;
    d->nlabels = j->nlabels;
    d->labels = rd_xcalloc(j->nlabels + 1, sizeof(char *));
    for (size_t i = 0; i < j->nlabels; i++)
        d->labels[i] = rd_xstrdup(j->labels[i]);
    d->until_ms = c->now_ms + RD_LEDGER_TAKEN_MARGIN_MS;
    d->active = true;
    l->departed_active++;
}

/* GitHub named the runner that runs job `id`: its departure is accounted for. */
static void departed_forget(rd_ledger_t *l, int64_t id)
{
    for (size_t i = 0; i < DEPARTED_JOBS && l->departed_active > 0; i++) {
        departed_t *d = &l->departed[i];
        if (d->active && d->job == id) {
            d->active = false;
            l->departed_active--;
        }
    }
}

/* A runner of (target, labels) that ran a job GitHub did not name exits: when
 * a job it could have run left the queue unseen, it most likely ran that one
 * (the oldest such). True when one was claimed. */
static bool departed_claim(rd_ledger_t *l, int target, const char *const *labels, size_t nlabels,
                           int64_t now_ms, const char *name)
{
    departed_t *best = NULL;
    for (size_t i = 0; i < DEPARTED_JOBS && l->departed_active > 0; i++) {
        departed_t *d = &l->departed[i];
        if (!d->active)
            continue;
        if (now_ms > d->until_ms) {
            d->active = false;
            l->departed_active--;
            continue;
        }
        if (d->target != target ||
            !rd_labels_match((const char *const *)d->labels, d->nlabels, labels, nlabels))
            continue;
        if (best == NULL || d->job < best->job)
            best = d;
    }
    if (best == NULL)
        return false;
    rd_debug(LOGC, "%s ran a job and exited: most likely job %" PRId64 ", gone from the queue",
             name ? name : "?", best->job);
    best->active = false;
    l->departed_active--;
    return true;
}

/* A sighting of a queued job: demand unless a correction says otherwise.
 * as_of_ms: when the source's view was taken (a poll: when it started; a
 * webhook: now). It is the job's "seen" time, so a poll in flight across a
 * runner's exit cannot bring the job back however long it takes, and a later
 * poll that no longer lists it drops it. True when the job is new to the table. */
static bool sight(rd_ledger_t *l, const rd_gh_job_t *j, const char *repo, int target,
                  int64_t as_of_ms, int64_t now_ms)
{
    if (recent_has(l, j->id))
        return false;
    if (taken_stale(l, j->id, as_of_ms)) {
        rd_demand_remove(l->jobs, j->id);
        return false;
    }
    return rd_demand_upsert(l->jobs, j->id, j->run_id, repo, (const char *const *)j->labels,
                            j->nlabels, j->created_ms > 0 ? j->created_ms : now_ms, as_of_ms,
                            target);
}

/* ------------------------------------------------------------------ */
/* Runners                                                             */

static lrunner_t *runner_by_key(const rd_ledger_t *l, uint64_t key)
{
    uintptr_t at = (uintptr_t)rd_idmap_get(&l->runner_by_key, (int64_t)key);
    return at == 0 ? NULL : &l->runners[at - 1];
}

static lrunner_t *runner_by_name(const rd_ledger_t *l, const char *name)
{
    for (size_t i = 0; i < l->nrunners; i++)
        if (l->runners[i].name != NULL && strcmp(l->runners[i].name, name) == 0)
            return &l->runners[i];
    return NULL;
}

static lrunner_t *runner_add(rd_ledger_t *l, uint64_t key)
{
    if (l->nrunners == l->caprunners) {
        l->caprunners = l->caprunners ? l->caprunners * 2 : 16;
        l->runners = rd_xrealloc(l->runners, l->caprunners * sizeof(*l->runners));
    }
    lrunner_t *r = &l->runners[l->nrunners++];
    memset(r, 0, sizeof(*r));
    r->key = key;
    r->target = -1;
    r->pool = -1;
    rd_idmap_put(&l->runner_by_key, (int64_t)key, (void *)(uintptr_t)l->nrunners);
    return r;
}

static void runner_remove(rd_ledger_t *l, lrunner_t *r)
{
    size_t at = (size_t)(r - l->runners);
    rd_idmap_remove(&l->runner_by_key, (int64_t)r->key);
    free(r->name);
    if (at != l->nrunners - 1) {
        l->runners[at] = l->runners[l->nrunners - 1];
        rd_idmap_put(&l->runner_by_key, (int64_t)l->runners[at].key, (void *)(uintptr_t)(at + 1));
    }
    l->nrunners--;
}

static bool runner_known(const lrunner_t *r)
{
    return r->known || r->state >= RD_RUNNER_STOPPING;
}

void rd_ledger_runner_started(rd_ledger_t *l, uint64_t key, const char *name, int target, int pool,
                              int64_t job_id, int64_t now_ms)
{
    (void)now_ms;
    lrunner_t *r = runner_by_key(l, key);
    if (r == NULL)
        r = runner_add(l, key);
    if (name != NULL && (r->name == NULL || strcmp(r->name, name) != 0)) {
        free(r->name);
        r->name = rd_xstrdup(name);
    }
    r->target = target;
    r->pool = pool;
    r->state = RD_RUNNER_STARTING;
    r->job = job_id;
    r->known = false;
}

/* The oldest queued job of the runner's target that its pool's labels serve
 * and that no runner is counted against, or NULL. */
static const rd_job_t *oldest_unheld(const rd_ledger_t *l, int target, const char *const *labels,
                                     size_t nlabels, bool busy_only)
{
    rd_idmap_t held;
    rd_idmap_init(&held);
    for (size_t i = 0; i < l->nrunners; i++)
        if (l->runners[i].job != 0 &&
            (!busy_only || runner_known(&l->runners[i]) || l->runners[i].state == RD_RUNNER_BUSY))
            rd_idmap_put(&held, l->runners[i].job, (void *)1);
    const rd_job_t *best = NULL, *j;
    size_t it = 0;
    while (target >= 0 && (j = rd_demand_next(l->jobs, &it)) != NULL) {
        if (j->target != target ||
            !rd_labels_match((const char *const *)j->labels, j->nlabels, labels, nlabels) ||
            rd_idmap_get(&held, j->id) != NULL)
            continue;
        if (best == NULL || j->queued_ms < best->queued_ms ||
            (j->queued_ms == best->queued_ms && j->id < best->id))
            best = j;
    }
    rd_idmap_free(&held);
    return best;
}

/* Which job a runner of (target, pool) that exits after a job GitHub never
 * named (shorter than a poll interval; adopted or warm runners) most likely
 * ran. GitHub hands out the oldest queued job first, to whichever runner asks,
 * so most runners run another job than the one they were started for:
 *  - a job its pool serves that a poll no longer listed queued while no runner
 *    GitHub named ran it (the oldest): it is out of demand already (returns 0);
 *  - else the oldest queued job its pool serves that no busy runner holds (the
 *    runner started for that one is then free supply, and the planner has it
 *    cover the oldest uncovered job, e.g. the one this runner was started for).
 * Counting each exit against its own job instead took a still-queued job out
 * of demand whenever the two differed, and one leaving the queue unseen twice:
 * the deficit rolled from wave to wave of jobs (each wave's runners ran the
 * previous wave's left-overs) and the last wave's jobs waited until the taken
 * margin expired (bench/scaleup.py: ~11 s). Returns the job to take, or 0. */
static int64_t guess_ran(rd_ledger_t *l, int target, int pool, int64_t now_ms, const char *name)
{
    if (l->cfg == NULL || pool < 0 || (size_t)pool >= l->cfg->npools)
        return 0;
    const rd_pool_t *p = &l->cfg->pools[pool];
    const char *const *labels = (const char *const *)p->labels;
    if (departed_claim(l, target, labels, p->nlabels, now_ms, name))
        return 0;
    const rd_job_t *best = oldest_unheld(l, target, labels, p->nlabels, true);
    return best != NULL ? best->id : 0;
}

void rd_ledger_runner_runs(rd_ledger_t *l, const char *name, int64_t job_id, int64_t now_ms,
                           rd_ledger_actions_t *acts)
{
    (void)now_ms;
    if (name == NULL)
        return;
    lrunner_t *r = runner_by_name(l, name);
    if (r != NULL && job_id != 0 && (r->job != job_id || !r->known)) {
        /* GitHub may have given R the job another runner O of its pool was
         * started for: O then most likely runs R's job. The two swap, so the set
         * of jobs the pool's runners account for stays the same and a job that
         * still shows queued (job lists lag) is neither uncovered nor given a
         * second runner. */
        for (size_t i = 0; i < l->nrunners; i++) {
            lrunner_t *o = &l->runners[i];
            if (o == r || runner_known(o) || o->pool != r->pool || o->job != job_id)
                continue;
            rd_debug(LOGC,
                     "%s runs job %" PRId64 " (started for %" PRId64 "): counting %s"
                     " against job %" PRId64,
                     r->name, job_id, r->job, o->name ? o->name : "?", r->job);
            o->job = r->job;
            act(acts, RD_LEDGER_COUNTED, o->name, o->job);
            break;
        }
        int64_t was = r->job;
        r->job = job_id;
        r->known = true;
        departed_forget(l, job_id);
        /* A runner that exited after a job was counted against job_id: it ran
         * another one, and the correction moves to the job it most likely ran,
         * guessed as at its exit. */
        for (size_t i = 0; i < TAKEN_JOBS && l->taken_active > 0; i++) {
            taken_t *tk = &l->taken[i];
            if (!tk->active || tk->job != job_id || tk->pool != r->pool)
                continue;
            int64_t b = guess_ran(l, r->target, r->pool, now_ms, "the runner counted against it");
            rd_debug(LOGC,
                     "%s runs job %" PRId64 " (started for %" PRId64 "): the runner that"
                     " exited after a job counted against it took job %" PRId64,
                     r->name, job_id, was, b);
            if (b != 0) {
                tk->job = b;
                rd_demand_remove(l->jobs, b);
            } else {
                tk->active = false;
                l->taken_active--;
            }
        }
    }
    act(acts, RD_LEDGER_RUNS, name, job_id);
}

void rd_ledger_runner_exited(rd_ledger_t *l, const rd_ledger_runner_t *ri, int64_t now_ms)
{
    lrunner_t *r = runner_by_key(l, ri->key);
    int64_t job = r != NULL ? r->job : ri->job_id;
    bool known = r != NULL && r->known;
    if (r != NULL)
        runner_remove(l, r);
    if (!ri->ran_job)
        return;
    /* It took the job GitHub said it runs. */
    if (job != 0 && known) {
        taken_add(l, job, ri->pool, now_ms);
        return;
    }
    /* GitHub never said which job it ran: guess_ran. */
    int64_t best = guess_ran(l, ri->target, ri->pool, now_ms, ri->name);
    if (best != 0) {
        if (best != job)
            rd_debug(LOGC, "%s ran a job and exited: counting it against job %" PRId64,
                     ri->name ? ri->name : "?", best);
        taken_add(l, best, ri->pool, now_ms);
    }
}

void rd_ledger_runners(rd_ledger_t *l, const rd_ledger_runner_t *snap, size_t n, int64_t now_ms,
                       rd_ledger_actions_t *acts)
{
    (void)now_ms;
    for (size_t i = 0; i < l->nrunners; i++)
        l->runners[i].seen = false;
    for (size_t i = 0; i < n; i++) {
        const rd_ledger_runner_t *s = &snap[i];
        if (s->state == RD_RUNNER_EXITED)
            continue;
        lrunner_t *r = runner_by_key(l, s->key);
        if (r == NULL) {
            r = runner_add(l, s->key);
            r->job = s->job_id; /* adopted: what the supervisor knows (0 = none) */
        }
        if (s->name != NULL && (r->name == NULL || strcmp(r->name, s->name) != 0)) {
            free(r->name);
            r->name = rd_xstrdup(s->name);
        }
        r->target = s->target;
        r->pool = s->pool;
        r->state = s->state;
        r->job_unknown = s->job_unknown;
        r->seen = true;
    }
    for (size_t i = 0; i < l->nrunners;) {
        if (!l->runners[i].seen)
            runner_remove(l, &l->runners[i]); /* the last one moves here */
        else
            i++;
    }
    /* A busy runner whose job GitHub has not named and that is not counted
     * against a queued job took some job of its pool from the queue: an adopted
     * runner (it does not tell which job it was started for), a warm one, or one
     * whose job another runner ran. GitHub's job lists lag, so the job it runs
     * may still show queued: count it against the oldest queued job of its
     * scope that its pool serves and no other runner holds, so that no second
     * runner is started for it. GitHub's word corrects the guess later. */
    for (size_t i = 0; i < n; i++) {
        const rd_ledger_runner_t *s = &snap[i];
        lrunner_t *r = runner_by_key(l, s->key);
        if (r == NULL || r->state != RD_RUNNER_BUSY || runner_known(r) ||
            (r->job != 0 && rd_demand_get(l->jobs, r->job) != NULL))
            continue;
        const rd_job_t *best = oldest_unheld(l, r->target, s->pool_labels, s->npool_labels, false);
        if (best == NULL)
            continue;
        rd_debug(LOGC, "%s%s turned busy: counting it against job %" PRId64,
                 r->name ? r->name : "?", r->job_unknown ? " (adopted)" : "", best->id);
        r->job = best->id;
        act(acts, RD_LEDGER_ASSUMED, r->name, best->id);
    }
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */

static bool is_ours(const char *runner_name)
{
    return runner_name != NULL && strncmp(runner_name, "runnerd-", 8) == 0;
}

bool rd_ledger_poll(rd_ledger_t *l, const rd_ledger_poll_t *p, int64_t now_ms,
                    rd_ledger_actions_t *acts)
{
    bool changed = false;
    /* A poll that started before the latest one applied to this repository
     * (answers can cross) knows less than it: its runners still count, its
     * queued list does not. */
    int64_t *last = rd_namemap_get(&l->polled, p->repo);
    if (last == NULL) {
        last = rd_xmalloc(sizeof(*last));
        *last = INT64_MIN;
        rd_namemap_put(&l->polled, p->repo, last);
    }
    bool superseded = p->started_ms < *last;
    /* A partial poll adds what it saw, drops nothing and supersedes nothing. */
    int target = rd_ledger_target_for_repo(l, p->repo);
    if (!superseded && !p->partial)
        *last = p->started_ms;
    int64_t *seen = rd_xcalloc(p->nqueued + 1, sizeof(int64_t));
    for (size_t i = 0; i < p->nqueued && !superseded; i++) {
        seen[i] = p->queued[i].id;
        if (sight(l, &p->queued[i], p->repo, target, p->started_ms, now_ms))
            changed = true;
    }
    if (!superseded && !p->partial &&
        rd_demand_reconcile(l->jobs, p->repo, seen, p->nqueued, p->started_ms, departed_add,
                            &(drop_ctx_t){l, now_ms}) > 0)
        changed = true;
    free(seen);
    for (size_t i = 0; i < p->nrunning; i++) {
        departed_forget(l, p->running[i].job_id); /* someone runs it: not taken unseen */
        if (is_ours(p->running[i].runner_name))
            rd_ledger_runner_runs(l, p->running[i].runner_name, p->running[i].job_id, now_ms, acts);
    }
    return changed;
}

bool rd_ledger_forget_repo(rd_ledger_t *l, const char *repo)
{
    free(rd_namemap_remove(&l->polled, repo));
    return rd_demand_reconcile(l->jobs, repo, NULL, 0, INT64_MAX, NULL, NULL) > 0;
}

bool rd_ledger_webhook(rd_ledger_t *l, rd_webhook_job_action_t action, const rd_gh_job_t *job,
                       int64_t now_ms, rd_ledger_actions_t *acts)
{
    int target = job->repo != NULL ? rd_ledger_target_for_repo(l, job->repo) : -1;
    switch (action) {
    case RD_WEBHOOK_JOB_QUEUED:
        if (target < 0 || recent_has(l, job->id))
            return false;
        sight(l, job, job->repo, target, now_ms, now_ms);
        return rd_demand_get(l->jobs, job->id) != NULL;
    case RD_WEBHOOK_JOB_IN_PROGRESS:
        recent_add(l, job->id);
        departed_forget(l, job->id);
        rd_demand_remove(l->jobs, job->id);
        if (job->runner_name != NULL)
            rd_ledger_runner_runs(l, job->runner_name, job->id, now_ms, acts);
        return false;
    case RD_WEBHOOK_JOB_COMPLETED:
        recent_add(l, job->id);
        departed_forget(l, job->id);
        rd_demand_remove(l->jobs, job->id);
        act(acts, RD_LEDGER_COMPLETED, job->runner_name, job->id);
        return false;
    case RD_WEBHOOK_JOB_WAITING:
        rd_demand_remove(l->jobs, job->id);
        return false;
    default:
        return false;
    }
}

void rd_ledger_set_config(rd_ledger_t *l, const rd_config_t *cfg)
{
    rd_cfgindex_free(l->index);
    l->cfg = cfg;
    l->index = rd_cfgindex_new(cfg);
    rd_job_t *j;
    size_t it = 0;
    while ((j = rd_demand_next(l->jobs, &it)) != NULL)
        j->target = rd_cfgindex_target_for_repo(l->index, j->repo);
}

int rd_ledger_target_for_repo(const rd_ledger_t *l, const char *repo)
{
    return l->index != NULL ? rd_cfgindex_target_for_repo(l->index, repo) : -1;
}

int rd_ledger_target_by_scope(const rd_ledger_t *l, const char *scope)
{
    return l->index != NULL ? rd_cfgindex_target_by_scope(l->index, scope) : -1;
}

size_t rd_ledger_count(const rd_ledger_t *l)
{
    return rd_demand_count(l->jobs);
}

const rd_job_t *rd_ledger_job(const rd_ledger_t *l, int64_t id)
{
    return rd_demand_get(l->jobs, id);
}

const rd_job_t *rd_ledger_next(const rd_ledger_t *l, size_t *it)
{
    return rd_demand_next(l->jobs, it);
}

int64_t rd_ledger_runner_job(const rd_ledger_t *l, uint64_t key, int64_t fallback)
{
    const lrunner_t *r = runner_by_key(l, key);
    return r != NULL ? r->job : fallback;
}

bool rd_ledger_unmatched_once(rd_ledger_t *l, int64_t id)
{
    rd_job_t *j = rd_demand_get(l->jobs, id);
    if (j == NULL || j->unmatched_logged)
        return false;
    j->unmatched_logged = true;
    return true;
}
