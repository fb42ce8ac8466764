/* config.c: load and validate runnerd.yaml (DESIGN.md section 2).
 *
 * The file becomes a position-keeping node tree (yamltree.c); each section is
 * then read against its table of keys, so that unknown and duplicate keys,
 * wrong types and out-of-range values are all found in one pass, each with the
 * line and column of the node at fault. Cross-checks (pool names, arch, host
 * capacity, targets) run last, while the tree is still there to point into.
 * Nothing here reads the host, a file or the environment: the host's facts and
 * the file's text are handed in; src/io/configfile.c reads the file, the files
 * it names and the environment. */
#include "runnerd/core/config.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/labels.h"
#include "runnerd/core/scaleset.h"
#include "yamltree.h"

#define GIB (1024ULL * 1024 * 1024)
#define MIB (1024ULL * 1024)

#define RD_MAX_LABELS 100
#define RD_MAX_NAME 40     /* pool names */
#define RD_MAX_INSTANCE 32 /* instance */

typedef struct {
    const char *file;
    const rd_host_facts_t *facts;
    rd_config_errors_t *errs;
    size_t nerr_start;
    rd_config_t *cfg;
} ctx_t;

/* Nodes of one pool kept for the cross-checks. */
typedef struct {
    const rd_ynode_t *node, *name, *labels, *cpus, *memory, *gpus, *platform, *min_idle;
    const rd_ynode_t *arch_label; /* the label item that named the arch */
    rd_arch_t label_arch, platform_arch;
    bool ok_name;
} pool_aux_t;

/* ------------------------------------------------------------------ errors */

void rd_config_errors_add(rd_config_errors_t *errs, const char *file, int line, int col,
                          const char *path, const char *reason)
{
    errs->v = rd_xrealloc(errs->v, (errs->n + 1) * sizeof(*errs->v));
    rd_config_error_t *e = &errs->v[errs->n++];
    e->file = rd_xstrdup(file);
    e->line = line;
    e->col = col;
    e->path = rd_xstrdup(path ? path : "");
    e->reason = rd_xstrdup(reason);
}

static void errat(ctx_t *c, const rd_ynode_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void errat(ctx_t *c, const rd_ynode_t *n, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    rd_config_errors_add(c->errs, c->file, n ? n->line : 1, n ? n->col : 1, path, reason);
}

void rd_config_errors_free(rd_config_errors_t *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].file);
        free(errs->v[i].path);
        free(errs->v[i].reason);
    }
    free(errs->v);
    errs->v = NULL;
    errs->n = 0;
}

char *rd_config_error_str(const rd_config_error_t *e)
{
    const char *sep = e->path[0] != '\0' ? ": " : "";
    if (e->line > 0)
        return rd_xasprintf("%s:%d:%d: %s%s%s", e->file, e->line, e->col, e->path, sep, e->reason);
    return rd_xasprintf("%s: %s%s%s", e->file, e->path, sep, e->reason);
}

void rd_config_errors_print(const rd_config_errors_t *errs, FILE *fp)
{
    for (size_t i = 0; i < errs->n; i++) {
        char *s = rd_config_error_str(&errs->v[i]);
        fprintf(fp, "%s\n", s);
        free(s);
    }
}

/* Errors read best in file order; the sort is stable so that two errors about
 * one node keep the order they were found in. */
static void sort_errors(rd_config_errors_t *errs, size_t from)
{
    for (size_t i = from + 1; i < errs->n; i++) {
        rd_config_error_t e = errs->v[i];
        size_t j = i;
        while (j > from && (errs->v[j - 1].line > e.line ||
                            (errs->v[j - 1].line == e.line && errs->v[j - 1].col > e.col))) {
            errs->v[j] = errs->v[j - 1];
            j--;
        }
        errs->v[j] = e;
    }
}

/* ------------------------------------------------------------------ units */

int rd_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return RD_EINVAL;
    const char *p = s;
    uint64_t total = 0;
    bool all_digits = true;
    for (const char *q = s; *q; q++)
        if (!isdigit((unsigned char)*q))
            all_digits = false;
    if (all_digits) {
        if (strlen(s) > 12)
            return RD_ERANGE;
        *out_ms = strtoull(s, NULL, 10) * 1000;
        return RD_OK;
    }
    /* One or more NUMBER UNIT parts: "1h30m", "250ms". */
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return RD_EINVAL;
        uint64_t v = 0;
        int ndig = 0;
        while (isdigit((unsigned char)*p)) {
            if (++ndig > 12)
                return RD_ERANGE;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        uint64_t mult;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            mult = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            mult = 24 * 3600 * 1000;
            p++;
        } else {
            return RD_EINVAL;
        }
        total += v * mult;
        if (total > (uint64_t)1 << 53)
            return RD_ERANGE;
    }
    *out_ms = total;
    return RD_OK;
}

int rd_parse_size(const char *s, uint64_t *out_bytes)
{
    if (s == NULL || *s == '\0')
        return RD_EINVAL;
    const char *p = s;
    int ndig = 0, nfrac = 0;
    uint64_t ip = 0, fp = 0, fdiv = 1;
    while (isdigit((unsigned char)*p)) {
        if (++ndig > 15)
            return RD_ERANGE;
        ip = ip * 10 + (uint64_t)(*p++ - '0');
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (++nfrac > 6)
                return RD_EINVAL;
            fp = fp * 10 + (uint64_t)(*p++ - '0');
            fdiv *= 10;
        }
        if (nfrac == 0)
            return RD_EINVAL;
    }
    if (ndig == 0)
        return RD_EINVAL;
    uint64_t unit = 1;
    char u = (char)tolower((unsigned char)*p);
    if (u != '\0') {
        switch (u) {
        case 'b':
            unit = 1;
            break;
        case 'k':
            unit = 1024ULL;
            break;
        case 'm':
            unit = MIB;
            break;
        case 'g':
            unit = GIB;
            break;
        case 't':
            unit = GIB * 1024;
            break;
        default:
            return RD_EINVAL;
        }
        p++;
        if (u != 'b') {
            /* K, KB, KiB (any case) all mean 1024, as docker reads them. */
            if (tolower((unsigned char)p[0]) == 'i' && tolower((unsigned char)p[1]) == 'b')
                p += 2;
            else if (tolower((unsigned char)p[0]) == 'b')
                p++;
        }
        if (*p != '\0')
            return RD_EINVAL;
    }
    if (nfrac > 0 && unit == 1)
        return RD_EINVAL; /* "1.5" bytes makes no sense */
    if (ip > UINT64_MAX / unit / 2)
        return RD_ERANGE;
    *out_bytes = ip * unit + (fp * unit) / fdiv;
    return RD_OK;
}

const char *rd_arch_name(rd_arch_t arch)
{
    switch (arch) {
    case RD_ARCH_X64:
        return "x64";
    case RD_ARCH_ARM64:
        return "arm64";
    case RD_ARCH_ARM:
        return "arm";
    case RD_ARCH_UNKNOWN:
        break;
    }
    return "unknown";
}

rd_arch_t rd_arch_parse(const char *w)
{
    if (w == NULL)
        return RD_ARCH_UNKNOWN;
    if (strcasecmp(w, "x64") == 0 || strcasecmp(w, "amd64") == 0 || strcasecmp(w, "x86_64") == 0)
        return RD_ARCH_X64;
    if (strcasecmp(w, "arm64") == 0 || strcasecmp(w, "aarch64") == 0)
        return RD_ARCH_ARM64;
    if (strcasecmp(w, "arm") == 0 || strcasecmp(w, "armv7l") == 0 || strcasecmp(w, "armv7") == 0 ||
        strcasecmp(w, "armhf") == 0)
        return RD_ARCH_ARM;
    return RD_ARCH_UNKNOWN;
}

/* Docker's platform spelling of an arch. */
static const char *arch_docker(rd_arch_t a)
{
    switch (a) {
    case RD_ARCH_X64:
        return "amd64";
    case RD_ARCH_ARM64:
        return "arm64";
    case RD_ARCH_ARM:
        return "arm";
    case RD_ARCH_UNKNOWN:
        break;
    }
    return "unknown";
}

static void fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 != 0)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (ms % 86400000 == 0 && ms >= 2 * 86400000ULL)
        snprintf(buf, len, "%llud", (unsigned long long)(ms / 86400000));
    else if (ms % 3600000 == 0 && ms != 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms != 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
}

static void fmt_size(uint64_t b, char *buf, size_t len)
{
    if (b >= GIB && b % GIB == 0)
        snprintf(buf, len, "%lluGiB", (unsigned long long)(b / GIB));
    else if (b >= GIB)
        snprintf(buf, len, "%.2fGiB", (double)b / (double)GIB);
    else if (b >= MIB && b % MIB == 0)
        snprintf(buf, len, "%lluMiB", (unsigned long long)(b / MIB));
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, len, "%lluKiB", (unsigned long long)(b / 1024));
    else
        snprintf(buf, len, "%lluB", (unsigned long long)b);
}

static void fmt_cpus(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.3f", v);
    /* Trim "2.000" -> "2", "0.500" -> "0.5". */
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

/* ------------------------------------------------------------------ names */

bool rd_config_owner_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 39 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) || (unsigned char)s[i] > 127)
            if (s[i] != '-')
                return false;
    return true;
}

bool rd_config_repo_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 100 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* What GitHub accepts as a runner label; a NUL from a YAML escape cuts it short. */
static bool label_ok(const char *s, size_t len)
{
    return strlen(s) == len && rd_label_valid(s);
}

/* Pool names and the instance become container names, runner names and label
 * values, so they are held to [a-z0-9][a-z0-9_.-]*: never a flag, never a space. */
static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static bool env_key_ok(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

/* Printable, no whitespace: image names, network names, binaries. */
static bool token_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* ------------------------------------------------------------------ tree helpers */

/* Key paths and messages are cut short when absurdly long (a 300-character
 * unknown key); that is fine, so gcc's truncation warning is off for this file. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static void join(char *buf, size_t len, const char *path, const char *key)
{
    if (path[0] == '\0')
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s.%s", path, key);
}

static void join_idx(char *buf, size_t len, const char *path, size_t i)
{
    snprintf(buf, len, "%s[%zu]", path, i);
}

/* Edit distance, for "did you mean" on unknown keys (keys are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest_key(const char *key, const char *const *keys, size_t nkeys)
{
    const char *best = NULL;
    size_t bestd = 3; /* at most two edits away */
    for (size_t i = 0; i < nkeys; i++) {
        size_t d = edit_distance(key, keys[i]);
        if (d < bestd && d < strlen(keys[i])) {
            bestd = d;
            best = keys[i];
        }
    }
    return best;
}

/*
 * Read mapping NODE against the table KEYS: vals[i] gets the value of keys[i]
 * (NULL when absent or null), knodes[i] the key node. Unknown keys, duplicate
 * keys and keys that are not strings are reported; their values are not read.
 * Returns false (reported) when NODE is not a mapping.
 */
static bool read_map(ctx_t *c, const rd_ynode_t *node, const char *path, const char *const *keys,
                     size_t nkeys, const rd_ynode_t **vals, const rd_ynode_t **knodes)
{
    for (size_t i = 0; i < nkeys; i++) {
        vals[i] = NULL;
        if (knodes)
            knodes[i] = NULL;
    }
    if (node == NULL || node->kind != RD_YNODE_MAP) {
        errat(c, node, path, "must be a mapping, not %s", rd_ynode_kind_name(node));
        return false;
    }
    const rd_ynode_t *seen[64];
    for (size_t i = 0; i < nkeys && i < 64; i++)
        seen[i] = NULL;
    for (size_t i = 0; i < node->u.map.n; i++) {
        const rd_ynode_t *k = node->u.map.v[i].key;
        const rd_ynode_t *v = node->u.map.v[i].value;
        if (k->kind != RD_YNODE_SCALAR) {
            errat(c, k, path, "keys must be strings, not %s", rd_ynode_kind_name(k));
            continue;
        }
        char p[256];
        join(p, sizeof(p), path, k->u.scalar.s);
        size_t j;
        for (j = 0; j < nkeys; j++)
            if (strcmp(keys[j], k->u.scalar.s) == 0)
                break;
        if (j == nkeys) {
            /* A duplicate unknown key is still one unknown key per occurrence. */
            const char *near = closest_key(k->u.scalar.s, keys, nkeys);
            if (near != NULL)
                errat(c, k, p, "unknown key (did you mean %s?)", near);
            else
                errat(c, k, p, "unknown key");
            continue;
        }
        if (seen[j] != NULL) {
            errat(c, k, p, "duplicate key (first at line %d)", seen[j]->line);
            continue;
        }
        seen[j] = k;
        if (knodes)
            knodes[j] = k;
        vals[j] = rd_ynode_is_null(v) ? NULL : v;
    }
    return true;
}

/* A scalar's text, or NULL (reported) when the node is a list or a mapping. */
static const char *scalar(ctx_t *c, const rd_ynode_t *n, const char *path, const char *what)
{
    if (n->kind != RD_YNODE_SCALAR) {
        errat(c, n, path, "must be %s, not %s", what, rd_ynode_kind_name(n));
        return NULL;
    }
    if (strlen(n->u.scalar.s) != n->u.scalar.len) {
        errat(c, n, path, "must not contain NUL characters");
        return NULL;
    }
    return n->u.scalar.s;
}

/* A string value with no control characters; NULL (reported) otherwise. */
static char *get_str(ctx_t *c, const rd_ynode_t *n, const char *path)
{
    const char *s = scalar(c, n, path, "a string");
    if (s == NULL)
        return NULL;
    if (s[0] == '\0') {
        errat(c, n, path, "must not be empty");
        return NULL;
    }
    if (has_ctl(s)) {
        errat(c, n, path, "must not contain control characters");
        return NULL;
    }
    return rd_xstrdup(s);
}

static bool get_uint(ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    const char *s = scalar(c, n, path, "a whole number");
    if (s == NULL)
        return false;
    size_t len = strlen(s);
    bool digits = len > 0 && len <= 18;
    for (size_t i = 0; i < len && digits; i++)
        if (!isdigit((unsigned char)s[i]))
            digits = false;
    if (!digits) {
        if (s[0] == '-' && len > 1)
            errat(c, n, path, "must be between %llu and %llu", (unsigned long long)min,
                  (unsigned long long)max);
        else
            errat(c, n, path, "must be a whole number, not \"%s\"", s);
        return false;
    }
    uint64_t v = strtoull(s, NULL, 10);
    if (v < min || v > max) {
        errat(c, n, path, "must be between %llu and %llu", (unsigned long long)min,
              (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

static bool get_duration(ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min_ms,
                         uint64_t max_ms, uint64_t *out)
{
    const char *s = scalar(c, n, path, "a duration");
    if (s == NULL)
        return false;
    uint64_t v;
    int rc = rd_parse_duration_ms(s, &v);
    char a[32], b[32];
    fmt_duration(min_ms, a, sizeof(a));
    fmt_duration(max_ms, b, sizeof(b));
    if (rc == RD_EINVAL) {
        errat(c, n, path, "\"%s\" is not a duration (use 30s, 5m, 6h, 250ms or seconds)", s);
        return false;
    }
    if (rc != RD_OK || v < min_ms || v > max_ms) {
        errat(c, n, path, "must be between %s and %s", a, b);
        return false;
    }
    *out = v;
    return true;
}

static bool get_size(ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min, uint64_t *out)
{
    const char *s = scalar(c, n, path, "a size");
    if (s == NULL)
        return false;
    uint64_t v;
    int rc = rd_parse_size(s, &v);
    if (rc == RD_EINVAL) {
        errat(c, n, path, "\"%s\" is not a size (use 512MiB, 4GiB, 1G or bytes)", s);
        return false;
    }
    char a[32];
    fmt_size(min, a, sizeof(a));
    if (rc != RD_OK || v > (uint64_t)1 << 50) {
        errat(c, n, path, "too large");
        return false;
    }
    if (v < min) {
        errat(c, n, path, "must be at least %s", a);
        return false;
    }
    *out = v;
    return true;
}

/* CPUs: a decimal number > 0, at most 3 fraction digits (docker --cpus). */
static bool get_cpus(ctx_t *c, const rd_ynode_t *n, const char *path, double *out)
{
    const char *s = scalar(c, n, path, "a number");
    if (s == NULL)
        return false;
    const char *p = s;
    int ndig = 0, nfrac = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        ndig++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            nfrac++;
        }
    }
    if (s[0] == '-' && strlen(s) > 1) {
        errat(c, n, path, "must be > 0");
        return false;
    }
    if (*p != '\0' || ndig == 0 || ndig > 6 || nfrac > 3 || (p[-1] == '.')) {
        errat(c, n, path, "must be a number of CPUs such as 2 or 0.5, not \"%s\"", s);
        return false;
    }
    double v = strtod(s, NULL);
    if (!(v > 0)) {
        errat(c, n, path, "must be > 0");
        return false;
    }
    if (v > 4096) {
        errat(c, n, path, "must be at most 4096");
        return false;
    }
    *out = v;
    return true;
}

/* A list of strings; a lone string is accepted as a one-element list when
 * ALLOW_SCALAR. Items are checked for kind and control characters only. */
static bool get_strlist(ctx_t *c, const rd_ynode_t *n, const char *path, bool allow_scalar,
                        char ***out, size_t *nout, const rd_ynode_t ***items_out)
{
    *out = NULL;
    *nout = 0;
    if (n->kind == RD_YNODE_SCALAR && allow_scalar) {
        char *s = get_str(c, n, path);
        if (s == NULL)
            return false;
        *out = rd_xcalloc(1, sizeof(char *));
        (*out)[0] = s;
        *nout = 1;
        if (items_out) {
            *items_out = rd_xcalloc(1, sizeof(**items_out));
            (*items_out)[0] = n;
        }
        return true;
    }
    if (n->kind != RD_YNODE_SEQ) {
        errat(c, n, path, "must be a list of strings, not %s", rd_ynode_kind_name(n));
        return false;
    }
    bool ok = true;
    char **v = rd_xcalloc(n->u.seq.n + 1, sizeof(char *));
    const rd_ynode_t **items = rd_xcalloc(n->u.seq.n + 1, sizeof(*items));
    size_t k = 0;
    for (size_t i = 0; i < n->u.seq.n; i++) {
        char p[256];
        join_idx(p, sizeof(p), path, i);
        const rd_ynode_t *it = n->u.seq.v[i];
        if (rd_ynode_is_null(it)) {
            errat(c, it, p, "must be a string, not null");
            ok = false;
            continue;
        }
        char *s = get_str(c, it, p);
        if (s == NULL) {
            ok = false;
            continue;
        }
        items[k] = it;
        v[k++] = s;
    }
    *out = v;
    *nout = k;
    if (items_out)
        *items_out = items;
    else
        free(items);
    return ok;
}

static bool is_auto(const rd_ynode_t *n)
{
    return n->kind == RD_YNODE_SCALAR && strcmp(n->u.scalar.s, "auto") == 0;
}

/* Relative file names are taken relative to the configuration file's folder. */
static char *resolve_path(const char *cfgfile, const char *p)
{
    if (p[0] == '/')
        return rd_xstrdup(p);
    const char *slash = strrchr(cfgfile, '/');
    if (slash == NULL)
        return rd_xstrdup(p);
    return rd_xasprintf("%.*s/%s", (int)(slash - cfgfile), cfgfile, p);
}

static char *get_path(ctx_t *c, const rd_ynode_t *n, const char *path, rd_pos_t *pos)
{
    char *s = get_str(c, n, path);
    if (s == NULL)
        return NULL;
    char *r = resolve_path(c->file, s);
    free(s);
    if (pos) {
        pos->line = n->line;
        pos->col = n->col;
    }
    return r;
}

/* ------------------------------------------------------------------ sections */

enum {
    GH_API_URL,
    GH_TOKEN_FILE,
    GH_TOKEN_ENV,
    GH_APP_ID,
    GH_PRIVATE_KEY_FILE,
    GH_INSTALLATION_ID,
    GH_POLL_INTERVAL,
    GH_REQUEST_BUDGET,
    GH_MAX_CONNECTIONS,
    GH_CA_FILE,
    GH_WEB_URL,
    GH_N
};
static const char *const gh_keys[GH_N] = {
    "api_url",          "token_file",      "token_env",     "app_id",
    "private_key_file", "installation_id", "poll_interval", "request_budget",
    "max_connections",  "ca_file",         "web_url",
};

static void parse_api_url(ctx_t *c, const rd_ynode_t *n, rd_github_config_t *g)
{
    char *s = get_str(c, n, "github.api_url");
    if (s == NULL)
        return;
    const char *rest = NULL;
    if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/' || !token_ok(s)) {
        errat(c, n, "github.api_url", "must be an http:// or https:// URL, not \"%s\"", s);
        free(s);
        return;
    }
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        s[--len] = '\0';
    free(g->api_url);
    g->api_url = s;
}

static void parse_budget(ctx_t *c, const rd_ynode_t *n, rd_github_config_t *g)
{
    const char *path = "github.request_budget";
    const char *s = scalar(c, n, path, "a rate such as 4000/h");
    if (s == NULL)
        return;
    const char *p = s;
    uint64_t v = 0;
    int ndig = 0;
    while (isdigit((unsigned char)*p) && ndig < 10) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        ndig++;
    }
    uint64_t mult = 0;
    if (*p == '\0' || strcmp(p, "/h") == 0)
        mult = 1;
    else if (strcmp(p, "/m") == 0)
        mult = 60;
    if (ndig == 0 || mult == 0) {
        errat(c, n, path, "\"%s\" is not a rate (use N/h, N/m, or N per hour)", s);
        return;
    }
    v *= mult;
    if (v < 1 || v > 1000000) {
        errat(c, n, path, "must be between 1/h and 1000000/h");
        return;
    }
    g->request_budget_per_hour = (unsigned)v;
}

static void parse_github(ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *root)
{
    rd_github_config_t *g = &c->cfg->github;
    const rd_ynode_t *v[GH_N], *k[GH_N];
    if (node == NULL) {
        errat(c, root, "github", "is required (it holds the API URL and credentials)");
        return;
    }
    if (!read_map(c, node, "github", gh_keys, GH_N, v, k))
        return;
    if (v[GH_API_URL])
        parse_api_url(c, v[GH_API_URL], g);
    if (v[GH_TOKEN_FILE])
        g->token_file = get_path(c, v[GH_TOKEN_FILE], "github.token_file", &g->token_file_pos);
    if (v[GH_TOKEN_ENV]) {
        char *s = get_str(c, v[GH_TOKEN_ENV], "github.token_env");
        if (s != NULL && !env_key_ok(s)) {
            errat(c, v[GH_TOKEN_ENV], "github.token_env",
                  "\"%s\" is not an environment variable name", s);
            free(s);
            s = NULL;
        }
        g->token_env = s;
        g->token_env_pos = (rd_pos_t){v[GH_TOKEN_ENV]->line, v[GH_TOKEN_ENV]->col};
    }
    uint64_t u;
    if (v[GH_APP_ID] && get_uint(c, v[GH_APP_ID], "github.app_id", 1, 999999999999ULL, &u))
        g->app_id = (int64_t)u;
    if (v[GH_PRIVATE_KEY_FILE])
        g->private_key_file = get_path(c, v[GH_PRIVATE_KEY_FILE], "github.private_key_file",
                                       &g->private_key_file_pos);
    if (v[GH_INSTALLATION_ID] &&
        get_uint(c, v[GH_INSTALLATION_ID], "github.installation_id", 1, 999999999999ULL, &u))
        g->installation_id = (int64_t)u;
    if (v[GH_POLL_INTERVAL])
        get_duration(c, v[GH_POLL_INTERVAL], "github.poll_interval", 1000, 3600000,
                     &g->poll_interval_ms);
    if (v[GH_REQUEST_BUDGET])
        parse_budget(c, v[GH_REQUEST_BUDGET], g);
    if (v[GH_MAX_CONNECTIONS] &&
        get_uint(c, v[GH_MAX_CONNECTIONS], "github.max_connections", 1, 64, &u))
        g->max_connections = (unsigned)u;
    if (v[GH_CA_FILE])
        g->ca_file = get_path(c, v[GH_CA_FILE], "github.ca_file", &g->ca_file_pos);
    if (v[GH_WEB_URL]) {
        char *w = get_str(c, v[GH_WEB_URL], "github.web_url");
        if (w != NULL &&
            ((strncmp(w, "https://", 8) != 0 && strncmp(w, "http://", 7) != 0) || !token_ok(w))) {
            errat(c, v[GH_WEB_URL], "github.web_url", "must be an http:// or https:// URL");
            free(w);
            w = NULL;
        }
        if (w != NULL) {
            size_t wl = strlen(w);
            while (wl > 0 && w[wl - 1] == '/')
                w[--wl] = '\0';
        }
        g->web_url = w;
    }

    /* Exactly one way to authenticate. The app counts once app_id or its key is
     * written; the other half missing is its own error. */
    const rd_ynode_t *methods[3] = {k[GH_TOKEN_FILE], k[GH_TOKEN_ENV],
                                    k[GH_APP_ID] ? k[GH_APP_ID] : k[GH_PRIVATE_KEY_FILE]};
    const char *names[3] = {"token_file", "token_env", "app_id"};
    const rd_ynode_t *first = NULL;
    size_t firsti = 0, nmethods = 0;
    for (size_t i = 0; i < 3; i++) {
        if (methods[i] == NULL)
            continue;
        nmethods++;
        if (first == NULL || methods[i]->line < first->line ||
            (methods[i]->line == first->line && methods[i]->col < first->col)) {
            first = methods[i];
            firsti = i;
        }
    }
    if (nmethods == 0) {
        errat(c, node, "github",
              "no credentials: set one of token_file, token_env or app_id + private_key_file");
    } else if (nmethods > 1) {
        for (size_t i = 0; i < 3; i++) {
            if (methods[i] == NULL || i == firsti)
                continue;
            char p[64];
            join(p, sizeof(p), "github", names[i]);
            errat(c, methods[i], p,
                  "only one authentication method may be set (%s is already set at line %d)",
                  names[firsti], first->line);
        }
    }
    if (k[GH_APP_ID] && !k[GH_PRIVATE_KEY_FILE])
        errat(c, k[GH_APP_ID], "github.app_id", "needs private_key_file");
    if (k[GH_PRIVATE_KEY_FILE] && !k[GH_APP_ID])
        errat(c, k[GH_PRIVATE_KEY_FILE], "github.private_key_file", "needs app_id");
    if (k[GH_INSTALLATION_ID] && !k[GH_APP_ID])
        errat(c, k[GH_INSTALLATION_ID], "github.installation_id",
              "only applies to a GitHub App (app_id)");
}

enum { HOST_CPUS, HOST_MEMORY, HOST_ARCH, HOST_GPUS, HOST_MAX_RUNNERS, HOST_N };
static const char *const host_keys[HOST_N] = {"cpus", "memory", "arch", "gpus", "max_runners"};

/* Returns false when a value the cross-checks need could not be resolved. */
static bool parse_host(ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *root)
{
    rd_host_config_t *h = &c->cfg->host;
    const rd_host_facts_t *f = c->facts;
    const rd_ynode_t *v[HOST_N];
    bool ok = true;
    if (node != NULL && !read_map(c, node, "host", host_keys, HOST_N, v, NULL))
        node = NULL;
    if (node == NULL)
        for (size_t i = 0; i < HOST_N; i++)
            v[i] = NULL;
    const rd_ynode_t *at = node ? node : root;

    if (v[HOST_CPUS] && !is_auto(v[HOST_CPUS])) {
        ok &= get_cpus(c, v[HOST_CPUS], "host.cpus", &h->cpus);
    } else if (f->cores == 0) {
        errat(c, v[HOST_CPUS] ? v[HOST_CPUS] : at, "host.cpus",
              "cannot count this host's cores; set cpus explicitly");
        ok = false;
    } else {
        h->cpus = f->cores;
    }

    if (v[HOST_MEMORY] && !is_auto(v[HOST_MEMORY])) {
        ok &= get_size(c, v[HOST_MEMORY], "host.memory", 6 * MIB, &h->memory);
    } else if (f->mem_total == 0) {
        errat(c, v[HOST_MEMORY] ? v[HOST_MEMORY] : at, "host.memory",
              "cannot read this host's memory size; set memory explicitly");
        ok = false;
    } else {
        /* Leave 1 GiB to the host; on a small host keep half of it instead. */
        h->memory = f->mem_total > 2 * GIB ? f->mem_total - GIB : f->mem_total / 2;
    }

    if (v[HOST_ARCH] && !is_auto(v[HOST_ARCH])) {
        const char *s = scalar(c, v[HOST_ARCH], "host.arch", "a string");
        if (s != NULL) {
            h->arch = rd_arch_parse(s);
            if (h->arch == RD_ARCH_UNKNOWN)
                errat(c, v[HOST_ARCH], "host.arch", "\"%s\" is not one of auto, x64, arm64, arm",
                      s);
        }
        ok &= h->arch != RD_ARCH_UNKNOWN;
    } else if (f->arch == RD_ARCH_UNKNOWN) {
        errat(c, v[HOST_ARCH] ? v[HOST_ARCH] : at, "host.arch",
              "this host's architecture is not one runnerd knows; set arch explicitly");
        ok = false;
    } else {
        h->arch = f->arch;
    }

    uint64_t u;
    if (v[HOST_GPUS]) {
        if (get_uint(c, v[HOST_GPUS], "host.gpus", 0, 1024, &u))
            h->gpus = (unsigned)u;
        else
            ok = false;
    }
    if (v[HOST_MAX_RUNNERS]) {
        if (get_uint(c, v[HOST_MAX_RUNNERS], "host.max_runners", 1, 1024, &u))
            h->max_runners = (unsigned)u;
        else
            ok = false;
    }
    return ok;
}

enum { DK_BINARY, DK_NETWORK, DK_EXTRA_ARGS, DK_N };
static const char *const docker_keys[DK_N] = {"binary", "network", "extra_args"};

static void parse_docker(ctx_t *c, const rd_ynode_t *node)
{
    rd_docker_config_t *d = &c->cfg->docker;
    const rd_ynode_t *v[DK_N];
    if (node == NULL || !read_map(c, node, "docker", docker_keys, DK_N, v, NULL))
        return;
    if (v[DK_BINARY]) {
        char *s = get_str(c, v[DK_BINARY], "docker.binary");
        if (s != NULL && s[0] == '-') {
            errat(c, v[DK_BINARY], "docker.binary", "must not start with '-'");
            free(s);
        } else if (s != NULL) {
            free(d->binary);
            d->binary = s;
        }
    }
    if (v[DK_NETWORK]) {
        char *s = get_str(c, v[DK_NETWORK], "docker.network");
        if (s != NULL && (s[0] == '-' || !token_ok(s))) {
            errat(c, v[DK_NETWORK], "docker.network",
                  "\"%s\" is not a network name (no leading '-', no spaces)", s);
            free(s);
        } else if (s != NULL) {
            free(d->network);
            d->network = s;
        }
    }
    if (v[DK_EXTRA_ARGS])
        get_strlist(c, v[DK_EXTRA_ARGS], "docker.extra_args", false, &d->extra_args,
                    &d->nextra_args, NULL);
}

enum {
    PL_NAME,
    PL_LABELS,
    PL_IMAGE,
    PL_COMMAND,
    PL_CPUS,
    PL_MEMORY,
    PL_GPUS,
    PL_PIDS_LIMIT,
    PL_PULL,
    PL_RUNTIME,
    PL_PLATFORM,
    PL_MAX_RUNNERS,
    PL_MIN_IDLE,
    PL_RUNNER_GROUP,
    PL_STARTUP_TIMEOUT,
    PL_IDLE_TIMEOUT,
    PL_JOB_TIMEOUT,
    PL_ENV,
    PL_N
};
static const char *const pool_keys[PL_N] = {
    "name",         "labels",      "image",      "command",      "cpus",
    "memory",       "gpus",        "pids_limit", "pull",         "runtime",
    "platform",     "max_runners", "min_idle",   "runner_group", "startup_timeout",
    "idle_timeout", "job_timeout", "env",
};

static void parse_pool_labels(ctx_t *c, const rd_ynode_t *n, const char *path, rd_pool_t *pl,
                              pool_aux_t *aux)
{
    if (n->kind != RD_YNODE_SEQ) {
        errat(c, n, path, "must be a list of labels, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        errat(c, n, path, "must hold at least one label");
        return;
    }
    if (n->u.seq.n > RD_MAX_LABELS) {
        errat(c, n, path, "%zu labels: GitHub allows at most %d", n->u.seq.n, RD_MAX_LABELS);
        return;
    }
    pl->labels = rd_xcalloc(n->u.seq.n, sizeof(char *));
    const rd_ynode_t **items = rd_xcalloc(n->u.seq.n, sizeof(*items));
    for (size_t i = 0; i < n->u.seq.n; i++) {
        const rd_ynode_t *it = n->u.seq.v[i];
        char p[256];
        join_idx(p, sizeof(p), path, i);
        if (it->kind != RD_YNODE_SCALAR || rd_ynode_is_null(it)) {
            errat(c, it, p, "must be a string, not %s", rd_ynode_kind_name(it));
            continue;
        }
        const char *s = it->u.scalar.s;
        if (!label_ok(s, it->u.scalar.len)) {
            errat(c, it, p,
                  "not a label GitHub accepts (1-256 characters, no commas, no control "
                  "characters, no leading or trailing space)");
            continue;
        }
        size_t dup = SIZE_MAX;
        for (size_t j = 0; j < pl->nlabels; j++)
            if (strcasecmp(pl->labels[j], s) == 0)
                dup = j;
        if (dup != SIZE_MAX) {
            errat(c, it, p, "duplicate label \"%s\" (labels compare case-insensitively)", s);
            continue;
        }
        rd_arch_t a = rd_arch_parse(s);
        if (a != RD_ARCH_UNKNOWN) {
            if (aux->label_arch != RD_ARCH_UNKNOWN && aux->label_arch != a) {
                errat(c, it, p, "names a second architecture (%s, after %s)", rd_arch_name(a),
                      rd_arch_name(aux->label_arch));
                continue;
            }
            if (aux->label_arch == RD_ARCH_UNKNOWN)
                aux->arch_label = it;
            aux->label_arch = a;
        }
        items[pl->nlabels] = it;
        pl->labels[pl->nlabels++] = rd_xstrdup(s);
    }
    free(items);
}

static void parse_platform(ctx_t *c, const rd_ynode_t *n, const char *path, rd_pool_t *pl,
                           pool_aux_t *aux)
{
    char *s = get_str(c, n, path);
    if (s == NULL)
        return;
    /* os/arch[/variant], lower case, as docker --platform spells it. */
    char os[32], arch[32], variant[32];
    int nparts = 0;
    const char *p = s;
    char *parts[3] = {os, arch, variant};
    bool ok = true;
    while (ok && nparts < 3) {
        size_t len = 0;
        while (p[len] && p[len] != '/')
            len++;
        if (len == 0 || len >= 32)
            ok = false;
        for (size_t i = 0; ok && i < len; i++)
            if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '_'))
                ok = false;
        if (!ok)
            break;
        memcpy(parts[nparts], p, len);
        parts[nparts][len] = '\0';
        nparts++;
        p += len;
        if (*p == '\0')
            break;
        p++;
        if (*p == '\0')
            ok = false;
    }
    if (!ok || *p != '\0' || nparts < 2) {
        errat(c, n, path, "\"%s\" is not a platform such as linux/arm64 (os/arch[/variant])", s);
        free(s);
        return;
    }
    aux->platform_arch = rd_arch_parse(arch);
    if (aux->platform_arch == RD_ARCH_UNKNOWN) {
        errat(c, n, path, "unknown architecture \"%s\" (runnerd knows amd64, arm64, arm)", arch);
        free(s);
        return;
    }
    pl->platform = s;
}

static void parse_env(ctx_t *c, const rd_ynode_t *n, const char *path, rd_pool_t *pl)
{
    if (n->kind != RD_YNODE_MAP) {
        errat(c, n, path, "must be a mapping of NAME: value, not %s", rd_ynode_kind_name(n));
        return;
    }
    pl->env_keys = rd_xcalloc(n->u.map.n + 1, sizeof(char *));
    pl->env_vals = rd_xcalloc(n->u.map.n + 1, sizeof(char *));
    for (size_t i = 0; i < n->u.map.n; i++) {
        const rd_ynode_t *k = n->u.map.v[i].key, *v = n->u.map.v[i].value;
        if (k->kind != RD_YNODE_SCALAR) {
            errat(c, k, path, "keys must be strings, not %s", rd_ynode_kind_name(k));
            continue;
        }
        char p[256];
        join(p, sizeof(p), path, k->u.scalar.s);
        const char *key = k->u.scalar.s;
        if (!env_key_ok(key)) {
            errat(c, k, p, "not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
            continue;
        }
        if (strcmp(key, "ACTIONS_RUNNER_INPUT_JITCONFIG") == 0) {
            errat(c, k, p, "reserved: runnerd sets it to the runner's JIT configuration");
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i; j++) {
            const rd_ynode_t *kj = n->u.map.v[j].key;
            if (kj->kind == RD_YNODE_SCALAR && strcmp(kj->u.scalar.s, key) == 0) {
                errat(c, k, p, "duplicate key (first at line %d)", kj->line);
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        if (rd_ynode_is_null(v)) {
            errat(c, v, p, "must be a string (write \"\" for an empty value)");
            continue;
        }
        const char *val = scalar(c, v, p, "a string");
        if (val == NULL)
            continue;
        pl->env_keys[pl->nenv] = rd_xstrdup(key);
        pl->env_vals[pl->nenv] = rd_xstrdup(val);
        pl->nenv++;
    }
}

static void pool_defaults(rd_pool_t *pl, const rd_host_config_t *h)
{
    pl->cpus = 1;
    pl->memory = 2 * GIB;
    pl->gpus = 0;
    pl->pids_limit = 4096;
    pl->pull = RD_PULL_MISSING;
    pl->max_runners = h->max_runners;
    pl->min_idle = 0;
    pl->runner_group = rd_xstrdup("Default");
    pl->startup_timeout_ms = 5 * 60 * 1000;
    pl->idle_timeout_ms = 10 * 60 * 1000;
    pl->job_timeout_ms = 6 * 3600 * 1000;
}

static void parse_pool(ctx_t *c, const rd_ynode_t *n, const char *path, rd_pool_t *pl,
                       pool_aux_t *aux)
{
    const rd_ynode_t *v[PL_N];
    char p[256];
    pool_defaults(pl, &c->cfg->host);
    pl->pos = (rd_pos_t){n->line, n->col};
    aux->node = n;
    if (!read_map(c, n, path, pool_keys, PL_N, v, NULL))
        return;
#define PP(key) (join(p, sizeof(p), path, key), p)
    if (v[PL_NAME] == NULL) {
        errat(c, n, PP("name"), "is required");
    } else {
        char *s = get_str(c, v[PL_NAME], PP("name"));
        if (s != NULL && !name_ok(s, RD_MAX_NAME)) {
            errat(c, v[PL_NAME], p,
                  "\"%s\" is not a pool name ([a-z0-9][a-z0-9_.-]*, at most %d characters)", s,
                  RD_MAX_NAME);
            pl->name = s; /* kept so that targets naming it do not also fail */
        } else if (s != NULL) {
            pl->name = s;
            aux->ok_name = true;
        }
        aux->name = v[PL_NAME];
    }
    if (v[PL_LABELS] == NULL)
        errat(c, n, PP("labels"), "is required");
    else
        parse_pool_labels(c, v[PL_LABELS], PP("labels"), pl, aux);
    aux->labels = v[PL_LABELS];
    if (v[PL_IMAGE] == NULL) {
        errat(c, n, PP("image"), "is required");
    } else {
        char *s = get_str(c, v[PL_IMAGE], PP("image"));
        if (s != NULL && (s[0] == '-' || !token_ok(s))) {
            errat(c, v[PL_IMAGE], p, "\"%s\" is not an image name (no leading '-', no spaces)", s);
            free(s);
        } else {
            pl->image = s;
        }
    }
    if (v[PL_COMMAND])
        get_strlist(c, v[PL_COMMAND], PP("command"), true, &pl->command, &pl->ncommand, NULL);
    if (v[PL_CPUS])
        get_cpus(c, v[PL_CPUS], PP("cpus"), &pl->cpus);
    aux->cpus = v[PL_CPUS];
    if (v[PL_MEMORY])
        get_size(c, v[PL_MEMORY], PP("memory"), 6 * MIB, &pl->memory);
    aux->memory = v[PL_MEMORY];
    uint64_t u;
    if (v[PL_GPUS] && get_uint(c, v[PL_GPUS], PP("gpus"), 0, 1024, &u))
        pl->gpus = (unsigned)u;
    aux->gpus = v[PL_GPUS];
    if (v[PL_PIDS_LIMIT] && get_uint(c, v[PL_PIDS_LIMIT], PP("pids_limit"), 16, 4194304, &u))
        pl->pids_limit = (int64_t)u;
    if (v[PL_PULL]) {
        const char *s = scalar(c, v[PL_PULL], PP("pull"), "a string");
        if (s != NULL) {
            if (strcmp(s, "missing") == 0)
                pl->pull = RD_PULL_MISSING;
            else if (strcmp(s, "always") == 0)
                pl->pull = RD_PULL_ALWAYS;
            else if (strcmp(s, "never") == 0)
                pl->pull = RD_PULL_NEVER;
            else
                errat(c, v[PL_PULL], p, "\"%s\" is not one of missing, always, never", s);
        }
    }
    if (v[PL_RUNTIME]) {
        char *s = get_str(c, v[PL_RUNTIME], PP("runtime"));
        if (s != NULL && !(isalnum((unsigned char)s[0]) && token_ok(s))) {
            errat(c, v[PL_RUNTIME], p, "\"%s\" is not a runtime name", s);
            free(s);
        } else {
            pl->runtime = s;
        }
    }
    if (v[PL_PLATFORM])
        parse_platform(c, v[PL_PLATFORM], PP("platform"), pl, aux);
    aux->platform = v[PL_PLATFORM];
    if (v[PL_MAX_RUNNERS] && get_uint(c, v[PL_MAX_RUNNERS], PP("max_runners"), 1, 1024, &u))
        pl->max_runners = (unsigned)u;
    if (v[PL_MIN_IDLE] && get_uint(c, v[PL_MIN_IDLE], PP("min_idle"), 0, 1024, &u))
        pl->min_idle = (unsigned)u;
    aux->min_idle = v[PL_MIN_IDLE];
    if (v[PL_RUNNER_GROUP]) {
        char *s = get_str(c, v[PL_RUNNER_GROUP], PP("runner_group"));
        if (s != NULL) {
            free(pl->runner_group);
            pl->runner_group = s;
        }
    }
    if (v[PL_STARTUP_TIMEOUT])
        get_duration(c, v[PL_STARTUP_TIMEOUT], PP("startup_timeout"), 1000, 24 * 3600000ULL,
                     &pl->startup_timeout_ms);
    if (v[PL_IDLE_TIMEOUT])
        get_duration(c, v[PL_IDLE_TIMEOUT], PP("idle_timeout"), 1000, 24 * 3600000ULL,
                     &pl->idle_timeout_ms);
    if (v[PL_JOB_TIMEOUT])
        get_duration(c, v[PL_JOB_TIMEOUT], PP("job_timeout"), 1000, 7 * 24 * 3600000ULL,
                     &pl->job_timeout_ms);
    if (v[PL_ENV])
        parse_env(c, v[PL_ENV], PP("env"), pl);
#undef PP
}

/* Cross-checks of one pool against the host. */
static void check_pool(ctx_t *c, size_t i, rd_pool_t *pl, pool_aux_t *aux, bool host_ok)
{
    const rd_host_config_t *h = &c->cfg->host;
    char p[256], base[64];
    snprintf(base, sizeof(base), "pools[%zu]", i);
#define PP(key) (join(p, sizeof(p), base, key), p)
    if (aux->min_idle && pl->min_idle > pl->max_runners)
        errat(c, aux->min_idle, PP("min_idle"), "%u is more than max_runners (%u)", pl->min_idle,
              pl->max_runners);

    /* The pool's arch: its arch label, else its platform, else the host's. */
    rd_arch_t arch = aux->label_arch;
    if (aux->label_arch != RD_ARCH_UNKNOWN && aux->platform_arch != RD_ARCH_UNKNOWN &&
        aux->label_arch != aux->platform_arch)
        errat(c, aux->platform, PP("platform"), "%s does not match the pool's %s label",
              pl->platform, rd_arch_name(aux->label_arch));
    if (arch == RD_ARCH_UNKNOWN)
        arch = aux->platform_arch;
    if (!host_ok || h->arch == RD_ARCH_UNKNOWN) {
        pl->arch = arch;
        return;
    }
    if (arch == RD_ARCH_UNKNOWN)
        arch = h->arch;
    pl->arch = arch;
    pl->emulated = arch != h->arch;
    if (pl->emulated && pl->platform == NULL && aux->platform == NULL) {
        int li = -1;
        for (size_t j = 0;
             aux->labels && aux->labels->kind == RD_YNODE_SEQ && j < aux->labels->u.seq.n; j++)
            if (aux->labels->u.seq.v[j] == aux->arch_label)
                li = (int)j;
        snprintf(p, sizeof(p), "%s.labels[%d]", base, li);
        errat(c, aux->arch_label, p,
              "%s runners cannot run natively on this %s host; set platform: linux/%s to run "
              "them under emulation",
              rd_arch_name(arch), rd_arch_name(h->arch), arch_docker(arch));
    }

    if (pl->cpus > h->cpus) {
        char a[32], b[32];
        fmt_cpus(pl->cpus, a, sizeof(a));
        fmt_cpus(h->cpus, b, sizeof(b));
        errat(c, aux->cpus ? aux->cpus : aux->node, PP("cpus"),
              "%s per runner is more than host.cpus (%s): no runner could start", a, b);
    }
    if (pl->memory > h->memory) {
        char a[32], b[32];
        fmt_size(pl->memory, a, sizeof(a));
        fmt_size(h->memory, b, sizeof(b));
        errat(c, aux->memory ? aux->memory : aux->node, PP("memory"),
              "%s per runner is more than host.memory (%s): no runner could start", a, b);
    }
    if (pl->gpus > h->gpus)
        errat(c, aux->gpus ? aux->gpus : aux->node, PP("gpus"),
              "%u per runner is more than host.gpus (%u): no runner could start", pl->gpus,
              h->gpus);
#undef PP
}

/* Runner names are "runnerd-<instance>-<pool>-<suffix>" (dockerargv.h) and
 * GitHub takes at most 64 characters: refuse a pool whose names cannot fit
 * here, rather than have the supervisor refuse every start at run time. */
static void check_runner_name(ctx_t *c, const char *instance, const char *pool, size_t i,
                              const rd_ynode_t *node)
{
    static const char pre[] = "runnerd-";
    size_t len = sizeof pre - 1 + strlen(instance) + 1 + strlen(pool) + 1 + RD_RUNNER_SUFFIX_LEN;
    if (len <= RD_RUNNER_NAME_MAX)
        return;
    char p[64];
    snprintf(p, sizeof(p), "pools[%zu].name", i);
    errat(c, node, p,
          "runner names \"runnerd-%s-%s-\" + a %d-character suffix would be %zu characters, "
          "over GitHub's %d: instance and pool name together may have at most %d characters",
          instance, pool, RD_RUNNER_SUFFIX_LEN, len, RD_RUNNER_NAME_MAX,
          RD_RUNNER_NAME_MAX - (int)(sizeof pre - 1) - 2 - RD_RUNNER_SUFFIX_LEN);
}

static void parse_pools(ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root, bool host_ok)
{
    rd_config_t *cfg = c->cfg;
    if (n == NULL) {
        errat(c, root, "pools", "is required (a list of at least one pool)");
        return;
    }
    if (n->kind != RD_YNODE_SEQ) {
        errat(c, n, "pools", "must be a list of pools, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        errat(c, n, "pools", "must hold at least one pool");
        return;
    }
    cfg->npools = n->u.seq.n;
    cfg->pools = rd_xcalloc(cfg->npools, sizeof(*cfg->pools));
    pool_aux_t *aux = rd_xcalloc(cfg->npools, sizeof(*aux));
    for (size_t i = 0; i < cfg->npools; i++) {
        char p[64];
        join_idx(p, sizeof(p), "pools", i);
        parse_pool(c, n->u.seq.v[i], p, &cfg->pools[i], &aux[i]);
    }
    for (size_t i = 0; i < cfg->npools; i++) {
        check_pool(c, i, &cfg->pools[i], &aux[i], host_ok);
        if (cfg->pools[i].name == NULL)
            continue;
        if (aux[i].ok_name && cfg->instance != NULL)
            check_runner_name(c, cfg->instance, cfg->pools[i].name, i, aux[i].name);
        for (size_t j = 0; j < i; j++) {
            if (cfg->pools[j].name && strcmp(cfg->pools[j].name, cfg->pools[i].name) == 0) {
                char p[64];
                snprintf(p, sizeof(p), "pools[%zu].name", i);
                errat(c, aux[i].name, p, "duplicate pool name \"%s\" (first at line %d)",
                      cfg->pools[i].name, aux[j].name->line);
                break;
            }
        }
    }
    free(aux);
}

enum { TG_REPO, TG_ORG, TG_POOLS, TG_REPOS, TG_DISCOVERY, TG_N };
static const char *const target_keys[TG_N] = {"repo", "org", "pools", "repos", "discovery"};

static void parse_target(ctx_t *c, const rd_ynode_t *n, const char *path, rd_target_t *t)
{
    const rd_ynode_t *v[TG_N], *k[TG_N];
    char p[256];
    rd_config_t *cfg = c->cfg;
    t->pos = (rd_pos_t){n->line, n->col};
    if (!read_map(c, n, path, target_keys, TG_N, v, k))
        return;
#define PP(key) (join(p, sizeof(p), path, key), p)
    if (v[TG_DISCOVERY]) {
        const char *d = scalar(c, v[TG_DISCOVERY], PP("discovery"), "poll or scaleset");
        if (d != NULL && strcmp(d, "scaleset") == 0)
            t->discovery = RD_DISCOVERY_SCALESET;
        else if (d != NULL && strcmp(d, "poll") != 0)
            errat(c, v[TG_DISCOVERY], p, "must be poll or scaleset, not \"%s\"", d);
    }
    if (k[TG_REPO] && k[TG_ORG]) {
        const rd_ynode_t *second = k[TG_ORG]->line > k[TG_REPO]->line ? k[TG_ORG] : k[TG_REPO];
        errat(c, second, PP(second == k[TG_ORG] ? "org" : "repo"),
              "a target is either a repo or an org, not both");
        return;
    }
    if (v[TG_REPO] == NULL && v[TG_ORG] == NULL) {
        errat(c, n, path, "needs repo: OWNER/REPO or org: ORG");
        return;
    }
    if (v[TG_REPO]) {
        t->kind = RD_TARGET_REPO;
        const char *s = scalar(c, v[TG_REPO], PP("repo"), "a string");
        if (s == NULL)
            return;
        const char *slash = strchr(s, '/');
        if (slash == NULL || strchr(slash + 1, '/') != NULL) {
            errat(c, v[TG_REPO], p, "\"%s\" is not OWNER/REPO", s);
            return;
        }
        char *owner = rd_xstrndup(s, (size_t)(slash - s));
        bool ok = true;
        if (!rd_config_owner_valid(owner)) {
            errat(c, v[TG_REPO], p,
                  "\"%s\" is not a GitHub owner name (letters, digits, '-', 1-39, no leading "
                  "'-')",
                  owner);
            ok = false;
        } else if (!rd_config_repo_name_valid(slash + 1)) {
            errat(c, v[TG_REPO], p,
                  "\"%s\" is not a GitHub repository name (letters, digits, '.', '_', '-', "
                  "1-100, not . or ..)",
                  slash + 1);
            ok = false;
        }
        if (!ok) {
            free(owner);
            return;
        }
        t->owner = owner;
        t->repo = rd_xstrdup(slash + 1);
        t->scope = rd_xasprintf("repos/%s/%s", t->owner, t->repo);
        if (k[TG_REPOS])
            errat(c, k[TG_REPOS], PP("repos"), "only applies to org targets");
    } else {
        t->kind = RD_TARGET_ORG;
        const char *s = scalar(c, v[TG_ORG], PP("org"), "a string");
        if (s == NULL)
            return;
        if (!rd_config_owner_valid(s)) {
            errat(c, v[TG_ORG], p,
                  "\"%s\" is not a GitHub organization name (letters, digits, '-', 1-39, no "
                  "leading '-')",
                  s);
            return;
        }
        t->owner = rd_xstrdup(s);
        t->scope = rd_xasprintf("orgs/%s", t->owner);
        if (v[TG_REPOS]) {
            const rd_ynode_t **items = NULL;
            get_strlist(c, v[TG_REPOS], PP("repos"), false, &t->repos, &t->nrepos, &items);
            if (v[TG_REPOS]->kind == RD_YNODE_SEQ && v[TG_REPOS]->u.seq.n == 0)
                errat(c, v[TG_REPOS], p, "must not be empty (leave it out to watch every repo)");
            size_t keep = 0;
            for (size_t i = 0; i < t->nrepos; i++) {
                char q[256];
                snprintf(q, sizeof(q), "%s.repos[%zu]", path, i);
                bool bad = false;
                if (!rd_config_repo_name_valid(t->repos[i])) {
                    errat(c, items[i], q, "\"%s\" is not a GitHub repository name", t->repos[i]);
                    bad = true;
                }
                for (size_t j = 0; !bad && j < keep; j++)
                    if (strcasecmp(t->repos[j], t->repos[i]) == 0) {
                        errat(c, items[i], q, "duplicate repository \"%s\"", t->repos[i]);
                        bad = true;
                    }
                if (bad) {
                    free(t->repos[i]);
                    continue;
                }
                t->repos[keep] = t->repos[i];
                items[keep++] = items[i];
            }
            t->nrepos = keep;
            free(items);
        }
    }
    if (v[TG_POOLS] == NULL) {
        t->npools = cfg->npools;
        t->pools = rd_xcalloc(cfg->npools + 1, sizeof(size_t));
        for (size_t i = 0; i < cfg->npools; i++)
            t->pools[i] = i;
    } else if (k[TG_POOLS] && v[TG_POOLS]) {
        char **names = NULL;
        size_t nn = 0;
        const rd_ynode_t **items = NULL;
        get_strlist(c, v[TG_POOLS], PP("pools"), false, &names, &nn, &items);
        if (v[TG_POOLS]->kind == RD_YNODE_SEQ && v[TG_POOLS]->u.seq.n == 0)
            errat(c, v[TG_POOLS], p, "must not be empty (leave it out to use every pool)");
        t->pools = rd_xcalloc(nn + 1, sizeof(size_t));
        for (size_t i = 0; i < nn; i++) {
            char q[256];
            snprintf(q, sizeof(q), "%s.pools[%zu]", path, i);
            int idx = rd_config_pool_index(cfg, names[i]);
            if (idx < 0) {
                errat(c, items[i], q, "unknown pool \"%s\"", names[i]);
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < t->npools; j++)
                dup |= t->pools[j] == (size_t)idx;
            if (dup) {
                errat(c, items[i], q, "pool \"%s\" is listed twice", names[i]);
                continue;
            }
            t->pools[t->npools++] = (size_t)idx;
        }
        rd_strv_free(names, nn);
        free(items);
    }
#undef PP
}

static void parse_targets(ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    if (n == NULL) {
        errat(c, root, "targets", "is required (a list of repos and orgs to serve)");
        return;
    }
    if (n->kind != RD_YNODE_SEQ) {
        errat(c, n, "targets", "must be a list of targets, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        errat(c, n, "targets", "must hold at least one target");
        return;
    }
    cfg->ntargets = n->u.seq.n;
    cfg->targets = rd_xcalloc(cfg->ntargets, sizeof(*cfg->targets));
    for (size_t i = 0; i < cfg->ntargets; i++) {
        char p[64];
        join_idx(p, sizeof(p), "targets", i);
        rd_target_t *t = &cfg->targets[i];
        parse_target(c, n->u.seq.v[i], p, t);
        if (t->scope == NULL)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (cfg->targets[j].scope && strcasecmp(cfg->targets[j].scope, t->scope) == 0) {
                errat(c, n->u.seq.v[i], p, "duplicate target %s (first at line %d)", t->scope,
                      cfg->targets[j].pos.line);
                break;
            }
        }
    }
}

enum {
    RT_GITHUB,
    RT_HOST,
    RT_DOCKER,
    RT_SHUTDOWN_GRACE,
    RT_INSTANCE,
    RT_LISTEN,
    RT_WEBHOOK_SECRET_FILE,
    RT_POOLS,
    RT_TARGETS,
    RT_N
};
static const char *const root_keys[RT_N] = {
    "github", "host",    "docker", "shutdown_grace", "instance", "listen", "webhook_secret_file",
    "pools",  "targets",
};

/* hostname -> [a-z0-9-], no leading or trailing '-', at most RD_MAX_INSTANCE. */
static char *instance_from_hostname(const char *host)
{
    char buf[RD_MAX_INSTANCE + 1];
    size_t n = 0;
    for (const char *p = host ? host : ""; *p && n < RD_MAX_INSTANCE; p++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)*p);
        if (isalnum(ch) && ch < 128)
            buf[n++] = (char)ch;
        else if (n > 0 && buf[n - 1] != '-')
            buf[n++] = '-';
    }
    while (n > 0 && buf[n - 1] == '-')
        n--;
    buf[n] = '\0';
    return n ? rd_xstrdup(buf) : NULL;
}

static void parse_instance(ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    if (n == NULL || is_auto(n)) {
        cfg->instance = instance_from_hostname(c->facts->hostname);
        if (cfg->instance == NULL)
            errat(c, n ? n : root, "instance",
                  "cannot derive it from the hostname; set instance explicitly");
        return;
    }
    char *s = get_str(c, n, "instance");
    if (s == NULL)
        return;
    if (!name_ok(s, RD_MAX_INSTANCE)) {
        errat(c, n, "instance",
              "\"%s\" is not an instance name ([a-z0-9][a-z0-9_.-]*, at most %d characters)", s,
              RD_MAX_INSTANCE);
        free(s);
        return;
    }
    cfg->instance = s;
    cfg->instance_explicit = true;
}

/* Fleet mode (docs/fleet.md): the instance names the scale sets and the broker allows one
 * session per scale set, so two hosts whose hostnames sanitise alike would fight over
 * one; runnerd cannot see other hosts, so it asks for an explicit instance. */
static void check_fleet(ctx_t *c, const rd_ynode_t *inst, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    bool fleet = false;
    for (size_t i = 0; i < cfg->ntargets; i++)
        fleet |= cfg->targets[i].discovery == RD_DISCOVERY_SCALESET;
    if (fleet && !cfg->instance_explicit)
        errat(c, inst ? inst : root, "instance",
              "must be set explicitly when a target uses discovery: scaleset (it names the "
              "scale sets and must differ between hosts)");
    if (cfg->github.web_url == NULL && cfg->github.api_url != NULL)
        cfg->github.web_url = rd_ss_web_url(cfg->github.api_url);
}

static void parse_listen(ctx_t *c, const rd_ynode_t *n)
{
    char *s = get_str(c, n, "listen");
    if (s == NULL)
        return;
    const char *port = NULL;
    bool ok = true;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        ok = close != NULL && close > s + 1 && close[1] == ':';
        for (char *q = s + 1; ok && q < close; q++)
            if (!(isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
                ok = false;
        port = ok ? close + 2 : NULL;
    } else {
        char *colon = strrchr(s, ':');
        ok = colon != NULL && colon > s;
        for (char *q = s; ok && q < colon; q++)
            if (!(isalnum((unsigned char)*q) || *q == '.' || *q == '-'))
                ok = false;
        port = ok ? colon + 1 : NULL;
    }
    if (ok) {
        size_t len = strlen(port);
        ok = len >= 1 && len <= 5 && strspn(port, "0123456789") == len;
        long v = ok ? strtol(port, NULL, 10) : 0;
        ok = ok && v >= 1 && v <= 65535;
    }
    if (!ok) {
        errat(c, n, "listen", "\"%s\" is not HOST:PORT or [IPv6]:PORT (port 1-65535)", s);
        free(s);
        return;
    }
    c->cfg->listen = s;
}

static void set_defaults(rd_config_t *cfg)
{
    cfg->github.api_url = rd_xstrdup("https://api.github.com");
    cfg->github.poll_interval_ms = 15000;
    cfg->github.request_budget_per_hour = 4000;
    cfg->github.max_connections = 8;
    cfg->host.max_runners = 16;
    cfg->docker.binary = rd_xstrdup("docker");
    cfg->docker.network = rd_xstrdup("bridge");
    cfg->shutdown_grace_ms = 10 * 60 * 1000;
}

static void load_tree(ctx_t *c, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    const rd_ynode_t *v[RT_N];
    static const rd_ynode_t start = {.kind = RD_YNODE_MAP, .line = 1, .col = 1};
    if (root == NULL) {
        errat(c, &start, "", "the file is empty: github, pools and targets are required");
        return;
    }
    if (!read_map(c, root, "", root_keys, RT_N, v, NULL))
        return;
    parse_github(c, v[RT_GITHUB], root);
    /* host.max_runners is the default of every pool's max_runners: host first. */
    bool host_ok = parse_host(c, v[RT_HOST], root);
    parse_docker(c, v[RT_DOCKER]);
    if (v[RT_SHUTDOWN_GRACE])
        get_duration(c, v[RT_SHUTDOWN_GRACE], "shutdown_grace", 0, 24 * 3600000ULL,
                     &cfg->shutdown_grace_ms);
    parse_instance(c, v[RT_INSTANCE], root);
    if (v[RT_LISTEN])
        parse_listen(c, v[RT_LISTEN]);
    if (v[RT_WEBHOOK_SECRET_FILE]) {
        cfg->webhook_secret_file = get_path(c, v[RT_WEBHOOK_SECRET_FILE], "webhook_secret_file",
                                            &cfg->webhook_secret_file_pos);
        if (v[RT_LISTEN] == NULL)
            errat(c, v[RT_WEBHOOK_SECRET_FILE], "webhook_secret_file",
                  "needs listen: the webhook is served on the listen address");
    }
    parse_pools(c, v[RT_POOLS], root, host_ok);
    parse_targets(c, v[RT_TARGETS], root);
    check_fleet(c, v[RT_INSTANCE], root);
}

/* ------------------------------------------------------------------ entry points */

int rd_config_load_buffer(const char *file, const char *buf, size_t len,
                          const rd_host_facts_t *facts, rd_config_t **out, rd_config_errors_t *errs)
{
    ctx_t c = {.file = file, .facts = facts, .errs = errs, .nerr_start = errs->n};
    rd_ynode_t *root = NULL;
    rd_yaml_error_t yerr;
    *out = NULL;
    if (rd_yaml_parse(buf, len, &root, &yerr) != RD_OK) {
        rd_config_errors_add(errs, file, yerr.line, yerr.col, "", yerr.reason);
        return RD_EINVAL;
    }
    rd_config_t *cfg = rd_xcalloc(1, sizeof(*cfg));
    cfg->path = rd_xstrdup(file);
    set_defaults(cfg);
    c.cfg = cfg;
    load_tree(&c, root);
    rd_ynode_free(root);
    if (errs->n > c.nerr_start) {
        sort_errors(errs, c.nerr_start);
        rd_config_free(cfg);
        return RD_EINVAL;
    }
    *out = cfg;
    return RD_OK;
}

void rd_config_free(rd_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    rd_github_config_t *g = &cfg->github;
    free(g->api_url);
    free(g->web_url);
    free(g->token_file);
    free(g->token_env);
    free(g->private_key_file);
    free(g->ca_file);
    free(cfg->docker.binary);
    free(cfg->docker.network);
    rd_strv_free(cfg->docker.extra_args, cfg->docker.nextra_args);
    free(cfg->instance);
    free(cfg->listen);
    free(cfg->webhook_secret_file);
    for (size_t i = 0; i < cfg->npools; i++) {
        rd_pool_t *p = &cfg->pools[i];
        free(p->name);
        rd_strv_free(p->labels, p->nlabels);
        free(p->image);
        rd_strv_free(p->command, p->ncommand);
        free(p->runtime);
        free(p->platform);
        free(p->runner_group);
        rd_strv_free(p->env_keys, p->nenv);
        rd_strv_free(p->env_vals, p->nenv);
    }
    free(cfg->pools);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        rd_target_t *t = &cfg->targets[i];
        free(t->owner);
        free(t->repo);
        free(t->scope);
        rd_strv_free(t->repos, t->nrepos);
        free(t->pools);
    }
    free(cfg->targets);
    free(cfg);
}

int rd_config_pool_index(const rd_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (cfg->pools[i].name && strcmp(cfg->pools[i].name, name) == 0)
            return (int)i;
    return -1;
}

int rd_config_target_for_repo(const rd_config_t *cfg, const char *full_name)
{
    const char *slash = strchr(full_name, '/');
    if (slash == NULL)
        return -1;
    size_t olen = (size_t)(slash - full_name);
    const char *repo = slash + 1;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        if (t->kind == RD_TARGET_REPO && strlen(t->owner) == olen &&
            strncasecmp(t->owner, full_name, olen) == 0 && strcasecmp(t->repo, repo) == 0)
            return (int)i;
    }
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        if (t->kind != RD_TARGET_ORG || strlen(t->owner) != olen ||
            strncasecmp(t->owner, full_name, olen) != 0)
            continue;
        if (t->nrepos == 0)
            return (int)i;
        for (size_t j = 0; j < t->nrepos; j++)
            if (strcasecmp(t->repos[j], repo) == 0)
                return (int)i;
    }
    return -1;
}

unsigned rd_config_pool_fit(const rd_config_t *cfg, size_t idx, const char **limit)
{
    const rd_pool_t *p = &cfg->pools[idx];
    const rd_host_config_t *h = &cfg->host;
    unsigned n = p->max_runners;
    const char *why = "pool_max";
    if (h->max_runners < n) {
        n = h->max_runners;
        why = "host_max";
    }
    /* A little slack so that 3 x 0.1 fits in 0.3. */
    unsigned by_cpu = p->cpus > 0 ? (unsigned)floor(h->cpus / p->cpus + 1e-9) : n;
    if (by_cpu < n) {
        n = by_cpu;
        why = "host_cpus";
    }
    unsigned by_mem = p->memory > 0 ? (unsigned)(h->memory / p->memory) : n;
    if (by_mem < n) {
        n = by_mem;
        why = "host_memory";
    }
    if (p->gpus > 0 && h->gpus / p->gpus < n) {
        n = h->gpus / p->gpus;
        why = "host_gpus";
    }
    if (limit)
        *limit = why;
    return n;
}

void rd_config_print_summary(const rd_config_t *cfg, FILE *fp)
{
    const rd_github_config_t *g = &cfg->github;
    const rd_host_config_t *h = &cfg->host;
    char a[32], b[32], d[32];
    fprintf(fp, "%s: configuration OK\n", cfg->path);
    fmt_cpus(h->cpus, a, sizeof(a));
    fmt_size(h->memory, b, sizeof(b));
    fprintf(fp, "host: arch %s, cpus %s, memory %s, gpus %u, max_runners %u\n",
            rd_arch_name(h->arch), a, b, h->gpus, h->max_runners);
    fmt_duration(g->poll_interval_ms, a, sizeof(a));
    if (g->token_file)
        fprintf(fp, "github: %s, auth token_file %s", g->api_url, g->token_file);
    else if (g->token_env)
        fprintf(fp, "github: %s, auth token_env %s", g->api_url, g->token_env);
    else if (g->installation_id)
        fprintf(fp, "github: %s, auth app %lld (installation %lld)", g->api_url,
                (long long)g->app_id, (long long)g->installation_id);
    else
        fprintf(fp, "github: %s, auth app %lld", g->api_url, (long long)g->app_id);
    fprintf(fp, ", poll %s, budget %u/h, max_connections %u\n", a, g->request_budget_per_hour,
            g->max_connections);
    fmt_duration(cfg->shutdown_grace_ms, a, sizeof(a));
    fprintf(fp, "instance: %s, docker: %s (network %s), shutdown_grace %s", cfg->instance,
            cfg->docker.binary, cfg->docker.network, a);
    if (cfg->listen)
        fprintf(fp, ", listen %s%s", cfg->listen, cfg->webhook_secret_file ? " (webhook)" : "");
    fprintf(fp, "\n");
    fprintf(fp, "pools: %zu\n", cfg->npools);
    for (size_t i = 0; i < cfg->npools; i++) {
        const rd_pool_t *p = &cfg->pools[i];
        const char *why;
        unsigned fit = rd_config_pool_fit(cfg, i, &why);
        fmt_cpus(p->cpus, a, sizeof(a));
        fmt_size(p->memory, b, sizeof(b));
        fprintf(fp, "  %s: labels [", p->name);
        for (size_t j = 0; j < p->nlabels; j++)
            fprintf(fp, "%s%s", j ? ", " : "", p->labels[j]);
        fprintf(fp, "]\n    image %s, cpus %s, memory %s", p->image, a, b);
        if (p->gpus)
            fprintf(fp, ", gpus %u", p->gpus);
        fprintf(fp, ", max_runners %u, min_idle %u, arch %s", p->max_runners, p->min_idle,
                rd_arch_name(p->arch));
        if (p->emulated)
            fprintf(fp, " (emulated, platform %s)", p->platform);
        else if (p->platform)
            fprintf(fp, " (platform %s)", p->platform);
        fmt_duration(p->startup_timeout_ms, a, sizeof(a));
        fmt_duration(p->idle_timeout_ms, b, sizeof(b));
        fmt_duration(p->job_timeout_ms, d, sizeof(d));
        fprintf(fp, "\n    timeouts startup %s, idle %s, job %s\n", a, b, d);
        fprintf(fp, "    fits %u at once on this host (bound by %s)\n", fit, why);
    }
    fprintf(fp, "targets: %zu\n", cfg->ntargets);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        fprintf(fp, "  %s", t->scope);
        if (t->kind == RD_TARGET_ORG) {
            if (t->nrepos == 0) {
                fprintf(fp, ": every repo");
            } else {
                fprintf(fp, ": repos ");
                for (size_t j = 0; j < t->nrepos; j++)
                    fprintf(fp, "%s%s", j ? ", " : "", t->repos[j]);
            }
            fprintf(fp, ";");
        } else {
            fprintf(fp, ":");
        }
        fprintf(fp, " pools ");
        for (size_t j = 0; j < t->npools; j++)
            fprintf(fp, "%s%s", j ? ", " : "", cfg->pools[t->pools[j]].name);
        if (t->discovery == RD_DISCOVERY_SCALESET) {
            fprintf(fp, "; scale sets (%s) ", cfg->github.web_url ? cfg->github.web_url : "");
            for (size_t j = 0; j < t->npools; j++)
                fprintf(fp, "%srunnerd-%s-%s", j ? ", " : "", cfg->instance,
                        cfg->pools[t->pools[j]].name);
        }
        fprintf(fp, "\n");
    }
}
