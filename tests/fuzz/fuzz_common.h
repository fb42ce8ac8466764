/* fuzz_common.h: helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every target checks its own invariants with FZ_CHECK, which aborts so that
 * libFuzzer keeps the input as a crash artefact (assert() would vanish under
 * -DNDEBUG in RelWithDebInfo builds). */
#ifndef RD_FUZZ_COMMON_H
#define RD_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/log.h"

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated heap copy of data[0..n). */
static inline char *fz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    if (n > 0)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

static inline void fz_drop_line(void *ctx, rd_log_level_t level, const char *line, size_t len)
{
    (void)ctx;
    (void)level;
    (void)line;
    (void)len;
}

/* Logging stays on (its formatting and redaction see fuzzed text too), but its
 * lines are dropped so that the fuzzer's own output stays readable. */
static inline void fz_quiet_logs(void)
{
    rd_log_configure(RD_LOG_DEBUG, RD_LOG_TEXT);
    rd_log_set_sink(fz_drop_line, NULL);
}

/* Split off the next '\n'-terminated field of (*data, *size) into a NUL-terminated
 * heap string (the whole rest when there is no '\n'). */
static inline char *fz_take_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *s = fz_strndup(*data, n);
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
    return s;
}

#endif
