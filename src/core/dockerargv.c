/* dockerargv.c: docker CLI argv builders and output parsers (pure). */
#include "runnerd/core/dockerargv.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

/* A growable NULL-terminated argv. */
typedef struct {
    char **v;
    size_t n, cap;
} argv_t;

static void av_push_owned(argv_t *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->v = rd_xrealloc(a->v, a->cap * sizeof(char *));
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void av_push(argv_t *a, const char *s)
{
    av_push_owned(a, rd_xstrdup(s));
}

void rd_dockerargv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

size_t rd_dockerargv_len(char *const *argv)
{
    size_t n = 0;
    while (argv && argv[n])
        n++;
    return n;
}

static bool no_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool rd_dockerargv_safe_value(const char *s)
{
    if (s == NULL || s[0] == '\0' || s[0] == '-')
        return false;
    if (strlen(s) > 4096)
        return false;
    return no_ctl(s);
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool rd_dockerargv_valid_name(const char *s)
{
    if (s == NULL || !alnum(s[0]))
        return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++)
        if (!name_char(*p))
            return false;
    return n <= 128;
}

bool rd_dockerargv_valid_env_key(const char *s)
{
    if (s == NULL || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(alnum(*p) || *p == '_'))
            return false;
    return strlen(s) <= 256;
}

/* A label value may be anything printable; it is glued to "key=" so it cannot be a flag. */
static bool label_value_ok(const char *s)
{
    return s != NULL && strlen(s) <= 1024 && no_ctl(s);
}

/* "2", "0.5", "1.25": --cpus wants a plain decimal. */
static char *fmt_cpus(double c)
{
    char *s = rd_xasprintf("%.3f", c);
    char *dot = strchr(s, '.');
    if (dot) {
        char *end = s + strlen(s) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    return s;
}

static const char *pull_name(rd_pull_t p)
{
    switch (p) {
    case RD_PULL_ALWAYS:
        return "always";
    case RD_PULL_NEVER:
        return "never";
    case RD_PULL_MISSING:
        break;
    }
    return "missing";
}

int rd_dockerargv_run(const rd_dockerargv_run_t *in, char ***out)
{
    *out = NULL;
    const rd_pool_t *p = in->pool;
    const rd_docker_config_t *d = in->docker;
    if (p == NULL || d == NULL || !rd_dockerargv_safe_value(in->binary) ||
        !rd_dockerargv_valid_name(in->name) || !label_value_ok(in->instance) ||
        !label_value_ok(p->name) || !label_value_ok(in->scope) || in->runner_id < 0 ||
        !rd_dockerargv_safe_value(p->image) || !rd_dockerargv_safe_value(d->network))
        return RD_EINVAL;
    if (!(p->cpus > 0) || p->cpus > 1e6 || p->memory == 0 || p->pids_limit <= 0)
        return RD_EINVAL;
    if (p->runtime && !rd_dockerargv_safe_value(p->runtime))
        return RD_EINVAL;
    if (p->platform && !rd_dockerargv_safe_value(p->platform))
        return RD_EINVAL;
    if (p->memory_swap != 0 && p->memory_swap < p->memory)
        return RD_EINVAL;
    const char *log_driver = p->log_driver ? p->log_driver : "none";
    if (!rd_dockerargv_valid_name(log_driver))
        return RD_EINVAL;
    for (size_t i = 0; i < p->nenv; i++) {
        if (!rd_dockerargv_valid_env_key(p->env_keys[i]) || strcmp(p->env_keys[i], RD_JIT_ENV) == 0)
            return RD_EINVAL;
    }
    for (size_t i = 0; i < d->nextra_args; i++) {
        /* Operator-chosen flags: allowed to start with '-', but nothing unprintable. */
        if (d->extra_args[i] == NULL || !no_ctl(d->extra_args[i]))
            return RD_EINVAL;
    }
    for (size_t i = 0; i < p->ncommand; i++) {
        if (p->command[i] == NULL || !no_ctl(p->command[i]))
            return RD_EINVAL;
    }

    argv_t a = {0};
    av_push(&a, in->binary);
    av_push(&a, "run");
    av_push(&a, "--rm");
    av_push(&a, "--name");
    av_push(&a, in->name);
    av_push(&a, "--sig-proxy=false");
    av_push(&a, "--label");
    av_push_owned(&a, rd_xasprintf(RD_LABEL_INSTANCE "=%s", in->instance));
    av_push(&a, "--label");
    av_push_owned(&a, rd_xasprintf(RD_LABEL_POOL "=%s", p->name));
    av_push(&a, "--label");
    av_push_owned(&a, rd_xasprintf(RD_LABEL_RUNNER_ID "=%" PRId64, in->runner_id));
    av_push(&a, "--label");
    av_push_owned(&a, rd_xasprintf(RD_LABEL_SCOPE "=%s", in->scope));
    av_push(&a, "--cpus");
    av_push_owned(&a, fmt_cpus(p->cpus));
    av_push(&a, "--memory");
    av_push_owned(&a, rd_xasprintf("%" PRIu64, p->memory));
    /* Docker's default lets a container swap as much again as its memory: a runner
     * past its memory would thrash the host's disk instead of being OOM-killed. */
    av_push(&a, "--memory-swap");
    av_push_owned(&a, rd_xasprintf("%" PRIu64, p->memory_swap ? p->memory_swap : p->memory));
    av_push(&a, "--pids-limit");
    av_push_owned(&a, rd_xasprintf("%" PRId64, p->pids_limit));
    if (!p->allow_new_privileges) { /* off only by the pool's choice (docs/install.md, sudo) */
        av_push(&a, "--security-opt");
        av_push(&a, "no-new-privileges");
    }
    /* runnerd reads the container's output through `docker run` and logs it within a
     * budget; Docker's own copy (json-file: unbounded by default) would only fill its
     * disk with what a job prints. A pool may choose a driver; json-file is bounded. */
    av_push(&a, "--log-driver");
    av_push(&a, log_driver);
    if (strcmp(log_driver, "json-file") == 0) {
        av_push(&a, "--log-opt");
        av_push(&a, "max-size=10m");
        av_push(&a, "--log-opt");
        av_push(&a, "max-file=3");
    }
    av_push(&a, "--network");
    av_push(&a, d->network);
    if (p->gpus > 0) {
        av_push(&a, "--gpus");
        av_push_owned(&a, rd_xasprintf("%u", p->gpus));
    }
    if (p->runtime) {
        av_push(&a, "--runtime");
        av_push(&a, p->runtime);
    }
    if (p->platform) {
        av_push(&a, "--platform");
        av_push(&a, p->platform);
    }
    av_push(&a, "--pull");
    av_push(&a, pull_name(p->pull));
    av_push(&a, "-e");
    av_push(&a, RD_JIT_ENV);
    for (size_t i = 0; i < p->nenv; i++) {
        av_push(&a, "-e");
        av_push(&a, p->env_keys[i]);
    }
    for (size_t i = 0; i < d->nextra_args; i++)
        av_push(&a, d->extra_args[i]);
    av_push(&a, p->image);
    for (size_t i = 0; i < p->ncommand; i++)
        av_push(&a, p->command[i]);
    *out = a.v;
    return 0;
}

static int simple(const char *binary, const char *const *words, size_t nwords, const char *name,
                  char ***out)
{
    *out = NULL;
    if (!rd_dockerargv_safe_value(binary) || !rd_dockerargv_valid_name(name))
        return RD_EINVAL;
    argv_t a = {0};
    av_push(&a, binary);
    for (size_t i = 0; i < nwords; i++)
        av_push(&a, words[i]);
    av_push(&a, name);
    *out = a.v;
    return 0;
}

int rd_dockerargv_stop(const char *binary, const char *name, unsigned grace_s, char ***out)
{
    char grace[16];
    snprintf(grace, sizeof grace, "%u", grace_s);
    const char *w[] = {"stop", "-t", grace};
    return simple(binary, w, 3, name, out);
}

int rd_dockerargv_kill(const char *binary, const char *name, char ***out)
{
    const char *w[] = {"kill"};
    return simple(binary, w, 1, name, out);
}

int rd_dockerargv_wait(const char *binary, const char *name, char ***out)
{
    const char *w[] = {"wait"};
    return simple(binary, w, 1, name, out);
}

int rd_dockerargv_rm(const char *binary, const char *name, char ***out)
{
    const char *w[] = {"rm", "-f"};
    return simple(binary, w, 2, name, out);
}

int rd_dockerargv_inspect(const char *binary, const char *name, char ***out)
{
    const char *w[] = {"inspect", "--format", "{{.State.StartedAt}}"};
    return simple(binary, w, 3, name, out);
}

int rd_dockerargv_ps(const char *binary, const char *instance, char ***out)
{
    *out = NULL;
    if (!rd_dockerargv_safe_value(binary) || !label_value_ok(instance) || instance[0] == '\0')
        return RD_EINVAL;
    argv_t a = {0};
    av_push(&a, binary);
    av_push(&a, "ps");
    av_push(&a, "-a");
    av_push(&a, "--no-trunc");
    av_push(&a, "--filter");
    av_push_owned(&a, rd_xasprintf("label=" RD_LABEL_INSTANCE "=%s", instance));
    av_push(&a, "--format");
    av_push(&a, "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"" RD_LABEL_POOL
                "\"}}\t{{.Label \"" RD_LABEL_RUNNER_ID "\"}}\t{{.Label \"" RD_LABEL_SCOPE "\"}}");
    *out = a.v;
    return 0;
}

static const char b36[] = "0123456789abcdefghijklmnopqrstuvwxyz";

int rd_dockerargv_runner_name(const char *instance, const char *pool, int64_t now_ms, uint64_t rnd,
                              char **out)
{
    *out = NULL;
    if (instance == NULL || pool == NULL || instance[0] == '\0' || pool[0] == '\0')
        return RD_EINVAL;
    for (const char *p = instance; *p; p++)
        if (!name_char(*p))
            return RD_EINVAL;
    for (const char *p = pool; *p; p++)
        if (!name_char(*p))
            return RD_EINVAL;
    char suffix[32];
    char tmp[16];
    size_t n = 0;
    uint64_t t = now_ms > 0 ? (uint64_t)now_ms : 0;
    do {
        tmp[n++] = b36[t % 36];
        t /= 36;
    } while (t && n < sizeof tmp);
    size_t k = 0;
    while (n)
        suffix[k++] = tmp[--n];
    for (int i = 0; i < 6; i++) {
        suffix[k++] = b36[rnd % 36];
        rnd /= 36;
    }
    suffix[k] = '\0';
    char *name = rd_xasprintf("runnerd-%s-%s-%s", instance, pool, suffix);
    if (strlen(name) > RD_RUNNER_NAME_MAX) {
        free(name);
        return RD_EINVAL;
    }
    *out = name;
    return 0;
}

/* [a-z0-9]+ */
static bool lower_alnum(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z')))
            return false;
    return true;
}

bool rd_dockerargv_owns_name(const char *name, const char *instance, const char *const *pools,
                             size_t npools)
{
    static const char pre[] = "runnerd-";
    if (name == NULL || instance == NULL || strncmp(name, pre, sizeof pre - 1) != 0)
        return false;
    const char *p = name + sizeof pre - 1;
    size_t il = strlen(instance);
    if (il == 0 || strncmp(p, instance, il) != 0 || p[il] != '-')
        return false;
    p += il + 1;
    for (size_t i = 0; i < npools; i++) {
        size_t pl = strlen(pools[i]);
        if (pl == 0 || strncmp(p, pools[i], pl) != 0 || p[pl] != '-')
            continue;
        if (lower_alnum(p + pl + 1, strlen(p + pl + 1)))
            return true;
    }
    /* DESIGN.md: offline registrations named runnerd-<instance>-* are ours. The one
     * exception is a name another daemon may have made, whose instance extends ours
     * ("a" and "a-b"): "<more>-<pool>-<suffix>" with one of these pools, or the shape
     * of a generated name "<more>-<pool>-<14 characters>". */
    size_t n = strlen(p);
    if (n == 0 || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == '.' || p[i] == '-'))
            return false;
    const char *last = strrchr(p, '-');
    if (last == NULL)
        return true;
    const char *suffix = last + 1;
    size_t sl = strlen(suffix);
    if (!lower_alnum(suffix, sl))
        return true;
    for (size_t i = 0; i < npools; i++) {
        size_t pl = strlen(pools[i]);
        if (pl == 0 || (size_t)(last - p) < pl + 2)
            continue;
        if (strncmp(last - pl, pools[i], pl) == 0 && last[-(ptrdiff_t)pl - 1] == '-')
            return false;
    }
    if (sl == RD_RUNNER_SUFFIX_LEN) {
        const char *dash = memchr(p, '-', (size_t)(last - p));
        if (dash != NULL && dash > p && dash + 1 < last)
            return false;
    }
    return true;
}

static rd_cstate_t cstate_parse(const char *s, size_t n)
{
    if (n == 7 && memcmp(s, "running", 7) == 0)
        return RD_CSTATE_RUNNING;
    if (n == 6 && memcmp(s, "exited", 6) == 0)
        return RD_CSTATE_EXITED;
    if (n == 4 && memcmp(s, "dead", 4) == 0)
        return RD_CSTATE_DEAD;
    return RD_CSTATE_OTHER;
}

/* Parse one ps line [s, s+n) into c; false when malformed. */
static bool parse_ps_line(const char *s, size_t n, rd_container_t *c)
{
    const char *f[6];
    size_t fl[6];
    size_t nf = 0;
    const char *start = s;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\t') {
            if (nf == 6)
                return false;
            f[nf] = start;
            fl[nf] = (size_t)(s + i - start);
            nf++;
            start = s + i + 1;
        }
    }
    if (nf != 6)
        return false;
    /* Trailing '\r' from a CRLF line. */
    if (fl[5] > 0 && f[5][fl[5] - 1] == '\r')
        fl[5]--;
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < fl[i]; j++)
            if ((unsigned char)f[i][j] < 0x20 || f[i][j] == 0x7f)
                return false;
    if (fl[0] == 0 || fl[0] > 128)
        return false;
    for (size_t j = 0; j < fl[0]; j++)
        if (!alnum(f[0][j]))
            return false;
    /* docker ps may print "/name" or several comma-separated names; take the plain one. */
    const char *nm = f[1];
    size_t nml = fl[1];
    if (nml > 0 && nm[0] == '/') {
        nm++;
        nml--;
    }
    char *name = rd_xstrndup(nm, nml);
    if (!rd_dockerargv_valid_name(name)) {
        free(name);
        return false;
    }
    int64_t rid = 0;
    if (fl[4] > 0) {
        if (fl[4] > 18) {
            free(name);
            return false;
        }
        for (size_t j = 0; j < fl[4]; j++) {
            if (f[4][j] < '0' || f[4][j] > '9') {
                free(name);
                return false;
            }
            rid = rid * 10 + (f[4][j] - '0');
        }
    }
    c->id = rd_xstrndup(f[0], fl[0]);
    c->name = name;
    c->state = cstate_parse(f[2], fl[2]);
    c->pool = rd_xstrndup(f[3], fl[3]);
    c->runner_id = rid;
    c->scope = rd_xstrndup(f[5], fl[5]);
    return true;
}

int rd_dockerargv_parse_ps(const char *buf, size_t len, rd_containers_t *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
        const char *line = buf + i;
        i += n + (nl ? 1 : 0);
        if (n == 0 || (n == 1 && line[0] == '\r'))
            continue;
        if (memchr(line, '\0', n) != NULL) {
            out->rejected++;
            continue;
        }
        rd_container_t c;
        if (!parse_ps_line(line, n, &c)) {
            out->rejected++;
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->v = rd_xrealloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n++] = c;
    }
    return 0;
}

void rd_containers_free(rd_containers_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].name);
        free(l->v[i].pool);
        free(l->v[i].scope);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int rd_dockerargv_parse_started_at(const char *buf, size_t len, int64_t *out_ms)
{
    *out_ms = 0;
    /* Trim surrounding whitespace (docker prints a trailing newline). */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    while (len > 0 && (buf[0] == ' ' || buf[0] == '\n'))
        buf++, len--;
    if (len < 20 || len > 64)
        return RD_EINVAL;
    const char *s = buf;
    int Y, M, D, h, m, sec;
    if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return RD_EINVAL;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return RD_EINVAL;
    size_t i = 19;
    int ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3)
                ms = ms * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return RD_EINVAL;
        for (size_t k = i - start; k < 3; k++)
            ms *= 10;
    }
    int64_t off_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return RD_EINVAL;
        off_s = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return RD_EINVAL;
    }
    if (i != len)
        return RD_EINVAL;
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t t = days * 86400 + h * 3600 + m * 60 + sec - off_s;
    *out_ms = t * 1000 + ms;
    return 0;
}
