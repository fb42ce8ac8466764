/* test_ledger.c: the demand ledger with an injected clock: a runner that runs
 * another job than the one it was started for, a job list older than the
 * runner list, adopted runners, webhooks against stale polls, and a property
 * test that drives the ledger and the planner through random permuted
 * assignment orders and event interleavings against a model of GitHub: no job
 * ever gets two runners, no servable job is left without one; and waves of
 * short jobs handed out oldest first: no job waits for the taken margin. */
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
#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/planner.h"
#include "runnerd/core/sched.h"

static char *L[] = {"self-hosted", "linux", "x64"};
static const char *PL[] = {"self-hosted", "linux", "x64"};

static const char *PCFG = "github:\n"
                          "  api_url: http://127.0.0.1:1\n"
                          "  token_env: T\n"
                          "host:\n"
                          "  cpus: 64\n"
                          "  memory: 64GiB\n"
                          "  arch: x64\n"
                          "  max_runners: 100\n"
                          "instance: t\n"
                          "pools:\n"
                          "  - name: small\n"
                          "    labels: [self-hosted, linux, x64]\n"
                          "    image: img\n"
                          "    cpus: 1\n"
                          "    memory: 1GiB\n"
                          "    max_runners: 100\n"
                          "    idle_timeout: 24h\n"
                          "targets:\n"
                          "  - repo: octo/a\n";

static rd_config_t *load_cfg(void)
{
    rd_host_facts_t facts = {
        .cores = 64, .mem_total = 64ull << 30, .arch = RD_ARCH_X64, .hostname = "h"};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("p.yaml", PCFG, strlen(PCFG), &facts, &cfg, &errs);
    if (rc != 0) {
        char *es = rd_config_errors_format(&errs);
        fputs(es, stderr);
        free(es);
    }
    rd_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

/* The config every test uses (target 0: repo octo/a; pool 0: small). */
static rd_config_t *CFG;
static rd_idents_t *IDS; /* applied to CFG */

static rd_ledger_t *ledger_new(void)
{
    rd_ledger_t *l = rd_ledger_new();
    rd_ledger_set_config(l, CFG);
    return l;
}

static int group_setup(void **state)
{
    (void)state;
    CFG = load_cfg();
    IDS = rd_idents_new();
    rd_idents_apply(IDS, CFG);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rd_idents_free(IDS);
    rd_config_free(CFG);
    return 0;
}

static rd_gh_job_t job(int64_t id, int64_t created_ms)
{
    return (rd_gh_job_t){
        .id = id, .run_id = 1, .labels = L, .nlabels = 3, .created_ms = created_ms};
}

/* A poll of octo/a (target 0) that started at `started` and ends at `now`. */
static bool poll(rd_ledger_t *l, const int64_t *queued, size_t nq,
                 const rd_ledger_running_t *running, size_t nr, int64_t started, int64_t now,
                 rd_ledger_actions_t *acts)
{
    rd_gh_job_t v[64];
    for (size_t i = 0; i < nq; i++)
        v[i] = job(queued[i], 1000 + queued[i]);
    rd_ledger_poll_t ev = {.repo = "octo/a",
                           .started_ms = started,
                           .queued = v,
                           .nqueued = nq,
                           .running = running,
                           .nrunning = nr};
    return rd_ledger_poll(l, &ev, now, acts);
}

static bool has_action(const rd_ledger_actions_t *a, rd_ledger_action_kind_t kind, const char *name,
                       int64_t job_id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].kind == kind && strcmp(a->v[i].name, name) == 0 && a->v[i].job_id == job_id)
            return true;
    return false;
}

static rd_ledger_runner_t runner(uint64_t key, const char *name, rd_runner_state_t st, int64_t job,
                                 bool unknown, bool ran)
{
    return (rd_ledger_runner_t){.key = key,
                                .name = name,
                                .pool = 0,
                                .pool_labels = PL,
                                .npool_labels = 3,
                                .state = st,
                                .job_id = job,
                                .job_unknown = unknown,
                                .ran_job = ran};
}

/* GitHub gives job 2 to the runner started for job 1: the one started for job
 * 2 is counted against job 1 instead, so job 1 (still queued) stays covered and
 * job 2 (in progress) is not covered twice. */
static void test_runner_runs_another_job(void **state)
{
    (void)state;
    rd_ledger_t *l = ledger_new();
    int64_t q[] = {1, 2};
    assert_true(poll(l, q, 2, NULL, 0, 100, 200, NULL));
    rd_ledger_runner_started(l, 11, "runnerd-a", 0, 0, 1, 300);
    rd_ledger_runner_started(l, 12, "runnerd-b", 0, 0, 2, 300);
    rd_ledger_running_t run[] = {{2, "runnerd-a"}, {7, "someone-else"}};
    int64_t q1[] = {1};
    rd_ledger_actions_t acts = {0};
    assert_true(poll(l, q1, 1, run, 2, 400, 500, &acts));
    assert_int_equal(rd_ledger_runner_job(l, 11, 0), 2);
    assert_int_equal(rd_ledger_runner_job(l, 12, 0), 1);
    assert_true(has_action(&acts, RD_LEDGER_RUNS, "runnerd-a", 2));
    assert_true(has_action(&acts, RD_LEDGER_COUNTED, "runnerd-b", 1));
    assert_int_equal(acts.n, 2); /* not ours: no action */
    rd_ledger_actions_clear(&acts);
    assert_int_equal(rd_ledger_count(l), 1);
    assert_non_null(rd_ledger_job(l, 1));
    /* GitHub's word again: nothing moves; a runner named later keeps its own */
    poll(l, q1, 1, run, 1, 600, 700, &acts);
    assert_int_equal(rd_ledger_runner_job(l, 12, 0), 1);
    assert_int_equal(acts.n, 1);
    rd_ledger_actions_clear(&acts);
    /* an unknown runner key: the caller's fallback */
    assert_int_equal(rd_ledger_runner_job(l, 99, -5), -5);
    rd_ledger_free(l);
}

/* The fourth runner: a runner ran its job and exited; a poll that started
 * before the exit (its job list older than the runner list) still lists the
 * job queued. It is not demand until a poll started TAKEN_MARGIN after the exit
 * lists it; then it is (the runner ran another job after all). */
static void test_job_list_older_than_runner_list(void **state)
{
    (void)state;
    rd_ledger_t *l = ledger_new();
    int64_t q[] = {5};
    poll(l, q, 1, NULL, 0, 100, 200, NULL);
    rd_ledger_runner_started(l, 1, "runnerd-x", 0, 0, 5, 300);
    rd_ledger_runner_t r = runner(1, "runnerd-x", RD_RUNNER_EXITED, 5, false, true);
    rd_ledger_runner_exited(l, &r, 10000);
    assert_null(rd_ledger_job(l, 5));
    /* in flight across the exit, answered long after: still stale */
    assert_false(poll(l, q, 1, NULL, 0, 9000, 30000, NULL));
    assert_null(rd_ledger_job(l, 5));
    /* started within the margin: GitHub's list may lag */
    assert_false(poll(l, q, 1, NULL, 0, 10000 + RD_LEDGER_TAKEN_MARGIN_MS - 1, 30000, NULL));
    assert_null(rd_ledger_job(l, 5));
    /* started after it: really queued */
    assert_true(poll(l, q, 1, NULL, 0, 10000 + RD_LEDGER_TAKEN_MARGIN_MS, 30001, NULL));
    assert_non_null(rd_ledger_job(l, 5));
    /* and the correction is over: a later stale-looking sighting keeps it */
    poll(l, q, 1, NULL, 0, 9000, 30002, NULL);
    assert_non_null(rd_ledger_job(l, 5));
    /* a runner that exits without having run a job took nothing */
    rd_ledger_runner_started(l, 2, "runnerd-y", 0, 0, 5, 31000);
    r = runner(2, "runnerd-y", RD_RUNNER_EXITED, 5, false, false);
    rd_ledger_runner_exited(l, &r, 32000);
    assert_non_null(rd_ledger_job(l, 5));
    rd_ledger_free(l);
}

/* A webhook said a job started or finished: a stale poll page or a late
 * "queued" delivery does not bring it back; "waiting" takes it out without that. */
static void test_webhooks_against_stale_polls(void **state)
{
    (void)state;
    rd_ledger_t *l = ledger_new();
    rd_gh_job_t j = job(9, 50);
    j.repo = "other/x";
    assert_false(rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &j, 100, NULL)); /* unwatched */
    j.repo = "OCTO/A"; /* names compare case-insensitively */
    assert_true(rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &j, 100, NULL));
    assert_non_null(rd_ledger_job(l, 9));
    j.runner_name = "runnerd-z";
    rd_ledger_actions_t acts = {0};
    rd_ledger_webhook(l, RD_WEBHOOK_JOB_IN_PROGRESS, &j, 200, &acts);
    assert_true(has_action(&acts, RD_LEDGER_RUNS, "runnerd-z", 9));
    rd_ledger_actions_clear(&acts);
    assert_null(rd_ledger_job(l, 9));
    int64_t q[] = {9};
    assert_false(poll(l, q, 1, NULL, 0, 150, 300, NULL));
    assert_null(rd_ledger_job(l, 9));
    j.runner_name = NULL;
    assert_false(rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &j, 400, NULL));
    rd_ledger_webhook(l, RD_WEBHOOK_JOB_COMPLETED, &j, 500, &acts);
    assert_int_equal(acts.n, 0); /* no runner named: nothing for the supervisor */
    /* waiting: out of demand, but a later queued delivery brings it back */
    rd_gh_job_t w = job(10, 60);
    w.repo = "octo/a";
    rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &w, 600, NULL);
    rd_ledger_webhook(l, RD_WEBHOOK_JOB_WAITING, &w, 700, NULL);
    assert_null(rd_ledger_job(l, 10));
    assert_true(rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &w, 800, NULL));
    /* a poll that started after a delivery does not drop it; one before does not either */
    assert_false(poll(l, NULL, 0, NULL, 0, 700, 900, NULL));
    assert_non_null(rd_ledger_job(l, 10));
    assert_true(poll(l, NULL, 0, NULL, 0, 850, 950, NULL));
    assert_null(rd_ledger_job(l, 10));
    assert_true(rd_ledger_unmatched_once(l, 9) == false);
    rd_ledger_free(l);
}

/* Adopted runners do not tell which job they were started for: one that turns
 * busy is counted against the oldest queued job of its scope that its pool
 * serves and no other runner holds; one that exits after a job takes that job
 * out of demand. */
static void test_adopted_runners(void **state)
{
    (void)state;
    rd_ledger_t *l = ledger_new();
    int64_t q[] = {3, 4, 5};
    poll(l, q, 3, NULL, 0, 100, 200, NULL);
    rd_gh_job_t gpu = job(2, 1000); /* the oldest, but no x64 runner serves it */
    char *gl[] = {"self-hosted", "gpu"};
    gpu.labels = gl;
    gpu.nlabels = 2;
    gpu.repo = "octo/a";
    rd_ledger_webhook(l, RD_WEBHOOK_JOB_QUEUED, &gpu, 250, NULL);
    rd_ledger_runner_t snap[3] = {
        runner(1, "runnerd-old", RD_RUNNER_BUSY, 3, false, false), /* holds job 3 */
        runner(2, "runnerd-a", RD_RUNNER_IDLE, 0, true, false),
        runner(3, "runnerd-b", RD_RUNNER_STARTING, 0, true, false),
    };
    rd_ledger_actions_t acts = {0};
    rd_ledger_runners(l, snap, 3, 300, &acts);
    assert_int_equal(acts.n, 0); /* nobody turned busy */
    assert_int_equal(rd_ledger_runner_job(l, 1, -1), 3);
    assert_int_equal(rd_ledger_runner_job(l, 2, -1), 0);
    snap[1].state = RD_RUNNER_BUSY;
    rd_ledger_runners(l, snap, 3, 400, &acts);
    assert_true(has_action(&acts, RD_LEDGER_ASSUMED, "runnerd-a", 4));
    assert_int_equal(rd_ledger_runner_job(l, 2, -1), 4);
    rd_ledger_actions_clear(&acts);
    /* the supervisor recorded the assumption; the same snapshot moves nothing */
    snap[1].job_id = 4;
    snap[1].job_unknown = false;
    rd_ledger_runners(l, snap, 3, 500, &acts);
    assert_int_equal(acts.n, 0);
    /* runnerd-b exits after a job before any list showed it busy: the oldest
     * unheld job it could run (5) is taken */
    rd_ledger_runner_t gone = runner(3, "runnerd-b", RD_RUNNER_EXITED, 0, true, true);
    rd_ledger_runner_exited(l, &gone, 600);
    assert_null(rd_ledger_job(l, 5));
    assert_non_null(rd_ledger_job(l, 3));
    assert_non_null(rd_ledger_job(l, 2));
    /* a runner that vanished from the snapshot is forgotten */
    rd_ledger_runners(l, snap, 1, 700, &acts);
    assert_int_equal(rd_ledger_runner_job(l, 2, -1), -1);
    rd_ledger_free(l);
}

/* ------------------------------------------------------------------ */
/* Property: the ledger and the planner against a model of GitHub        */

#define NJ 12    /* jobs of the property test */
#define NJMAX 64 /* room for the wave test's */
#define NRUN 64

typedef enum { GJ_QUEUED, GJ_RUNNING, GJ_DONE } gjob_t;

static bool trace_on;
#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (trace_on)                                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

typedef struct {
    uint64_t key;
    char name[32];
    bool gh_online;         /* GitHub: online */
    int64_t gh_job;         /* GitHub: the job it runs (0: idle) */
    bool ran;               /* GitHub: it finished a job (then its container exits) */
    rd_runner_state_t seen; /* runnerd's state for it (from runner lists and actions) */
    bool exited;
    int64_t online_at;  /* wave test: when it connects to GitHub */
    int64_t busy_until; /* wave test: when its job ends */
} srunner_t;

typedef struct {
    int64_t at; /* when GitHub's lists were read */
    int64_t queued[NJMAX];
    size_t nq;
    rd_ledger_running_t running[NJMAX];
    char names[NJMAX][32];
    size_t nr;
} spoll_t;

typedef struct {
    rd_config_t *cfg;
    rd_ledger_t *l;
    int64_t now;
    int64_t maxj;           /* job ids 1..maxj */
    gjob_t jobs[NJMAX + 1]; /* by id */
    int64_t runner_of[NJMAX + 1];
    srunner_t r[NRUN];
    size_t nr;
    spoll_t polls[8];
    size_t npolls;
    size_t max_polls;    /* polls in flight at once */
    int64_t max_poll_ms; /* a poll is answered within this (0: any time) */
    bool strict;         /* assert: never more runners than jobs */
    unsigned started;
    unsigned njobs;
    uint64_t seed;
} sim_t;

static srunner_t *sim_runner_named(sim_t *s, const char *name)
{
    for (size_t i = 0; i < s->nr; i++)
        if (strcmp(s->r[i].name, name) == 0)
            return &s->r[i];
    return NULL;
}

static void sim_apply(sim_t *s, rd_ledger_actions_t *acts)
{
    for (size_t i = 0; i < acts->n; i++) {
        srunner_t *r = sim_runner_named(s, acts->v[i].name);
        if (r != NULL && !r->exited &&
            (acts->v[i].kind == RD_LEDGER_RUNS || acts->v[i].kind == RD_LEDGER_ASSUMED))
            r->seen = RD_RUNNER_BUSY;
    }
    rd_ledger_actions_clear(acts);
}

/* The supervisor's snapshot event, then a plan whose starts are carried out. */
static void sim_plan(sim_t *s)
{
    rd_ledger_runner_t snap[NRUN];
    rd_planner_runner_t pr[NRUN];
    size_t n = 0;
    for (size_t i = 0; i < s->nr; i++) {
        srunner_t *r = &s->r[i];
        if (r->exited)
            continue;
        snap[n] = runner(r->key, r->name, r->seen, 0, false, false);
        rd_rstate_t st = r->seen == RD_RUNNER_BUSY   ? RD_RSTATE_BUSY
                         : r->seen == RD_RUNNER_IDLE ? RD_RSTATE_IDLE
                                                     : RD_RSTATE_STARTING;
        pr[n] = (rd_planner_runner_t){.key = r->key,
                                      .pool = rd_idents_pool(IDS, 0),
                                      .target = rd_idents_target(IDS, 0),
                                      .state = st,
                                      .idle_since_ms = s->now,
                                      .cpus = 1,
                                      .memory = 1ull << 30};
        n++;
    }
    rd_ledger_actions_t acts = {0};
    rd_ledger_runners(s->l, snap, n, s->now, &acts);
    sim_apply(s, &acts);
    if (trace_on) {
        TRACE("%lld plan: demand", (long long)s->now);
        size_t it = 0;
        const rd_job_t *j;
        while ((j = rd_ledger_next(s->l, &it)) != NULL)
            TRACE(" %lld", (long long)j->id);
        TRACE("; runners");
        for (size_t i = 0; i < n; i++)
            TRACE(" %s:%d:%lld", snap[i].name + 16, (int)snap[i].state,
                  (long long)rd_ledger_runner_job(s->l, snap[i].key, -1));
        TRACE("\n");
    }
    rd_planner_state_t st = {
        .cfg = s->cfg, .ledger = s->l, .runners = pr, .nrunners = n, .now_ms = s->now};
    rd_planner_input_t pi;
    rd_planner_build(&st, &pi);
    rd_sched_plan_t plan;
    rd_sched_plan(&pi.in, &plan);
    for (size_t d = 0; d < plan.ndecisions; d++) {
        for (unsigned k = 0; k < plan.decisions[d].start; k++) {
            /* no job ever gets two runners: never more starts than jobs */
            assert_true(!s->strict || s->started < s->njobs);
            assert_true(s->nr < NRUN);
            srunner_t *r = &s->r[s->nr++];
            memset(r, 0, sizeof(*r));
            r->key = 1000 + s->nr;
            snprintf(r->name, sizeof(r->name), "runnerd-t-small-%zu", s->nr);
            r->seen = RD_RUNNER_STARTING;
            s->started++;
            TRACE("%lld plan: start %s for job %lld\n", (long long)s->now, r->name,
                  (long long)plan.decisions[d].job_ids[k]);
            rd_ledger_runner_started(s->l, r->key, r->name, 0, 0, plan.decisions[d].job_ids[k],
                                     s->now);
        }
    }
    rd_sched_plan_free(&plan);
    rd_planner_input_free(&pi);
}

static void sim_capture(sim_t *s, spoll_t *p)
{
    memset(p, 0, sizeof(*p));
    p->at = s->now;
    for (int64_t j = 1; j <= s->maxj; j++) {
        if (s->jobs[j] == GJ_QUEUED) {
            p->queued[p->nq++] = j;
        } else if (s->jobs[j] == GJ_RUNNING) {
            srunner_t *r = &s->r[s->runner_of[j] - 1];
            snprintf(p->names[p->nr], sizeof(p->names[p->nr]), "%s", r->name);
            p->running[p->nr].job_id = j;
            p->running[p->nr].runner_name = p->names[p->nr];
            p->nr++;
        }
    }
}

static void sim_deliver(sim_t *s, spoll_t *p)
{
    for (size_t i = 0; i < p->nr; i++) /* the poll was copied: point at this copy's names */
        p->running[i].runner_name = p->names[i];
    rd_gh_job_t v[NJMAX];
    for (size_t i = 0; i < p->nq; i++)
        v[i] = job(p->queued[i], 100 + p->queued[i]);
    rd_ledger_poll_t ev = {.repo = "octo/a",
                           .started_ms = p->at,
                           .queued = v,
                           .nqueued = p->nq,
                           .running = p->running,
                           .nrunning = p->nr};
    rd_ledger_actions_t acts = {0};
    rd_ledger_poll(s->l, &ev, s->now, &acts);
    sim_apply(s, &acts);
}

/* One random event. */
static void sim_step(sim_t *s)
{
    s->now += (int64_t)(rd_rand_next(&s->seed) % 3000);
    for (size_t k = 0; k < s->npolls && s->max_poll_ms > 0;) {
        if (s->now - s->polls[k].at < s->max_poll_ms) {
            k++;
            continue;
        }
        spoll_t p = s->polls[k];
        s->polls[k] = s->polls[--s->npolls];
        TRACE("%lld poll of %lld answered (%zu queued, %zu running)\n", (long long)s->now,
              (long long)p.at, p.nq, p.nr);
        sim_deliver(s, &p);
    }
    size_t i = s->nr ? rd_rand_next(&s->seed) % s->nr : 0;
    srunner_t *r = s->nr ? &s->r[i] : NULL;
    switch (rd_rand_next(&s->seed) % 9) {
    case 0:
        sim_plan(s);
        break;
    case 1: /* a runner comes online */
        if (r != NULL && !r->exited)
            r->gh_online = true;
        break;
    case 2: { /* GitHub hands a random queued job to this runner, if idle and online */
        if (r == NULL || r->exited || !r->gh_online || r->gh_job != 0 || r->ran)
            break;
        int64_t q[NJ];
        size_t nq = 0;
        for (int64_t j = 1; j <= NJ; j++)
            if (s->jobs[j] == GJ_QUEUED)
                q[nq++] = j;
        if (nq == 0)
            break;
        int64_t j = q[rd_rand_next(&s->seed) % nq];
        s->jobs[j] = GJ_RUNNING;
        s->runner_of[j] = (int64_t)i + 1;
        r->gh_job = j;
        TRACE("%lld github: %s takes job %lld\n", (long long)s->now, r->name, (long long)j);
        break;
    }
    case 3: /* a runner list: runnerd sees GitHub's online/busy */
        TRACE("%lld runner list\n", (long long)s->now);
        for (size_t k = 0; k < s->nr; k++) {
            srunner_t *o = &s->r[k];
            if (o->exited || !o->gh_online)
                continue;
            if (o->gh_job != 0)
                o->seen = RD_RUNNER_BUSY;
            else if (o->seen == RD_RUNNER_STARTING)
                o->seen = RD_RUNNER_IDLE;
        }
        break;
    case 4: /* a poll starts: GitHub's lists as of now (one in flight per repository) */
        if (s->npolls < s->max_polls) {
            sim_capture(s, &s->polls[s->npolls++]);
            TRACE("%lld poll starts\n", (long long)s->now);
        }
        break;
    case 5: /* a poll in flight is answered (any order) */
        if (s->npolls > 0) {
            size_t k = rd_rand_next(&s->seed) % s->npolls;
            spoll_t p = s->polls[k];
            s->polls[k] = s->polls[--s->npolls];
            TRACE("%lld poll of %lld answered (%zu queued, %zu running)\n", (long long)s->now,
                  (long long)p.at, p.nq, p.nr);
            sim_deliver(s, &p);
        }
        break;
    case 6: /* a job finishes; the ephemeral runner's container exits */
        if (r != NULL && !r->exited && r->gh_job != 0) {
            s->jobs[r->gh_job] = GJ_DONE;
            r->gh_job = 0;
            r->ran = true;
            r->exited = true;
            rd_ledger_runner_t e = runner(r->key, r->name, RD_RUNNER_EXITED, 0, false, true);
            rd_ledger_runner_exited(s->l, &e, s->now);
            TRACE("%lld %s exits after its job\n", (long long)s->now, r->name);
        }
        break;
    case 7: /* a webhook: in_progress or completed, for a random job */
    case 8: {
        int64_t j = 1 + (int64_t)(rd_rand_next(&s->seed) % NJ);
        if (s->jobs[j] == GJ_QUEUED || s->runner_of[j] == 0)
            break;
        rd_gh_job_t g = job(j, 100 + j);
        g.repo = "octo/a";
        srunner_t *o = &s->r[s->runner_of[j] - 1];
        g.runner_name = o->name;
        rd_ledger_actions_t acts = {0};
        TRACE("%lld webhook %s job %lld on %s\n", (long long)s->now,
              s->jobs[j] == GJ_RUNNING ? "in_progress" : "completed", (long long)j, o->name);
        rd_ledger_webhook(
            s->l, s->jobs[j] == GJ_RUNNING ? RD_WEBHOOK_JOB_IN_PROGRESS : RD_WEBHOOK_JOB_COMPLETED,
            &g, s->now, &acts);
        sim_apply(s, &acts);
        break;
    }
    }
}

static bool all_done(const sim_t *s)
{
    for (int64_t j = 1; j <= s->maxj; j++)
        if (s->jobs[j] != GJ_DONE)
            return false;
    return true;
}

static void test_property_random_interleavings(void **state)
{
    (void)state;
    rd_config_t *cfg = CFG;
    const char *only = getenv("LEDGER_ITER"); /* replay one iteration with a trace */
    /* 0..399: as runnerd polls (one poll of a repository in flight, answered
     * within 5 s, less than the taken margin): no job ever gets two runners.
     * 400..799: answers cross and come any time later: still no job is left
     * without a runner (extra runners are then possible: GitHub never says
     * which job an exited runner ran). */
    for (int iter = 0; iter < 800; iter++) {
        if (only != NULL && atoi(only) != iter)
            continue;
        trace_on = only != NULL;
        TRACE("iteration %d\n", iter);
        sim_t s = {.cfg = cfg,
                   .l = ledger_new(),
                   .now = 100000,
                   .maxj = NJ,
                   .seed = 0x5eed0000u + (uint64_t)iter};
        size_t nj = 1 + rd_rand_next(&s.seed) % NJ;
        s.njobs = (unsigned)nj;
        s.strict = iter < 400;
        s.max_polls = s.strict ? 1 : RD_ARRAY_SIZE(s.polls);
        s.max_poll_ms = s.strict ? 5000 : 0;
        for (int64_t j = 1; j <= NJ; j++)
            s.jobs[j] = (size_t)j <= nj ? GJ_QUEUED : GJ_DONE;
        /* GitHub's first list */
        spoll_t first;
        sim_capture(&s, &first);
        sim_deliver(&s, &first);
        for (int step = 0; step < 200 && !all_done(&s); step++)
            sim_step(&s);
        /* Then settle: every in-flight poll answered, fresh lists; every job
         * still queued must get served by the runners there are or new ones. */
        for (int round = 0; round < 200 && !all_done(&s); round++) {
            while (s.npolls > 0) {
                spoll_t p = s.polls[--s.npolls];
                sim_deliver(&s, &p);
            }
            s.now += RD_LEDGER_TAKEN_MARGIN_MS + 1000;
            spoll_t p;
            sim_capture(&s, &p);
            s.now += 500;
            sim_deliver(&s, &p);
            sim_plan(&s);
            for (size_t k = 0; k < s.nr; k++) {
                srunner_t *r = &s.r[k];
                if (r->exited)
                    continue;
                r->gh_online = true;
                if (r->gh_job == 0) { /* GitHub gives it the first queued job */
                    for (int64_t j = 1; j <= NJ; j++) {
                        if (s.jobs[j] == GJ_QUEUED) {
                            s.jobs[j] = GJ_RUNNING;
                            s.runner_of[j] = (int64_t)k + 1;
                            r->gh_job = j;
                            break;
                        }
                    }
                }
                if (r->gh_job != 0) {
                    r->seen = RD_RUNNER_BUSY;
                    s.jobs[r->gh_job] = GJ_DONE;
                    r->gh_job = 0;
                    r->exited = true;
                    s.now += 10;
                    rd_ledger_runner_t e =
                        runner(r->key, r->name, RD_RUNNER_EXITED, 0, false, true);
                    rd_ledger_runner_exited(s.l, &e, s.now);
                }
            }
        }
        /* no servable job is left without a runner */
        assert_true(all_done(&s));
        /* and none had two: exactly one runner per job (sim_plan asserts it too) */
        if (s.strict)
            assert_int_equal(s.started, nj);
        rd_ledger_free(s.l);
    }
}

/* bench/scaleup.py's latency run in small: jobs queued in waves of 1-5, GitHub
 * hands the OLDEST queued job to whichever runner connects first (so most
 * runners run another job than the one they were started for), jobs last
 * 100 ms, less than the poll interval, so no poll sees most of them in_progress
 * and no runner is ever seen busy. Every job must get a runner within a few
 * poll intervals: a correction that keeps a job still queued out of demand
 * rolls from wave to wave and strands the last wave's jobs until the taken
 * margin (10 s) expires. And no job gets two runners (sim_plan: never more
 * starts than jobs). */
static void test_waves_strand_no_job(void **state)
{
    (void)state;
    const int64_t njobs = 48;
    const char *only = getenv("LEDGER_WAVE"); /* replay one iteration with a trace */
    int stranded = 0;
    for (int iter = 0; iter < 40; iter++) {
        if (only != NULL && atoi(only) != iter)
            continue;
        trace_on = only != NULL;
        int64_t worst = 0, worst_job = 0;
        sim_t s = {.cfg = CFG,
                   .l = ledger_new(),
                   .now = 100000,
                   .maxj = njobs,
                   .strict = true,
                   .njobs = (unsigned)njobs,
                   .max_polls = 1,
                   .seed = 0xa5e50000u + (uint64_t)iter};
        int64_t queued_at[NJMAX + 1] = {0}, taken_at[NJMAX + 1] = {0};
        for (int64_t j = 1; j <= njobs; j++)
            s.jobs[j] = GJ_DONE; /* not created yet */
        int64_t nq = 0, next_wave = s.now, next_poll = s.now + 100 + (s.now % 1000);
        for (int step = 0; step < 1200 && !(nq == njobs && all_done(&s)); step++) {
            s.now += 50;
            if (nq < njobs && s.now >= next_wave) {
                for (uint64_t k = 1 + rd_rand_next(&s.seed) % 5; k > 0 && nq < njobs; k--) {
                    s.jobs[++nq] = GJ_QUEUED;
                    queued_at[nq] = s.now;
                }
                next_wave = s.now + 200 + (int64_t)(rd_rand_next(&s.seed) % 600);
            }
            /* one poll of the repository in flight, answered in 100-300 ms */
            if (s.npolls > 0 && s.now - s.polls[0].at >= 100 + (s.polls[0].at % 3) * 100) {
                s.npolls = 0;
                sim_deliver(&s, &s.polls[0]);
            }
            if (s.npolls == 0 && s.now >= next_poll) {
                sim_capture(&s, &s.polls[s.npolls++]);
                next_poll = s.now + 1000;
            }
            for (size_t i = 0; i < s.nr; i++) {
                srunner_t *r = &s.r[i];
                if (r->exited)
                    continue;
                if (r->online_at == 0) /* started by the last plan: its container starts */
                    r->online_at = s.now + 200 + (int64_t)(rd_rand_next(&s.seed) % 700);
                if (!r->gh_online && s.now >= r->online_at)
                    r->gh_online = true;
                if (r->gh_online && r->gh_job == 0) {
                    for (int64_t j = 1; j <= nq; j++) { /* the oldest queued job */
                        if (s.jobs[j] != GJ_QUEUED)
                            continue;
                        s.jobs[j] = GJ_RUNNING;
                        s.runner_of[j] = (int64_t)i + 1;
                        r->gh_job = j;
                        r->busy_until = s.now + 100;
                        taken_at[j] = s.now;
                        TRACE("%lld github: %s takes job %lld\n", (long long)s.now, r->name,
                              (long long)j);
                        break;
                    }
                } else if (r->gh_job != 0 && s.now >= r->busy_until) {
                    s.jobs[r->gh_job] = GJ_DONE;
                    r->gh_job = 0;
                    r->ran = true;
                    r->exited = true;
                    rd_ledger_runner_t e =
                        runner(r->key, r->name, RD_RUNNER_EXITED, 0, false, true);
                    rd_ledger_runner_exited(s.l, &e, s.now);
                }
            }
            sim_plan(&s);
        }
        assert_int_equal(nq, njobs);
        assert_true(all_done(&s));
        for (int64_t j = 1; j <= njobs; j++) {
            if (taken_at[j] - queued_at[j] > worst) {
                worst = taken_at[j] - queued_at[j];
                worst_job = j;
            }
        }
        if (worst > 4000) {
            fprintf(stderr, "iteration %d: job %lld waited %lld ms for a runner\n", iter,
                    (long long)worst_job, (long long)worst);
            stranded++;
        }
        rd_ledger_free(s.l);
    }
    assert_int_equal(stranded, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runner_runs_another_job),
        cmocka_unit_test(test_job_list_older_than_runner_list),
        cmocka_unit_test(test_webhooks_against_stale_polls),
        cmocka_unit_test(test_adopted_runners),
        cmocka_unit_test(test_property_random_interleavings),
        cmocka_unit_test(test_waves_strand_no_job),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
