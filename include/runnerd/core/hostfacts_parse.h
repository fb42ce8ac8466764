/* hostfacts_parse.h: the pure parsers behind rd_hostfacts_gather (src/io/hostfacts.c). */
#ifndef RUNNERD_HOSTFACTS_PARSE_H
#define RUNNERD_HOSTFACTS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"

/**
 * Parse /proc/meminfo text (not necessarily NUL-terminated) for "MemTotal:
 * <n> kB" and store bytes in *out_bytes. Returns 0, or RD_ENOENT when the line
 * is missing, RD_EINVAL when it is malformed or overflows.
 */
int rd_hostfacts_parse_meminfo(const char *text, size_t len, uint64_t *out_bytes);

/** Map `uname -m` (x86_64, amd64, aarch64, arm64, armv7l, armv6l, ...) to RD_ARCH_*. */
rd_arch_t rd_hostfacts_arch_from_machine(const char *machine);

#endif
