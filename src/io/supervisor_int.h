/* supervisor_int.h: what the supervisor's files share (private to src/io/supervisor*.c).
 *
 * The supervisor (supervisor.h) is cut by concern:
 *  - supervisor.c: the object, its supervisor-wide timers (changed, drain), reload,
 *    the read side (snapshot, pool info, foreach), drain and close;
 *  - supervisor_proc.c: docker children: spawn, environment, deadlines, output into
 *    the log, and what each kind of child's exit means;
 *  - supervisor_runner.c: one runner's life: the state machine's actions, its timers,
 *    the docker run argv, pool backoff and degraded state, start/stop/job hints;
 *  - supervisor_reg.c: GitHub: runner groups, generate-jitconfig, registration
 *    deletes and their retries, and reconciliation with GitHub's runner lists;
 *  - supervisor_adopt.c: restart adoption (docker ps, inspect, runner lists).
 *
 * Objects and their handles:
 *  - rd_supervisor_t: four timers (changed, reconcile, backoff, drain).
 *  - sup_runner_t: four timers (startup, job, kill, delete retry); freed on the
 *    last close callback after the state machine said DONE.
 *  - sup_proc_t: one child (docker run / wait / stop / kill / rm / ps /
 *    inspect) with its process handle, two pipes and a linger timer; freed on
 *    the last close. A proc names its runner by key, never by pointer.
 *  - ticket_t: the ud of every GitHub call; detached (sup = NULL) on close so a
 *    late callback frees it and touches nothing else.
 * sup->open counts every open handle; close finishes when it reaches zero. */
#ifndef RUNNERD_SUPERVISOR_INT_H
#define RUNNERD_SUPERVISOR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "runnerd/core/backoff.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/runner.h"
#include "runnerd/io/spawn.h"
#include "runnerd/io/supervisor.h"

#define COMP "supervisor"
/* What a runner's log lines concern: JSON lines carry its name, pool, scope
 * and job (docs/operating.md). */
#define SUP_CTX(r)                                                                                 \
    (&(const rd_log_ctx_t){                                                                        \
        .runner = (r)->name, .pool = (r)->pool_name, .scope = (r)->scope, .job = (r)->m.job_id})
#define CAPTURE_MAX (1u << 20)
#define DELETE_ATTEMPTS 10
#define ADOPT_MIN_STARTUP_MS 60000
#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS 300000
#define STOP_RETRY_MS 2000
/* After a generate-jitconfig whose registration may exist anyway, the scope's runner list
 * is read (each reconcile) for this long, so a late or lost one is found and deleted. */
#define JIT_LOST_WATCH_MS 120000

typedef struct rd_supervisor sup_t;

typedef enum { PK_RUN, PK_WAIT, PK_STOP, PK_KILL, PK_RM, PK_PS, PK_INSPECT } proc_kind_t;

typedef struct {
    char *buf;
    size_t len;
    bool skipping; /* dropping the rest of an over-long line */
} linebuf_t;

typedef struct sup_proc {
    struct sup_proc *next;
    sup_t *sup;
    proc_kind_t kind;
    uint64_t key;   /* runner key, 0 = none */
    size_t index;   /* PK_INSPECT: adoption candidate */
    char *label;    /* runner/container name for logs */
    uint64_t child; /* rd_spawn id; 0 = not running */
    pid_t pid;      /* for the deadline's SIGKILL while !exited */
    bool timed_out; /* killed by its deadline (dockerd did not answer) */
    uv_pipe_t out, err;
    uv_timer_t linger;
    int open;
    bool exited, out_eof, err_eof, finished;
    int64_t exit_status;
    int term_signal;
    linebuf_t lout, lerr;
    /* A runner's output budget (PK_RUN): lines logged in the minute since window_ms
     * (uv_now), and lines dropped past the budget, said in one line later. */
    uint64_t window_ms;
    unsigned window_lines;
    uint64_t suppressed;
    bool capture;
    char *cap;
    size_t caplen;
} sup_proc_t;

typedef struct sup_runner {
    struct sup_runner *next;
    sup_t *sup;
    uint64_t key;
    char *name, *scope, *pool_name, *group;
    /* Held references (ident.h): the current config's target and pool, or removed. */
    rd_target_ref_t *target;
    rd_pool_ref_t *pool;
    double cpus;
    uint64_t memory;
    unsigned gpus;
    rd_runner_t m;
    bool adopted, done, stop_inflight;
    bool stop_after_list; /* stop it unless a runner list sent after stop_asked_ms says busy */
    int64_t stop_asked_ms;
    bool adopted_unbusy; /* adopted starting or idle: its job is unknown */
    bool gh_seen;        /* a runner list has reported on it (adopted ones: not yet when unknown) */
    int64_t registered_ms;
    int64_t busy_since_ms; /* for runnerd_job_duration_seconds; 0 = not busy or unknown */
    bool wait_counted;     /* its job's queue wait is in runnerd_job_queue_wait_seconds */
    unsigned delete_attempts;
    const char *jit; /* only while REGISTERED is being handled */
    char *jit_copy;  /* kept for the log redactor until the runner is done */
    bool jit_redacting;
    uv_timer_t t_startup, t_job, t_kill, t_retry;
    int open;
} sup_runner_t;

typedef enum {
    TK_GROUP,
    TK_JIT,
    TK_DELETE,
    TK_LIST,
    TK_ADOPT_LIST,
    TK_ORPHAN_DELETE
} ticket_kind_t;

typedef struct ticket {
    struct ticket *next, *prev;
    sup_t *sup;
    ticket_kind_t kind;
    uint64_t key;
    char *scope;
    char *name;
    int64_t sent_ms;
} ticket_t;

typedef struct {
    rd_pool_ref_t *ref; /* held; s->pools[] is in the current config's order */
    rd_backoff_t b;
    bool degraded;
    uint64_t starts, failures;
    rd_metrics_hist_t queue_wait, startup, job_duration; /* survive a reload with the pool */
    bool name_error_logged; /* the runner name cannot be built: say so once, not every plan */
} pool_state_t;

typedef struct {
    char *name, *pool, *scope;
    int64_t runner_id;
    int64_t started_ms;
    rd_runner_gh_t gh;
} cand_t;

typedef struct {
    cand_t *c;
    size_t n;
    size_t pending;
    char **scopes;
    size_t nscopes;
    void (*done)(void *ud, int err);
    void *ud;
} adopt_t;

typedef struct {
    char *scope, *group;
    int64_t id;
} group_cache_t;

struct rd_supervisor {
    uv_loop_t *loop;
    const rd_config_t *cfg;
    rd_idents_t *ids; /* the pools' and targets' identities (opt.idents, or own_ids) */
    bool own_ids;
    rd_github_t *gh;
    rd_supervisor_callbacks_t cbs;
    rd_supervisor_options_t opt;
    sup_runner_t *runners;
    sup_proc_t *procs;
    ticket_t *tickets;
    pool_state_t *pools;
    size_t npools;
    group_cache_t *groups;
    size_t ngroups;
    char **listing; /* scopes with a runner list in flight */
    size_t nlisting;
    char **suspects;        /* scopes that may hold registrations of ours that no runner tracks */
    int64_t *suspect_until; /* listed at least until then (0: until a list looks clean) */
    size_t nsuspects;
    adopt_t *adopt;
    uint64_t next_key;
    uint64_t rng;
    uv_timer_t t_changed, t_reconcile, t_backoff, t_drain;
    rd_spawner_t *spawner; /* every docker child */
    int open;
    bool draining, closing, drain_done_called;
    int64_t drain_giveup_ms; /* draining: stop retrying registration deletes after this */
    void (*drain_done)(void *ud);
    void *drain_ud;
    void (*closed)(void *ud);
    void *closed_ud;
    rd_supervisor_registry_t reg; /* fleet mode's scopes (claims == NULL: none) */
};

/* The registry of a scope: GitHub's REST API, or the broker for fleet-mode scopes
 * (supervisor_reg.c). */
bool sup_reg_claims(const sup_t *s, const char *scope);
int sup_reg_delete(sup_t *s, const char *scope, int64_t id, rd_github_done_cb cb, void *ud);
int sup_reg_list(sup_t *s, const char *scope, rd_github_runners_cb cb, void *ud);

/* supervisor.c */
int64_t rd_sup_now_wall(void);
uint64_t rd_sup_rnd(sup_t *s);
sup_runner_t *rd_sup_find_key(const sup_t *s, uint64_t key);
sup_runner_t *rd_sup_find_name(const sup_t *s, const char *name);
/* The state of a pool the current config has (NULL when REF is removed). */
pool_state_t *rd_sup_pool_state(sup_t *s, const rd_pool_ref_t *ref);
/* One handle of s closed; the last one after rd_supervisor_close frees s. */
void rd_sup_handle_closed(sup_t *s);
/* Call cbs.changed soon (coalesced, from the loop). */
void rd_sup_schedule_changed(sup_t *s);

/* supervisor_proc.c */
void rd_sup_proc_close(sup_proc_t *p);
/* The environment of a docker child (an allow-list of runnerd's, the JIT config, the
 * pool's env); free with rd_sup_env_free, which scrubs it. */
char **rd_sup_child_env(const sup_t *s, const char *jit, const rd_pool_t *pool);
void rd_sup_env_free(char **env);
/* Spawn argv (consumed); env NULL = rd_sup_child_env(s, NULL, NULL). capture: stdout
 * into p->cap instead of the log. Returns the proc, or NULL (logged) when the spawn failed. */
sup_proc_t *rd_sup_proc_spawn(sup_t *s, proc_kind_t kind, uint64_t key, const char *label,
                              char **argv, char **env, bool capture);
/* Fire-and-forget docker stop/kill/rm/wait for a runner (key) or container (key 0). */
void rd_sup_docker_simple(sup_t *s, proc_kind_t kind, uint64_t key, const char *name);

/* supervisor_runner.c */
void rd_sup_on_restop_timer(uv_timer_t *t);
void rd_sup_runner_close(sup_runner_t *r);
/* A runner of target T and pool P (each held by the runner; removed ones allowed). */
sup_runner_t *rd_sup_runner_new(sup_t *s, const char *name, rd_target_ref_t *t, rd_pool_ref_t *p);
rd_runner_limits_t rd_sup_limits_for(const sup_t *s, const rd_pool_ref_t *pool);
/* Carry out what the state machine asked for. */
void rd_sup_apply(sup_runner_t *r, const rd_runner_actions_t *a);
/* One event into a runner's state machine, then rd_sup_apply. No-op once done. */
void rd_sup_feed(sup_runner_t *r, rd_runner_event_t ev, int64_t arg);
void rd_sup_runner_info(const sup_runner_t *r, int64_t now, rd_supervisor_runner_info_t *out);

/* supervisor_reg.c */
ticket_t *rd_sup_ticket_new(sup_t *s, ticket_kind_t kind, uint64_t key, const char *scope);
/* Unlink and free; returns the supervisor it belonged to (NULL when detached by close). */
sup_t *rd_sup_ticket_end(ticket_t *t);
void rd_sup_delete_reg(sup_runner_t *r);
/* Org scopes: the runner group's id (cached), then generate-jitconfig. */
void rd_sup_register_runner(sup_runner_t *r);
void rd_sup_orphan_delete(sup_t *s, const char *scope, int64_t runner_id, const char *name);
void rd_sup_suspect_add(sup_t *s, const char *scope);
/* List the runners of one scope unless a list of it is in flight. */
void rd_sup_list_scope(sup_t *s, const char *scope);
void rd_sup_on_reconcile_timer(uv_timer_t *t);

/* supervisor_adopt.c */
void rd_sup_adopt_ps_done(sup_t *s, sup_proc_t *p);
void rd_sup_adopt_inspect_done(sup_t *s, sup_proc_t *p);
/* Free an adoption's state (close: its done callback is not called). */
void rd_sup_adopt_free(adopt_t *ad);

#endif
