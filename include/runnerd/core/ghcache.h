/* ghcache.h: the GitHub client's ETag cache (pure; the caller passes now).
 *
 * One entry per exact URL: the response's ETag, its Link header and its body
 * (already compacted by the caller). An LRU capped in bytes (overhead
 * included); entries unused longer than max_age_ms are dropped when a newer
 * one is stored. An entry may also keep what its reader decoded from the body
 * (a memo: a 304 then costs no second parse); the memo goes with its entry. */
#ifndef RUNNERD_GHCACHE_H
#define RUNNERD_GHCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *etag;
    const char *link; /* NULL when the page had none */
    const char *body;
    size_t len;
    void *memo; /* what the reader decoded from body (rd_ghcache_set_memo), or NULL */
} rd_ghcache_hit_t;

typedef struct rd_ghcache rd_ghcache_t;

rd_ghcache_t *rd_ghcache_new(size_t max_bytes, int64_t max_age_ms);
void rd_ghcache_free(rd_ghcache_t *c);
/** The entry for url without touching its recency (for If-None-Match), or NULL. */
const char *rd_ghcache_etag(const rd_ghcache_t *c, const char *url);
/** The entry for url, marked used at now; 0, or RD_ENOENT. The hit is valid until the next change.
 */
int rd_ghcache_get(rd_ghcache_t *c, const char *url, int64_t now, rd_ghcache_hit_t *out);
/** Store (replacing any entry for url); an entry above a quarter of the cap is not kept. */
void rd_ghcache_put(rd_ghcache_t *c, const char *url, const char *etag, const char *link,
                    const char *body, size_t len, int64_t now);
/** The memo kept with url's entry, or NULL (no entry, or none kept); recency untouched. */
void *rd_ghcache_memo(const rd_ghcache_t *c, const char *url);
/**
 * Keep memo, decoded from url's body, with url's entry (replacing any memo it
 * had), charged cost bytes; free_fn frees it with the entry. When url has no
 * entry (not kept, or evicted), memo is freed at once.
 */
void rd_ghcache_set_memo(rd_ghcache_t *c, const char *url, void *memo, size_t cost,
                         void (*free_fn)(void *));
void rd_ghcache_drop(rd_ghcache_t *c, const char *url);
/** Drop every entry (another server). */
void rd_ghcache_clear(rd_ghcache_t *c);
size_t rd_ghcache_bytes(const rd_ghcache_t *c);

#endif
