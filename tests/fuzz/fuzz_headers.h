/* fuzz_headers.h: the static header parser of http.c, reached through
 * hdr_http.c. */
#ifndef RD_FUZZ_HEADERS_H
#define RD_FUZZ_HEADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *etag, *link, *retry_after, *rl_resource;     /* heap, or NULL */
    int64_t rl_limit, rl_remaining, rl_used, rl_reset; /* -1 when absent or malformed */
} fz_headers_t;

/* Feed header lines (each as curl passes it, with its CRLF) to http.c's parser. */
void fz_http_headers(const char *const *lines, const size_t *lens, size_t n, fz_headers_t *out);

#endif
