/* supervisor_proc.c: the supervisor's docker children (see supervisor_int.h): spawn
 * with an allow-listed environment, read their output into the log line by line (or
 * capture it), kill one-shot commands that outlive their deadline, and hand each
 * kind of child's exit to the runner or adoption it belongs to. */
#include "supervisor_int.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/log.h"

extern char **environ;

static const char *const proc_kind_names[] = {"run", "wait", "stop", "kill", "rm", "ps", "inspect"};

static void proc_finished(sup_proc_t *p);

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
    rd_sup_handle_closed(s);
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

void rd_sup_proc_close(sup_proc_t *p)
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

/* Say how many of a runner's output lines the budget dropped, once, then count anew. */
static void budget_report(sup_proc_t *p)
{
    if (p->suppressed == 0)
        return;
    rd_warn("runner", "%s: %" PRIu64 " lines of output suppressed (over %u lines a minute)",
            p->label, p->suppressed, p->sup->opt.log_lines_per_minute);
    p->suppressed = 0;
}

/* A runner's output reaches the log within a budget of lines a minute: a container
 * that prints without end must not flood runnerd's log (and the journal, the disk). */
static bool budget_take(sup_proc_t *p)
{
    uint64_t now = uv_now(p->sup->loop);
    if (p->window_lines == 0 || now - p->window_ms >= 60000) {
        budget_report(p);
        p->window_ms = now;
        p->window_lines = 0;
    }
    if (p->window_lines < p->sup->opt.log_lines_per_minute) {
        p->window_lines++;
        return true;
    }
    p->suppressed++;
    return false;
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
    const sup_runner_t *r = p->key ? rd_sup_find_key(p->sup, p->key) : NULL;
    const rd_log_ctx_t *ctx = r ? SUP_CTX(r) : &(const rd_log_ctx_t){.runner = p->label};
    if (p->kind == PK_RUN || p->kind == PK_WAIT) {
        if (budget_take(p))
            rd_logc(RD_LOG_INFO, "runner", ctx, "%s: %.*s%s", p->label, (int)n, line, more);
    } else if (is_err) {
        rd_info("docker", "docker %s %s: %.*s%s", proc_kind_names[p->kind], p->label, (int)n, line,
                more);
    }
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
        sup_runner_t *r = rd_sup_find_key(p->sup, p->key);
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
char **rd_sup_child_env(const sup_t *s, const char *jit, const rd_pool_t *pool)
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

void rd_sup_env_free(char **env)
{
    for (char **e = env; *e; e++) {
        /* Scrub: one of these holds the JIT config. */
        memset(*e, 0, strlen(*e));
        free(*e);
    }
    free(env);
}

/* Spawn argv (consumed). Returns the proc, or NULL (logged) when the spawn failed. */
sup_proc_t *rd_sup_proc_spawn(sup_t *s, proc_kind_t kind, uint64_t key, const char *label,
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

    char **own_env = env ? NULL : rd_sup_child_env(s, NULL, NULL);
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
        rd_sup_env_free(own_env);
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
        rd_sup_proc_close(p);
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
void rd_sup_docker_simple(sup_t *s, proc_kind_t kind, uint64_t key, const char *name)
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
    sup_proc_t *p = rd_sup_proc_spawn(s, kind, key, name, argv, NULL, kind == PK_WAIT);
    if (kind == PK_STOP && p) {
        sup_runner_t *r = rd_sup_find_key(s, key);
        if (r)
            r->stop_inflight = true;
    }
    if (kind == PK_WAIT && p == NULL) {
        sup_runner_t *r = rd_sup_find_key(s, key);
        if (r)
            rd_sup_feed(r, RD_REV_CHILD_EXIT, -1);
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

static void proc_finished(sup_proc_t *p)
{
    p->finished = true;
    budget_report(p); /* the rest of what the budget dropped, at the latest at the exit */
    sup_t *s = p->sup;
    int64_t code = p->term_signal ? -1 : p->exit_status;
    sup_runner_t *r = p->key ? rd_sup_find_key(s, p->key) : NULL;
    switch (p->kind) {
    case PK_RUN:
        if (r) {
            rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: docker run exited with %" PRId64 "%s",
                    p->label, code,
                    code == 125 ? " (docker error: image missing or daemon unreachable?)" : "");
            rd_sup_feed(r, RD_REV_CHILD_EXIT, code);
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
            rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: container exited with %" PRId64, p->label,
                    c);
            rd_sup_feed(r, RD_REV_CHILD_EXIT, c);
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
            uv_timer_start(&r->t_retry, rd_sup_on_restop_timer, STOP_RETRY_MS, 0);
        break;
    case PK_KILL:
    case PK_RM:
        if (code != 0)
            rd_debug(COMP, "%s: docker %s exited with %" PRId64, p->label, proc_kind_names[p->kind],
                     code);
        break;
    case PK_PS:
        rd_sup_adopt_ps_done(s, p);
        break;
    case PK_INSPECT:
        rd_sup_adopt_inspect_done(s, p);
        break;
    }
    rd_sup_proc_close(p);
}
