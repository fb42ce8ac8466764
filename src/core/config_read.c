/* config_read.c: errors, the node readers (one per value type) and the walk of
 * a key table over a mapping (config_int.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "runnerd/core/common.h"

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

void rd_cfg_errat(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, const char *fmt, ...)
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

char *rd_config_errors_format(const rd_config_errors_t *errs)
{
    char *out = rd_xstrdup("");
    size_t len = 0;
    for (size_t i = 0; i < errs->n; i++) {
        char *s = rd_config_error_str(&errs->v[i]);
        size_t n = strlen(s);
        out = rd_xrealloc(out, len + n + 2);
        memcpy(out + len, s, n);
        out[len + n] = '\n';
        out[len + n + 1] = '\0';
        len += n + 1;
        free(s);
    }
    return out;
}

/* Errors read best in file order; the sort is stable so that two errors about
 * one node keep the order they were found in. */
void rd_cfg_sort_errors(rd_config_errors_t *errs, size_t from)
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

void rd_cfg_join(char *buf, size_t len, const char *path, const char *key)
{
    if (path[0] == '\0')
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s.%s", path, key);
}

void rd_cfg_join_idx(char *buf, size_t len, const char *path, size_t i)
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

static const char *closest_key(const char *key, const rd_cfg_key_t *keys, size_t nkeys)
{
    const char *best = NULL;
    size_t bestd = 3; /* at most two edits away */
    for (size_t i = 0; i < nkeys; i++) {
        size_t d = edit_distance(key, keys[i].name);
        if (d < bestd && d < strlen(keys[i].name)) {
            bestd = d;
            best = keys[i].name;
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
bool rd_cfg_read_map(rd_cfg_ctx_t *c, const rd_ynode_t *node, const char *path,
                     const rd_cfg_key_t *keys, size_t nkeys, const rd_ynode_t **vals,
                     const rd_ynode_t **knodes)
{
    for (size_t i = 0; i < nkeys; i++) {
        vals[i] = NULL;
        if (knodes)
            knodes[i] = NULL;
    }
    if (node == NULL || node->kind != RD_YNODE_MAP) {
        rd_cfg_errat(c, node, path, "must be a mapping, not %s", rd_ynode_kind_name(node));
        return false;
    }
    const rd_ynode_t *seen[64];
    for (size_t i = 0; i < nkeys && i < 64; i++)
        seen[i] = NULL;
    for (size_t i = 0; i < node->u.map.n; i++) {
        const rd_ynode_t *k = node->u.map.v[i].key;
        const rd_ynode_t *v = node->u.map.v[i].value;
        if (k->kind != RD_YNODE_SCALAR) {
            rd_cfg_errat(c, k, path, "keys must be strings, not %s", rd_ynode_kind_name(k));
            continue;
        }
        char p[256];
        rd_cfg_join(p, sizeof(p), path, k->u.scalar.s);
        size_t j;
        for (j = 0; j < nkeys; j++)
            if (strcmp(keys[j].name, k->u.scalar.s) == 0)
                break;
        if (j == nkeys) {
            /* A duplicate unknown key is still one unknown key per occurrence. */
            const char *near = closest_key(k->u.scalar.s, keys, nkeys);
            if (near != NULL)
                rd_cfg_errat(c, k, p, "unknown key (did you mean %s?)", near);
            else
                rd_cfg_errat(c, k, p, "unknown key");
            continue;
        }
        if (seen[j] != NULL) {
            rd_cfg_errat(c, k, p, "duplicate key (first at line %d)", seen[j]->line);
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
const char *rd_cfg_scalar(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, const char *what)
{
    if (n->kind != RD_YNODE_SCALAR) {
        rd_cfg_errat(c, n, path, "must be %s, not %s", what, rd_ynode_kind_name(n));
        return NULL;
    }
    if (strlen(n->u.scalar.s) != n->u.scalar.len) {
        rd_cfg_errat(c, n, path, "must not contain NUL characters");
        return NULL;
    }
    return n->u.scalar.s;
}

/* A string value with no control characters; NULL (reported) otherwise. */
char *rd_cfg_get_str(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path)
{
    const char *s = rd_cfg_scalar(c, n, path, "a string");
    if (s == NULL)
        return NULL;
    if (s[0] == '\0') {
        rd_cfg_errat(c, n, path, "must not be empty");
        return NULL;
    }
    if (rd_cfg_has_ctl(s)) {
        rd_cfg_errat(c, n, path, "must not contain control characters");
        return NULL;
    }
    return rd_xstrdup(s);
}

bool rd_cfg_get_uint(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    const char *s = rd_cfg_scalar(c, n, path, "a whole number");
    if (s == NULL)
        return false;
    size_t len = strlen(s);
    bool digits = len > 0 && len <= 18;
    for (size_t i = 0; i < len && digits; i++)
        if (!isdigit((unsigned char)s[i]))
            digits = false;
    if (!digits) {
        if (s[0] == '-' && len > 1)
            rd_cfg_errat(c, n, path, "must be between %llu and %llu", (unsigned long long)min,
                         (unsigned long long)max);
        else
            rd_cfg_errat(c, n, path, "must be a whole number, not \"%s\"", s);
        return false;
    }
    uint64_t v = strtoull(s, NULL, 10);
    if (v < min || v > max) {
        rd_cfg_errat(c, n, path, "must be between %llu and %llu", (unsigned long long)min,
                     (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool rd_cfg_get_duration(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min_ms,
                         uint64_t max_ms, uint64_t *out)
{
    const char *s = rd_cfg_scalar(c, n, path, "a duration");
    if (s == NULL)
        return false;
    uint64_t v;
    int rc = rd_parse_duration_ms(s, &v);
    char a[32], b[32];
    rd_cfg_fmt_duration(min_ms, a, sizeof(a));
    rd_cfg_fmt_duration(max_ms, b, sizeof(b));
    if (rc == RD_EINVAL) {
        rd_cfg_errat(c, n, path, "\"%s\" is not a duration (use 30s, 5m, 6h, 250ms or seconds)", s);
        return false;
    }
    if (rc != RD_OK || v < min_ms || v > max_ms) {
        rd_cfg_errat(c, n, path, "must be between %s and %s", a, b);
        return false;
    }
    *out = v;
    return true;
}

bool rd_cfg_get_size(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min,
                     uint64_t *out)
{
    const char *s = rd_cfg_scalar(c, n, path, "a size");
    if (s == NULL)
        return false;
    uint64_t v;
    int rc = rd_parse_size(s, &v);
    if (rc == RD_EINVAL) {
        rd_cfg_errat(c, n, path, "\"%s\" is not a size (use 512MiB, 4GiB, 1G or bytes)", s);
        return false;
    }
    char a[32];
    rd_cfg_fmt_size(min, a, sizeof(a));
    if (rc != RD_OK || v > (uint64_t)1 << 50) {
        rd_cfg_errat(c, n, path, "too large");
        return false;
    }
    if (v < min) {
        rd_cfg_errat(c, n, path, "must be at least %s", a);
        return false;
    }
    *out = v;
    return true;
}

/* CPUs: a decimal number > 0, at most 3 fraction digits (docker --cpus). */
bool rd_cfg_get_cpus(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, double *out)
{
    const char *s = rd_cfg_scalar(c, n, path, "a number");
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
        rd_cfg_errat(c, n, path, "must be > 0");
        return false;
    }
    if (*p != '\0' || ndig == 0 || ndig > 6 || nfrac > 3 || (p[-1] == '.')) {
        rd_cfg_errat(c, n, path, "must be a number of CPUs such as 2 or 0.5, not \"%s\"", s);
        return false;
    }
    double v = strtod(s, NULL);
    if (!(v > 0)) {
        rd_cfg_errat(c, n, path, "must be > 0");
        return false;
    }
    if (v > 4096) {
        rd_cfg_errat(c, n, path, "must be at most 4096");
        return false;
    }
    *out = v;
    return true;
}

/* A list of strings; a lone string is accepted as a one-element list when
 * ALLOW_SCALAR. Items are checked for kind and control characters only. */
bool rd_cfg_get_strlist(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, bool allow_scalar,
                        char ***out, size_t *nout, const rd_ynode_t ***items_out)
{
    *out = NULL;
    *nout = 0;
    if (n->kind == RD_YNODE_SCALAR && allow_scalar) {
        char *s = rd_cfg_get_str(c, n, path);
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
        rd_cfg_errat(c, n, path, "must be a list of strings, not %s", rd_ynode_kind_name(n));
        return false;
    }
    bool ok = true;
    char **v = rd_xcalloc(n->u.seq.n + 1, sizeof(char *));
    const rd_ynode_t **items = rd_xcalloc(n->u.seq.n + 1, sizeof(*items));
    size_t k = 0;
    for (size_t i = 0; i < n->u.seq.n; i++) {
        char p[256];
        rd_cfg_join_idx(p, sizeof(p), path, i);
        const rd_ynode_t *it = n->u.seq.v[i];
        if (rd_ynode_is_null(it)) {
            rd_cfg_errat(c, it, p, "must be a string, not null");
            ok = false;
            continue;
        }
        char *s = rd_cfg_get_str(c, it, p);
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

bool rd_cfg_is_auto(const rd_ynode_t *n)
{
    return n->kind == RD_YNODE_SCALAR && strcmp(n->u.scalar.s, "auto") == 0;
}

/* Relative file names are taken relative to the configuration file's folder. */
char *rd_cfg_resolve_path(const char *cfgfile, const char *p)
{
    if (p[0] == '/')
        return rd_xstrdup(p);
    const char *slash = strrchr(cfgfile, '/');
    if (slash == NULL)
        return rd_xstrdup(p);
    return rd_xasprintf("%.*s/%s", (int)(slash - cfgfile), cfgfile, p);
}

char *rd_cfg_get_path(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, rd_pos_t *pos)
{
    char *s = rd_cfg_get_str(c, n, path);
    if (s == NULL)
        return NULL;
    char *r = rd_cfg_resolve_path(c->file, s);
    free(s);
    if (pos) {
        pos->line = n->line;
        pos->col = n->col;
    }
    return r;
}

/* ------------------------------------------------------------------ tables */

size_t rd_cfg_key_index(const rd_cfg_key_t *keys, size_t nkeys, const char *name)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    rd_fatal("runnerd: config schema has no key %s", name);
}

static void *field(void *obj, const rd_cfg_key_t *k)
{
    return (char *)obj + k->off;
}

static void set_str(void *obj, const rd_cfg_key_t *k, char *s)
{
    char **f = field(obj, k);
    free(*f);
    *f = s;
}

/* "missing, always, never" */
static void choices_text(const char *const *choices, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", choices[i]);
}

/* Read value node N of key K into OBJ by the key's type. */
static void read_value(rd_cfg_ctx_t *c, const rd_cfg_key_t *k, const rd_ynode_t *n,
                       const char *path, void *obj, void *aux)
{
    uint64_t u;
    switch (k->type) {
    case RD_CFG_STR: {
        char *s = rd_cfg_get_str(c, n, path);
        const char *why = s != NULL && k->check != NULL ? k->check(s) : NULL;
        if (why != NULL) {
            rd_cfg_errat(c, n, path, why, s);
            free(s);
        } else if (s != NULL) {
            set_str(obj, k, s);
        }
        break;
    }
    case RD_CFG_PATH: {
        char *s = rd_cfg_get_path(c, n, path, NULL);
        if (s != NULL)
            set_str(obj, k, s);
        break;
    }
    case RD_CFG_UINT:
        if (!rd_cfg_get_uint(c, n, path, k->min, k->max, &u))
            break;
        if (k->size == sizeof(uint32_t))
            *(uint32_t *)field(obj, k) = (uint32_t)u;
        else
            *(uint64_t *)field(obj, k) = u;
        break;
    case RD_CFG_DURATION:
        rd_cfg_get_duration(c, n, path, k->min, k->max, field(obj, k));
        break;
    case RD_CFG_SIZE:
        rd_cfg_get_size(c, n, path, k->min, field(obj, k));
        break;
    case RD_CFG_CPUS:
        rd_cfg_get_cpus(c, n, path, field(obj, k));
        break;
    case RD_CFG_ENUM: {
        const char *s = rd_cfg_scalar(c, n, path, "a string");
        if (s == NULL)
            break;
        size_t i;
        for (i = 0; k->choices[i] != NULL; i++)
            if (strcmp(s, k->choices[i]) == 0)
                break;
        if (k->choices[i] != NULL) {
            *(int *)field(obj, k) = (int)i;
        } else {
            char all[256];
            choices_text(k->choices, all, sizeof(all));
            rd_cfg_errat(c, n, path, "\"%s\" is not one of %s", s, all);
        }
        break;
    }
    case RD_CFG_STRLIST: {
        char **v = NULL;
        size_t nv = 0;
        rd_cfg_get_strlist(c, n, path, (k->flags & RD_CFG_ONE_OR_MORE) != 0, &v, &nv, NULL);
        size_t *count = (size_t *)((char *)obj + k->count_off);
        rd_strv_free(*(char ***)field(obj, k), *count);
        *(char ***)field(obj, k) = v;
        *count = nv;
        break;
    }
    case RD_CFG_CUSTOM:
        if (k->parse != NULL)
            k->parse(c, n, path, obj, aux);
        break;
    }
    if (k->pos_off != 0)
        *(rd_pos_t *)((char *)obj + k->pos_off - 1) = (rd_pos_t){n->line, n->col};
}

/* A default, spelled as in the file, read like a value written at AT. */
static void read_default(rd_cfg_ctx_t *c, const rd_cfg_key_t *k, const rd_ynode_t *at,
                         const char *path, void *obj, void *aux)
{
    rd_ynode_t d = {.kind = RD_YNODE_SCALAR, .line = at ? at->line : 1, .col = at ? at->col : 1};
    d.u.scalar.s = (char *)k->def;
    d.u.scalar.len = strlen(k->def);
    rd_cfg_key_t nopos = *k;
    nopos.pos_off = 0; /* a default was written nowhere */
    read_value(c, &nopos, &d, path, obj, aux);
}

void rd_cfg_read_values(rd_cfg_ctx_t *c, const rd_ynode_t *at, const char *path,
                        const rd_cfg_key_t *keys, size_t nkeys, void *obj, void *aux,
                        const rd_ynode_t **vals, bool check_required)
{
    /* Plain defaults first, so that a value refused below leaves its default
     * for the cross-checks (a load with errors is thrown away anyway). */
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].def != NULL && keys[i].type != RD_CFG_CUSTOM &&
            !(keys[i].flags & RD_CFG_DEF_DOC))
            read_default(c, &keys[i], at, "", obj, aux);
    for (size_t i = 0; i < nkeys; i++) {
        const rd_cfg_key_t *k = &keys[i];
        if (k->type == RD_CFG_CUSTOM && k->parse == NULL)
            continue; /* read by the section's own function */
        char p[256];
        rd_cfg_join(p, sizeof(p), path, k->name);
        if (vals[i] != NULL)
            read_value(c, k, vals[i], p, obj, aux);
        else if ((k->flags & RD_CFG_REQUIRED) && check_required)
            rd_cfg_errat(c, at, p, "is required");
        else if (k->def != NULL && k->type == RD_CFG_CUSTOM && !(k->flags & RD_CFG_DEF_DOC))
            read_default(c, k, at, p, obj, aux);
    }
}

bool rd_cfg_read_section(rd_cfg_ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *at,
                         const char *path, const rd_cfg_key_t *keys, size_t nkeys, void *obj,
                         void *aux, const rd_ynode_t **vals, const rd_ynode_t **knodes)
{
    bool is_map = false;
    if (node != NULL) {
        is_map = rd_cfg_read_map(c, node, path, keys, nkeys, vals, knodes);
    } else {
        for (size_t i = 0; i < nkeys; i++)
            vals[i] = knodes[i] = NULL;
    }
    size_t before = c->errs->n;
    rd_cfg_read_values(c, at, path, keys, nkeys, obj, aux, vals, is_map);
    return c->errs->n == before;
}

void rd_cfg_free_section(const rd_cfg_key_t *keys, size_t nkeys, void *obj)
{
    for (size_t i = 0; i < nkeys; i++) {
        const rd_cfg_key_t *k = &keys[i];
        if (k->release != NULL) {
            k->release(obj);
        } else if (k->type == RD_CFG_STRLIST || (k->flags & RD_CFG_OWN_STRV)) {
            char ***v = field(obj, k);
            size_t *count = (size_t *)((char *)obj + k->count_off);
            rd_strv_free(*v, *count);
            *v = NULL;
            *count = 0;
        } else if (k->type == RD_CFG_STR || k->type == RD_CFG_PATH || (k->flags & RD_CFG_OWN_STR)) {
            char **s = field(obj, k);
            free(*s);
            *s = NULL;
        }
    }
}
