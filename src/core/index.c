/* index.c: open-addressing hash maps keyed by int64 ids and by
 * case-insensitive names (see index.h). */
#include "runnerd/core/index.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"

#define ID_EMPTY 0
#define ID_DELETED INT64_MIN

/* A deleted string slot: an address no heap key can have. */
static char str_deleted;
#define STR_DELETED (&str_deleted)

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: ids that differ in low bits spread over the table */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

void rd_idmap_init(rd_idmap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void rd_idmap_free(rd_idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* The slot holding id, or SIZE_MAX. */
static size_t id_find(const rd_idmap_t *m, int64_t id)
{
    if (m->cap == 0 || id == ID_EMPTY || id == ID_DELETED)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t i = mix64((uint64_t)id) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == id)
            return i;
        if (m->keys[i] == ID_EMPTY)
            return SIZE_MAX;
    }
}

static void id_rehash(rd_idmap_t *m, size_t cap)
{
    int64_t *ok = m->keys;
    void **ov = m->vals;
    size_t ocap = m->cap;
    m->keys = rd_xcalloc(cap, sizeof(int64_t));
    m->vals = rd_xcalloc(cap, sizeof(void *));
    m->cap = cap;
    m->used = m->n;
    for (size_t i = 0; i < ocap; i++) {
        if (ok[i] == ID_EMPTY || ok[i] == ID_DELETED)
            continue;
        size_t j = mix64((uint64_t)ok[i]) & (cap - 1);
        while (m->keys[j] != ID_EMPTY)
            j = (j + 1) & (cap - 1);
        m->keys[j] = ok[i];
        m->vals[j] = ov[i];
    }
    free(ok);
    free(ov);
}

void *rd_idmap_get(const rd_idmap_t *m, int64_t id)
{
    size_t i = id_find(m, id);
    return i == SIZE_MAX ? NULL : m->vals[i];
}

void *rd_idmap_put(rd_idmap_t *m, int64_t id, void *val)
{
    if (id == ID_EMPTY || id == ID_DELETED)
        return NULL;
    size_t at = id_find(m, id);
    if (at != SIZE_MAX) {
        void *old = m->vals[at];
        m->vals[at] = val;
        return old;
    }
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = 16;
        while ((m->n + 1) * 2 >= cap)
            cap *= 2;
        id_rehash(m, cap);
    }
    size_t mask = m->cap - 1;
    size_t i = mix64((uint64_t)id) & mask;
    while (m->keys[i] != ID_EMPTY && m->keys[i] != ID_DELETED)
        i = (i + 1) & mask;
    if (m->keys[i] == ID_EMPTY)
        m->used++;
    m->keys[i] = id;
    m->vals[i] = val;
    m->n++;
    return NULL;
}

void *rd_idmap_remove(rd_idmap_t *m, int64_t id)
{
    size_t i = id_find(m, id);
    if (i == SIZE_MAX)
        return NULL;
    void *old = m->vals[i];
    m->keys[i] = ID_DELETED;
    m->vals[i] = NULL;
    m->n--;
    return old;
}

/* FNV-1a over the lowercased bytes, then mixed. */
static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 0x100000001b3ull;
    }
    return mix64(h);
}

void rd_namemap_init(rd_namemap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void rd_namemap_free(rd_namemap_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != NULL && m->keys[i] != STR_DELETED)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    free(m->hashes);
    memset(m, 0, sizeof(*m));
}

static size_t str_find(const rd_namemap_t *m, const char *key, uint64_t h)
{
    if (m->cap == 0)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == NULL)
            return SIZE_MAX;
        if (m->keys[i] != STR_DELETED && m->hashes[i] == h && strcasecmp(m->keys[i], key) == 0)
            return i;
    }
}

static void str_rehash(rd_namemap_t *m, size_t cap)
{
    char **ok = m->keys;
    void **ov = m->vals;
    uint64_t *oh = m->hashes;
    size_t ocap = m->cap;
    m->keys = rd_xcalloc(cap, sizeof(char *));
    m->vals = rd_xcalloc(cap, sizeof(void *));
    m->hashes = rd_xcalloc(cap, sizeof(uint64_t));
    m->cap = cap;
    m->used = m->n;
    for (size_t i = 0; i < ocap; i++) {
        if (ok[i] == NULL || ok[i] == STR_DELETED)
            continue;
        size_t j = oh[i] & (cap - 1);
        while (m->keys[j] != NULL)
            j = (j + 1) & (cap - 1);
        m->keys[j] = ok[i];
        m->vals[j] = ov[i];
        m->hashes[j] = oh[i];
    }
    free(ok);
    free(ov);
    free(oh);
}

void *rd_namemap_get(const rd_namemap_t *m, const char *key)
{
    size_t i = str_find(m, key, str_hash(key));
    return i == SIZE_MAX ? NULL : m->vals[i];
}

void *rd_namemap_put(rd_namemap_t *m, const char *key, void *val)
{
    uint64_t h = str_hash(key);
    size_t at = str_find(m, key, h);
    if (at != SIZE_MAX) {
        void *old = m->vals[at];
        m->vals[at] = val;
        return old;
    }
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = 16;
        while ((m->n + 1) * 2 >= cap)
            cap *= 2;
        str_rehash(m, cap);
    }
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->keys[i] != NULL && m->keys[i] != STR_DELETED)
        i = (i + 1) & mask;
    if (m->keys[i] == NULL)
        m->used++;
    m->keys[i] = rd_xstrdup(key);
    m->vals[i] = val;
    m->hashes[i] = h;
    m->n++;
    return NULL;
}

void *rd_namemap_remove(rd_namemap_t *m, const char *key)
{
    size_t i = str_find(m, key, str_hash(key));
    if (i == SIZE_MAX)
        return NULL;
    void *old = m->vals[i];
    free(m->keys[i]);
    m->keys[i] = STR_DELETED;
    m->vals[i] = NULL;
    m->n--;
    return old;
}
