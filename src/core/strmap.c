/* strmap.c: a string-keyed hash map with chaining (see strmap.h). FNV-1a over
 * the key; the table doubles at 3/4 load. */
#include "runnerd/core/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void grow(rd_strmap_t *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    rd_strmap_ent_t **b = rd_xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++) {
        rd_strmap_ent_t *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash % nb];
            b[e->hash % nb] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

void *rd_strmap_get(const rd_strmap_t *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (rd_strmap_ent_t *e = m->b[h % m->nb]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

void rd_strmap_put(rd_strmap_t *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb * 3 / 4)
        grow(m);
    rd_strmap_ent_t *e = rd_xmalloc(sizeof(*e));
    e->key = rd_xstrdup(key);
    e->val = val;
    e->hash = hash_str(key);
    e->next = m->b[e->hash % m->nb];
    m->b[e->hash % m->nb] = e;
    m->n++;
}

void *rd_strmap_del(rd_strmap_t *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (rd_strmap_ent_t **pp = &m->b[h % m->nb]; *pp; pp = &(*pp)->next) {
        rd_strmap_ent_t *e = *pp;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            void *v = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

void rd_strmap_each(const rd_strmap_t *m, void (*fn)(void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->nb; i++)
        for (rd_strmap_ent_t *e = m->b[i]; e; e = e->next)
            fn(e->val, ctx);
}

void rd_strmap_free(rd_strmap_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        rd_strmap_ent_t *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}
