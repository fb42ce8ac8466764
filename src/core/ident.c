/* ident.c: pools and targets as objects that survive a reload (see ident.h). */
#include "runnerd/core/ident.h"

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/index.h"
#include "runnerd/core/strmap.h"

enum { K_POOL = 0, K_TARGET = 1, K_COUNT };

/* One kind of identity: pools by name (case-sensitive, as the config compares
 * them) or targets by scope (case-insensitive, as GitHub compares owners). */
typedef struct {
    rd_strmap_t byname;  /* K_POOL: name -> ident (every ident of the kind) */
    rd_namemap_t byfold; /* K_TARGET: scope -> ident */
    rd_ident_t **live;   /* the current config's, by position */
    size_t nlive;
    rd_ident_t *all; /* live ones and removed ones still held */
} kind_t;

struct rd_idents {
    kind_t k[K_COUNT];
    uint64_t next_id;
    uint64_t gen;
};

static rd_ident_t *kind_get(const kind_t *k, int kind, const char *key)
{
    return kind == K_POOL ? rd_strmap_get(&k->byname, key) : rd_namemap_get(&k->byfold, key);
}

static void ident_free(rd_ident_t *id)
{
    free(id->key);
    free(id);
}

/* Drop a removed identity nobody holds: out of its set's map and list, freed. */
static void ident_drop(rd_ident_t *id)
{
    rd_idents_t *set = id->set;
    if (set != NULL) {
        kind_t *k = &set->k[id->kind];
        if (id->kind == K_POOL)
            rd_strmap_del(&k->byname, id->key);
        else
            rd_namemap_remove(&k->byfold, id->key);
        if (id->prev != NULL)
            id->prev->next = id->next;
        else
            k->all = id->next;
        if (id->next != NULL)
            id->next->prev = id->prev;
    }
    ident_free(id);
}

/* A new identity, removed until an apply pairs it, in its set's map and list. */
static rd_ident_t *ident_new(rd_idents_t *set, int kind, const char *key)
{
    kind_t *k = &set->k[kind];
    rd_ident_t *id = rd_xcalloc(1, sizeof(*id));
    id->key = rd_xstrdup(key);
    id->id = ++set->next_id;
    id->pos = SIZE_MAX;
    id->set = set;
    id->kind = kind;
    id->next = k->all;
    if (k->all != NULL)
        k->all->prev = id;
    k->all = id;
    if (kind == K_POOL)
        rd_strmap_put(&k->byname, id->key, id);
    else
        rd_namemap_put(&k->byfold, id->key, id);
    return id;
}

rd_idents_t *rd_idents_new(void)
{
    rd_idents_t *set = rd_xcalloc(1, sizeof(*set));
    rd_namemap_init(&set->k[K_TARGET].byfold);
    return set;
}

static void apply_kind(rd_idents_t *set, int kind, const void *arr, size_t elem, size_t n,
                       size_t key_off)
{
    kind_t *k = &set->k[kind];
    rd_ident_t **live = rd_xcalloc(n ? n : 1, sizeof(*live));
    for (size_t i = 0; i < n; i++) {
        const void *e = (const char *)arr + i * elem;
        const char *key = *(char *const *)((const char *)e + key_off);
        if (key == NULL)
            continue; /* a loaded config names every pool and target */
        rd_ident_t *id = kind_get(k, kind, key);
        if (id == NULL) {
            id = ident_new(set, kind, key);
        } else if (id->gen == set->gen) {
            live[i] = id; /* the same key twice (the loader refuses that): the first wins */
            continue;
        }
        id->cfg = e;
        id->pos = i;
        id->gen = set->gen;
        live[i] = id;
    }
    /* What the new config no longer names: removed, freed unless held. */
    rd_ident_t *next;
    for (rd_ident_t *id = k->all; id != NULL; id = next) {
        next = id->next;
        if (id->gen == set->gen)
            continue;
        id->cfg = NULL;
        id->pos = SIZE_MAX;
        if (id->holds == 0)
            ident_drop(id);
    }
    free(k->live);
    k->live = live;
    k->nlive = n;
}

void rd_idents_apply(rd_idents_t *set, const rd_config_t *cfg)
{
    set->gen++;
    apply_kind(set, K_POOL, cfg ? cfg->pools : NULL, sizeof(rd_pool_t), cfg ? cfg->npools : 0,
               offsetof(rd_pool_t, name));
    apply_kind(set, K_TARGET, cfg ? cfg->targets : NULL, sizeof(rd_target_t),
               cfg ? cfg->ntargets : 0, offsetof(rd_target_t, scope));
}

void rd_idents_free(rd_idents_t *set)
{
    if (set == NULL)
        return;
    for (int kind = 0; kind < K_COUNT; kind++) {
        kind_t *k = &set->k[kind];
        rd_ident_t *next;
        for (rd_ident_t *id = k->all; id != NULL; id = next) {
            next = id->next;
            if (id->holds == 0) {
                ident_free(id);
                continue;
            }
            /* Held past the set (a runner closing after the daemon): removed, alone. */
            id->cfg = NULL;
            id->pos = SIZE_MAX;
            id->set = NULL;
            id->prev = id->next = NULL;
        }
        rd_strmap_free(&k->byname, NULL);
        rd_namemap_free(&k->byfold);
        free(k->live);
    }
    free(set);
}

rd_pool_ref_t *rd_idents_pool(const rd_idents_t *set, size_t pos)
{
    const kind_t *k = &set->k[K_POOL];
    return pos < k->nlive ? (rd_pool_ref_t *)k->live[pos] : NULL;
}

rd_target_ref_t *rd_idents_target(const rd_idents_t *set, size_t pos)
{
    const kind_t *k = &set->k[K_TARGET];
    return pos < k->nlive ? (rd_target_ref_t *)k->live[pos] : NULL;
}

rd_pool_ref_t *rd_idents_pool_named(const rd_idents_t *set, const char *name)
{
    rd_ident_t *id = name != NULL ? kind_get(&set->k[K_POOL], K_POOL, name) : NULL;
    return id != NULL && id->cfg != NULL ? (rd_pool_ref_t *)id : NULL;
}

rd_target_ref_t *rd_idents_target_scoped(const rd_idents_t *set, const char *scope)
{
    rd_ident_t *id = scope != NULL ? kind_get(&set->k[K_TARGET], K_TARGET, scope) : NULL;
    return id != NULL && id->cfg != NULL ? (rd_target_ref_t *)id : NULL;
}

/* The identity of KEY, live or removed; a removed one is created when the set has none. */
static rd_ident_t *ident_claim(rd_idents_t *set, int kind, const char *key)
{
    rd_ident_t *id = kind_get(&set->k[kind], kind, key);
    return id != NULL ? id : ident_new(set, kind, key);
}

rd_pool_ref_t *rd_idents_pool_claim(rd_idents_t *set, const char *name)
{
    return name != NULL ? (rd_pool_ref_t *)ident_claim(set, K_POOL, name) : NULL;
}

rd_target_ref_t *rd_idents_target_claim(rd_idents_t *set, const char *scope)
{
    return scope != NULL ? (rd_target_ref_t *)ident_claim(set, K_TARGET, scope) : NULL;
}

static void ident_release(rd_ident_t *id)
{
    if (id == NULL || id->holds == 0)
        return;
    if (--id->holds == 0 && id->cfg == NULL)
        ident_drop(id);
}

rd_pool_ref_t *rd_pool_ref_hold(rd_pool_ref_t *r)
{
    if (r != NULL)
        r->i.holds++;
    return r;
}

rd_target_ref_t *rd_target_ref_hold(rd_target_ref_t *r)
{
    if (r != NULL)
        r->i.holds++;
    return r;
}

void rd_pool_ref_release(rd_pool_ref_t *r)
{
    ident_release(r != NULL ? &r->i : NULL);
}

void rd_target_ref_release(rd_target_ref_t *r)
{
    ident_release(r != NULL ? &r->i : NULL);
}
