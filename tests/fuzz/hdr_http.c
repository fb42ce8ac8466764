/* hdr_http.c: reaches the static response-header parser of src/io/http.c
 * (on_header: ETag, Link, Retry-After, X-RateLimit-*) for fuzz_headers.
 * The file is included whole because the parser is static to it; CMake builds
 * this only while the functions used below keep their signatures. */
#include "../../src/io/http.c"

#include "fuzz_headers.h"

void fz_http_headers(const char *const *lines, const size_t *lens, size_t n, fz_headers_t *out)
{
    rd_http_req_t r;
    memset(&r, 0, sizeof(r));
    reset_headers(&r);
    for (size_t i = 0; i < n; i++) {
        /* curl hands over one header line at a time, CRLF included, and
         * expects the length back. */
        size_t got = on_header((char *)lines[i], 1, lens[i], &r);
        if (got != lens[i])
            abort();
    }
    out->etag = r.etag;
    out->link = r.link;
    out->retry_after = r.retry_after;
    out->rl_resource = r.rl_resource;
    out->rl_limit = r.rl_limit;
    out->rl_remaining = r.rl_remaining;
    out->rl_used = r.rl_used;
    out->rl_reset = r.rl_reset;
    r.etag = r.link = r.retry_after = r.rl_resource = NULL;
    reset_headers(&r);
}
