/* test_ghurl.c: the GitHub client's URL helpers (Link rel="next", origins,
 * segment encoding), its ETag cache (LRU by bytes and age) and the string map
 * under both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/ghcache.h"
#include "runnerd/core/ghurl.h"
#include "runnerd/core/strmap.h"

static void test_link_next(void **state)
{
    (void)state;
    char *n = rd_ghurl_link_next(
        "<https://api.github.com/repositories/1/issues?per_page=3&page=2>; rel=\"next\", "
        "<https://api.github.com/repositories/1/issues?per_page=3&page=5>; rel=\"last\"");
    assert_string_equal(n, "https://api.github.com/repositories/1/issues?per_page=3&page=2");
    free(n);
    /* Middle page: prev first; rel lists several types. */
    n = rd_ghurl_link_next("<https://x/?page=1>; rel=\"prev\", <https://x/?page=3>; rel=\"last "
                           "next\", <https://x/?page=1>; rel=\"first\"");
    assert_string_equal(n, "https://x/?page=3");
    free(n);
    n = rd_ghurl_link_next("<https://x/?page=2>; REL=next");
    assert_string_equal(n, "https://x/?page=2");
    free(n);
    assert_null(
        rd_ghurl_link_next("<https://x/?page=1>; rel=\"prev\", <https://x/>; rel=\"first\""));
    assert_null(rd_ghurl_link_next("<https://x/?page=2; rel=\"next\""));
    assert_null(rd_ghurl_link_next("<https://x/>; rel=\"nextpage\""));
    assert_null(rd_ghurl_link_next(""));
    assert_null(rd_ghurl_link_next(NULL));
}

static void test_origin(void **state)
{
    (void)state;
    char *o = rd_ghurl_origin("HTTPS://Api.GitHub.com:443/api/v3?x");
    assert_string_equal(o, "https://api.github.com:443");
    assert_true(rd_ghurl_same_origin(o, "https://api.github.com:443/repos/a/b"));
    assert_true(rd_ghurl_same_origin(o, "https://API.github.com:443"));
    assert_false(rd_ghurl_same_origin(o, "https://api.github.com:4430/x"));
    assert_false(rd_ghurl_same_origin(o, "https://api.github.com:443.evil.example/x"));
    assert_false(rd_ghurl_same_origin(o, "http://api.github.com:443/x"));
    free(o);
    assert_null(rd_ghurl_origin("api.github.com/x"));
    char *s = rd_ghurl_seg("a b/c%d_e-f.g");
    assert_string_equal(s, "a%20b%2Fc%25d_e-f.g");
    free(s);
}

static int memo_freed;

static void memo_free(void *p)
{
    memo_freed++;
    free(p);
}

/* A memo goes with its entry: replaced, dropped, evicted or refused, it is freed once. */
static void test_cache_memo(void **state)
{
    (void)state;
    rd_ghcache_t *c = rd_ghcache_new(4096, 100000);
    rd_ghcache_hit_t h;
    memo_freed = 0;
    /* No entry: freed at once. */
    rd_ghcache_set_memo(c, "u", rd_xstrdup("m0"), 10, memo_free);
    assert_int_equal(memo_freed, 1);
    assert_null(rd_ghcache_memo(c, "u"));
    rd_ghcache_put(c, "u", "\"e\"", NULL, "{}", 2, 0);
    assert_int_equal(rd_ghcache_get(c, "u", 1, &h), 0);
    assert_null(h.memo);
    size_t before = rd_ghcache_bytes(c);
    rd_ghcache_set_memo(c, "u", rd_xstrdup("m1"), 10, memo_free);
    assert_int_equal(rd_ghcache_bytes(c), before + 10);
    assert_int_equal(rd_ghcache_get(c, "u", 2, &h), 0);
    assert_string_equal(h.memo, "m1");
    assert_string_equal(rd_ghcache_memo(c, "u"), "m1");
    /* Replaced: the old one is freed, the charge follows. */
    rd_ghcache_set_memo(c, "u", rd_xstrdup("m2"), 20, memo_free);
    assert_int_equal(memo_freed, 2);
    assert_int_equal(rd_ghcache_bytes(c), before + 20);
    /* A new body for the URL: the memo of the old one goes with it. */
    rd_ghcache_put(c, "u", "\"e2\"", NULL, "[]", 2, 3);
    assert_int_equal(memo_freed, 3);
    assert_null(rd_ghcache_memo(c, "u"));
    /* Too big a charge: refused and freed. */
    rd_ghcache_set_memo(c, "u", rd_xstrdup("big"), 2048, memo_free);
    assert_int_equal(memo_freed, 4);
    assert_null(rd_ghcache_memo(c, "u"));
    /* Dropped, and evicted by the byte cap, with their entries. */
    rd_ghcache_set_memo(c, "u", rd_xstrdup("m3"), 10, memo_free);
    rd_ghcache_drop(c, "u");
    assert_int_equal(memo_freed, 5);
    rd_ghcache_put(c, "v", "\"e\"", NULL, "{}", 2, 4);
    rd_ghcache_set_memo(c, "v", rd_xstrdup("m4"), 700, memo_free);
    rd_ghcache_put(c, "w", "\"e\"", NULL, "{}", 2, 5);
    rd_ghcache_set_memo(c, "w", rd_xstrdup("m5"), 700, memo_free);
    rd_ghcache_put(c, "x", "\"e\"", NULL, "{}", 2, 6);
    rd_ghcache_set_memo(c, "x", rd_xstrdup("m6"), 700, memo_free);
    rd_ghcache_put(c, "y", "\"e\"", NULL, "{}", 2, 7);
    rd_ghcache_set_memo(c, "y", rd_xstrdup("m7"), 700, memo_free);
    rd_ghcache_put(c, "z", "\"e\"", NULL, "{}", 2, 8);
    rd_ghcache_set_memo(c, "z", rd_xstrdup("m8"), 700, memo_free);
    assert_true(rd_ghcache_bytes(c) <= 4096);
    assert_null(rd_ghcache_memo(c, "v"));
    assert_string_equal(rd_ghcache_memo(c, "z"), "m8");
    int evicted = memo_freed;
    assert_true(evicted >= 6);
    rd_ghcache_free(c);
    assert_int_equal(memo_freed, 10);
}

static void test_cache(void **state)
{
    (void)state;
    rd_ghcache_t *c = rd_ghcache_new(4096, 1000);
    rd_ghcache_hit_t h;
    assert_int_equal(rd_ghcache_get(c, "u1", 0, &h), RD_ENOENT);
    rd_ghcache_put(c, "u1", "\"e1\"", "<n>; rel=\"next\"", "{\"a\":1}", 7, 0);
    assert_string_equal(rd_ghcache_etag(c, "u1"), "\"e1\"");
    assert_int_equal(rd_ghcache_get(c, "u1", 10, &h), 0);
    assert_string_equal(h.body, "{\"a\":1}");
    assert_int_equal(h.len, 7);
    assert_string_equal(h.link, "<n>; rel=\"next\"");
    /* Replacing keeps one entry. */
    rd_ghcache_put(c, "u1", "\"e2\"", NULL, "{}", 2, 20);
    assert_string_equal(rd_ghcache_etag(c, "u1"), "\"e2\"");
    assert_int_equal(rd_ghcache_get(c, "u1", 20, &h), 0);
    assert_null(h.link);
    /* Too big for a quarter of the cap: not kept. */
    char big[2048];
    memset(big, 'x', sizeof(big));
    rd_ghcache_put(c, "big", "\"b\"", NULL, big, sizeof(big), 30);
    assert_null(rd_ghcache_etag(c, "big"));
    /* Byte cap: the least recently used go first. */
    char body[600];
    memset(body, 'y', sizeof(body));
    char url[16];
    for (int i = 0; i < 10; i++) {
        snprintf(url, sizeof(url), "p%d", i);
        rd_ghcache_put(c, url, "\"e\"", NULL, body, sizeof(body), 40 + i);
    }
    assert_true(rd_ghcache_bytes(c) <= 4096);
    assert_null(rd_ghcache_etag(c, "u1"));
    assert_null(rd_ghcache_etag(c, "p0"));
    assert_non_null(rd_ghcache_etag(c, "p9"));
    /* Age: an entry unused for longer than max_age goes when a newer one is stored. */
    assert_int_equal(rd_ghcache_get(c, "p9", 2000, &h), 0);
    rd_ghcache_put(c, "fresh", "\"f\"", NULL, "{}", 2, 2000);
    assert_null(rd_ghcache_etag(c, "p8"));
    assert_non_null(rd_ghcache_etag(c, "p9"));
    rd_ghcache_drop(c, "p9");
    assert_null(rd_ghcache_etag(c, "p9"));
    rd_ghcache_clear(c);
    assert_int_equal(rd_ghcache_bytes(c), 0);
    assert_null(rd_ghcache_etag(c, "fresh"));
    rd_ghcache_free(c);
}

static void count(void *val, void *ctx)
{
    *(size_t *)ctx += (size_t)(uintptr_t)val;
}

static void test_strmap(void **state)
{
    (void)state;
    rd_strmap_t m = {0};
    char key[32];
    for (uintptr_t i = 1; i <= 1000; i++) {
        snprintf(key, sizeof(key), "k%u", (unsigned)i);
        rd_strmap_put(&m, key, (void *)i);
    }
    assert_int_equal(m.n, 1000);
    assert_ptr_equal(rd_strmap_get(&m, "k500"), (void *)500);
    assert_null(rd_strmap_get(&m, "k1001"));
    size_t sum = 0;
    rd_strmap_each(&m, count, &sum);
    assert_int_equal(sum, 500500);
    assert_ptr_equal(rd_strmap_del(&m, "k7"), (void *)7);
    assert_null(rd_strmap_del(&m, "k7"));
    assert_null(rd_strmap_get(&m, "k7"));
    assert_int_equal(m.n, 999);
    rd_strmap_free(&m, NULL);
    assert_int_equal(m.n, 0);
    assert_null(rd_strmap_get(&m, "k1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_next), cmocka_unit_test(test_origin),
        cmocka_unit_test(test_cache),     cmocka_unit_test(test_cache_memo),
        cmocka_unit_test(test_strmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
