/* log.h: leveled logging, text or JSON lines, with redaction.
 *
 * The core formats a record; it reads no clock and writes nothing itself. The
 * shell installs where lines go (rd_log_set_sink) and where the time comes from
 * (rd_log_set_clock): src/io/logsink.c does both for a FILE, stderr in main.c. */
#ifndef RUNNERD_LOG_H
#define RUNNERD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RD_LOG_DEBUG = 0, RD_LOG_INFO, RD_LOG_WARN, RD_LOG_ERROR } rd_log_level_t;
typedef enum { RD_LOG_TEXT = 0, RD_LOG_JSON } rd_log_format_t;

/** Receives each finished line (newline included) with its level. */
typedef void (*rd_log_sink_fn)(void *ctx, rd_log_level_t level, const char *line, size_t len);
/** Answers the wall-clock time in ms since the epoch. */
typedef int64_t (*rd_log_clock_fn)(void);

/** Configure the process-wide logger (the one piece of global state). */
void rd_log_configure(rd_log_level_t level, rd_log_format_t format);
/** Where lines go; a NULL sink drops them (the state before the shell installs one). */
void rd_log_set_sink(rd_log_sink_fn fn, void *ctx);
/** Where the time comes from; NULL stamps the epoch (0). */
void rd_log_set_clock(rd_log_clock_fn fn);
/**
 * Journal mode (stderr is systemd's journal): text lines begin with the syslog
 * priority ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug) and carry no
 * timestamp of their own (the journal stamps them). JSON lines are unchanged.
 */
void rd_log_set_journal(bool on);
int rd_log_parse_level(const char *s, rd_log_level_t *out);
int rd_log_parse_format(const char *s, rd_log_format_t *out);
bool rd_log_enabled(rd_log_level_t level);

/**
 * Register a secret (token, JIT config, webhook secret): every later log line has
 * each occurrence replaced by "[REDACTED]". Strings shorter than 8 bytes are ignored.
 * rd_log_forget_secret removes one again (e.g. an expired installation token).
 */
void rd_log_add_secret(const char *secret);
void rd_log_forget_secret(const char *secret);
void rd_log_clear_secrets(void);

/**
 * Copy src into dst (size dst_size, always NUL-terminated), replacing every
 * registered secret and anything that looks like a GitHub token (ghp_, gho_, ghu_,
 * ghs_, ghr_, github_pat_ prefixes) or a JWT (eyJ...) with "[REDACTED]". Returns strlen(dst).
 */
size_t rd_log_redact(const char *src, char *dst, size_t dst_size);

/**
 * What an event concerns: JSON lines carry each set field ("runner", "pool",
 * "scope" as strings, "job" as a number) beside ts, level, component and msg.
 * NULL / 0 fields are left out. Text lines are unchanged (the message names them).
 */
typedef struct rd_log_ctx {
    const char *runner; /* the runner's name */
    const char *pool;
    const char *scope; /* "orgs/ORG" or "repos/OWNER/REPO" */
    int64_t job;       /* GitHub's job id; 0 = none */
} rd_log_ctx_t;

/** Emit one event: text "2026-11-29T20:00:00.123Z INFO component: message" or a JSON object. */
void rd_log(rd_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rd_logv(rd_log_level_t level, const char *component, const char *fmt, va_list ap);
/** rd_log with the fields of CTX (may be NULL). */
void rd_logc(rd_log_level_t level, const char *component, const rd_log_ctx_t *ctx, const char *fmt,
             ...) __attribute__((format(printf, 4, 5)));
void rd_logcv(rd_log_level_t level, const char *component, const rd_log_ctx_t *ctx, const char *fmt,
              va_list ap);

#define rd_debug(c, ...) rd_log(RD_LOG_DEBUG, c, __VA_ARGS__)
#define rd_info(c, ...) rd_log(RD_LOG_INFO, c, __VA_ARGS__)
#define rd_warn(c, ...) rd_log(RD_LOG_WARN, c, __VA_ARGS__)
#define rd_error(c, ...) rd_log(RD_LOG_ERROR, c, __VA_ARGS__)

#endif
