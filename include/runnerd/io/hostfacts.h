/* hostfacts.h: what this host offers runners (cores, memory, architecture, name).
 *
 * rd_hostfacts_gather() is the I/O part (src/io/hostfacts.c, linked into the
 * daemon): it reads the host once at start and on reload. The parsers are pure
 * (src/core/hostfacts_parse.c, in rd_core, runnerd/core/hostfacts_parse.h) so they can be
 * unit-tested. */
#ifndef RUNNERD_HOSTFACTS_H
#define RUNNERD_HOSTFACTS_H

#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"
#include "runnerd/core/hostfacts_parse.h"

/**
 * Fill *out from this host: cores = uv_available_parallelism() (honours CPU
 * affinity), mem_total = MemTotal from /proc/meminfo, arch from uname -m,
 * hostname from gethostname into hostname_buf (out->hostname points there;
 * "" when unknown, or a static "" when hostname_buf is NULL). Every field is
 * filled even on failure (0 / RD_ARCH_UNKNOWN / "" when a source could not be
 * read: the config loader reports it only if the config leaves that value on
 * auto); returns 0, or RD_EIO when /proc/meminfo, uname or the hostname could
 * not be read, so the caller can say so.
 * Cgroup limits on memory are not applied: MemTotal is the whole machine.
 */
int rd_hostfacts_gather(rd_host_facts_t *out, char *hostname_buf, size_t hostname_size);

/** Same as rd_hostfacts_gather, ignoring the result (used by main.c's --check-config). */
void rd_hostfacts_get(rd_host_facts_t *out, char *hostbuf, size_t hostbuf_len);

#endif
