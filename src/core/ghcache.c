/* ghcache.c: the ETag cache (see ghcache.h): a hash map by URL plus an LRU list. */
#include "runnerd/core/ghcache.h"

#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/strmap.h"

typedef struct ent {
    char *url;
    char *etag;
    char *link;
    char *body;
    size_t len;
    void *memo; /* decoded body (rd_ghcache_set_memo), or NULL */
    void (*memo_free)(void *);
    size_t memo_cost;
    size_t cost;             /* bytes charged to the cache, overhead and memo included */
    int64_t used_ms;         /* last stored or served */
    struct ent *prev, *next; /* LRU, most recent first */
} ent_t;

struct rd_ghcache {
    rd_strmap_t map; /* url -> ent_t */
    ent_t *head, *tail;
    size_t bytes, max_bytes;
    int64_t max_age_ms;
};

rd_ghcache_t *rd_ghcache_new(size_t max_bytes, int64_t max_age_ms)
{
    rd_ghcache_t *c = rd_xcalloc(1, sizeof(*c));
    c->max_bytes = max_bytes;
    c->max_age_ms = max_age_ms;
    return c;
}

static void unlink_ent(rd_ghcache_t *c, ent_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(rd_ghcache_t *c, ent_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void drop(rd_ghcache_t *c, ent_t *e)
{
    unlink_ent(c, e);
    rd_strmap_del(&c->map, e->url);
    c->bytes -= e->cost;
    free(e->url);
    free(e->etag);
    free(e->link);
    free(e->body);
    if (e->memo)
        e->memo_free(e->memo);
    free(e);
}

void rd_ghcache_clear(rd_ghcache_t *c)
{
    while (c->head)
        drop(c, c->head);
}

void rd_ghcache_free(rd_ghcache_t *c)
{
    if (c == NULL)
        return;
    rd_ghcache_clear(c);
    rd_strmap_free(&c->map, NULL);
    free(c);
}

const char *rd_ghcache_etag(const rd_ghcache_t *c, const char *url)
{
    const ent_t *e = rd_strmap_get(&c->map, url);
    return e ? e->etag : NULL;
}

int rd_ghcache_get(rd_ghcache_t *c, const char *url, int64_t now, rd_ghcache_hit_t *out)
{
    ent_t *e = rd_strmap_get(&c->map, url);
    if (e == NULL)
        return RD_ENOENT;
    unlink_ent(c, e);
    push_front(c, e);
    e->used_ms = now;
    out->etag = e->etag;
    out->link = e->link;
    out->body = e->body;
    out->len = e->len;
    out->memo = e->memo;
    return 0;
}

void rd_ghcache_put(rd_ghcache_t *c, const char *url, const char *etag, const char *link,
                    const char *body, size_t len, int64_t now)
{
    ent_t *e = rd_strmap_get(&c->map, url);
    if (e)
        drop(c, e);
    size_t cost = sizeof(*e) + len + 2 * strlen(url) + strlen(etag) + (link ? strlen(link) : 0) +
                  64; /* map entry and allocator overhead */
    if (cost > c->max_bytes / 4)
        return; /* not worth evicting everything else for */
    e = rd_xcalloc(1, sizeof(*e));
    e->cost = cost;
    e->used_ms = now;
    e->url = rd_xstrdup(url);
    e->etag = rd_xstrdup(etag);
    e->link = link ? rd_xstrdup(link) : NULL;
    e->body = rd_xstrndup(body ? body : "", len);
    e->len = len;
    rd_strmap_put(&c->map, url, e);
    push_front(c, e);
    c->bytes += cost;
    while (c->tail && c->tail != e &&
           (c->bytes > c->max_bytes || e->used_ms - c->tail->used_ms > c->max_age_ms))
        drop(c, c->tail);
}

void *rd_ghcache_memo(const rd_ghcache_t *c, const char *url)
{
    const ent_t *e = rd_strmap_get(&c->map, url);
    return e ? e->memo : NULL;
}

void rd_ghcache_set_memo(rd_ghcache_t *c, const char *url, void *memo, size_t cost,
                         void (*free_fn)(void *))
{
    ent_t *e = rd_strmap_get(&c->map, url);
    if (e == NULL || e->cost + cost > c->max_bytes / 4) {
        if (memo)
            free_fn(memo);
        return;
    }
    if (e->memo)
        e->memo_free(e->memo);
    e->cost -= e->memo_cost;
    c->bytes -= e->memo_cost;
    e->memo = memo;
    e->memo_free = free_fn;
    e->memo_cost = memo ? cost : 0;
    e->cost += e->memo_cost;
    c->bytes += e->memo_cost;
    while (c->tail && c->tail != e && c->bytes > c->max_bytes)
        drop(c, c->tail);
}

void rd_ghcache_drop(rd_ghcache_t *c, const char *url)
{
    ent_t *e = rd_strmap_get(&c->map, url);
    if (e)
        drop(c, e);
}

size_t rd_ghcache_bytes(const rd_ghcache_t *c)
{
    return c->bytes;
}
