/* ident.h: pools and targets as objects that survive a reload (pure).
 *
 * A config holds its pools and targets in arrays that a SIGHUP reload replaces
 * whole. An identity set gives each pool (by name) and each target (by scope,
 * compared case-insensitively as GitHub does) one object, a reference, that
 * lives across reloads. rd_idents_apply pairs old and new once per reload
 * (nginx's ngx_init_cycle way): a name or scope that stays keeps its reference,
 * which is re-pointed at the new config's entry and position; a new one gets a
 * new reference with a new id; one the reload removed keeps its reference for
 * whoever holds it, which then says removed (cfg NULL). A name removed and
 * added back while its old reference is still held gets that reference back.
 * A rename is a removal plus an addition.
 *
 * Holders (a runner, a scale set) take a hold with rd_*_ref_hold and give it
 * back with rd_*_ref_release; they never re-find a pool or target by name. A
 * reference the current config names is the set's, held or not; a removed
 * one is freed at its last release (or by the apply that removes it when
 * nobody holds it). References still held when the set is freed stay valid,
 * removed, until their last release. */
#ifndef RUNNERD_IDENT_H
#define RUNNERD_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"

typedef struct rd_idents rd_idents_t;

/* One identity. Read it through the accessors below; the rest is the set's. */
typedef struct rd_ident {
    char *key;       /* pool name or target scope, owned */
    uint64_t id;     /* 1, 2, ... in creation order within its set; never reused */
    const void *cfg; /* the current config's rd_pool_t / rd_target_t; NULL once removed */
    size_t pos;      /* its position in the current config's array (cfg != NULL) */
    unsigned holds;
    uint64_t gen; /* the apply that last paired it */
    rd_idents_t *set;
    struct rd_ident *prev, *next; /* every identity of its kind in the set */
    int kind;
} rd_ident_t;

typedef struct rd_pool_ref {
    rd_ident_t i;
} rd_pool_ref_t;

typedef struct rd_target_ref {
    rd_ident_t i;
} rd_target_ref_t;

rd_idents_t *rd_idents_new(void);
/**
 * Pair the set with CFG (borrowed until the next apply or the free): once per
 * start and per applied reload, before any module reads CFG. CFG NULL removes
 * everything.
 */
void rd_idents_apply(rd_idents_t *set, const rd_config_t *cfg);
/** Free the set; references still held become removed and live on until released. */
void rd_idents_free(rd_idents_t *set);

/** The reference of the current config's pools[pos] / targets[pos], or NULL when out of range. */
rd_pool_ref_t *rd_idents_pool(const rd_idents_t *set, size_t pos);
rd_target_ref_t *rd_idents_target(const rd_idents_t *set, size_t pos);
/**
 * The reference of pool NAME / target SCOPE in the current config, or NULL. Only for
 * text from outside (a container's labels at adoption, a control request): code that
 * holds a reference reads it instead.
 */
rd_pool_ref_t *rd_idents_pool_named(const rd_idents_t *set, const char *name);
rd_target_ref_t *rd_idents_target_scoped(const rd_idents_t *set, const char *scope);

/**
 * For a holder whose name comes from outside and may not be configured (an adopted
 * container's pool and scope labels): the reference of NAME / SCOPE, live or removed,
 * a removed one made when the set has none, so that a reload adding the name pairs
 * with it. Take a hold at once (an unheld removed reference goes at the next apply).
 */
rd_pool_ref_t *rd_idents_pool_claim(rd_idents_t *set, const char *name);
rd_target_ref_t *rd_idents_target_claim(rd_idents_t *set, const char *scope);

/** Take a hold (returns r; NULL stays NULL). */
rd_pool_ref_t *rd_pool_ref_hold(rd_pool_ref_t *r);
rd_target_ref_t *rd_target_ref_hold(rd_target_ref_t *r);
/** Give a hold back (NULL: no-op); a removed reference is freed at its last release. */
void rd_pool_ref_release(rd_pool_ref_t *r);
void rd_target_ref_release(rd_target_ref_t *r);

static inline const char *rd_pool_ref_name(const rd_pool_ref_t *r)
{
    return r->i.key;
}
static inline uint64_t rd_pool_ref_id(const rd_pool_ref_t *r)
{
    return r->i.id;
}
/** The current config's pool, or NULL when a reload removed it. */
static inline const rd_pool_t *rd_pool_ref_cfg(const rd_pool_ref_t *r)
{
    return r != NULL ? (const rd_pool_t *)r->i.cfg : NULL;
}
/** Its position in the current config's pools[], or SIZE_MAX when removed. */
static inline size_t rd_pool_ref_pos(const rd_pool_ref_t *r)
{
    return r != NULL && r->i.cfg != NULL ? r->i.pos : SIZE_MAX;
}
static inline bool rd_pool_ref_removed(const rd_pool_ref_t *r)
{
    return r == NULL || r->i.cfg == NULL;
}

static inline const char *rd_target_ref_scope(const rd_target_ref_t *r)
{
    return r->i.key;
}
static inline uint64_t rd_target_ref_id(const rd_target_ref_t *r)
{
    return r->i.id;
}
static inline const rd_target_t *rd_target_ref_cfg(const rd_target_ref_t *r)
{
    return r != NULL ? (const rd_target_t *)r->i.cfg : NULL;
}
static inline size_t rd_target_ref_pos(const rd_target_ref_t *r)
{
    return r != NULL && r->i.cfg != NULL ? r->i.pos : SIZE_MAX;
}
static inline bool rd_target_ref_removed(const rd_target_ref_t *r)
{
    return r == NULL || r->i.cfg == NULL;
}

#endif
