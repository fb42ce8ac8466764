/* common.h: allocation, error codes and small helpers shared by every module. */
#ifndef RUNNERD_COMMON_H
#define RUNNERD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define RD_VERSION_STRING RD_VERSION

/* Error codes: functions return 0 or one of these (negative). */
enum {
    RD_OK = 0,
    RD_ENOMEM = -1,
    RD_EINVAL = -2, /* bad input: config, API payload, child output */
    RD_EIO = -3,    /* a file or socket failed */
    RD_ENOENT = -4, /* no such thing */
    RD_EAGAIN = -5, /* try again later (rate limit, busy) */
    RD_ERANGE = -6, /* value or size out of range */
    RD_EPROTO = -7, /* peer broke the protocol (HTTP, JSON shape) */
    RD_EAUTH = -8,  /* credentials refused */
    RD_EEXIST = -9, /* already exists (409) */
    RD_EBUSY = -10, /* busy (422 "still running a job") */
    RD_ECANCELED = -11,
};

/** Text for an RD_E* code. */
const char *rd_strerror(int err);

/** What the core does before it aborts (exhausted memory, a broken invariant):
 * it hands one line of text, without the newline, to the hook the shell
 * installed (src/io/logsink.c writes it to stderr); with no hook it just
 * aborts, because the core writes no stream. */
typedef void (*rd_abort_hook_fn)(const char *msg);
void rd_set_abort_hook(rd_abort_hook_fn fn);
/** Format a message, hand it to the abort hook, abort(). */
_Noreturn void rd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** malloc/calloc/realloc/strdup that abort with a message on exhaustion. */
void *rd_xmalloc(size_t n);
void *rd_xcalloc(size_t nmemb, size_t size);
void *rd_xrealloc(void *p, size_t n);
char *rd_xstrdup(const char *s);
char *rd_xstrndup(const char *s, size_t n);
/** printf into a fresh heap string. */
char *rd_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The value of one hexadecimal digit (0-9, a-f, A-F), or -1 for any other c. */
int rd_hexval(int c);

/* A growing heap string: the core writes no stream, so text it builds (the config
 * summary, the dry-run plan, the metrics page) goes into one of these. Zero-initialise;
 * s is NULL until the first append, then always NUL-terminated; the caller owns s. */
typedef struct {
    char *s;
    size_t len, cap;
} rd_sbuf_t;

/** Append printf output to b (aborts on exhaustion, like rd_xmalloc). */
void rd_sbuf_printf(rd_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append n bytes of s to b (s need not be NUL-terminated). */
void rd_sbuf_append(rd_sbuf_t *b, const void *s, size_t n);
/** b's string, handed to the caller (never NULL: "" when nothing was appended). */
char *rd_sbuf_take(rd_sbuf_t *b);

/** Free a NULL-terminated or counted array of heap strings and the array. */
void rd_strv_free(char **v, size_t n);

#define RD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define rd_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
