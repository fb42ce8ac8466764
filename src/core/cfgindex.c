/* cfgindex.c: hash indexes over one loaded config (see cfgindex.h). */
#include "runnerd/core/cfgindex.h"

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/index.h"

/* The org targets of one owner, in file order, each with its `repos:` filter. */
typedef struct {
    size_t *targets;
    rd_namemap_t *filters; /* per target: repo name -> 1; unused (cap 0) when no filter */
    size_t n;
} org_t;

struct rd_cfgindex {
    const rd_config_t *cfg;
    rd_namemap_t repo;  /* "owner/repo" -> 1 + first repo target */
    rd_namemap_t org;   /* owner -> org_t */
    rd_namemap_t scope; /* scope -> 1 + first target */
};

rd_cfgindex_t *rd_cfgindex_new(const rd_config_t *cfg)
{
    rd_cfgindex_t *x = rd_xcalloc(1, sizeof(*x));
    x->cfg = cfg;
    for (size_t i = 0; cfg != NULL && i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        if (t->scope != NULL && rd_namemap_get(&x->scope, t->scope) == NULL)
            rd_namemap_put(&x->scope, t->scope, (void *)(uintptr_t)(i + 1));
        if (t->owner == NULL)
            continue;
        if (t->kind == RD_TARGET_REPO && t->repo != NULL) {
            char *full = rd_xasprintf("%s/%s", t->owner, t->repo);
            if (rd_namemap_get(&x->repo, full) == NULL) /* the first in the file wins */
                rd_namemap_put(&x->repo, full, (void *)(uintptr_t)(i + 1));
            free(full);
        } else if (t->kind == RD_TARGET_ORG) {
            org_t *o = rd_namemap_get(&x->org, t->owner);
            if (o == NULL) {
                o = rd_xcalloc(1, sizeof(*o));
                rd_namemap_put(&x->org, t->owner, o);
            }
            o->targets = rd_xrealloc(o->targets, (o->n + 1) * sizeof(size_t));
            o->filters = rd_xrealloc(o->filters, (o->n + 1) * sizeof(rd_namemap_t));
            o->targets[o->n] = i;
            rd_namemap_init(&o->filters[o->n]);
            for (size_t k = 0; k < t->nrepos; k++)
                rd_namemap_put(&o->filters[o->n], t->repos[k], (void *)1);
            o->n++;
        }
    }
    return x;
}

void rd_cfgindex_free(rd_cfgindex_t *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->org.cap; i++) {
        org_t *o = x->org.vals[i];
        if (o == NULL)
            continue;
        for (size_t k = 0; k < o->n; k++)
            rd_namemap_free(&o->filters[k]);
        free(o->filters);
        free(o->targets);
        free(o);
    }
    rd_namemap_free(&x->org);
    rd_namemap_free(&x->repo);
    rd_namemap_free(&x->scope);
    free(x);
}

int rd_cfgindex_target_for_repo(const rd_cfgindex_t *x, const char *full_name)
{
    const char *slash = strchr(full_name, '/');
    if (slash == NULL)
        return -1;
    uintptr_t at = (uintptr_t)rd_namemap_get(&x->repo, full_name);
    if (at != 0)
        return (int)(at - 1);
    /* An org target of the owner: the first whose filter lets the repository in. */
    char owner[128];
    size_t olen = (size_t)(slash - full_name);
    if (olen >= sizeof(owner))
        return -1; /* longer than any valid owner (39) */
    memcpy(owner, full_name, olen);
    owner[olen] = '\0';
    const org_t *o = rd_namemap_get(&x->org, owner);
    for (size_t k = 0; o != NULL && k < o->n; k++) {
        const rd_target_t *t = &x->cfg->targets[o->targets[k]];
        if (t->nrepos == 0 || rd_namemap_get(&o->filters[k], slash + 1) != NULL)
            return (int)o->targets[k];
    }
    return -1;
}

int rd_cfgindex_target_by_scope(const rd_cfgindex_t *x, const char *scope)
{
    uintptr_t at = (uintptr_t)rd_namemap_get(&x->scope, scope);
    return at == 0 ? -1 : (int)(at - 1);
}
