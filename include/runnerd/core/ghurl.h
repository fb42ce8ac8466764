/* ghurl.h: URL helpers of the GitHub client (pure): the Link header's
 * rel="next", same-origin checks, path segment encoding. */
#ifndef RUNNERD_GHURL_H
#define RUNNERD_GHURL_H

#include <stdbool.h>

/** The URL of rel="next" in an RFC 8288 Link header value (heap), or NULL. */
char *rd_ghurl_link_next(const char *link);
/** "scheme://host[:port]" of an absolute URL, lower-cased (heap), or NULL when not absolute. */
char *rd_ghurl_origin(const char *url);
/** True when url is on origin (as rd_ghurl_origin returns it): same scheme, host and port. */
bool rd_ghurl_same_origin(const char *origin, const char *url);
/** Percent-encode a path segment (owner, repo, names): all but [A-Za-z0-9._-] (heap). */
char *rd_ghurl_seg(const char *s);

#endif
