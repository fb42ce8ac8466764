/* github.c: the GitHub REST client's endpoints and life cycle (see github.h).
 *
 * The client is cut by concern (github_int.h has the map): the request queue
 * with its rate limits and pacing gate (github_queue.c), credentials and App
 * installation tokens (github_auth.c), paged GETs with the ETag cache
 * (github_pager.c, core ghcache.c), and here the operations: list queued jobs
 * of a repo, org repos, runners, runner group id, JIT config, delete runner.
 * Each hands its result to the caller through its callback's arguments.
 *
 * Secrets: the PAT, installation tokens and JWTs are registered with the log
 * redactor and never logged; request headers are never logged at all. */
#include "runnerd/io/github.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "github_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/ghurl.h"
#include "runnerd/core/log.h"
#include "runnerd/core/pace.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/readfile.h"

int64_t gh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gh_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ------------------------------------------------------------------ ops: queued jobs */

typedef struct {
    rd_github_t *gh;
    char *owner, *repo, *scope, *base;
    rd_github_jobs_cb cb;
    void *ud;
    unsigned pending;
    int err;
    int64_t *runs; /* run ids whose jobs were asked for */
    size_t nruns, cruns;
    rd_gh_jobs_t jobs;
    size_t cjobs;
    rd_github_assignment_t *assign; /* in_progress jobs and their runners (names owned) */
    size_t nassign, cassign;
    unsigned ctr[2];
} qj_op_t;

static void qj_finish_if_done(qj_op_t *op)
{
    if (op->pending > 0)
        return;
    if (op->err == 0)
        gh_scope_ok(op->gh, op->scope);
    else if (gh_err_counts(op->err))
        gh_scope_failed(op->gh, op->scope); /* once per poll, after the retries */
    /* On a failure too: what the pages that did arrive said is not thrown away. */
    rd_github_poll_t res = {
        .queued = &op->jobs,
        .assigned = op->assign,
        .nassigned = op->nassign,
        .sent = op->ctr[0],
        .charged = op->ctr[1],
    };
    op->cb(op->ud, op->err, &res);
    for (size_t i = 0; i < op->nassign; i++)
        free((char *)op->assign[i].runner_name);
    free(op->assign);
    rd_gh_jobs_free(&op->jobs);
    free(op->runs);
    free(op->owner);
    free(op->repo);
    free(op->scope);
    free(op->base);
    free(op);
}

/* The poll failed; an error that counts against the scope wins over a hold. */
static void qj_fail(qj_op_t *op, int err)
{
    if (op->err == 0 || op->err == RD_ECANCELED || (!gh_err_counts(op->err) && gh_err_counts(err)))
        op->err = err;
}

static void qj_add_job(qj_op_t *op, const rd_gh_job_t *j)
{
    if (j->status == RD_GH_IN_PROGRESS && j->runner_name != NULL && j->runner_name[0]) {
        if (op->nassign == op->cassign) {
            op->cassign = op->cassign ? op->cassign * 2 : 8;
            op->assign = rd_xrealloc(op->assign, op->cassign * sizeof(*op->assign));
        }
        op->assign[op->nassign].job_id = j->id;
        op->assign[op->nassign].runner_name = rd_xstrdup(j->runner_name);
        op->assign[op->nassign].wait_ms = j->created_ms > 0 && j->started_ms >= j->created_ms
                                              ? j->started_ms - j->created_ms
                                              : -1;
        op->nassign++;
        return;
    }
    if (j->status != RD_GH_QUEUED)
        return;
    for (size_t k = 0; k < op->jobs.n; k++)
        if (op->jobs.v[k].id == j->id)
            return;
    if (op->jobs.n == op->cjobs) {
        op->cjobs = op->cjobs ? op->cjobs * 2 : 8;
        op->jobs.v = rd_xrealloc(op->jobs.v, op->cjobs * sizeof(rd_gh_job_t));
    }
    rd_gh_job_copy(&op->jobs.v[op->jobs.n++], j);
}

static void qj_jobs_memo_free(void *p)
{
    rd_gh_jobs_free(p);
    free(p);
}

static void qj_runs_memo_free(void *p)
{
    rd_gh_runs_free(p);
    free(p);
}

/* A page's decoded list: the cache's memo of this body, else parsed now and
 * offered to the cache (page->keep). NULL: the body is not such a list. */
static const void *qj_decode(gh_page_t *page, bool jobs)
{
    if (page->memo)
        return page->memo;
    void *l = jobs ? rd_xcalloc(1, sizeof(rd_gh_jobs_t)) : rd_xcalloc(1, sizeof(rd_gh_runs_t));
    int rc = jobs ? rd_ghjson_parse_jobs(page->body, page->len, l)
                  : rd_ghjson_parse_runs(page->body, page->len, l);
    if (rc != 0) {
        free(l);
        return NULL;
    }
    page->keep = l;
    return l;
}

static int qj_jobs_page(void *ud, gh_page_t *page)
{
    qj_op_t *op = ud;
    const rd_gh_jobs_t *l = qj_decode(page, true);
    if (l == NULL)
        return RD_EPROTO;
    for (size_t i = 0; i < l->n; i++)
        qj_add_job(op, &l->v[i]);
    return 0;
}

static void qj_pager_done(void *ud, int err)
{
    qj_op_t *op = ud;
    if (err != 0)
        qj_fail(op, err);
    op->pending--;
    qj_finish_if_done(op);
}

/*
 * The jobs of a queued run whose list entry has not changed (its run list
 * answered 304), without asking: GitHub marks a run in_progress as soon as one
 * of its jobs starts and completed when it ends or is cancelled, and makes a
 * job that needs another only once that one has finished; so while the run is
 * still listed as queued, unchanged, jobs that were all queued when last read
 * still are. Only a one-page list of at least one job, every one queued, is
 * reused; any other (a job waiting for an environment's approval, or no job
 * yet) is asked again.
 */
static bool qj_reuse_queued_run(qj_op_t *op, const char *url)
{
    rd_ghcache_hit_t hit;
    if (rd_ghcache_get(op->gh->cache, url, gh_now_ms(), &hit) != 0 || hit.link || !hit.memo)
        return false;
    const rd_gh_jobs_t *l = hit.memo;
    if (l->n == 0)
        return false; /* GitHub makes a run's jobs after the run: they may be on their way */
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].status != RD_GH_QUEUED)
            return false;
    for (size_t i = 0; i < l->n; i++)
        qj_add_job(op, &l->v[i]);
    op->gh->stats.jobs_reused++;
    return true;
}

static int qj_runs_page(void *ud, gh_page_t *page)
{
    qj_op_t *op = ud;
    const rd_gh_runs_t *runs = qj_decode(page, false);
    if (runs == NULL)
        return RD_EPROTO;
    /* Every run found is read, even after another page failed: its queued jobs
     * are demand whatever happened to the rest of the poll. */
    for (size_t i = 0; i < runs->n && !op->gh->closing; i++) {
        int64_t id = runs->v[i].id;
        bool dup = false;
        for (size_t k = 0; k < op->nruns && !dup; k++)
            dup = op->runs[k] == id;
        if (dup)
            continue;
        if (op->nruns == op->cruns) {
            op->cruns = op->cruns ? op->cruns * 2 : 8;
            op->runs = rd_xrealloc(op->runs, op->cruns * sizeof(int64_t));
        }
        op->runs[op->nruns++] = id;
        char *url = rd_xasprintf("%s/actions/runs/%lld/jobs?per_page=100", op->base, (long long)id);
        if (page->unchanged && runs->v[i].status == RD_GH_QUEUED && qj_reuse_queued_run(op, url)) {
            free(url);
            continue;
        }
        op->pending++;
        gh_pager_start(op->gh, url, op->scope, op->owner, qj_jobs_page, qj_jobs_memo_free,
                       qj_pager_done, op, op->ctr, false);
        free(url);
    }
    return 0;
}

int rd_github_list_queued_jobs(rd_github_t *gh, const char *owner, const char *repo,
                               rd_github_jobs_cb cb, void *ud)
{
    if (owner == NULL || repo == NULL || !*owner || !*repo || cb == NULL)
        return RD_EINVAL;
    char *scope = rd_xasprintf("repos/%s/%s", owner, repo);
    int rc = gh_start_check(gh, scope);
    if (rc != 0) {
        free(scope);
        return rc;
    }
    qj_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->owner = rd_xstrdup(owner);
    op->repo = rd_xstrdup(repo);
    op->scope = scope;
    char *o = rd_ghurl_seg(owner), *r = rd_ghurl_seg(repo);
    op->base = rd_xasprintf("%s/repos/%s/%s", gh->api_url, o, r);
    free(o);
    free(r);
    op->cb = cb;
    op->ud = ud;
    op->jobs.total_count = -1;
    /* A run is in_progress as soon as one of its jobs starts, and "waiting" while
     * one of its jobs waits for an environment's approval: in both a sibling job
     * may be queued (docs/discovery.md, "Which runs are read"). "pending" runs
     * (a concurrency group) and "requested" ones (jobs not made yet) hold none. */
    static const char *const statuses[] = {"queued", "in_progress", "waiting"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(statuses); i++) {
        char *url = rd_xasprintf("%s/actions/runs?status=%s&per_page=100", op->base, statuses[i]);
        op->pending++;
        gh_pager_start(gh, url, op->scope, op->owner, qj_runs_page, qj_runs_memo_free,
                       qj_pager_done, op, op->ctr, false);
        free(url);
    }
    return 0;
}

/* ------------------------------------------------------------------ ops: lists */

typedef struct {
    rd_github_t *gh;
    char *scope;
    int kind; /* 0 repos, 1 runners, 2 groups */
    rd_gh_repos_t repos;
    rd_gh_runners_t runners;
    rd_gh_groups_t groups;
    char *group_name;
    union {
        rd_github_repos_cb repos;
        rd_github_runners_cb runners;
        rd_github_group_cb group;
    } cb;
    void *ud;
} list_op_t;

static int list_page(void *ud, gh_page_t *pg)
{
    list_op_t *op = ud;
    const char *body = pg->body;
    size_t len = pg->len;
    if (op->kind == 0) {
        rd_gh_repos_t page;
        if (rd_ghjson_parse_repos(body, len, &page) != 0)
            return RD_EPROTO;
        op->repos.v = rd_xrealloc(op->repos.v, (op->repos.n + page.n + 1) * sizeof(rd_gh_repo_t));
        memcpy(op->repos.v + op->repos.n, page.v, page.n * sizeof(rd_gh_repo_t));
        op->repos.n += page.n;
        free(page.v);
    } else if (op->kind == 1) {
        rd_gh_runners_t page;
        if (rd_ghjson_parse_runners(body, len, &page) != 0)
            return RD_EPROTO;
        op->runners.v =
            rd_xrealloc(op->runners.v, (op->runners.n + page.n + 1) * sizeof(rd_gh_runner_t));
        memcpy(op->runners.v + op->runners.n, page.v, page.n * sizeof(rd_gh_runner_t));
        op->runners.n += page.n;
        op->runners.total_count = page.total_count;
        free(page.v);
    } else {
        rd_gh_groups_t page;
        if (rd_ghjson_parse_groups(body, len, &page) != 0)
            return RD_EPROTO;
        op->groups.v =
            rd_xrealloc(op->groups.v, (op->groups.n + page.n + 1) * sizeof(rd_gh_group_t));
        memcpy(op->groups.v + op->groups.n, page.v, page.n * sizeof(rd_gh_group_t));
        op->groups.n += page.n;
        free(page.v);
    }
    return 0;
}

/* Issue 17 F8: an org's listing names that org's repositories only; polling an
 * entry of another owner would spend the budget on, and start runners for, a
 * repository nobody configured. */
static void repos_check_org(list_op_t *op)
{
    const char *org = op->scope + 5; /* "orgs/ORG" */
    char *first = NULL;
    size_t dropped = rd_ghjson_repos_keep_org(&op->repos, org, &first);
    if (dropped > 0)
        rd_warn(LOGC, "%s: the listing names %zu repositor%s not of %s (first: \"%s\"); ignored",
                op->scope, dropped, dropped == 1 ? "y" : "ies", org, first ? first : "");
    free(first);
}

static void list_done(void *ud, int err)
{
    list_op_t *op = ud;
    if (err == 0)
        gh_scope_ok(op->gh, op->scope);
    else if (gh_err_counts(err))
        gh_scope_failed(op->gh, op->scope);
    if (op->kind == 0) {
        if (err == 0)
            repos_check_org(op);
        op->repos.total_count = (int64_t)op->repos.n;
        op->cb.repos(op->ud, err, err == 0 ? &op->repos : NULL);
    } else if (op->kind == 1) {
        op->runners.total_count = (int64_t)op->runners.n;
        op->cb.runners(op->ud, err, err == 0 ? &op->runners : NULL);
    } else {
        int64_t id = 0;
        if (err == 0) {
            for (size_t i = 0; i < op->groups.n && id == 0; i++)
                if (strcasecmp(op->groups.v[i].name, op->group_name) == 0)
                    id = op->groups.v[i].id;
            if (id == 0) {
                rd_error(LOGC, "%s: no runner group named \"%s\"", op->scope, op->group_name);
                err = RD_ENOENT;
            }
        }
        op->cb.group(op->ud, err, id);
    }
    rd_gh_repos_free(&op->repos);
    rd_gh_runners_free(&op->runners);
    rd_gh_groups_free(&op->groups);
    free(op->group_name);
    free(op->scope);
    free(op);
}

static char *owner_of_scope(const char *scope)
{
    const char *p = strchr(scope, '/');
    if (p == NULL)
        return rd_xstrdup(scope);
    p++;
    return rd_xstrndup(p, strcspn(p, "/"));
}

static int valid_scope(const char *scope)
{
    if (scope == NULL)
        return 0;
    if (strncmp(scope, "repos/", 6) == 0) {
        const char *p = scope + 6, *s = strchr(p, '/');
        return s && s > p && s[1] && !strchr(s + 1, '/');
    }
    if (strncmp(scope, "orgs/", 5) == 0)
        return scope[5] && !strchr(scope + 5, '/');
    return 0;
}

static list_op_t *list_op_new(rd_github_t *gh, const char *scope, int kind, void *ud)
{
    list_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->scope = rd_xstrdup(scope);
    op->kind = kind;
    op->ud = ud;
    op->repos.total_count = op->runners.total_count = op->groups.total_count = -1;
    return op;
}

int rd_github_list_org_repos(rd_github_t *gh, const char *org, rd_github_repos_cb cb, void *ud)
{
    if (org == NULL || !*org || cb == NULL)
        return RD_EINVAL;
    char *scope = rd_xasprintf("orgs/%s", org);
    int rc = gh_start_check(gh, scope);
    if (rc != 0) {
        free(scope);
        return rc;
    }
    list_op_t *op = list_op_new(gh, scope, 0, ud);
    op->cb.repos = cb;
    char *o = rd_ghurl_seg(org);
    char *url = rd_xasprintf("%s/orgs/%s/repos?per_page=100", gh->api_url, o);
    gh_pager_start(gh, url, scope, org, list_page, NULL, list_done, op, NULL, false);
    free(url);
    free(o);
    free(scope);
    return 0;
}

/* "repos/O/R" or "orgs/O" -> the URL prefix with segments encoded. */
static char *scope_url(rd_github_t *gh, const char *scope)
{
    if (strncmp(scope, "orgs/", 5) == 0) {
        char *o = rd_ghurl_seg(scope + 5);
        char *u = rd_xasprintf("%s/orgs/%s", gh->api_url, o);
        free(o);
        return u;
    }
    const char *p = scope + 6, *s = strchr(p, '/');
    char *ow = rd_xstrndup(p, (size_t)(s - p));
    char *o = rd_ghurl_seg(ow), *r = rd_ghurl_seg(s + 1);
    char *u = rd_xasprintf("%s/repos/%s/%s", gh->api_url, o, r);
    free(ow);
    free(o);
    free(r);
    return u;
}

int rd_github_list_runners(rd_github_t *gh, const char *scope, rd_github_runners_cb cb, void *ud)
{
    if (!valid_scope(scope) || cb == NULL)
        return RD_EINVAL;
    int rc = gh_start_check(gh, scope);
    if (rc != 0)
        return rc;
    list_op_t *op = list_op_new(gh, scope, 1, ud);
    op->cb.runners = cb;
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runners?per_page=100", base);
    gh_pager_start(gh, url, scope, owner, list_page, NULL, list_done, op, NULL, false);
    free(url);
    free(base);
    free(owner);
    return 0;
}

/* Answers for repo scopes (always group 1) are delivered from the loop. */
typedef struct {
    uv_timer_t t;
    rd_github_group_cb cb;
    void *ud;
} group_now_t;

static void group_now_closed(uv_handle_t *h)
{
    free(rd_container_of((uv_timer_t *)h, group_now_t, t));
}

static void group_now_cb(uv_timer_t *t)
{
    group_now_t *g = rd_container_of(t, group_now_t, t);
    g->cb(g->ud, 0, 1);
    uv_close((uv_handle_t *)t, group_now_closed);
}

int rd_github_runner_group_id(rd_github_t *gh, const char *scope, const char *group_name,
                              rd_github_group_cb cb, void *ud)
{
    if (!valid_scope(scope) || cb == NULL)
        return RD_EINVAL;
    if (gh->closing)
        return RD_ECANCELED;
    if (strncmp(scope, "repos/", 6) == 0 || group_name == NULL ||
        strcasecmp(group_name, "Default") == 0) {
        group_now_t *g = rd_xcalloc(1, sizeof(*g));
        uv_timer_init(gh->loop, &g->t);
        g->cb = cb;
        g->ud = ud;
        uv_timer_start(&g->t, group_now_cb, 0, 0);
        return 0;
    }
    int rc = gh_start_check(gh, scope);
    if (rc != 0)
        return rc;
    list_op_t *op = list_op_new(gh, scope, 2, ud);
    op->cb.group = cb;
    op->group_name = rd_xstrdup(group_name);
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runner-groups?per_page=100", base);
    gh_pager_start(gh, url, scope, owner, list_page, NULL, list_done, op, NULL, false);
    free(url);
    free(base);
    free(owner);
    return 0;
}

/* ------------------------------------------------------------------ ops: mutations */

/* A generate-jitconfig whose answer was lost (a reset or a 5xx: GitHub may have
 * made the runner) is recovered this many times: look the name up, delete what
 * is there, ask again. Otherwise a lost answer fails the runner start and the
 * pool backs off although GitHub is fine. */
#define GH_JIT_RECOVERIES 3

typedef struct {
    rd_github_t *gh;
    rd_github_jit_cb jit;
    rd_github_done_cb done;
    void *ud;
    char *scope, *owner, *base;
    char *name, *body; /* generate-jitconfig: the runner's name, the request body */
    unsigned recoveries;
    int lost_err;     /* the error that started the recovery */
    int64_t found_id; /* the registration the lookup found, 0 none */
} mut_op_t;

static void mut_op_free(mut_op_t *op)
{
    free(op->scope);
    free(op->owner);
    free(op->base);
    free(op->name);
    free(op->body);
    free(op);
}

static mut_op_t *mut_op_new(rd_github_t *gh, const char *scope, void *ud)
{
    mut_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->ud = ud;
    op->scope = rd_xstrdup(scope);
    op->owner = owner_of_scope(scope);
    op->base = scope_url(gh, scope);
    return op;
}

static void jit_post(mut_op_t *op);
static void jit_lookup(mut_op_t *op);

static void jit_finish(mut_op_t *op, int err, int64_t id, char *enc)
{
    if (enc)
        rd_log_add_secret(enc);
    op->jit(op->ud, err, id, enc);
    if (enc) {
        rd_log_forget_secret(enc);
        gh_wipe_free(enc);
    }
    mut_op_free(op);
}

static void on_jit(gh_req_t *r, int err, long status, const char *body, size_t len,
                   const char *link)
{
    (void)status;
    (void)link;
    mut_op_t *op = r->ud;
    int64_t id = 0;
    char *enc = NULL;
    if (err == 0 && rd_ghjson_parse_jitconfig(body, len, &id, &enc) != 0) {
        rd_error(LOGC, "%s: generate-jitconfig: unexpected payload", op->scope);
        err = RD_EPROTO;
    }
    /* Lost: the connection broke or GitHub failed after it may have made the
     * runner. A timeout is not: that request may still be running on GitHub's
     * side, so a lookup now proves nothing (the caller watches for it). A 409
     * says a runner with this name exists: the name is new for this runner, so
     * only a lost attempt of ours made it (curl itself re-sends a request whose
     * reused connection died before any answer, and that second try meets the
     * runner the first one made). */
    bool lost = (r->transient && !r->timed_out) || err == RD_EEXIST;
    if (err != 0 && lost && op->recoveries < GH_JIT_RECOVERIES && !op->gh->closing) {
        op->recoveries++;
        if (op->lost_err == 0)
            op->lost_err = err;
        rd_info(LOGC,
                "%s: generate-jitconfig for %s: %s; looking the runner up to register it "
                "again",
                op->scope, op->name, rd_strerror(err));
        jit_lookup(op);
        return;
    }
    jit_finish(op, err, id, enc);
}

static void jit_post(mut_op_t *op)
{
    char *url = rd_xasprintf("%s/actions/runners/generate-jitconfig", op->base);
    gh_req_t *r = gh_req_new(op->gh, "POST", url, op->scope, op->owner, AUTH_TOKEN, on_jit, op);
    free(url);
    r->body = rd_xstrdup(op->body);
    r->body_len = strlen(op->body);
    gh_req_submit(op->gh, r);
}

static void on_jit_delete(gh_req_t *r, int err, long status, const char *body, size_t len,
                          const char *link)
{
    (void)r;
    (void)status;
    (void)body;
    (void)len;
    (void)link;
    mut_op_t *op = r->ud;
    if (err != 0 && err != RD_ENOENT) {
        rd_warn(LOGC, "%s: cannot delete runner %lld (%s) left by a lost answer: %s", op->scope,
                (long long)op->found_id, op->name, rd_strerror(err));
        jit_finish(op, op->lost_err, 0, NULL);
        return;
    }
    op->found_id = 0;
    jit_post(op);
}

static int jit_lookup_page(void *ud, gh_page_t *pg)
{
    mut_op_t *op = ud;
    rd_gh_runners_t page;
    if (rd_ghjson_parse_runners(pg->body, pg->len, &page) != 0)
        return RD_EPROTO;
    for (size_t i = 0; i < page.n; i++)
        if (strcmp(page.v[i].name, op->name) == 0)
            op->found_id = page.v[i].id;
    rd_gh_runners_free(&page);
    return 0;
}

static void jit_lookup_done(void *ud, int err)
{
    mut_op_t *op = ud;
    if (err != 0) {
        jit_finish(op, op->lost_err, 0, NULL);
        return;
    }
    if (op->found_id <= 0) {
        jit_post(op);
        return;
    }
    /* Ours for sure (the name is this runner's), and nobody has its JIT config. */
    rd_info(LOGC, "%s: deleting runner %lld (%s) whose registration answer was lost", op->scope,
            (long long)op->found_id, op->name);
    char *url = rd_xasprintf("%s/actions/runners/%lld", op->base, (long long)op->found_id);
    gh_req_t *r =
        gh_req_new(op->gh, "DELETE", url, op->scope, op->owner, AUTH_TOKEN, on_jit_delete, op);
    free(url);
    gh_req_submit(op->gh, r);
}

static void jit_lookup(mut_op_t *op)
{
    op->found_id = 0;
    char *n = rd_ghurl_seg(op->name);
    char *url = rd_xasprintf("%s/actions/runners?name=%s&per_page=100", op->base, n);
    free(n);
    gh_pager_start(op->gh, url, op->scope, op->owner, jit_lookup_page, NULL, jit_lookup_done, op,
                   NULL, true);
    free(url);
}

int rd_github_generate_jitconfig(rd_github_t *gh, const char *scope, const char *name,
                                 const char *const *labels, size_t nlabels, int64_t group_id,
                                 rd_github_jit_cb cb, void *ud)
{
    if (!valid_scope(scope) || name == NULL || !*name || cb == NULL || nlabels == 0 ||
        nlabels > 100)
        return RD_EINVAL;
    /* Only a hold stops a registration; a failing listing of the scope does not. */
    int rc = gh_start_check(gh, NULL);
    if (rc != 0)
        return rc;
    json_object *o = json_object_new_object(), *ls = json_object_new_array();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "runner_group_id",
                           json_object_new_int64(group_id > 0 ? group_id : 1));
    for (size_t i = 0; i < nlabels; i++)
        json_object_array_add(ls, json_object_new_string(labels[i]));
    json_object_object_add(o, "labels", ls);
    json_object_object_add(o, "work_folder", json_object_new_string("_work"));
    mut_op_t *op = mut_op_new(gh, scope, ud);
    op->jit = cb;
    op->name = rd_xstrdup(name);
    op->body = rd_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    jit_post(op);
    return 0;
}

static void on_delete(gh_req_t *r, int err, long status, const char *body, size_t len,
                      const char *link)
{
    (void)status;
    (void)body;
    (void)len;
    (void)link;
    mut_op_t *op = r->ud;
    op->done(op->ud, err);
    mut_op_free(op);
}

int rd_github_delete_runner(rd_github_t *gh, const char *scope, int64_t runner_id,
                            rd_github_done_cb cb, void *ud)
{
    if (!valid_scope(scope) || runner_id <= 0 || cb == NULL)
        return RD_EINVAL;
    int rc = gh_start_check(gh, NULL);
    if (rc != 0)
        return rc;
    mut_op_t *op = mut_op_new(gh, scope, ud);
    op->done = cb;
    char *url = rd_xasprintf("%s/actions/runners/%lld", op->base, (long long)runner_id);
    gh_req_t *r = gh_req_new(gh, "DELETE", url, scope, op->owner, AUTH_TOKEN, on_delete, op);
    free(url);
    gh_req_submit(gh, r);
    return 0;
}

/* Fleet mode's bootstrap (docs/fleet.md, protocol 1.3): a registration token of a scope. */
typedef struct {
    rd_github_regtoken_cb cb;
    void *ud;
} regtok_op_t;

static void on_regtoken(gh_req_t *r, int err, long status, const char *body, size_t len,
                        const char *link)
{
    (void)status;
    (void)link;
    regtok_op_t *op = r->ud;
    char *tok = NULL;
    int64_t exp = 0;
    if (err == 0 && rd_ghjson_parse_token(body, len, &tok, &exp) != 0)
        err = RD_EPROTO;
    if (tok)
        rd_log_add_secret(tok);
    op->cb(op->ud, err, tok, exp);
    if (tok) {
        rd_log_forget_secret(tok);
        gh_wipe_free(tok);
    }
    free(op);
}

int rd_github_registration_token(rd_github_t *gh, const char *scope, rd_github_regtoken_cb cb,
                                 void *ud)
{
    if (!valid_scope(scope) || cb == NULL)
        return RD_EINVAL;
    int rc = gh_start_check(gh, scope);
    if (rc != 0)
        return rc;
    regtok_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->cb = cb;
    op->ud = ud;
    char *base = scope_url(gh, scope), *owner = owner_of_scope(scope);
    char *url = rd_xasprintf("%s/actions/runners/registration-token", base);
    gh_req_t *r = gh_req_new(gh, "POST", url, scope, owner, AUTH_TOKEN, on_regtoken, op);
    free(url);
    free(base);
    free(owner);
    gh_req_submit(gh, r);
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

static void pace_cfg_from(const rd_github_config_t *cfg, rd_pace_config_t *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->budget_per_hour = cfg->request_budget_per_hour;
    pc->poll_interval_ms = cfg->poll_interval_ms;
    /* Tests and benchmarks against the local fake may lift the rate cap. */
    const char *r = getenv("RUNNERD_MAX_REQUEST_RATE");
    if (r && *r) {
        double v = strtod(r, NULL);
        pc->max_rate_per_s = v > 0 ? v : -1;
    }
    /* Likewise the registration bucket (GitHub's 10,000/h), in requests/s. */
    r = getenv("RUNNERD_MAX_REGISTRATION_RATE");
    if (r && *r) {
        double v = strtod(r, NULL);
        pc->priority_rate_per_s = v > 0 ? v : -1;
    }
}

int rd_github_new(uv_loop_t *loop, const rd_github_config_t *cfg, rd_github_t **out)
{
    *out = NULL;
    if (cfg->api_url == NULL)
        return RD_EINVAL;
    char *origin = rd_ghurl_origin(cfg->api_url);
    if (origin == NULL) {
        rd_error(LOGC, "api_url %s is not an absolute URL", cfg->api_url);
        return RD_EINVAL;
    }
    char *pat;
    rd_auth_key_t *key;
    int rc = gh_creds_load(cfg, &pat, &key);
    if (rc != 0) {
        free(origin);
        return rc;
    }
    rd_github_t *gh = rd_xcalloc(1, sizeof(*gh));
    gh->loop = loop;
    gh->cache = rd_ghcache_new(GH_CACHE_MAX_BYTES, GH_CACHE_MAX_AGE_MS);
    gh->origin = origin;
    gh->api_url = rd_xstrdup(cfg->api_url);
    size_t n = strlen(gh->api_url);
    while (n > 0 && gh->api_url[n - 1] == '/')
        gh->api_url[--n] = '\0';
    gh->max_inflight = cfg->max_connections ? cfg->max_connections : 8;
    gh_creds_set(gh, cfg, pat, key);
    rd_http_options_t ho = {
        .max_connections = gh->max_inflight,
        .total_timeout_ms = GH_TOTAL_TIMEOUT_MS,
        .max_body = GH_MAX_BODY,
        .ca_file = cfg->ca_file,
        .user_agent = "runnerd/" RD_VERSION,
    };
    rc = rd_http_new(loop, &ho, &gh->http);
    if (rc != 0) {
        gh_auth_free(gh);
        rd_ghcache_free(gh->cache);
        free(gh->api_url);
        free(gh->origin);
        free(gh);
        return rc;
    }
    rd_pace_config_t pc;
    pace_cfg_from(cfg, &pc);
    gh->pace = rd_pace_new(&pc, gh_now_ms());
    uv_timer_init(loop, &gh->gate_timer);
    gh->rnd = (uint64_t)gh_now_ms() ^ ((uint64_t)getpid() << 32);
    gh->stats.rl_limit = gh->stats.rl_remaining = gh->stats.rl_reset = -1;
    *out = gh;
    return 0;
}

int rd_github_reconfigure(rd_github_t *gh, const rd_github_config_t *cfg)
{
    char *origin = cfg->api_url ? rd_ghurl_origin(cfg->api_url) : NULL;
    if (origin == NULL)
        return RD_EINVAL;
    char *pat;
    rd_auth_key_t *key;
    int rc = gh_creds_load(cfg, &pat, &key);
    if (rc != 0) {
        free(origin);
        return rc;
    }
    if (strcmp(gh->api_url, cfg->api_url) != 0) {
        /* Another server: nothing cached applies any more. */
        rd_ghcache_clear(gh->cache);
        gh_auth_flush(gh);
        free(gh->api_url);
        gh->api_url = rd_xstrdup(cfg->api_url);
    }
    free(gh->origin);
    gh->origin = origin;
    gh_creds_set(gh, cfg, pat, key);
    if (cfg->max_connections)
        gh->max_inflight = cfg->max_connections; /* http keeps its own cap until restart */
    /* Always, even when the path is the same: the file may have been replaced. */
    rd_http_set_ca_file(gh->http, cfg->ca_file);
    rd_pace_config_t pc;
    pace_cfg_from(cfg, &pc);
    rd_pace_reconfigure(gh->pace, &pc);
    gh_gate_kick(gh);
    return 0;
}

static void on_gate_closed(uv_handle_t *h)
{
    rd_github_t *gh = rd_container_of((uv_timer_t *)h, rd_github_t, gate_timer);
    rd_ghcache_free(gh->cache);
    gh_scopes_free(gh);
    gh_auth_free(gh);
    rd_pace_free(gh->pace);
    free(gh->api_url);
    free(gh->origin);
    void (*cb)(void *) = gh->closed_cb;
    void *ud = gh->closed_ud;
    free(gh);
    if (cb)
        cb(ud);
}

/* http is closed: every in-flight request has had its RD_ECANCELED callback.
 * Deliver what is left (failures queued meanwhile), then close the timer. */
static void on_http_closed(void *ud)
{
    rd_github_t *gh = ud;
    gh->http = NULL;
    uv_timer_stop(&gh->gate_timer);
    gh_gate_run(gh);
    uv_close((uv_handle_t *)&gh->gate_timer, on_gate_closed);
}

void rd_github_close(rd_github_t *gh, void (*closed_cb)(void *ud), void *ud)
{
    if (gh->closing)
        return;
    gh->closing = true;
    gh->closed_cb = closed_cb;
    gh->closed_ud = ud;
    /* Queued and parked requests fail with RD_ECANCELED from the loop. */
    gh_auth_cancel(gh);
    gh_queue_cancel(gh);
    gh_gate_kick(gh);
    /* In-flight requests: http delivers RD_ECANCELED to on_http_done. */
    rd_http_close(gh->http, on_http_closed, gh);
}

void rd_github_get_stats(const rd_github_t *gh, rd_github_stats_t *out)
{
    *out = gh->stats;
    out->budget_per_hour = rd_pace_budget(gh->pace);
    out->budget_used_last_hour = rd_pace_used(gh->pace, gh_now_ms());
    out->inflight = gh->inflight;
}

rd_pace_t *rd_github_pace(rd_github_t *gh)
{
    return gh->pace;
}
