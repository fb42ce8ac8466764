/* hostfacts.h: gather the host facts the config loader resolves "auto" from. */
#ifndef RUNNERD_HOSTFACTS_H
#define RUNNERD_HOSTFACTS_H

#include <stddef.h>

#include "runnerd/config.h"

/**
 * Fill *out from this host: cores (uv_available_parallelism), MemTotal from
 * /proc/meminfo, arch from uname -m, hostname into HOSTBUF (which out->hostname
 * then points at). A fact that cannot be read is left 0 / RD_ARCH_UNKNOWN / "",
 * and the loader reports it only if the config leaves that value on auto.
 */
void rd_hostfacts_gather(rd_host_facts_t *out, char *hostbuf, size_t hostbuf_len);

#endif
