/* github_pager.c: paged GETs (see github_int.h).
 *
 * `Link: <...>; rel="next"` is followed verbatim (GitHub rewrites page URLs),
 * on the API's origin only, at most GH_MAX_PAGES pages. Every page goes
 * through the ETag cache: a fresh 200 is compacted to the keys the parsers
 * read (rd_ghjson_compact), parsed, and kept with its ETag; a 304 serves the
 * kept body, and what the operation decoded from it last time when it asked
 * for that to be kept (a memo: the polls' run and job lists). A body that does
 * not parse is dropped from the cache.
 *
 * A page that fails with a transport error, a 5xx or a body that does not
 * parse is asked again, up to GH_GET_TRIES times, a short jittered wait apart
 * (through the whole gate again: holds and the pacer apply). Only then does
 * the page, and with it the operation, fail. */
#include <stdlib.h>
#include <string.h>

#include "github_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/ghurl.h"

/* Pages beyond this are not followed (1000 pages of 100 items). */
#define GH_MAX_PAGES 1000

struct gh_pager {
    rd_github_t *gh;
    char *scope, *owner;
    gh_page_cb page;
    void (*memo_free)(void *);
    gh_pager_done_cb done;
    void *ud;
    unsigned pages;
    unsigned tries; /* failed tries of the current page */
    unsigned *ctr;
    bool priority;
};

static void on_resp(gh_req_t *r, int err, long status, const char *body, size_t len,
                    const char *link);

static void pager_free(gh_pager_t *pg)
{
    free(pg->scope);
    free(pg->owner);
    free(pg);
}

static void pager_get(gh_pager_t *pg, const char *url, uint64_t delay_ms)
{
    gh_req_t *r = gh_req_new(pg->gh, "GET", url, pg->scope, pg->owner, AUTH_TOKEN, on_resp, pg);
    r->ctr = pg->ctr;
    r->priority = pg->priority;
    r->quiet = pg->tries + 1 < GH_GET_TRIES;
    if (delay_ms > 0)
        gh_req_submit_after(pg->gh, r, delay_ms);
    else
        gh_req_submit(pg->gh, r);
}

void gh_pager_start(rd_github_t *gh, const char *url, const char *scope, const char *owner,
                    gh_page_cb page, void (*memo_free)(void *), gh_pager_done_cb done, void *ud,
                    unsigned *ctr, bool priority)
{
    gh_pager_t *pg = rd_xcalloc(1, sizeof(*pg));
    pg->priority = priority;
    pg->ctr = ctr;
    pg->gh = gh;
    pg->scope = rd_xstrdup(scope);
    pg->owner = rd_xstrdup(owner);
    pg->page = page;
    pg->memo_free = memo_free;
    pg->done = done;
    pg->ud = ud;
    pager_get(pg, url, 0);
}

static void on_resp(gh_req_t *r, int err, long status, const char *body, size_t len,
                    const char *link)
{
    gh_pager_t *pg = r->ud;
    rd_github_t *gh = pg->gh;
    char *compact = NULL;
    bool garbage = false;
    if (err == 0 && !r->from_cache) {
        compact = rd_ghjson_compact(body, len, &len);
        if (compact == NULL)
            err = RD_EPROTO;
        body = compact;
    }
    if (err == 0) {
        gh_page_t page = {.body = body, .len = len, .unchanged = r->from_cache};
        if (pg->memo_free && r->from_cache)
            page.memo = rd_ghcache_memo(gh->cache, r->url);
        err = pg->page(pg->ud, &page);
        if (err == 0 && compact && r->resp_etag)
            rd_ghcache_put(gh->cache, r->url, r->resp_etag, link, compact, len, gh_now_ms());
        /* A memo goes with the body it was decoded from: the cached one, or the
         * fresh one just stored (never beside an older body of the same URL). */
        bool stored = r->from_cache || (compact && r->resp_etag);
        if (page.keep && err == 0 && stored)
            /* charged as twice the compacted text: about what the decoded structs take */
            rd_ghcache_set_memo(gh->cache, r->url, page.keep, 2 * len, pg->memo_free);
        else if (page.keep)
            pg->memo_free(page.keep);
    }
    /* A 2xx whose body is not what the endpoint sends: truncated, garbled. */
    if (err == RD_EPROTO && status >= 200 && status < 300) {
        garbage = true;
        rd_log(r->quiet ? RD_LOG_DEBUG : gh_fail_level(gh, pg->scope), LOGC,
               "GET %s: unexpected payload", r->url);
        /* A cached body that no longer parses must not be served again. */
        rd_ghcache_drop(gh->cache, r->url);
    }
    free(compact);
    compact = NULL;
    if ((garbage || r->transient) && pg->tries + 1 < GH_GET_TRIES && !gh->closing) {
        pg->tries++;
        pager_get(pg, r->url, gh_retry_delay(gh, pg->tries));
        return;
    }
    pg->tries = 0;
    pg->pages++;
    char *next = err == 0 ? rd_ghurl_link_next(link) : NULL;
    if (next && pg->pages >= GH_MAX_PAGES) {
        rd_warn(LOGC, "GET %s: more than %d pages, stopping", r->url, GH_MAX_PAGES);
        free(next);
        next = NULL;
    }
    if (next && !rd_ghurl_same_origin(gh->origin, next)) {
        /* Never send credentials to another host. */
        rd_warn(LOGC, "GET %s: next page is on another host, refused", r->url);
        free(next);
        next = NULL;
        err = RD_EPROTO;
    }
    if (next && !gh->closing) {
        pager_get(pg, next, 0);
        free(next);
        return;
    }
    free(next);
    pg->done(pg->ud, err);
    pager_free(pg);
}
