/* poller.c: feeds the demand ledger what polls of GitHub see (see poller.h).
 *
 * One uv_timer drives everything: at each tick every due org listing and
 * every due repository poll starts (up to a cap on concurrent polls, so the
 * GitHub client's queue stays short), then the timer is re-armed for the
 * earliest next due time. Due times come from pace.h (per repository) and
 * from rd_github_retry_at (rate-limit holds and per-scope backoff).
 *
 * In-flight work never points at a repository or target directly: it holds
 * a ticket that the repository (or target) clears when it goes away, so a
 * result arriving after a reload or close is recognised and ignored. */
#include "runnerd/io/poller.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runnerd/core/common.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/index.h"
#include "runnerd/core/log.h"
#include "runnerd/core/pace.h"

#define LOGC "poller"
#define ORG_REFRESH_MS (10 * 60 * 1000)
#define ORG_RETRY_MS (60 * 1000)
/* A repository whose poll failed without a backoff from the client (404, ...). */
#define REPO_RETRY_MS (60 * 1000)
/* Timer wake-ups at most this often: polls due meanwhile start together (schedule). */
#define POLL_COALESCE_MS 20

typedef struct prepo prepo_t;
typedef struct ptarget ptarget_t;

/* A result on its way: cleared (repo/target = NULL) when its owner goes away. */
typedef struct {
    rd_poller_t *p;
    prepo_t *repo;
    ptarget_t *target;
} ticket_t;

struct prepo {
    char *owner, *name, *full; /* full = "owner/name" as GitHub spells it */
    char *scope;               /* "repos/owner/name" */
    rd_pace_target_t pt;
    ticket_t *inflight;
    int64_t poll_started_ms;
    int64_t retry_ms; /* not before (errors without client backoff) */
    int last_err;
    int64_t last_err_ms;
    int64_t last_ok_ms;
    size_t queued;
    bool wanted;    /* used while rebuilding membership */
    bool cycle;     /* must be polled in the running cycle */
    uint64_t hash;  /* of the lower-case full name */
    prepo_t *hnext; /* hash chain */
};

struct ptarget {
    rd_target_ref_t *ref; /* held: the identity that pairs it across reloads */
    rd_target_kind_t kind;
    bool broker; /* discovery: scaleset: the broker finds its jobs, never polled (docs/fleet.md) */
    char *owner, *repo, *scope;
    char **filter; /* org repos filter (names), NULL = all */
    size_t nfilter;
    /* org listing */
    char **listed; /* full names of the org's active repositories after the filter */
    size_t nlisted;
    bool listed_ok; /* at least one listing succeeded */
    int64_t next_list_ms;
    ticket_t *list_inflight;
    int list_err;
    int64_t list_err_ms;
    bool cycle; /* listing pending in the running cycle */
    bool kept;  /* while load_targets runs: matched by a target of the new config */
};

struct rd_poller {
    uv_loop_t *loop;
    rd_github_t *gh;
    rd_pace_t *pace;
    rd_ledger_t *ledger;
    rd_idents_t *ids; /* borrowed: the pairing of targets across reloads */
    const rd_config_t *cfg;
    rd_poller_changed_cb changed;
    rd_poller_actions_cb actions;
    rd_poller_started_cb on_started;
    void *ud;
    uv_timer_t timer;
    bool started;
    bool closing;
    ptarget_t **targets;
    size_t ntargets;
    /* The org targets that are polled (not broker ones), for the scan in schedule():
     * with one target per repository, walking every target at each answer made a
     * cycle O(N^2) (issue 14). */
    ptarget_t **orgs;
    size_t norgs;
    prepo_t **repos;
    size_t nrepos;
    prepo_t **hb; /* hash buckets by lower-case full name */
    size_t nhb;
    size_t cycle_pending; /* targets and repos with cycle set */
    size_t inflight, max_inflight;
    size_t cursor; /* where the last scan of repos stopped */
    /* The last full scan: the earliest due time it found, and whether it stopped because
     * every connection was busy. Lets a poll's answer skip the scan (see schedule_after). */
    int64_t next_due;
    bool scan_full;
    /* the running cycle (rd_poller_run_once) */
    bool cycle_active;
    size_t cycle_failed;
    rd_poller_cycle_cb cycle_cb;
    void *cycle_ud;
    rd_metrics_hist_t poll_hist; /* successful repository polls, seconds */
    /* status snapshot strings */
    void (*closed_cb)(void *);
    void *closed_ud;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void schedule(rd_poller_t *p);
static void schedule_after(rd_poller_t *p, prepo_t *r);
static void on_timer(uv_timer_t *timer);
static int64_t repo_due(rd_poller_t *p, prepo_t *r, int64_t now);

static uint64_t hash_ci(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

static void set_cycle(rd_poller_t *p, bool *flag, bool on)
{
    if (*flag == on)
        return;
    *flag = on;
    if (on)
        p->cycle_pending++;
    else
        p->cycle_pending--;
}

static void hash_insert(rd_poller_t *p, prepo_t *r)
{
    if (p->nrepos + 1 > p->nhb) {
        size_t nb = p->nhb ? p->nhb * 2 : 256;
        prepo_t **b = rd_xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < p->nhb; i++) {
            prepo_t *e = p->hb[i], *next;
            for (; e; e = next) {
                next = e->hnext;
                e->hnext = b[e->hash % nb];
                b[e->hash % nb] = e;
            }
        }
        free(p->hb);
        p->hb = b;
        p->nhb = nb;
    }
    r->hnext = p->hb[r->hash % p->nhb];
    p->hb[r->hash % p->nhb] = r;
}

static void hash_remove(rd_poller_t *p, prepo_t *r)
{
    if (p->nhb == 0)
        return;
    for (prepo_t **pp = &p->hb[r->hash % p->nhb]; *pp; pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            return;
        }
    }
}

/* ------------------------------------------------------------------ repos */

static prepo_t *repo_find(rd_poller_t *p, const char *full)
{
    if (p->nhb == 0)
        return NULL;
    uint64_t h = hash_ci(full);
    for (prepo_t *r = p->hb[h % p->nhb]; r; r = r->hnext)
        if (r->hash == h && strcasecmp(r->full, full) == 0)
            return r;
    return NULL;
}

static prepo_t *repo_add(rd_poller_t *p, const char *full)
{
    const char *slash = strchr(full, '/');
    if (slash == NULL || slash == full || slash[1] == '\0')
        return NULL;
    prepo_t *r = rd_xcalloc(1, sizeof(*r));
    r->owner = rd_xstrndup(full, (size_t)(slash - full));
    r->name = rd_xstrdup(slash + 1);
    r->full = rd_xstrdup(full);
    r->scope = rd_xasprintf("repos/%s", full);
    r->hash = hash_ci(full);
    rd_pace_target_add(p->pace, &r->pt);
    hash_insert(p, r);
    p->repos = rd_xrealloc(p->repos, (p->nrepos + 1) * sizeof(*p->repos));
    p->repos[p->nrepos++] = r;
    if (p->cycle_active)
        set_cycle(p, &r->cycle, true);
    return r;
}

/* Forget a repository: its jobs leave demand, its result (if any) is ignored. */
static void repo_drop(rd_poller_t *p, prepo_t *r, bool drop_demand)
{
    if (r->inflight) {
        r->inflight->repo = NULL;
        r->inflight = NULL;
        p->inflight--;
    }
    rd_pace_target_remove(p->pace, &r->pt);
    hash_remove(p, r);
    set_cycle(p, &r->cycle, false);
    if (drop_demand && rd_ledger_forget_repo(p->ledger, r->full) && p->changed)
        p->changed(p->ud);
    free(r->owner);
    free(r->name);
    free(r->full);
    free(r->scope);
    free(r);
}

/* Which repositories does target t cover right now (full names)? */
static void target_repo_names(const ptarget_t *t, const char ***names, size_t *n, char **tmp)
{
    if (t->broker) {
        *tmp = NULL;
        *names = NULL;
        *n = 0;
    } else if (t->kind == RD_TARGET_REPO) {
        *tmp = rd_xasprintf("%s/%s", t->owner, t->repo);
        *names = rd_xmalloc(sizeof(char *));
        (*names)[0] = *tmp;
        *n = 1;
    } else {
        *tmp = NULL;
        *names = rd_xmalloc((t->nlisted + 1) * sizeof(char *));
        for (size_t i = 0; i < t->nlisted; i++)
            (*names)[i] = t->listed[i];
        *n = t->nlisted;
    }
}

/* Recompute which repositories are polled: the union over all targets. */
static void rebuild_repos(rd_poller_t *p)
{
    for (size_t i = 0; i < p->nrepos; i++)
        p->repos[i]->wanted = false;
    for (size_t ti = 0; ti < p->ntargets; ti++) {
        const char **names;
        size_t n;
        char *tmp;
        target_repo_names(p->targets[ti], &names, &n, &tmp);
        for (size_t k = 0; k < n; k++) {
            prepo_t *r = repo_find(p, names[k]);
            if (r == NULL)
                r = repo_add(p, names[k]);
            if (r)
                r->wanted = true;
        }
        free(names);
        free(tmp);
    }
    size_t w = 0;
    for (size_t i = 0; i < p->nrepos; i++) {
        prepo_t *r = p->repos[i];
        if (r->wanted)
            p->repos[w++] = r;
        else
            repo_drop(p, r, true);
    }
    p->nrepos = w;
}

/* ------------------------------------------------------------------ targets */

static void target_free(rd_poller_t *p, ptarget_t *t)
{
    set_cycle(p, &t->cycle, false);
    if (t->list_inflight) {
        t->list_inflight->target = NULL;
        t->list_inflight = NULL;
        p->inflight--;
    }
    free(t->owner);
    free(t->repo);
    free(t->scope);
    rd_strv_free(t->filter, t->nfilter);
    rd_strv_free(t->listed, t->nlisted);
    rd_target_ref_release(t->ref);
    free(t);
}

static ptarget_t *target_new(const rd_target_t *ct, rd_target_ref_t *ref)
{
    ptarget_t *t = rd_xcalloc(1, sizeof(*t));
    t->ref = rd_target_ref_hold(ref);
    t->kind = ct->kind;
    t->owner = rd_xstrdup(ct->owner);
    t->repo = ct->repo ? rd_xstrdup(ct->repo) : NULL;
    t->scope = rd_xstrdup(ct->scope);
    return t;
}

static void target_set_filter(ptarget_t *t, const rd_target_t *ct)
{
    rd_strv_free(t->filter, t->nfilter);
    t->filter = NULL;
    t->nfilter = 0;
    if (ct->nrepos > 0) {
        t->filter = rd_xcalloc(ct->nrepos, sizeof(char *));
        for (size_t i = 0; i < ct->nrepos; i++)
            t->filter[i] = rd_xstrdup(ct->repos[i]);
        t->nfilter = ct->nrepos;
    }
}

static bool filter_allows(const ptarget_t *t, const char *name)
{
    if (t->nfilter == 0)
        return true;
    for (size_t i = 0; i < t->nfilter; i++)
        if (strcasecmp(t->filter[i], name) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ cycle */

static void cycle_check(rd_poller_t *p)
{
    if (!p->cycle_active || p->cycle_pending > 0)
        return;
    p->cycle_active = false;
    rd_poller_cycle_cb cb = p->cycle_cb;
    void *ud = p->cycle_ud;
    size_t failed = p->cycle_failed;
    p->cycle_cb = NULL;
    if (cb)
        cb(ud, failed);
}

/* ------------------------------------------------------------------ org listing */

static void on_org_repos(void *ud, int err, const rd_gh_repos_t *repos)
{
    ticket_t *tk = ud;
    rd_poller_t *p = tk->p;
    ptarget_t *t = tk->target;
    free(tk);
    if (t == NULL)
        return; /* target removed or poller closed */
    t->list_inflight = NULL;
    p->inflight--;
    int64_t now = now_ms();
    if (err == 0) {
        size_t n = 0, skipped = 0;
        char **v = rd_xcalloc(repos->n + 1, sizeof(char *));
        for (size_t i = 0; i < repos->n; i++) {
            const rd_gh_repo_t *r = &repos->v[i];
            if (r->archived || r->disabled) {
                skipped++;
                continue;
            }
            if (!filter_allows(t, r->name))
                continue;
            v[n++] = rd_xstrdup(r->full_name);
        }
        if (!t->listed_ok || n != t->nlisted)
            rd_info(LOGC, "%s: %zu repositories to watch (%zu archived or disabled skipped)",
                    t->scope, n, skipped);
        rd_strv_free(t->listed, t->nlisted);
        t->listed = v;
        t->nlisted = n;
        t->listed_ok = true;
        t->list_err = 0;
        t->next_list_ms = now + ORG_REFRESH_MS;
        rebuild_repos(p);
    } else {
        if (err != RD_ECANCELED) {
            const char *why = rd_github_scope_error(p->gh, t->scope, err);
            rd_log(t->list_err == err ? RD_LOG_DEBUG : RD_LOG_WARN, LOGC,
                   "%s: listing repositories failed: %s", t->scope, why ? why : rd_strerror(err));
        }
        t->list_err = err;
        t->list_err_ms = now;
        int64_t at = rd_github_retry_at(p->gh, t->scope);
        t->next_list_ms = at > now ? at : now + ORG_RETRY_MS;
        if (t->cycle)
            p->cycle_failed++;
    }
    set_cycle(p, &t->cycle, false);
    if (!p->closing) {
        schedule(p);
        cycle_check(p);
    }
}

static void start_list(rd_poller_t *p, ptarget_t *t, int64_t now)
{
    ticket_t *tk = rd_xcalloc(1, sizeof(*tk));
    tk->p = p;
    tk->target = t;
    int rc = rd_github_list_org_repos(p->gh, t->owner, on_org_repos, tk);
    if (rc != 0) {
        free(tk);
        t->list_err = rc;
        t->list_err_ms = now;
        int64_t at = rd_github_retry_at(p->gh, t->scope);
        t->next_list_ms = at > now ? at : now + ORG_RETRY_MS;
        if (t->cycle) {
            set_cycle(p, &t->cycle, false);
            p->cycle_failed++;
        }
        return;
    }
    t->list_inflight = tk;
    p->inflight++;
}

/* ------------------------------------------------------------------ repo polls */

static void on_jobs(void *ud, int err, const rd_github_poll_t *res)
{
    ticket_t *tk = ud;
    rd_poller_t *p = tk->p;
    prepo_t *r = tk->repo;
    free(tk);
    if (r == NULL)
        return;
    r->inflight = NULL;
    p->inflight--;
    int64_t now = now_ms();
    unsigned sent = res->sent, charged = res->charged;
    bool changed = false;
    const rd_gh_jobs_t *jobs = res->queued;
    if (err != RD_ECANCELED && jobs != NULL) {
        /* A failed poll still hands over what its other requests learned: those
         * jobs are queued on GitHub. Only a complete poll may drop jobs it did
         * not see (a failed page may have held them): the ledger's `partial`. */
        rd_ledger_running_t *running = rd_xcalloc(res->nassigned + 1, sizeof(*running));
        size_t na = res->nassigned;
        for (size_t i = 0; i < na; i++) {
            running[i].job_id = res->assigned[i].job_id;
            running[i].runner_name = res->assigned[i].runner_name;
        }
        rd_ledger_poll_t ev = {
            .repo = r->full,
            .started_ms = r->poll_started_ms,
            .partial = err != 0,
            .queued = jobs->v,
            .nqueued = jobs->n,
            .running = running,
            .nrunning = na,
        };
        rd_ledger_actions_t acts = {0};
        changed = rd_ledger_poll(p->ledger, &ev, now, &acts);
        free(running);
        if (acts.n > 0 && p->actions != NULL)
            p->actions(p->ud, &acts);
        for (size_t i = 0; i < na && p->on_started != NULL; i++)
            if (res->assigned[i].wait_ms >= 0)
                p->on_started(p->ud, res->assigned[i].runner_name, res->assigned[i].job_id,
                              res->assigned[i].wait_ms);
        rd_ledger_actions_clear(&acts);
    }
    if (err == 0) {
        r->queued = jobs->n;
        if (r->last_err != 0 && r->last_err != RD_EAGAIN)
            rd_info(LOGC, "%s: polling again", r->full);
        r->last_err = 0;
        r->last_ok_ms = now;
        if (r->poll_started_ms > 0 && now >= r->poll_started_ms)
            rd_metrics_hist_observe(&p->poll_hist, (double)(now - r->poll_started_ms) / 1000.0);
        r->retry_ms = 0;
        rd_pace_target_polled(p->pace, &r->pt, r->poll_started_ms, now, sent, charged, jobs->n > 0);
    } else {
        /* Warn when a repository starts failing (or fails differently), not at every retry. */
        if (err != RD_ECANCELED && err != RD_EAGAIN) {
            const char *why = rd_github_scope_error(p->gh, r->scope, err);
            rd_log(r->last_err == err ? RD_LOG_DEBUG : RD_LOG_WARN, LOGC, "%s: poll failed: %s",
                   r->full, why ? why : rd_strerror(err));
        }
        r->last_err = err;
        r->last_err_ms = now;
        /* The client's backoff (or a rate-limit hold) decides when to retry;
         * errors it does not back off from (404, ...) wait a minute. */
        r->retry_ms = rd_github_retry_at(p->gh, r->scope) > now ? 0 : now + REPO_RETRY_MS;
        rd_pace_target_polled(p->pace, &r->pt, r->poll_started_ms, now, sent, charged, false);
        if (r->cycle)
            p->cycle_failed++;
    }
    set_cycle(p, &r->cycle, false);
    if (changed && p->changed)
        p->changed(p->ud);
    if (!p->closing) {
        schedule_after(p, r);
        cycle_check(p);
    }
}

/* After R's poll answered: while the last full scan found nothing due before
 * next_due and was not stopped by busy connections, nothing but R changed, so
 * only R's new due time counts. A full scan per answer made a cycle over N
 * repositories cost O(N^2) (issue 14); the timer still scans at next_due, and
 * every other change (start, reload, activity, org listings) scans at once. */
static void schedule_after(rd_poller_t *p, prepo_t *r)
{
    int64_t now = now_ms();
    if (p->started && !p->cycle_active && !p->scan_full && p->next_due > now) {
        int64_t due = repo_due(p, r, now);
        if (due > now) {
            if (due < p->next_due) {
                p->next_due = due;
                uv_timer_start(&p->timer, on_timer, (uint64_t)(due - now), 0);
            }
            return;
        }
    }
    schedule(p);
}

static void start_poll(rd_poller_t *p, prepo_t *r, int64_t now)
{
    ticket_t *tk = rd_xcalloc(1, sizeof(*tk));
    tk->p = p;
    tk->repo = r;
    r->poll_started_ms = now;
    int rc = rd_github_list_queued_jobs(p->gh, r->owner, r->name, on_jobs, tk);
    if (rc != 0) {
        free(tk);
        r->last_err = rc;
        r->last_err_ms = now;
        if (r->cycle) {
            set_cycle(p, &r->cycle, false);
            p->cycle_failed++;
        }
        /* retry_at of the scope governs the next attempt (see repo_due). */
        r->retry_ms = now + (rc == RD_EAGAIN ? 1000 : REPO_RETRY_MS);
        return;
    }
    r->inflight = tk;
    p->inflight++;
}

static int64_t repo_due(rd_poller_t *p, prepo_t *r, int64_t now)
{
    int64_t due = r->cycle ? 0 : rd_pace_target_due(p->pace, &r->pt);
    int64_t at = rd_github_retry_at_ms(p->gh, r->scope, now);
    if (at > due)
        due = at;
    if (!r->cycle && r->retry_ms > due)
        due = r->retry_ms;
    return due;
}

static int64_t target_list_due(rd_poller_t *p, ptarget_t *t, int64_t now)
{
    if (t->kind != RD_TARGET_ORG)
        return INT64_MAX;
    int64_t due = t->cycle ? 0 : t->next_list_ms;
    int64_t at = rd_github_retry_at_ms(p->gh, t->scope, now);
    return at > due ? at : due;
}

/* ------------------------------------------------------------------ timer */

static void on_timer(uv_timer_t *timer)
{
    rd_poller_t *p = rd_container_of(timer, rd_poller_t, timer);
    schedule(p);
}

/* Start what is due, then arm the timer for the next thing. The scan of
 * repositories resumes where the previous one filled the last free slot, so a
 * long cycle costs O(repositories), not O(repositories^2). */
static void schedule(rd_poller_t *p)
{
    if (p->closing || (!p->started && !p->cycle_active))
        return;
    int64_t now = now_ms();
    int64_t next = INT64_MAX;
    bool failed_now = false, full = false;
    for (size_t i = 0; i < p->norgs; i++) {
        ptarget_t *t = p->orgs[i];
        if (t->list_inflight)
            continue;
        if (!p->started && !t->cycle)
            continue;
        if (t->cycle && rd_github_retry_at_ms(p->gh, t->scope, now) > now) {
            /* Held or backing off: the cycle counts it failed rather than waiting. */
            set_cycle(p, &t->cycle, false);
            p->cycle_failed++;
            failed_now = true;
            if (!p->started)
                continue;
        }
        int64_t due = target_list_due(p, t, now);
        if (due <= now) {
            start_list(p, t, now);
            if (t->list_inflight)
                continue;
            failed_now = true;
            due = t->next_list_ms;
        }
        if (due < next)
            next = due;
    }
    size_t n = p->nrepos;
    for (size_t k = 0; k < n; k++) {
        size_t i = (p->cursor + k) % n;
        prepo_t *r = p->repos[i];
        if (r->inflight || (!p->started && !r->cycle))
            continue;
        if (r->cycle && rd_github_retry_at_ms(p->gh, r->scope, now) > now) {
            set_cycle(p, &r->cycle, false);
            p->cycle_failed++;
            failed_now = true;
            if (!p->started)
                continue;
        }
        int64_t due = repo_due(p, r, now);
        if (due <= now) {
            if (p->inflight >= p->max_inflight) {
                p->cursor = i;
                full = true;
                break;
            } else {
                start_poll(p, r, now);
                if (r->inflight)
                    continue;
                failed_now = true;
                due = repo_due(p, r, now);
            }
        }
        if (due < next)
            next = due;
    }
    p->next_due = next;
    p->scan_full = full;
    if (full || next == INT64_MAX) {
        /* Full: the next completion schedules again. */
        uv_timer_stop(&p->timer);
    } else {
        /* Repositories fall due one by one (each its own interval after its
         * last poll); waking for each made a scan of all of them per poll.
         * Waking at most every POLL_COALESCE_MS starts those due meanwhile
         * together, a few milliseconds late. */
        int64_t d = next - now;
        if (d < POLL_COALESCE_MS)
            d = POLL_COALESCE_MS;
        if (d > 3600 * 1000)
            d = 3600 * 1000;
        uv_timer_start(&p->timer, on_timer, (uint64_t)d, 0);
    }
    /* A cycle with nothing to poll (every target served by the broker) ends at once. */
    if (failed_now || p->cycle_pending == 0)
        cycle_check(p);
}

/* ------------------------------------------------------------------ API */

static void load_targets(rd_poller_t *p, const rd_config_t *cfg)
{
    /* A new target keeps the state of the old one with the same identity (the
     * daemon paired old and new once, rd_idents_apply, before this call); the rest
     * is dropped. The old ones by identity in an index: one target per repository
     * made a scan O(N^2). */
    rd_idmap_t old;
    rd_idmap_init(&old);
    for (size_t k = 0; k < p->ntargets; k++) {
        p->targets[k]->kept = false;
        rd_idmap_put(&old, (int64_t)rd_target_ref_id(p->targets[k]->ref), p->targets[k]);
    }
    ptarget_t **nt = rd_xcalloc(cfg->ntargets + 1, sizeof(*nt));
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *ct = &cfg->targets[i];
        rd_target_ref_t *ref = rd_idents_target(p->ids, i);
        if (ref == NULL)
            rd_fatal("poller: target %zu (%s) has no identity: rd_idents_apply was not "
                     "called with this config",
                     i, ct->scope);
        ptarget_t *t = rd_idmap_remove(&old, (int64_t)rd_target_ref_id(ref));
        if (t != NULL)
            t->kept = true;
        if (t == NULL) {
            t = target_new(ct, ref);
            t->broker = ct->discovery == RD_DISCOVERY_SCALESET;
            if (p->cycle_active && t->kind == RD_TARGET_ORG && !t->broker)
                set_cycle(p, &t->cycle, true);
        }
        t->broker = ct->discovery == RD_DISCOVERY_SCALESET;
        if (t->kind == RD_TARGET_ORG) {
            bool changed = t->nfilter != ct->nrepos;
            for (size_t k = 0; !changed && k < ct->nrepos; k++)
                changed = strcasecmp(t->filter[k], ct->repos[k]) != 0;
            target_set_filter(t, ct);
            if (changed && t->listed_ok) {
                /* Apply the new filter now and relist at once for the full picture. */
                size_t w = 0;
                for (size_t k = 0; k < t->nlisted; k++) {
                    const char *slash = strchr(t->listed[k], '/');
                    if (filter_allows(t, slash ? slash + 1 : t->listed[k]))
                        t->listed[w++] = t->listed[k];
                    else
                        free(t->listed[k]);
                }
                t->nlisted = w;
                t->next_list_ms = 0;
            }
        }
        nt[i] = t;
    }
    for (size_t k = 0; k < p->ntargets; k++)
        if (!p->targets[k]->kept)
            target_free(p, p->targets[k]);
    rd_idmap_free(&old);
    free(p->targets);
    p->targets = nt;
    p->ntargets = cfg->ntargets;
    free(p->orgs);
    p->orgs = rd_xcalloc(p->ntargets + 1, sizeof(*p->orgs));
    p->norgs = 0;
    for (size_t i = 0; i < p->ntargets; i++)
        if (nt[i]->kind == RD_TARGET_ORG && !nt[i]->broker)
            p->orgs[p->norgs++] = nt[i];
    p->cfg = cfg;
    rebuild_repos(p);
}

int rd_poller_new(uv_loop_t *loop, rd_github_t *gh, rd_ledger_t *ledger, rd_idents_t *ids,
                  const rd_config_t *cfg, rd_poller_changed_cb changed, void *ud, rd_poller_t **out)
{
    *out = NULL;
    if (loop == NULL || gh == NULL || ledger == NULL || ids == NULL || cfg == NULL)
        return RD_EINVAL;
    rd_poller_t *p = rd_xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->ids = ids;
    p->gh = gh;
    p->pace = rd_github_pace(gh);
    p->ledger = ledger;
    p->changed = changed;
    p->ud = ud;
    unsigned mc = cfg->github.max_connections ? cfg->github.max_connections : 8;
    p->max_inflight = mc * 2 < 4 ? 4 : mc * 2;
    uv_timer_init(loop, &p->timer);
    load_targets(p, cfg);
    *out = p;
    return 0;
}

int rd_poller_start(rd_poller_t *p)
{
    if (p->closing)
        return RD_ECANCELED;
    p->started = true;
    schedule(p);
    return 0;
}

int rd_poller_run_once(rd_poller_t *p, rd_poller_cycle_cb cb, void *ud)
{
    if (p->closing)
        return RD_ECANCELED;
    if (p->cycle_active)
        return RD_EBUSY;
    p->cycle_active = true;
    p->cycle_failed = 0;
    p->cycle_cb = cb;
    p->cycle_ud = ud;
    for (size_t i = 0; i < p->ntargets; i++)
        if (p->targets[i]->kind == RD_TARGET_ORG && !p->targets[i]->broker)
            set_cycle(p, &p->targets[i]->cycle, true);
    for (size_t i = 0; i < p->nrepos; i++)
        set_cycle(p, &p->repos[i]->cycle, true);
    /* From the loop, so cb never runs inside this call. */
    uv_timer_start(&p->timer, on_timer, 0, 0);
    return 0;
}

int rd_poller_reconfigure(rd_poller_t *p, const rd_config_t *cfg)
{
    if (p->closing)
        return RD_ECANCELED;
    load_targets(p, cfg);
    unsigned mc = cfg->github.max_connections ? cfg->github.max_connections : 8;
    p->max_inflight = mc * 2 < 4 ? 4 : mc * 2;
    schedule(p);
    if (p->cycle_active) {
        uv_timer_start(&p->timer, on_timer, 0, 0);
    }
    return 0;
}

void rd_poller_set_started_cb(rd_poller_t *p, rd_poller_started_cb cb)
{
    p->on_started = cb;
}

void rd_poller_set_actions_cb(rd_poller_t *p, rd_poller_actions_cb cb)
{
    p->actions = cb;
}

void rd_poller_note_activity(rd_poller_t *p, const char *repo)
{
    prepo_t *r = repo ? repo_find(p, repo) : NULL;
    if (r == NULL)
        return;
    rd_pace_target_activate(p->pace, &r->pt, now_ms());
    schedule(p);
}

static void status_add_repo(rd_poller_t *p, prepo_t *r, rd_poller_status_t *s, int *err,
                            int64_t *err_ms, int64_t *bo, const char **why)
{
    if (r == NULL)
        return;
    s->repos++;
    s->queued += r->queued;
    if (r->last_ok_ms > s->last_poll_ms)
        s->last_poll_ms = r->last_ok_ms;
    if (r->last_err && r->last_err_ms >= *err_ms) {
        *err = r->last_err;
        *err_ms = r->last_err_ms;
        *why = rd_github_scope_error(p->gh, r->scope, r->last_err);
    }
    int64_t at = rd_github_retry_at(p->gh, r->scope);
    if (at > *bo)
        *bo = at;
}

size_t rd_poller_status(rd_poller_t *p, rd_poller_status_t *out, size_t max)
{
    int64_t now = now_ms();
    for (size_t i = 0; i < p->ntargets && i < max; i++) {
        ptarget_t *t = p->targets[i];
        rd_poller_status_t *s = &out[i];
        memset(s, 0, sizeof(*s));
        s->scope = t->scope;
        int err = t->list_err;
        int64_t err_ms = err ? t->list_err_ms : 0;
        const char *why = err ? rd_github_scope_error(p->gh, t->scope, err) : NULL;
        int64_t bo = rd_github_retry_at(p->gh, t->scope);
        if (t->kind == RD_TARGET_REPO) {
            char *full = rd_xasprintf("%s/%s", t->owner, t->repo);
            status_add_repo(p, repo_find(p, full), s, &err, &err_ms, &bo, &why);
            free(full);
        } else {
            for (size_t k = 0; k < t->nlisted; k++)
                status_add_repo(p, repo_find(p, t->listed[k]), s, &err, &err_ms, &bo, &why);
            if (t->listed_ok) {
                s->repo_names = (const char *const *)t->listed;
                s->nrepo_names = t->nlisted;
            }
        }
        /* The real reason (curl's or GitHub's words) when the client has it. */
        s->last_error = err ? (why ? why : rd_strerror(err)) : NULL;
        s->last_error_ms = err ? err_ms : 0;
        s->backoff_until_ms = bo > now ? bo : 0;
    }
    return p->ntargets;
}

void rd_poller_poll_durations(const rd_poller_t *p, rd_metrics_hist_t *out)
{
    *out = p->poll_hist;
}

static void on_timer_closed(uv_handle_t *h)
{
    rd_poller_t *p = rd_container_of((uv_timer_t *)h, rd_poller_t, timer);
    void (*cb)(void *) = p->closed_cb;
    void *ud = p->closed_ud;
    free(p);
    if (cb)
        cb(ud);
}

void rd_poller_close(rd_poller_t *p, void (*closed_cb)(void *ud), void *ud)
{
    if (p->closing)
        return;
    p->closing = true;
    p->closed_cb = closed_cb;
    p->closed_ud = ud;
    for (size_t i = 0; i < p->nrepos; i++)
        repo_drop(p, p->repos[i], false);
    free(p->repos);
    p->repos = NULL;
    p->nrepos = 0;
    free(p->hb);
    p->hb = NULL;
    p->nhb = 0;
    for (size_t i = 0; i < p->ntargets; i++)
        target_free(p, p->targets[i]);
    free(p->targets);
    p->targets = NULL;
    p->ntargets = 0;
    free(p->orgs);
    p->orgs = NULL;
    p->norgs = 0;
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}
