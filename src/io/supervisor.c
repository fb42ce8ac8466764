/* supervisor.c: runners as docker containers (I/O; see supervisor.h).
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
#include "runnerd/io/supervisor.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "runnerd/core/backoff.h"
#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/log.h"
#include "runnerd/io/spawn.h"

#define NONE ((size_t)-1)
#define COMP "supervisor"
#define CAPTURE_MAX (1u << 20)
#define DELETE_ATTEMPTS 10
#define ADOPT_MIN_STARTUP_MS 60000
#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS 300000
#define STOP_RETRY_MS 2000
/* After a generate-jitconfig whose registration may exist anyway, the scope's runner list
 * is read (each reconcile) for this long, so a late or lost one is found and deleted. */
#define JIT_LOST_WATCH_MS 120000

extern char **environ;

typedef struct rd_supervisor sup_t;

typedef enum { PK_RUN, PK_WAIT, PK_STOP, PK_KILL, PK_RM, PK_PS, PK_INSPECT } proc_kind_t;

static const char *const proc_kind_names[] = {"run", "wait", "stop", "kill", "rm", "ps", "inspect"};

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
    bool capture;
    char *cap;
    size_t caplen;
} sup_proc_t;

typedef struct sup_runner {
    struct sup_runner *next;
    sup_t *sup;
    uint64_t key;
    char *name, *scope, *pool_name, *group;
    size_t target, pool;
    double cpus;
    uint64_t memory;
    unsigned gpus;
    rd_runner_t m;
    bool adopted, done, stop_inflight;
    bool stop_after_list; /* stop it unless a runner list sent after stop_asked_ms says busy */
    int64_t stop_asked_ms;
    bool adopted_unbusy; /* adopted starting or idle: its job is unknown */
    bool job_known;      /* m.job_id is what GitHub says it runs, not the job it was started for */
    bool gh_seen;        /* a runner list has reported on it (adopted ones: not yet when unknown) */
    int64_t registered_ms;
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
    char *name;
    rd_backoff_t b;
    bool degraded;
    uint64_t starts, failures;
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
};

static void feed(sup_runner_t *r, rd_runner_event_t ev, int64_t arg);
static void runner_info(const sup_runner_t *r, int64_t now, rd_supervisor_runner_info_t *out);
static void list_scope(sup_t *s, const char *scope);
static void schedule_changed(sup_t *s);
static void suspect_add(sup_t *s, const char *scope);
static void suspect_add_until(sup_t *s, const char *scope, int64_t until);
static void adopt_inspected(sup_t *s);
static void adopt_finish(sup_t *s);
static void on_backoff_timer(uv_timer_t *t);
static void retry_later(sup_runner_t *r);

/* ------------------------------------------------------------------------ */
/* small helpers */

static int64_t now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rnd(sup_t *s)
{
    return rd_rand_next(&s->rng);
}

static sup_runner_t *find_key(const sup_t *s, uint64_t key)
{
    for (sup_runner_t *r = s->runners; r; r = r->next)
        if (r->key == key)
            return r;
    return NULL;
}

static sup_runner_t *find_name(const sup_t *s, const char *name)
{
    if (name == NULL)
        return NULL;
    for (sup_runner_t *r = s->runners; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static size_t pool_index(const rd_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return i;
    return NONE;
}

static size_t target_index(const rd_config_t *cfg, const char *scope)
{
    for (size_t i = 0; i < cfg->ntargets; i++)
        if (strcasecmp(cfg->targets[i].scope, scope) == 0)
            return i;
    return NONE;
}

static pool_state_t *pool_state(sup_t *s, const char *name)
{
    /* A NULL name is a state pools_rebuild already moved to the new array. */
    for (size_t i = 0; i < s->npools; i++)
        if (s->pools[i].name != NULL && strcmp(s->pools[i].name, name) == 0)
            return &s->pools[i];
    return NULL;
}

static void handle_closed(sup_t *s);

/* ------------------------------------------------------------------------ */
/* tickets */

static ticket_t *ticket_new(sup_t *s, ticket_kind_t kind, uint64_t key, const char *scope)
{
    ticket_t *t = rd_xcalloc(1, sizeof *t);
    t->sup = s;
    t->kind = kind;
    t->key = key;
    t->scope = scope ? rd_xstrdup(scope) : NULL;
    t->sent_ms = now_wall();
    t->next = s->tickets;
    if (s->tickets)
        s->tickets->prev = t;
    s->tickets = t;
    return t;
}

/* Unlink and free; returns the supervisor it belonged to (NULL when detached by close). */
static sup_t *ticket_end(ticket_t *t)
{
    sup_t *s = t->sup;
    if (s) {
        if (t->prev)
            t->prev->next = t->next;
        else
            s->tickets = t->next;
        if (t->next)
            t->next->prev = t->prev;
    }
    free(t->scope);
    free(t->name);
    free(t);
    return s;
}

/* ------------------------------------------------------------------------ */
/* children */

static void proc_handle_closed(uv_handle_t *h)
{
    sup_proc_t *p = h->data;
    sup_t *s = p->sup;
    if (--p->open == 0) {
        free(p->label);
        free(p->lout.buf);
        free(p->lerr.buf);
        free(p->cap);
        free(p);
    }
    handle_closed(s);
}

static void proc_unlink(sup_proc_t *p)
{
    sup_t *s = p->sup;
    for (sup_proc_t **pp = &s->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static void proc_close(sup_proc_t *p)
{
    proc_unlink(p);
    /* A child still running is reaped later without us (docker stop/kill/wait
     * children are never left behind on purpose: this is shutdown). */
    if (p->child != 0 && !p->exited)
        rd_spawn_forget(p->sup->spawner, p->child);
    uv_handle_t *hs[] = {(uv_handle_t *)&p->out, (uv_handle_t *)&p->err, (uv_handle_t *)&p->linger};
    for (size_t i = 0; i < RD_ARRAY_SIZE(hs); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], proc_handle_closed);
}

/* Log one line of child output; control characters become '?'. */
static void proc_log_line(sup_proc_t *p, bool is_err, char *line, size_t n, bool truncated)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            line[i] = '?';
    if (n > 0 && line[n - 1] == '?' && !truncated)
        n--; /* a CR before the LF */
    if (n == 0)
        return;
    const char *more = truncated ? " [truncated]" : "";
    if (p->kind == PK_RUN || p->kind == PK_WAIT)
        rd_info("runner", "%s: %.*s%s", p->label, (int)n, line, more);
    else if (is_err)
        rd_info("docker", "docker %s %s: %.*s%s", proc_kind_names[p->kind], p->label, (int)n, line,
                more);
}

static void linebuf_feed(sup_proc_t *p, linebuf_t *lb, bool is_err, const char *data, size_t n)
{
    size_t max = p->sup->opt.log_line_max;
    if (lb->buf == NULL)
        lb->buf = rd_xmalloc(max + 1);
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            if (!lb->skipping)
                proc_log_line(p, is_err, lb->buf, lb->len, false);
            lb->len = 0;
            lb->skipping = false;
            continue;
        }
        if (lb->skipping)
            continue;
        if (lb->len == max) {
            proc_log_line(p, is_err, lb->buf, lb->len, true);
            lb->len = 0;
            lb->skipping = true;
            continue;
        }
        lb->buf[lb->len++] = c;
    }
}

static void linebuf_flush(sup_proc_t *p, linebuf_t *lb, bool is_err)
{
    if (lb->len > 0 && !lb->skipping)
        proc_log_line(p, is_err, lb->buf, lb->len, false);
    lb->len = 0;
}

static void proc_finished(sup_proc_t *p);

static void proc_maybe_finish(sup_proc_t *p)
{
    /* The linger timer, started at exit, covers pipes that never reach EOF. */
    if (!p->finished && p->exited && p->out_eof && p->err_eof)
        proc_finished(p);
}

static void proc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    size_t n = suggested < 65536 ? suggested : 65536;
    buf->base = rd_xmalloc(n);
    buf->len = n;
}

static void proc_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sup_proc_t *p = st->data;
    bool is_err = st == (uv_stream_t *)&p->err;
    if (nread > 0 && p->kind == PK_RUN) {
        /* github.c forgets the JIT config once its callback returns; keep it
         * redacted in the child's output for as long as the runner lives. */
        sup_runner_t *r = find_key(p->sup, p->key);
        if (r && r->jit_copy && !r->jit_redacting) {
            rd_log_add_secret(r->jit_copy);
            r->jit_redacting = true;
        }
    }
    if (nread > 0) {
        if (!is_err && p->capture) {
            size_t n = (size_t)nread;
            if (p->caplen + n > CAPTURE_MAX)
                n = CAPTURE_MAX - p->caplen;
            p->cap = rd_xrealloc(p->cap, p->caplen + n + 1);
            memcpy(p->cap + p->caplen, buf->base, n);
            p->caplen += n;
            p->cap[p->caplen] = '\0';
        } else {
            linebuf_feed(p, is_err ? &p->lerr : &p->lout, is_err, buf->base, (size_t)nread);
        }
    } else if (nread < 0) {
        uv_read_stop(st);
        if (is_err) {
            linebuf_flush(p, &p->lerr, true);
            p->err_eof = true;
        } else {
            linebuf_flush(p, &p->lout, false);
            p->out_eof = true;
        }
        proc_maybe_finish(p);
    }
    free(buf->base);
}

static void proc_linger(uv_timer_t *t)
{
    sup_proc_t *p = rd_container_of(t, sup_proc_t, linger);
    /* A grandchild may hold the pipes open: do not wait for EOF forever. */
    linebuf_flush(p, &p->lout, false);
    linebuf_flush(p, &p->lerr, true);
    if (!p->finished)
        proc_finished(p);
}

/* How long a one-shot docker command (ps, inspect, rm, kill, stop) may take before
 * it is killed and counted as failed: a hung dockerd must not hold adoption, a stop
 * or a removal forever. `run` and `wait` live as long as their container. */
static uint64_t proc_deadline_ms(const sup_t *s, proc_kind_t kind)
{
    uint64_t base = s->opt.docker_timeout_ms ? s->opt.docker_timeout_ms : 60000;
    switch (kind) {
    case PK_RUN:
    case PK_WAIT:
        return 0;
    case PK_STOP:
        return s->opt.stop_grace_ms + base;
    default:
        return base;
    }
}

static void proc_deadline(uv_timer_t *t)
{
    sup_proc_t *p = rd_container_of(t, sup_proc_t, linger);
    if (p->exited || p->pid <= 0)
        return;
    rd_warn(COMP, "docker %s %s: no answer within %" PRIu64 " s; killing it (is dockerd hung?)",
            proc_kind_names[p->kind], p->label, proc_deadline_ms(p->sup, p->kind) / 1000);
    p->timed_out = true;
    kill(p->pid, SIGKILL); /* still our unreaped child: the pid cannot be reused */
}

static void proc_exit(void *ud, int64_t status, int sig)
{
    sup_proc_t *p = ud;
    p->exited = true;
    p->exit_status = status;
    p->term_signal = sig;
    if (p->out_eof && p->err_eof)
        proc_finished(p);
    else
        uv_timer_start(&p->linger, proc_linger, 1000, 0);
}

/* The environment of a docker child: what the docker CLI needs, nothing else. */
static char **child_env(const sup_t *s, const char *jit, const rd_pool_t *pool)
{
    static const char *const exact[] = {
        "PATH",        "HOME",        "USER",          "LOGNAME",
        "TMPDIR",      "TZ",          "LANG",          "XDG_RUNTIME_DIR",
        "http_proxy",  "https_proxy", "no_proxy",      "HTTP_PROXY",
        "HTTPS_PROXY", "NO_PROXY",    "SSL_CERT_FILE", "SSL_CERT_DIR"};
    static const char *const prefixes[] = {"DOCKER_", "CONTAINER_", "CONTAINERS_", "LC_",
                                           "FAKE_DOCKER_"};
    const char *token_env = s->cfg->github.token_env;
    size_t n = 0, cap = 16;
    char **env = rd_xmalloc(cap * sizeof *env);
    bool have_path = false, have_home = false;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        size_t kl = (size_t)(eq - *e);
        if (token_env && strlen(token_env) == kl && strncmp(*e, token_env, kl) == 0)
            continue;
        if (kl == strlen(RD_JIT_ENV) && strncmp(*e, RD_JIT_ENV, kl) == 0)
            continue;
        bool keep = false;
        for (size_t i = 0; i < RD_ARRAY_SIZE(exact) && !keep; i++)
            keep = strlen(exact[i]) == kl && strncmp(*e, exact[i], kl) == 0;
        for (size_t i = 0; i < RD_ARRAY_SIZE(prefixes) && !keep; i++)
            keep = strncmp(*e, prefixes[i], strlen(prefixes[i])) == 0;
        if (pool) {
            /* A pool env key is set below from the config. */
            for (size_t i = 0; i < pool->nenv && keep; i++)
                if (strlen(pool->env_keys[i]) == kl && strncmp(*e, pool->env_keys[i], kl) == 0)
                    keep = false;
        }
        if (!keep)
            continue;
        have_path |= kl == 4 && strncmp(*e, "PATH", 4) == 0;
        have_home |= kl == 4 && strncmp(*e, "HOME", 4) == 0;
        if (n + 4 > cap)
            env = rd_xrealloc(env, (cap *= 2) * sizeof *env);
        env[n++] = rd_xstrdup(*e);
    }
    size_t extra = 3 + (pool ? pool->nenv : 0);
    if (n + extra + 1 > cap)
        env = rd_xrealloc(env, (cap = n + extra + 1) * sizeof *env);
    if (!have_path)
        env[n++] = rd_xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (!have_home)
        env[n++] = rd_xstrdup("HOME=/");
    if (jit)
        env[n++] = rd_xasprintf(RD_JIT_ENV "=%s", jit);
    for (size_t i = 0; pool && i < pool->nenv; i++)
        env[n++] = rd_xasprintf("%s=%s", pool->env_keys[i], pool->env_vals[i]);
    env[n] = NULL;
    return env;
}

static void env_free(char **env)
{
    for (char **e = env; *e; e++) {
        /* Scrub: one of these holds the JIT config. */
        memset(*e, 0, strlen(*e));
        free(*e);
    }
    free(env);
}

/* Spawn argv (consumed). Returns the proc, or NULL (logged) when the spawn failed. */
static sup_proc_t *proc_spawn(sup_t *s, proc_kind_t kind, uint64_t key, const char *label,
                              char **argv, char **env, bool capture)
{
    sup_proc_t *p = rd_xcalloc(1, sizeof *p);
    p->sup = s;
    p->kind = kind;
    p->key = key;
    p->label = rd_xstrdup(label ? label : "-");
    p->capture = capture;
    uv_pipe_init(s->loop, &p->out, 0);
    uv_pipe_init(s->loop, &p->err, 0);
    uv_timer_init(s->loop, &p->linger);
    p->out.data = p->err.data = p->linger.data = p;
    p->open = 3;
    s->open += 3;
    p->next = s->procs;
    s->procs = p;

    char **own_env = env ? NULL : child_env(s, NULL, NULL);
    int out_fd = -1, err_fd = -1;
    pid_t pid = 0;
    rd_spawn_options_t o = {
        .file = argv[0],
        .argv = argv,
        .envp = env ? env : own_env,
        /* Own session: a terminal's ^C reaches the daemon, which decides what to stop. */
        .new_session = true,
        .out_fd = &out_fd,
        .err_fd = &err_fd,
        .exit_cb = proc_exit,
        .ud = p,
    };
    int rc = rd_spawn(s->spawner, &o, &p->child, &pid);
    if (own_env)
        env_free(own_env);
    rd_dockerargv_free(argv);
    /* Cannot fail with fresh pipe descriptors; if it did, the output is lost
     * (EOF at once) and the child is still reaped. */
    if (rc == 0 && uv_pipe_open(&p->out, out_fd) != 0) {
        close(out_fd);
        p->out_eof = true;
    }
    if (rc == 0 && uv_pipe_open(&p->err, err_fd) != 0) {
        close(err_fd);
        p->err_eof = true;
    }
    if (rc != 0) {
        rd_error(COMP, "cannot run docker %s for %s: %s (docker.binary %s)", proc_kind_names[kind],
                 p->label, uv_strerror(rc), s->cfg->docker.binary);
        p->finished = true;
        proc_close(p);
        return NULL;
    }
    if (!p->out_eof)
        uv_read_start((uv_stream_t *)&p->out, proc_alloc, proc_read);
    if (!p->err_eof)
        uv_read_start((uv_stream_t *)&p->err, proc_alloc, proc_read);
    p->pid = pid;
    /* The linger timer doubles as the deadline until the child exits. */
    uint64_t deadline = proc_deadline_ms(s, kind);
    if (deadline > 0)
        uv_timer_start(&p->linger, proc_deadline, deadline, 0);
    return p;
}

/* Fire-and-forget docker command for a runner/container. */
static void docker_simple(sup_t *s, proc_kind_t kind, uint64_t key, const char *name)
{
    char **argv = NULL;
    const char *bin = s->cfg->docker.binary;
    int rc;
    switch (kind) {
    case PK_STOP: {
        uint64_t g = (s->opt.stop_grace_ms + 999) / 1000;
        rc = rd_dockerargv_stop(bin, name, (unsigned)g, &argv);
        break;
    }
    case PK_KILL:
        rc = rd_dockerargv_kill(bin, name, &argv);
        break;
    case PK_RM:
        rc = rd_dockerargv_rm(bin, name, &argv);
        break;
    case PK_WAIT:
        rc = rd_dockerargv_wait(bin, name, &argv);
        break;
    default:
        rc = RD_EINVAL;
        break;
    }
    if (rc != 0) {
        rd_error(COMP, "docker %s %s: bad argv: %s", proc_kind_names[kind], name, rd_strerror(rc));
        return;
    }
    sup_proc_t *p = proc_spawn(s, kind, key, name, argv, NULL, kind == PK_WAIT);
    if (kind == PK_STOP && p) {
        sup_runner_t *r = find_key(s, key);
        if (r)
            r->stop_inflight = true;
    }
    if (kind == PK_WAIT && p == NULL) {
        sup_runner_t *r = find_key(s, key);
        if (r)
            feed(r, RD_REV_CHILD_EXIT, -1);
    }
}

static int64_t parse_int(const char *s, size_t n, bool *ok)
{
    int64_t v = 0;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r'))
        i++;
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 12)
        v = v * 10 + (s[i++] - '0');
    *ok = i > start;
    return v;
}

static void adopt_ps_done(sup_t *s, sup_proc_t *p);
static void adopt_inspect_done(sup_t *s, sup_proc_t *p);

/* t_retry while STOPPING with the docker run child alive (delete retries use it only later). */
static void on_restop_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_retry);
    if (r->done || r->m.state != RD_RUNNER_STOPPING || !r->m.has_container || r->stop_inflight)
        return;
    rd_info(COMP, "%s: stopping again (docker stop)", r->name);
    docker_simple(r->sup, PK_STOP, r->key, r->name);
}

static void proc_finished(sup_proc_t *p)
{
    p->finished = true;
    sup_t *s = p->sup;
    int64_t code = p->term_signal ? -1 : p->exit_status;
    sup_runner_t *r = p->key ? find_key(s, p->key) : NULL;
    switch (p->kind) {
    case PK_RUN:
        if (r) {
            rd_info(COMP, "%s: docker run exited with %" PRId64 "%s", p->label, code,
                    code == 125 ? " (docker error: image missing or daemon unreachable?)" : "");
            feed(r, RD_REV_CHILD_EXIT, code);
        }
        break;
    case PK_WAIT:
        if (r) {
            bool ok = false;
            int64_t c = p->exit_status == 0 && p->cap ? parse_int(p->cap, p->caplen, &ok) : -1;
            if (!ok) {
                rd_warn(COMP,
                        "%s: docker wait failed (exit %" PRId64 "); treating the container as gone",
                        p->label, code);
                c = -1;
            }
            rd_info(COMP, "%s: container exited with %" PRId64, p->label, c);
            feed(r, RD_REV_CHILD_EXIT, c);
        }
        break;
    case PK_STOP:
        if (r)
            r->stop_inflight = false;
        if (code != 0)
            rd_info(COMP, "%s: docker stop exited with %" PRId64, p->label, code);
        /* docker stop returns once the container is dead. If `docker run` still lives, the
         * stop beat it to creating or starting the container ("No such container", or a
         * no-op on a created one): try again soon rather than at the kill timer. */
        if (r && r->m.state == RD_RUNNER_STOPPING && r->m.has_container)
            uv_timer_start(&r->t_retry, on_restop_timer, STOP_RETRY_MS, 0);
        break;
    case PK_KILL:
    case PK_RM:
        if (code != 0)
            rd_debug(COMP, "%s: docker %s exited with %" PRId64, p->label, proc_kind_names[p->kind],
                     code);
        break;
    case PK_PS:
        adopt_ps_done(s, p);
        break;
    case PK_INSPECT:
        adopt_inspect_done(s, p);
        break;
    }
    proc_close(p);
}

/* ------------------------------------------------------------------------ */
/* runners */

static void runner_handle_closed(uv_handle_t *h)
{
    sup_runner_t *r = h->data;
    sup_t *s = r->sup;
    if (--r->open == 0) {
        free(r->name);
        free(r->scope);
        free(r->pool_name);
        free(r->group);
        if (r->jit_copy) {
            memset(r->jit_copy, 0, strlen(r->jit_copy));
            free(r->jit_copy);
        }
        free(r);
    }
    handle_closed(s);
}

static void runner_unlink(sup_runner_t *r)
{
    for (sup_runner_t **pp = &r->sup->runners; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

static void runner_close(sup_runner_t *r)
{
    r->done = true;
    if (r->jit_redacting) {
        rd_log_forget_secret(r->jit_copy);
        r->jit_redacting = false;
    }
    runner_unlink(r);
    uv_close((uv_handle_t *)&r->t_startup, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_job, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_kill, runner_handle_closed);
    uv_close((uv_handle_t *)&r->t_retry, runner_handle_closed);
}

static void on_startup_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_startup);
    if (r->adopted && !r->gh_seen && r->m.state == RD_RUNNER_STARTING) {
        /* Adopted while GitHub could not be asked, and still no runner list: it may be
         * running a job. Do not stop it blind; wait for GitHub to answer. */
        rd_warn(COMP, "%s: adopted runner's GitHub status still unknown; not stopping it yet",
                r->name);
        uv_timer_start(&r->t_startup, on_startup_timer, ADOPT_MIN_STARTUP_MS, 0);
        return;
    }
    if (r->m.state == RD_RUNNER_STARTING)
        rd_warn(COMP, "%s: not online within its startup timeout; stopping it", r->name);
    feed(r, RD_REV_STARTUP_TIMER, 0);
}

static void on_job_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_job);
    rd_warn(COMP, "%s: over its job timeout; stopping it", r->name);
    feed(r, RD_REV_JOB_TIMER, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_kill);
    rd_warn(COMP, "%s: still running after docker stop; killing it", r->name);
    feed(r, RD_REV_KILL_TIMER, 0);
}

static sup_runner_t *runner_new(sup_t *s, const char *name, const char *scope,
                                const char *pool_name)
{
    sup_runner_t *r = rd_xcalloc(1, sizeof *r);
    r->sup = s;
    r->key = ++s->next_key;
    r->name = rd_xstrdup(name);
    r->scope = rd_xstrdup(scope);
    r->pool_name = rd_xstrdup(pool_name);
    r->target = target_index(s->cfg, scope);
    r->pool = pool_index(s->cfg, pool_name);
    if (r->pool != NONE) {
        const rd_pool_t *p = &s->cfg->pools[r->pool];
        r->cpus = p->cpus;
        r->memory = p->memory;
        r->gpus = p->gpus;
        r->group = rd_xstrdup(p->runner_group ? p->runner_group : "Default");
    }
    uv_timer_init(s->loop, &r->t_startup);
    uv_timer_init(s->loop, &r->t_job);
    uv_timer_init(s->loop, &r->t_kill);
    uv_timer_init(s->loop, &r->t_retry);
    r->t_startup.data = r->t_job.data = r->t_kill.data = r->t_retry.data = r;
    r->open = 4;
    s->open += 4;
    /* Append: status lists runners oldest first. */
    sup_runner_t **pp = &s->runners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    return r;
}

static rd_runner_limits_t limits_for(const sup_t *s, size_t pool)
{
    rd_runner_limits_t l = {
        .startup_timeout_ms = 300000,
        .job_timeout_ms = 6 * 3600000ull,
        .stop_grace_ms = s->opt.stop_grace_ms,
        .kill_slack_ms = s->opt.kill_slack_ms,
    };
    if (pool != NONE) {
        l.startup_timeout_ms = s->cfg->pools[pool].startup_timeout_ms;
        l.job_timeout_ms = s->cfg->pools[pool].job_timeout_ms;
    }
    return l;
}

static const char *failure_reason(const sup_runner_t *r, char *buf, size_t n)
{
    if (r->m.startup_timed_out)
        return "startup timeout";
    if (r->m.state == RD_RUNNER_EXITED && r->m.exit_code == -2)
        return "registration or spawn failed";
    snprintf(buf, n, "exit code %d%s", r->m.exit_code,
             r->m.exit_code == 125 ? " (docker error, e.g. image missing)" : "");
    return buf;
}

static void arm_backoff_timer(sup_t *s)
{
    if (s->closing)
        return;
    int64_t now = now_wall();
    uint64_t best = 0;
    for (size_t i = 0; i < s->npools; i++) {
        uint64_t left = rd_backoff_remaining(&s->pools[i].b, (uint64_t)now);
        if (left && (best == 0 || left < best))
            best = left;
    }
    if (best)
        uv_timer_start(&s->t_backoff, on_backoff_timer, best, 0);
}

static void pool_failure(sup_t *s, sup_runner_t *r)
{
    pool_state_t *ps = pool_state(s, r->pool_name);
    char buf[96];
    const char *why = failure_reason(r, buf, sizeof buf);
    if (ps == NULL) {
        rd_warn(COMP, "%s: failed (%s)", r->name, why);
        return;
    }
    ps->failures++;
    uint64_t d = rd_backoff_fail(&ps->b, (uint64_t)now_wall(), rnd(s));
    rd_warn(COMP, "%s: failed (%s); pool %s backs off %.1fs (%u in a row)", r->name, why, ps->name,
            (double)d / 1000.0, ps->b.failures);
    if (!ps->degraded && ps->b.failures >= s->opt.degraded_after) {
        ps->degraded = true;
        rd_error(COMP, "pool %s is degraded: %u runners failed in a row (last: %s)", ps->name,
                 ps->b.failures, why);
    }
    arm_backoff_timer(s);
    schedule_changed(s);
}

static void pool_success(sup_t *s, sup_runner_t *r)
{
    pool_state_t *ps = pool_state(s, r->pool_name);
    if (ps == NULL)
        return;
    if (ps->degraded)
        rd_info(COMP, "pool %s recovered: %s came online", ps->name, r->name);
    ps->degraded = false;
    rd_backoff_success(&ps->b);
}

static void delete_cb(void *ud, int err);

static void delete_reg(sup_runner_t *r)
{
    sup_t *s = r->sup;
    ticket_t *t = ticket_new(s, TK_DELETE, r->key, r->scope);
    int rc = rd_github_delete_runner(s->gh, r->scope, r->m.runner_id, delete_cb, t);
    if (rc != 0) {
        ticket_end(t);
        /* Same path as a failed answer, but from the loop. */
        r->delete_attempts++;
        retry_later(r);
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_retry);
    if (r->done || !r->m.deleting)
        return;
    sup_t *s = r->sup;
    bool late = s->draining && now_wall() >= s->drain_giveup_ms;
    if (r->delete_attempts >= DELETE_ATTEMPTS || late) {
        rd_error(COMP,
                 "%s: giving up deleting runner registration %" PRId64 " after %u attempts; "
                 "the next start deletes it once GitHub shows it offline",
                 r->name, r->m.runner_id, r->delete_attempts);
        suspect_add(s, r->scope);
        feed(r, RD_REV_DELETED, 0);
        return;
    }
    delete_reg(r);
}

static void retry_later(sup_runner_t *r)
{
    uint64_t d = 1000ull << (r->delete_attempts < 6 ? r->delete_attempts : 6);
    if (d > 60000)
        d = 60000;
    d = d / 2 + rnd(r->sup) % (d / 2 + 1);
    uint64_t at = (uint64_t)rd_github_retry_at(r->sup->gh, r->scope);
    uint64_t now = (uint64_t)now_wall();
    if (at > now && at - now > d)
        d = at - now;
    /* Shutting down: keep trying often, but only until the drain gives up. */
    if (r->sup->draining && d > 2000)
        d = 2000;
    uv_timer_start(&r->t_retry, on_retry_timer, d, 0);
}

static void delete_cb(void *ud, int err)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = ticket_end(t);
    if (s == NULL)
        return;
    sup_runner_t *r = find_key(s, key);
    if (r == NULL)
        return;
    if (err == 0 || err == RD_ENOENT) {
        rd_info(COMP, "%s: runner registration %" PRId64 " %s", r->name, r->m.runner_id,
                err == 0 ? "deleted" : "already gone");
        feed(r, RD_REV_DELETED, 0);
        return;
    }
    r->delete_attempts++;
    rd_log(err == RD_EBUSY ? RD_LOG_INFO : RD_LOG_WARN, COMP,
           "%s: deleting runner registration %" PRId64 " failed: %s%s; retrying", r->name,
           r->m.runner_id, rd_strerror(err), err == RD_EBUSY ? " (still running a job)" : "");
    retry_later(r);
}

static void do_spawn(sup_runner_t *r)
{
    sup_t *s = r->sup;
    if (r->pool == NONE || r->jit == NULL) {
        rd_error(COMP, "%s: pool %s is gone; not starting it", r->name, r->pool_name);
        feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    const rd_pool_t *pool = &s->cfg->pools[r->pool];
    rd_dockerargv_run_t in = {
        .binary = s->cfg->docker.binary,
        .name = r->name,
        .instance = s->cfg->instance,
        .scope = r->scope,
        .runner_id = r->m.runner_id,
        .pool = pool,
        .docker = &s->cfg->docker,
    };
    char **argv = NULL;
    int rc = rd_dockerargv_run(&in, &argv);
    if (rc != 0) {
        rd_error(COMP,
                 "%s: refusing to build docker run argv: %s (check pool %s: image, network, "
                 "env keys, runtime, platform)",
                 r->name, rd_strerror(rc), pool->name);
        feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    char **env = child_env(s, r->jit, pool);
    sup_proc_t *p = proc_spawn(s, PK_RUN, r->key, r->name, argv, env, false);
    env_free(env);
    if (p == NULL) {
        feed(r, RD_REV_SPAWN_FAILED, 0);
        return;
    }
    rd_info(COMP,
            "%s: docker run spawned (pool %s, scope %s, runner id %" PRId64 ", job %" PRId64 ")",
            r->name, r->pool_name, r->scope, r->m.runner_id, r->m.job_id);
    feed(r, RD_REV_SPAWNED, 0);
}

static void apply(sup_runner_t *r, const rd_runner_actions_t *a)
{
    sup_t *s = r->sup;
    unsigned f = a->flags;
    if (r->done || s->opt.read_only)
        return;
    if (f & RD_RACT_CANCEL_STARTUP)
        uv_timer_stop(&r->t_startup);
    if (f & RD_RACT_CANCEL_JOB)
        uv_timer_stop(&r->t_job);
    if (f & RD_RACT_CANCEL_KILL)
        uv_timer_stop(&r->t_kill);
    if (f & RD_RACT_ARM_STARTUP)
        uv_timer_start(&r->t_startup, on_startup_timer, a->startup_ms, 0);
    if (f & RD_RACT_ARM_JOB)
        uv_timer_start(&r->t_job, on_job_timer, a->job_ms, 0);
    if (f & RD_RACT_ARM_KILL)
        uv_timer_start(&r->t_kill, on_kill_timer, a->kill_ms, 0);
    if (f & RD_RACT_COUNT_FAILURE)
        pool_failure(s, r);
    if (f & RD_RACT_COUNT_SUCCESS)
        pool_success(s, r);
    if (f & RD_RACT_CHANGED) {
        rd_debug(COMP, "%s: %s", r->name, rd_runner_state_name(r->m.state));
        schedule_changed(s);
    }
    if (f & RD_RACT_STOP_CONTAINER) {
        rd_info(COMP, "%s: stopping (docker stop)", r->name);
        if (!r->stop_inflight)
            docker_simple(s, PK_STOP, r->key, r->name);
    }
    if (f & RD_RACT_KILL_CONTAINER)
        docker_simple(s, PK_KILL, r->key, r->name);
    if (f & RD_RACT_RELEASE) {
        rd_info(COMP, "%s: exited; capacity released", r->name);
        if (s->cbs.exited != NULL) {
            rd_supervisor_runner_info_t ri;
            runner_info(r, now_wall(), &ri);
            s->cbs.exited(s->cbs.ud, &ri);
        }
    }
    if (f & RD_RACT_SPAWN)
        do_spawn(r);
    if (r->done)
        return;
    if (f & RD_RACT_DELETE_REG)
        delete_reg(r);
    if (f & RD_RACT_DONE) {
        rd_debug(COMP, "%s: done", r->name);
        runner_close(r);
        schedule_changed(s);
    }
}

static void feed(sup_runner_t *r, rd_runner_event_t ev, int64_t arg)
{
    if (r->done)
        return;
    rd_runner_actions_t a;
    rd_runner_event(&r->m, ev, arg, now_wall(), &a);
    apply(r, &a);
}

/* ------------------------------------------------------------------------ */
/* registration */

static void jit_cb(void *ud, int err, int64_t runner_id, const char *encoded_jit);

static void orphan_delete(sup_t *s, const char *scope, int64_t runner_id, const char *name);

static void register_jit(sup_runner_t *r, int64_t group_id)
{
    sup_t *s = r->sup;
    if (r->pool == NONE) {
        feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    const rd_pool_t *pool = &s->cfg->pools[r->pool];
    ticket_t *t = ticket_new(s, TK_JIT, r->key, r->scope);
    int rc =
        rd_github_generate_jitconfig(s->gh, r->scope, r->name, (const char *const *)pool->labels,
                                     pool->nlabels, group_id, jit_cb, t);
    if (rc != 0) {
        ticket_end(t);
        rd_warn(COMP, "%s: cannot register: %s", r->name, rd_strerror(rc));
        feed(r, RD_REV_REGISTER_FAILED, 0);
    }
}

/* A failed generate-jitconfig after which the registration may exist anyway: the
 * transfer failed or timed out, a 5xx, an unreadable answer, or 409 (the name is
 * taken: an earlier attempt did make it). Refusals (401/403/404/422), rate-limit
 * holds and cancellations made nothing. */
static bool jit_maybe_made(int err)
{
    return err == RD_EIO || err == RD_EPROTO || err == RD_EEXIST || err == 0;
}

static void jit_cb(void *ud, int err, int64_t runner_id, const char *encoded_jit)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = t->sup;
    char *scope = t->scope ? rd_xstrdup(t->scope) : NULL;
    ticket_end(t);
    if (s == NULL) {
        free(scope);
        return;
    }
    sup_runner_t *r = find_key(s, key);
    if (r == NULL) {
        if (err == 0)
            orphan_delete(s, scope, runner_id, NULL);
        free(scope);
        return;
    }
    free(scope);
    if (err != 0 || encoded_jit == NULL) {
        rd_warn(COMP, "%s: generate-jitconfig failed: %s", r->name,
                rd_strerror(err ? err : RD_EPROTO));
        if (jit_maybe_made(err)) {
            /* GitHub may have made it (the answer was lost, or came after the timeout;
             * a 409 says the name exists). Read the scope's runner list for a while:
             * list_cb deletes registrations of ours that no runner tracks once offline. */
            rd_info(COMP, "%s: the registration may exist on GitHub; looking for it to delete it",
                    r->name);
            suspect_add_until(s, r->scope, now_wall() + JIT_LOST_WATCH_MS);
        }
        feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    /* The log redactor already knows this secret (github.c registers it). */
    r->registered_ms = now_wall();
    rd_debug(COMP, "%s: registered as runner %" PRId64 " after %" PRId64 " ms", r->name, runner_id,
             r->registered_ms - r->m.created_ms);
    r->jit = encoded_jit;
    free(r->jit_copy);
    r->jit_copy = rd_xstrdup(encoded_jit);
    feed(r, RD_REV_REGISTERED, runner_id);
    r->jit = NULL;
}

static void group_cb(void *ud, int err, int64_t group_id)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = ticket_end(t);
    if (s == NULL)
        return;
    sup_runner_t *r = find_key(s, key);
    if (r == NULL)
        return;
    if (err != 0) {
        rd_warn(COMP, "%s: runner group '%s' of %s: %s", r->name, r->group, r->scope,
                rd_strerror(err));
        feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    s->groups = rd_xrealloc(s->groups, (s->ngroups + 1) * sizeof *s->groups);
    s->groups[s->ngroups].scope = rd_xstrdup(r->scope);
    s->groups[s->ngroups].group = rd_xstrdup(r->group);
    s->groups[s->ngroups].id = group_id;
    s->ngroups++;
    if (r->m.stop_requested) {
        feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    register_jit(r, group_id);
}

static void register_runner(sup_runner_t *r)
{
    sup_t *s = r->sup;
    if (strncmp(r->scope, "orgs/", 5) != 0) {
        register_jit(r, 1);
        return;
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        if (strcmp(s->groups[i].scope, r->scope) == 0 &&
            strcmp(s->groups[i].group, r->group) == 0) {
            register_jit(r, s->groups[i].id);
            return;
        }
    }
    ticket_t *t = ticket_new(s, TK_GROUP, r->key, r->scope);
    int rc = rd_github_runner_group_id(s->gh, r->scope, r->group, group_cb, t);
    if (rc != 0) {
        ticket_end(t);
        rd_warn(COMP, "%s: cannot look up runner group: %s", r->name, rd_strerror(rc));
        feed(r, RD_REV_REGISTER_FAILED, 0);
    }
}

static void orphan_delete_cb(void *ud, int err)
{
    ticket_t *t = ud;
    if (err == 0 || err == RD_ENOENT)
        rd_info(COMP, "deleted runner registration %s in %s", t->name ? t->name : "?", t->scope);
    else
        rd_warn(COMP, "deleting runner registration %s in %s failed: %s", t->name ? t->name : "?",
                t->scope, rd_strerror(err));
    ticket_end(t);
}

static void orphan_delete(sup_t *s, const char *scope, int64_t runner_id, const char *name)
{
    ticket_t *t = ticket_new(s, TK_ORPHAN_DELETE, 0, scope);
    t->name = name ? rd_xstrdup(name) : rd_xasprintf("id %" PRId64, runner_id);
    if (rd_github_delete_runner(s->gh, scope, runner_id, orphan_delete_cb, t) != 0) {
        rd_warn(COMP, "cannot delete runner registration %s in %s", t->name, scope);
        ticket_end(t);
    }
}

/* ------------------------------------------------------------------------ */
/* supervisor-wide timers and callbacks */

static void handle_closed(sup_t *s)
{
    if (--s->open > 0 || !s->closing)
        return;
    for (size_t i = 0; i < s->npools; i++)
        free(s->pools[i].name);
    free(s->pools);
    for (size_t i = 0; i < s->ngroups; i++) {
        free(s->groups[i].scope);
        free(s->groups[i].group);
    }
    free(s->groups);
    rd_strv_free(s->listing, s->nlisting);
    rd_strv_free(s->suspects, s->nsuspects);
    free(s->suspect_until);
    if (s->adopt) {
        for (size_t i = 0; i < s->adopt->n; i++) {
            free(s->adopt->c[i].name);
            free(s->adopt->c[i].pool);
            free(s->adopt->c[i].scope);
        }
        free(s->adopt->c);
        rd_strv_free(s->adopt->scopes, s->adopt->nscopes);
        free(s->adopt);
    }
    void (*cb)(void *) = s->closed;
    void *ud = s->closed_ud;
    free(s);
    if (cb)
        cb(ud);
}

static void sup_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_changed(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_changed);
    if (s->draining && !s->drain_done_called && s->runners == NULL) {
        s->drain_done_called = true;
        uv_timer_stop(&s->t_drain);
        rd_info(COMP, "drained: no runner left");
        if (s->drain_done)
            s->drain_done(s->drain_ud);
        if (s->closing)
            return;
    }
    if (s->cbs.changed)
        s->cbs.changed(s->cbs.ud);
}

static void schedule_changed(sup_t *s)
{
    if (s->closing)
        return;
    if (!uv_is_active((uv_handle_t *)&s->t_changed))
        uv_timer_start(&s->t_changed, on_changed, 0, 0);
}

static void on_backoff_timer(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_backoff);
    schedule_changed(s);
    arm_backoff_timer(s);
}

/* A scope whose runner list is read on every reconcile until it shows no
 * registration of ours that no runner tracks, and not before `until` (0: no
 * minimum; a registration GitHub may still be making needs one). */
static void suspect_add_until(sup_t *s, const char *scope, int64_t until)
{
    for (size_t i = 0; i < s->nsuspects; i++) {
        if (strcmp(s->suspects[i], scope) == 0) {
            if (until > s->suspect_until[i])
                s->suspect_until[i] = until;
            return;
        }
    }
    s->suspects = rd_xrealloc(s->suspects, (s->nsuspects + 1) * sizeof *s->suspects);
    s->suspect_until = rd_xrealloc(s->suspect_until, (s->nsuspects + 1) * sizeof *s->suspect_until);
    s->suspect_until[s->nsuspects] = until;
    s->suspects[s->nsuspects++] = rd_xstrdup(scope);
}

static void suspect_add(sup_t *s, const char *scope)
{
    suspect_add_until(s, scope, 0);
}

static void suspect_remove(sup_t *s, const char *scope)
{
    for (size_t i = 0; i < s->nsuspects; i++) {
        if (strcmp(s->suspects[i], scope) == 0) {
            if (s->suspect_until[i] > now_wall())
                return;
            free(s->suspects[i]);
            s->nsuspects--;
            s->suspects[i] = s->suspects[s->nsuspects];
            s->suspect_until[i] = s->suspect_until[s->nsuspects];
            return;
        }
    }
}

static void list_cb(void *ud, int err, const rd_gh_runners_t *list)
{
    ticket_t *t = ud;
    sup_t *s = t->sup;
    char *scope = t->scope;
    int64_t sent = t->sent_ms;
    t->scope = NULL;
    ticket_end(t);
    if (s == NULL) {
        free(scope);
        return;
    }
    for (size_t i = 0; i < s->nlisting; i++) {
        if (strcmp(s->listing[i], scope) == 0) {
            free(s->listing[i]);
            s->listing[i] = s->listing[--s->nlisting];
            break;
        }
    }
    if (err != 0) {
        rd_debug(COMP, "listing runners of %s: %s", scope, rd_strerror(err));
        free(scope);
        return;
    }
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        if (strcmp(r->scope, scope) != 0 || r->m.runner_id == 0 || r->m.registering ||
            r->registered_ms > sent)
            continue;
        const rd_gh_runner_t *g = NULL;
        for (size_t i = 0; i < list->n && !g; i++)
            if (list->v[i].id == r->m.runner_id)
                g = &list->v[i];
        r->gh_seen = true;
        if (g == NULL)
            feed(r, RD_REV_GH_ABSENT, 0);
        else if (g->online && g->busy)
            feed(r, RD_REV_GH_BUSY, 0);
        else if (g->online)
            feed(r, RD_REV_GH_ONLINE, 0);
        else
            feed(r, RD_REV_GH_OFFLINE, 0);
    }
    bool again = false;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        if (!r->stop_after_list || strcmp(r->scope, scope) != 0)
            continue;
        if (sent < r->stop_asked_ms) {
            again = true; /* this list may predate a job it took: ask again */
            continue;
        }
        r->stop_after_list = false;
        feed(r, RD_REV_STOP, 0); /* no-op for the busy ones: they finish their job */
    }
    if (again)
        list_scope(s, scope);
    /* Registrations of this instance that no runner here tracks and that GitHub shows
     * offline and idle were left by a previous run: a container that died mid-job while
     * the daemon restarted was still busy on GitHub when the start-up sweep looked. */
    const char **pools = rd_xcalloc(s->cfg->npools + 1, sizeof *pools);
    for (size_t i = 0; i < s->cfg->npools; i++)
        pools[i] = s->cfg->pools[i].name;
    bool untracked_online = false;
    for (size_t k = 0; k < list->n; k++) {
        const rd_gh_runner_t *g = &list->v[k];
        if (g->name == NULL || find_name(s, g->name) != NULL ||
            !rd_dockerargv_owns_name(g->name, s->cfg->instance, pools, s->cfg->npools))
            continue;
        if (g->online || g->busy) {
            untracked_online = true; /* GitHub has not noticed yet: look again later */
            continue;
        }
        rd_info(COMP, "deleting offline registration %s (id %" PRId64 ") in %s: no runner", g->name,
                g->id, scope);
        orphan_delete(s, scope, g->id, g->name);
    }
    free(pools);
    if (!untracked_online)
        suspect_remove(s, scope);
    if (s->draining) {
        /* Now that busy runners show as busy, stop the others (see rd_supervisor_drain). */
        for (sup_runner_t *r = s->runners; r; r = next) {
            next = r->next;
            if (strcmp(r->scope, scope) == 0 && r->registered_ms <= sent)
                feed(r, RD_REV_STOP, 0);
        }
    }
    free(scope);
}

/* List the runners of one scope unless a list of it is in flight. */
static void list_scope(sup_t *s, const char *scope)
{
    for (size_t i = 0; i < s->nlisting; i++)
        if (strcmp(s->listing[i], scope) == 0)
            return;
    ticket_t *t = ticket_new(s, TK_LIST, 0, scope);
    if (rd_github_list_runners(s->gh, scope, list_cb, t) != 0) {
        ticket_end(t);
        return;
    }
    s->listing = rd_xrealloc(s->listing, (s->nlisting + 1) * sizeof *s->listing);
    s->listing[s->nlisting++] = rd_xstrdup(scope);
}

void rd_supervisor_reconcile(rd_supervisor_t *s)
{
    if (s->closing || s->opt.read_only)
        return;
    for (sup_runner_t *r = s->runners; r; r = r->next) {
        if (r->m.runner_id == 0 || r->m.state == RD_RUNNER_EXITED)
            continue;
        list_scope(s, r->scope);
    }
    for (size_t k = 0; k < s->nsuspects; k++) {
        const char *scope = s->suspects[k];
        bool busy = false;
        for (size_t i = 0; i < s->nlisting && !busy; i++)
            busy = strcmp(s->listing[i], scope) == 0;
        if (busy)
            continue;
        ticket_t *t = ticket_new(s, TK_LIST, 0, scope);
        if (rd_github_list_runners(s->gh, scope, list_cb, t) != 0) {
            ticket_end(t);
            continue;
        }
        s->listing = rd_xrealloc(s->listing, (s->nlisting + 1) * sizeof *s->listing);
        s->listing[s->nlisting++] = rd_xstrdup(scope);
    }
}

static void on_reconcile_timer(uv_timer_t *t)
{
    rd_supervisor_reconcile(rd_container_of(t, sup_t, t_reconcile));
}

static void on_drain_timer(uv_timer_t *t)
{
    sup_t *s = rd_container_of(t, sup_t, t_drain);
    rd_warn(COMP, "shutdown grace over: stopping busy runners");
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        feed(r, RD_REV_STOP_FORCE, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* public API */

static void pools_rebuild(sup_t *s, const rd_config_t *cfg)
{
    pool_state_t *np = rd_xcalloc(cfg->npools ? cfg->npools : 1, sizeof *np);
    for (size_t i = 0; i < cfg->npools; i++) {
        pool_state_t *old = pool_state(s, cfg->pools[i].name);
        if (old) {
            np[i] = *old;
            old->name = NULL;
        } else {
            np[i].name = rd_xstrdup(cfg->pools[i].name);
            rd_backoff_init(&np[i].b, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
        }
    }
    for (size_t i = 0; i < s->npools; i++)
        free(s->pools[i].name);
    free(s->pools);
    s->pools = np;
    s->npools = cfg->npools;
}

int rd_supervisor_new(uv_loop_t *loop, const rd_config_t *cfg, rd_github_t *gh,
                      const rd_supervisor_callbacks_t *cbs, const rd_supervisor_options_t *opts,
                      rd_supervisor_t **out)
{
    *out = NULL;
    if (loop == NULL || cfg == NULL || gh == NULL || cfg->docker.binary == NULL ||
        cfg->instance == NULL)
        return RD_EINVAL;
    sup_t *s = rd_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->gh = gh;
    if (cbs)
        s->cbs = *cbs;
    if (opts)
        s->opt = *opts;
    if (s->opt.stop_grace_ms == 0)
        s->opt.stop_grace_ms = 10000;
    if (s->opt.kill_slack_ms == 0)
        s->opt.kill_slack_ms = 5000;
    if (s->opt.log_line_max == 0)
        s->opt.log_line_max = 2048;
    if (s->opt.degraded_after == 0)
        s->opt.degraded_after = 3;
    if (s->opt.drain_delete_ms == 0)
        s->opt.drain_delete_ms = 15000;
    s->rng = (uint64_t)now_wall() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    pools_rebuild(s, cfg);
    uv_timer_init(loop, &s->t_changed);
    uv_timer_init(loop, &s->t_reconcile);
    uv_timer_init(loop, &s->t_backoff);
    uv_timer_init(loop, &s->t_drain);
    s->t_changed.data = s->t_reconcile.data = s->t_backoff.data = s->t_drain.data = s;
    s->open = 4;
    int rc = rd_spawner_new(loop, &s->spawner);
    if (rc != 0) {
        /* Only a loop out of signal watchers fails here: runnerd cannot run docker. */
        rd_error(COMP, "cannot watch child processes: %s", uv_strerror(rc));
        rd_supervisor_close(s, NULL, NULL);
        return RD_EIO;
    }
    s->open++;
    uint64_t every = s->opt.reconcile_ms ? s->opt.reconcile_ms : cfg->github.poll_interval_ms;
    if (every < 1000)
        every = 1000;
    if (!s->opt.read_only)
        uv_timer_start(&s->t_reconcile, on_reconcile_timer, every, every);
    *out = s;
    return 0;
}

void rd_supervisor_reconfigure(rd_supervisor_t *s, const rd_config_t *cfg)
{
    s->cfg = cfg;
    pools_rebuild(s, cfg);
    uint64_t every = s->opt.reconcile_ms ? s->opt.reconcile_ms : cfg->github.poll_interval_ms;
    if (every < 1000)
        every = 1000;
    if (!s->opt.read_only)
        uv_timer_start(&s->t_reconcile, on_reconcile_timer, every, every);
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        r->target = target_index(cfg, r->scope);
        r->pool = pool_index(cfg, r->pool_name);
        if (r->pool == NONE && !r->done && r->m.state != RD_RUNNER_EXITED) {
            rd_info(COMP, "%s: pool %s removed; stopping it unless busy", r->name, r->pool_name);
            /* It may have taken a job since the last runner list: stopping it now would
             * cancel that job. Stop it once a fresh list says it is not busy (list_cb). */
            if (r->m.runner_id == 0 || r->m.registering)
                feed(r, RD_REV_STOP, 0);
            else if (!r->stop_after_list) {
                r->stop_after_list = true;
                r->stop_asked_ms = now_wall();
                list_scope(s, r->scope);
            }
        }
    }
    schedule_changed(s);
}

int rd_supervisor_start(rd_supervisor_t *s, size_t target, size_t pool, int64_t job_id,
                        uint64_t *key_out)
{
    if (key_out)
        *key_out = 0;
    if (s->closing || s->draining || s->opt.read_only)
        return RD_ECANCELED;
    if (target >= s->cfg->ntargets || pool >= s->cfg->npools)
        return RD_EINVAL;
    const rd_pool_t *p = &s->cfg->pools[pool];
    int64_t now = now_wall();
    if (rd_backoff_remaining(&s->pools[pool].b, (uint64_t)now) > 0)
        return RD_EAGAIN;
    char *name = NULL;
    int rc = rd_dockerargv_runner_name(s->cfg->instance, p->name, now, rnd(s), &name);
    if (rc != 0) {
        if (!s->pools[pool].name_error_logged)
            rd_error(COMP,
                     "pool %s: cannot build a runner name from instance '%s' (runnerd-"
                     "<instance>-<pool>-<14 chars> must be a docker name of at most 64 "
                     "characters, GitHub's limit): %s; starting nothing in this pool",
                     p->name, s->cfg->instance, rd_strerror(rc));
        s->pools[pool].name_error_logged = true;
        return rc;
    }
    sup_runner_t *r = runner_new(s, name, s->cfg->targets[target].scope, p->name);
    free(name);
    s->pools[pool].starts++;
    rd_runner_limits_t lim = limits_for(s, pool);
    rd_runner_actions_t a;
    rd_runner_init(&r->m, &lim, job_id, now, &a);
    rd_info(COMP, "%s: starting for job %" PRId64 " in %s (pool %s)", r->name, job_id, r->scope,
            p->name);
    apply(r, &a);
    if (key_out)
        *key_out = r->key;
    register_runner(r);
    return 0;
}

int rd_supervisor_stop(rd_supervisor_t *s, uint64_t key)
{
    sup_runner_t *r = find_key(s, key);
    if (r == NULL)
        return RD_ENOENT;
    if (s->opt.read_only)
        return RD_ECANCELED;
    /* A registered runner we believe idle may have taken a job since the last runner
     * list: stopping it now would cancel that job. Stop it once a fresh list says it is
     * not busy (list_cb). */
    if (r->m.runner_id != 0 && !r->m.registering && !s->closing &&
        (r->m.state == RD_RUNNER_IDLE || r->m.state == RD_RUNNER_STARTING)) {
        if (!r->stop_after_list) {
            r->stop_after_list = true;
            r->stop_asked_ms = now_wall();
            list_scope(s, r->scope);
        }
        return 0;
    }
    feed(r, RD_REV_STOP, 0);
    return 0;
}

int rd_supervisor_stop_force(rd_supervisor_t *s, uint64_t key)
{
    sup_runner_t *r = find_key(s, key);
    if (r == NULL)
        return RD_ENOENT;
    if (s->opt.read_only)
        return RD_ECANCELED;
    feed(r, RD_REV_STOP_FORCE, 0);
    return 0;
}

int rd_supervisor_job_started(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    sup_runner_t *r = find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    if (job_id != 0 && (r->m.job_id != job_id || !r->job_known)) {
        /* GitHub may have given R the job another runner of its pool was started
         * for: that one then most likely runs R's job (rd_sched_confirm_job). */
        size_t n = 0, who = 0;
        for (const sup_runner_t *o = s->runners; o; o = o->next)
            n++;
        rd_job_claim_t *claims = rd_xcalloc(n, sizeof(*claims));
        sup_runner_t **refs = rd_xcalloc(n, sizeof(*refs));
        size_t i = 0;
        for (sup_runner_t *o = s->runners; o; o = o->next, i++) {
            if (o == r)
                who = i;
            refs[i] = o;
            claims[i].pool = o->pool;
            claims[i].job_id = o->m.job_id;
            claims[i].known = o->job_known || o->m.state >= RD_RUNNER_STOPPING;
        }
        size_t other = rd_sched_confirm_job(claims, n, who, job_id);
        if (other < n) {
            rd_debug(COMP,
                     "%s runs job %" PRId64 " (started for %" PRId64 "): counting %s"
                     " against job %" PRId64,
                     r->name, job_id, r->m.job_id, refs[other]->name, claims[other].job_id);
            refs[other]->m.job_id = claims[other].job_id;
        }
        r->job_known = true;
        free(claims);
        free(refs);
    }
    feed(r, RD_REV_JOB_STARTED, job_id);
    return 0;
}

int rd_supervisor_job_assumed(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    sup_runner_t *r = find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    feed(r, RD_REV_JOB_STARTED, job_id);
    return 0;
}

int rd_supervisor_job_completed(rd_supervisor_t *s, const char *runner_name, int64_t job_id)
{
    sup_runner_t *r = find_name(s, runner_name);
    if (r == NULL)
        return RD_ENOENT;
    feed(r, RD_REV_JOB_COMPLETED, job_id);
    return 0;
}

size_t rd_supervisor_snapshot(const rd_supervisor_t *s, rd_sched_runner_t **out)
{
    size_t n = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        n++;
    rd_sched_runner_t *v = rd_xcalloc(n ? n : 1, sizeof *v);
    size_t k = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next) {
        rd_rstate_t st;
        switch (r->m.state) {
        case RD_RUNNER_STARTING:
            st = RD_RSTATE_STARTING;
            break;
        case RD_RUNNER_IDLE:
            st = RD_RSTATE_IDLE;
            break;
        case RD_RUNNER_BUSY:
            st = RD_RSTATE_BUSY;
            break;
        case RD_RUNNER_STOPPING:
            st = RD_RSTATE_STOPPING;
            break;
        default:
            continue;
        }
        v[k].key = r->key;
        v[k].scope = r->target;
        v[k].pool = r->pool;
        v[k].state = st;
        v[k].job_id = r->m.job_id;
        v[k].idle_since_ms = r->m.idle_since_ms;
        v[k].cpus = r->cpus;
        v[k].memory = r->memory;
        v[k].gpus = r->gpus;
        k++;
    }
    *out = v;
    return k;
}

int rd_supervisor_pool_info(const rd_supervisor_t *s, size_t pool, rd_supervisor_pool_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (pool >= s->npools)
        return RD_EINVAL;
    const pool_state_t *ps = &s->pools[pool];
    out->backoff_ms = rd_backoff_remaining(&ps->b, (uint64_t)now_wall());
    out->backoff = out->backoff_ms > 0;
    out->degraded = ps->degraded;
    out->consecutive_failures = ps->b.failures;
    out->starts_total = ps->starts;
    out->failures_total = ps->failures;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        if (r->pool == pool && rd_runner_holds_capacity(&r->m))
            out->runners++;
    return 0;
}

static void runner_info(const sup_runner_t *r, int64_t now, rd_supervisor_runner_info_t *out)
{
    rd_supervisor_runner_info_t ri = {
        .key = r->key,
        .name = r->name,
        .pool = r->pool_name,
        .scope = r->scope,
        .state = r->m.state,
        .age_ms = now - r->m.created_ms,
        .job_id = r->m.job_id,
        .runner_id = r->m.runner_id,
        .adopted = r->adopted,
        .job_unknown = r->adopted_unbusy && r->m.job_id == 0,
        .ran_job = r->m.state == RD_RUNNER_EXITED &&
                   (r->m.ever_busy || (r->m.exit_code == 0 && !r->m.stop_requested)),
    };
    *out = ri;
}

void rd_supervisor_foreach(const rd_supervisor_t *s,
                           void (*fn)(void *ud, const rd_supervisor_runner_info_t *ri), void *ud)
{
    int64_t now = now_wall();
    for (const sup_runner_t *r = s->runners; r; r = r->next) {
        rd_supervisor_runner_info_t ri;
        runner_info(r, now, &ri);
        fn(ud, &ri);
    }
}

size_t rd_supervisor_count(const rd_supervisor_t *s)
{
    size_t n = 0;
    for (const sup_runner_t *r = s->runners; r; r = r->next)
        n++;
    return n;
}

void rd_supervisor_drain(rd_supervisor_t *s, uint64_t grace_ms, void (*done)(void *ud), void *ud)
{
    if (s->closing)
        return;
    bool first = !s->draining;
    s->draining = true;
    if (first) {
        s->drain_done = done;
        s->drain_ud = ud;
        rd_info(COMP, "draining %zu runners (busy ones get %.0fs)", rd_supervisor_count(s),
                (double)grace_ms / 1000.0);
        /* Runners with a registration may have taken a job since the last runner list:
         * stopping them now would cancel it. They are stopped when a fresh list says they
         * are not busy (list_cb); those still registering are stopped at once. */
        sup_runner_t *next;
        for (sup_runner_t *r = s->runners; r; r = next) {
            next = r->next;
            if (r->m.runner_id == 0)
                feed(r, RD_REV_STOP, 0);
        }
        rd_supervisor_reconcile(s);
    }
    uint64_t left = uv_is_active((uv_handle_t *)&s->t_drain) ? uv_timer_get_due_in(&s->t_drain) : 0;
    if (first || grace_ms < left) {
        uv_timer_start(&s->t_drain, on_drain_timer, grace_ms, 0);
        s->drain_giveup_ms = now_wall() + (int64_t)grace_ms + (int64_t)s->opt.drain_delete_ms;
    }
    schedule_changed(s);
}

static void spawner_closed(void *ud)
{
    handle_closed(ud);
}

void rd_supervisor_close(rd_supervisor_t *s, void (*closed)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->closed = closed;
    s->closed_ud = ud;
    for (ticket_t *t = s->tickets; t; t = t->next)
        t->sup = NULL;
    s->tickets = NULL;
    while (s->runners)
        runner_close(s->runners);
    while (s->procs) {
        sup_proc_t *p = s->procs;
        p->finished = true;
        proc_close(p);
    }
    uv_close((uv_handle_t *)&s->t_changed, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_reconcile, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_backoff, sup_handle_closed);
    uv_close((uv_handle_t *)&s->t_drain, sup_handle_closed);
    if (s->spawner) {
        rd_spawner_close(s->spawner, spawner_closed, s);
        s->spawner = NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* restart adoption */

static void adopt_end(sup_t *s, int err)
{
    adopt_t *ad = s->adopt;
    s->adopt = NULL;
    for (size_t i = 0; i < ad->n; i++) {
        free(ad->c[i].name);
        free(ad->c[i].pool);
        free(ad->c[i].scope);
    }
    free(ad->c);
    rd_strv_free(ad->scopes, ad->nscopes);
    void (*done)(void *, int) = ad->done;
    void *ud = ad->ud;
    free(ad);
    if (done)
        done(ud, err);
}

int rd_supervisor_adopt(rd_supervisor_t *s, void (*done)(void *ud, int err), void *ud)
{
    if (s->closing || s->adopt)
        return RD_ECANCELED;
    char **argv = NULL;
    int rc = rd_dockerargv_ps(s->cfg->docker.binary, s->cfg->instance, &argv);
    if (rc != 0)
        return rc;
    sup_proc_t *p = proc_spawn(s, PK_PS, 0, "ps", argv, NULL, true);
    if (p == NULL)
        return RD_EIO;
    s->adopt = rd_xcalloc(1, sizeof *s->adopt);
    s->adopt->done = done;
    s->adopt->ud = ud;
    return 0;
}

static void adopt_ps_done(sup_t *s, sup_proc_t *p)
{
    adopt_t *ad = s->adopt;
    if (ad == NULL)
        return;
    if (p->term_signal || p->exit_status != 0) {
        if (p->timed_out)
            rd_error(COMP, "restart: docker ps did not answer; adopting nothing yet");
        else if (p->term_signal)
            rd_error(COMP, "restart: docker ps died of signal %d; adopting nothing yet",
                     p->term_signal);
        else
            rd_error(COMP, "restart: docker ps failed (exit %" PRId64 "); adopting nothing yet",
                     p->exit_status);
        adopt_end(s, RD_EIO);
        return;
    }
    rd_containers_t l;
    rd_dockerargv_parse_ps(p->cap ? p->cap : "", p->caplen, &l);
    if (l.rejected)
        rd_warn(COMP, "restart: ignored %zu malformed docker ps lines", l.rejected);
    ad->c = rd_xcalloc(l.n ? l.n : 1, sizeof *ad->c);
    for (size_t i = 0; i < l.n; i++) {
        rd_container_t *c = &l.v[i];
        /* A retried adoption (docker was down at start) also lists our own. */
        if (find_name(s, c->name))
            continue;
        if (c->state != RD_CSTATE_RUNNING) {
            if (s->opt.read_only) {
                rd_info(COMP, "dry run: would remove dead container %s", c->name);
                continue;
            }
            rd_info(COMP, "restart: removing dead container %s", c->name);
            docker_simple(s, PK_RM, 0, c->name);
            continue;
        }
        cand_t *cd = &ad->c[ad->n++];
        cd->name = rd_xstrdup(c->name);
        cd->pool = rd_xstrdup(c->pool);
        cd->scope = rd_xstrdup(c->scope);
        cd->runner_id = c->runner_id;
        cd->gh = RD_GH_UNKNOWN;
    }
    rd_containers_free(&l);
    ad->pending = ad->n;
    for (size_t i = 0; i < ad->n; i++) {
        char **argv = NULL;
        ad->c[i].started_ms = now_wall();
        if (rd_dockerargv_inspect(s->cfg->docker.binary, ad->c[i].name, &argv) != 0) {
            ad->pending--;
            continue;
        }
        sup_proc_t *ip = proc_spawn(s, PK_INSPECT, 0, ad->c[i].name, argv, NULL, true);
        if (ip == NULL)
            ad->pending--;
        else
            ip->index = i;
    }
    if (ad->pending == 0)
        adopt_inspected(s);
}

static void adopt_inspect_done(sup_t *s, sup_proc_t *p)
{
    adopt_t *ad = s->adopt;
    if (ad == NULL || p->index >= ad->n)
        return;
    int64_t ms = 0;
    if (p->exit_status == 0 && p->cap &&
        rd_dockerargv_parse_started_at(p->cap, p->caplen, &ms) == 0)
        ad->c[p->index].started_ms = ms;
    else
        rd_warn(COMP, "restart: no start time for %s; timing it from now", ad->c[p->index].name);
    if (--ad->pending == 0)
        adopt_inspected(s);
}

static void adopt_list_cb(void *ud, int err, const rd_gh_runners_t *list)
{
    ticket_t *t = ud;
    sup_t *s = t->sup;
    char *scope = t->scope;
    t->scope = NULL;
    ticket_end(t);
    if (s == NULL || s->adopt == NULL) {
        free(scope);
        return;
    }
    adopt_t *ad = s->adopt;
    if (err != 0) {
        rd_warn(COMP, "restart: cannot list runners of %s: %s", scope, rd_strerror(err));
    } else {
        for (size_t i = 0; i < ad->n; i++) {
            cand_t *cd = &ad->c[i];
            if (strcmp(cd->scope, scope) != 0)
                continue;
            const rd_gh_runner_t *g = NULL;
            for (size_t k = 0; k < list->n && !g; k++)
                if ((cd->runner_id && list->v[k].id == cd->runner_id) ||
                    (list->v[k].name && strcmp(list->v[k].name, cd->name) == 0))
                    g = &list->v[k];
            cd->gh = g == NULL   ? RD_GH_ABSENT
                     : g->online ? (g->busy ? RD_GH_ONLINE_BUSY : RD_GH_ONLINE_IDLE)
                                 : RD_GH_OFFLINE;
            if (g && cd->runner_id == 0)
                cd->runner_id = g->id;
        }
        const char **pools = rd_xcalloc(s->cfg->npools + ad->n + 1, sizeof *pools);
        size_t np = 0;
        for (size_t i = 0; i < s->cfg->npools; i++)
            pools[np++] = s->cfg->pools[i].name;
        for (size_t i = 0; i < ad->n; i++)
            if (ad->c[i].pool[0])
                pools[np++] = ad->c[i].pool;
        for (size_t k = 0; k < list->n; k++) {
            const rd_gh_runner_t *g = &list->v[k];
            if (g->name == NULL || !rd_dockerargv_owns_name(g->name, s->cfg->instance, pools, np) ||
                find_name(s, g->name))
                continue;
            bool has_container = false;
            for (size_t i = 0; i < ad->n && !has_container; i++)
                has_container = strcmp(ad->c[i].name, g->name) == 0;
            if (has_container || s->opt.read_only)
                continue;
            if (g->online || g->busy) {
                /* No container, yet GitHub has not noticed: delete it once it shows offline
                 * (the periodic listing looks at this scope until then). */
                suspect_add(s, scope);
                continue;
            }
            rd_info(COMP,
                    "restart: deleting offline registration %s (id %" PRId64
                    ") in %s: no container",
                    g->name, g->id, scope);
            orphan_delete(s, scope, g->id, g->name);
        }
        free(pools);
    }
    free(scope);
    if (--ad->pending == 0)
        adopt_finish(s);
}

static void add_scope(adopt_t *ad, const char *scope)
{
    if (scope == NULL || scope[0] == '\0')
        return;
    for (size_t i = 0; i < ad->nscopes; i++)
        if (strcmp(ad->scopes[i], scope) == 0)
            return;
    ad->scopes = rd_xrealloc(ad->scopes, (ad->nscopes + 1) * sizeof *ad->scopes);
    ad->scopes[ad->nscopes++] = rd_xstrdup(scope);
}

static void adopt_inspected(sup_t *s)
{
    adopt_t *ad = s->adopt;
    for (size_t i = 0; i < s->cfg->ntargets; i++)
        add_scope(ad, s->cfg->targets[i].scope);
    for (size_t i = 0; i < ad->n; i++)
        add_scope(ad, ad->c[i].scope);
    ad->pending = ad->nscopes;
    size_t sent = 0;
    for (size_t i = 0; i < ad->nscopes; i++) {
        ticket_t *t = ticket_new(s, TK_ADOPT_LIST, 0, ad->scopes[i]);
        if (rd_github_list_runners(s->gh, ad->scopes[i], adopt_list_cb, t) != 0) {
            ticket_end(t);
            ad->pending--;
        } else {
            sent++;
        }
    }
    if (sent == 0)
        adopt_finish(s);
}

static void adopt_finish(sup_t *s)
{
    adopt_t *ad = s->adopt;
    int64_t now = now_wall();
    for (size_t i = 0; i < ad->n; i++) {
        cand_t *cd = &ad->c[i];
        if (find_name(s, cd->name))
            continue;
        sup_runner_t *r = runner_new(s, cd->name, cd->scope[0] ? cd->scope : "?", cd->pool);
        r->adopted = true;
        r->gh_seen = cd->gh != RD_GH_UNKNOWN;
        rd_runner_limits_t lim = limits_for(s, r->pool);
        rd_runner_actions_t a;
        rd_runner_adopt(&r->m, &lim, cd->runner_id, cd->started_ms, cd->gh, ADOPT_MIN_STARTUP_MS,
                        now, &a);
        r->adopted_unbusy = r->m.state != RD_RUNNER_BUSY;
        rd_info(COMP, "%s %s (pool %s, scope %s, %s, up %" PRId64 "s)",
                s->opt.read_only ? "dry run: found" : "restart: adopted", r->name, r->pool_name,
                r->scope, rd_runner_state_name(r->m.state), (now - cd->started_ms) / 1000);
        if (s->opt.read_only)
            continue; /* counted as supply and capacity; not supervised */
        apply(r, &a);
        uint64_t key = r->key;
        docker_simple(s, PK_WAIT, key, cd->name);
        r = find_key(s, key);
        if (r && r->pool == NONE)
            feed(r, RD_REV_STOP, 0);
    }
    adopt_end(s, 0);
}
