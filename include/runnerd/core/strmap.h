/* strmap.h: a string-keyed hash map with chaining (pure). Keys are copied;
 * values are owned by the caller (rd_strmap_free can release them). */
#ifndef RUNNERD_STRMAP_H
#define RUNNERD_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rd_strmap_ent {
    char *key;
    void *val;
    uint64_t hash;
    struct rd_strmap_ent *next;
} rd_strmap_ent_t;

/** Zero-initialised is an empty map. */
typedef struct {
    rd_strmap_ent_t **b;
    size_t nb, n;
} rd_strmap_t;

/** The value stored under key, or NULL. */
void *rd_strmap_get(const rd_strmap_t *m, const char *key);
/** Insert; key must not be present. */
void rd_strmap_put(rd_strmap_t *m, const char *key, void *val);
/** Remove key; returns its value, or NULL when absent. */
void *rd_strmap_del(rd_strmap_t *m, const char *key);
/** Call fn on every value (the map must not change meanwhile). */
void rd_strmap_each(const rd_strmap_t *m, void (*fn)(void *val, void *ctx), void *ctx);
/** Empty the map, calling free_val (when not NULL) on every value. */
void rd_strmap_free(rd_strmap_t *m, void (*free_val)(void *));

#endif
