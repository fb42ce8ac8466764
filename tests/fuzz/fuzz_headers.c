/* fuzz_headers: GitHub response headers: http.c's header collector
 * (X-RateLimit-*, Retry-After, ETag, repeated Link headers) and the GitHub
 * client's Link rel="next" parser (rd_ghurl_link_next), on what the collector
 * produced.
 *
 * Input: the raw response header block; it is cut into lines after each '\n'
 * (as curl's header callback sees them, CRLF kept), each line passed as its own
 * exact-length buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_headers.h"
#include "runnerd/core/ghurl.h"

#define MAX_LINES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_quiet_logs();
    char *lines[MAX_LINES];
    size_t lens[MAX_LINES];
    size_t n = 0;
    while (size > 0 && n < MAX_LINES) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t len = nl ? (size_t)(nl - data) + 1 : size;
        lines[n] = malloc(len);
        memcpy(lines[n], data, len);
        lens[n] = len;
        n++;
        data += len;
        size -= len;
    }
    fz_headers_t h;
    fz_http_headers((const char *const *)lines, lens, n, &h);
    FZ_CHECK(h.rl_limit >= -1 && h.rl_remaining >= -1 && h.rl_used >= -1 && h.rl_reset >= -1);

    char *next = rd_ghurl_link_next(h.link);
    if (next != NULL) {
        FZ_CHECK(h.link != NULL);
        /* The URL is copied from between '<' and '>' of the header. */
        FZ_CHECK(strchr(next, '>') == NULL);
        FZ_CHECK(strstr(h.link, next) != NULL);
        free(next);
    }
    /* Also the raw value of a lone Link header, without the collector's joins. */
    if (n > 0) {
        char *raw = fz_strndup((const uint8_t *)lines[0], lens[0]);
        free(rd_ghurl_link_next(raw));
        free(raw);
    }

    free(h.etag);
    free(h.link);
    free(h.retry_after);
    free(h.rl_resource);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return 0;
}
