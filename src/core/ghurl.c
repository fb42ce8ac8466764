/* ghurl.c: URL helpers of the GitHub client (see ghurl.h). The Link parser is
 * reached by fuzz_headers: everything it reads comes from the network. */
#include "runnerd/core/ghurl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"

char *rd_ghurl_link_next(const char *link)
{
    if (link == NULL)
        return NULL;
    const char *p = link;
    while (*p) {
        const char *lt = strchr(p, '<');
        if (lt == NULL)
            return NULL;
        const char *gt = strchr(lt, '>');
        if (gt == NULL)
            return NULL;
        const char *end = strchr(gt, ',');
        /* A URL may not contain '>' but params end at the next ',' that starts a new link. */
        size_t plen = end ? (size_t)(end - gt) : strlen(gt);
        const char *rel = NULL;
        for (const char *q = gt; q < gt + plen; q++) {
            if (strncasecmp(q, "rel=", 4) == 0) {
                rel = q + 4;
                break;
            }
        }
        if (rel) {
            if (*rel == '"')
                rel++;
            /* rel may list several space-separated types. */
            const char *r = rel;
            while (r < gt + plen && *r != '"' && *r != ';' && *r != ',') {
                size_t wl = strcspn(r, " \";,");
                if (wl == 4 && strncasecmp(r, "next", 4) == 0)
                    return rd_xstrndup(lt + 1, (size_t)(gt - lt - 1));
                r += wl;
                while (*r == ' ')
                    r++;
            }
        }
        if (end == NULL)
            return NULL;
        p = end + 1;
    }
    return NULL;
}

char *rd_ghurl_origin(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    char *o = rd_xstrndup(url, (size_t)(p - url) + n);
    for (char *c = o; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return o;
}

bool rd_ghurl_same_origin(const char *origin, const char *url)
{
    size_t n = strlen(origin);
    if (strncasecmp(url, origin, n) != 0)
        return false;
    char c = url[n];
    return c == '\0' || c == '/' || c == '?' || c == '#';
}

char *rd_ghurl_seg(const char *s)
{
    size_t n = strlen(s);
    char *o = rd_xmalloc(n * 3 + 1), *p = o;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.') {
            *p++ = (char)c;
        } else {
            snprintf(p, 4, "%%%02X", c);
            p += 3;
        }
    }
    *p = '\0';
    return o;
}
