/* index.h: hash indexes for the hot lookups (pure).
 *
 * rd_idmap_t maps a non-zero int64 id (a job or run id) to a pointer;
 * rd_namemap_t maps a name, compared ASCII-case-insensitively as GitHub
 * compares owner and repository names, to a pointer. Both are open addressing
 * with linear probing, grow at 3/4 load, and cost O(1) per operation on average:
 * they replace the linear scans that made a cycle over N repositories cost
 * O(N^2) (issue 14). Neither owns the values. */
#ifndef RUNNERD_INDEX_H
#define RUNNERD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t *keys; /* 0 = empty, INT64_MIN = deleted */
    void **vals;
    size_t cap;  /* power of two, 0 before the first put */
    size_t n;    /* live entries */
    size_t used; /* live plus deleted slots */
} rd_idmap_t;

/** An empty map (all zero is one too). */
void rd_idmap_init(rd_idmap_t *m);
void rd_idmap_free(rd_idmap_t *m);
/** The value for id, or NULL. Ids 0 and INT64_MIN are never present. */
void *rd_idmap_get(const rd_idmap_t *m, int64_t id);
/** Insert or replace; returns the previous value or NULL. Ids 0 and INT64_MIN are ignored. */
void *rd_idmap_put(rd_idmap_t *m, int64_t id, void *val);
/** Remove; returns the value that was there, or NULL. */
void *rd_idmap_remove(rd_idmap_t *m, int64_t id);
static inline size_t rd_idmap_count(const rd_idmap_t *m)
{
    return m->n;
}

typedef struct {
    char **keys; /* NULL = empty, a sentinel = deleted; live keys are heap copies */
    void **vals;
    uint64_t *hashes;
    size_t cap, n, used;
} rd_namemap_t;

void rd_namemap_init(rd_namemap_t *m);
void rd_namemap_free(rd_namemap_t *m);
/** The value for key (ASCII case-insensitive), or NULL. */
void *rd_namemap_get(const rd_namemap_t *m, const char *key);
/** Insert (copies key) or replace; returns the previous value or NULL. */
void *rd_namemap_put(rd_namemap_t *m, const char *key, void *val);
/** Remove; returns the value that was there, or NULL. */
void *rd_namemap_remove(rd_namemap_t *m, const char *key);
static inline size_t rd_namemap_count(const rd_namemap_t *m)
{
    return m->n;
}

#endif
