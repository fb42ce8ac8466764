/* ghjson_int.h: what ghjson.c and ghjson_compact.c share (not for other modules). */
#ifndef RUNNERD_GHJSON_INT_H
#define RUNNERD_GHJSON_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Bodies beyond this are refused before parsing (http caps at 16 MiB too). */
#define RD_GHJSON_MAX_BODY (64u * 1024u * 1024u)

/** Is the key k (n bytes, decoded) one a list parser reads? ghjson.c's key
 * table answers, so compaction keeps exactly what the parsers name. */
bool rd_ghjson_key_kept(const char *k, size_t n);

#endif
