/* common.c: allocation helpers that abort on exhaustion and error strings
 * (pure: the whole-file reader lives in the I/O shell, src/io/readfile.c). */
#include "runnerd/core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rd_strerror(int err)
{
    switch (err) {
    case RD_OK:
        return "success";
    case RD_ENOMEM:
        return "out of memory";
    case RD_EINVAL:
        return "invalid input";
    case RD_EIO:
        return "input/output error";
    case RD_ENOENT:
        return "not found";
    case RD_EAGAIN:
        return "try again later";
    case RD_ERANGE:
        return "out of range";
    case RD_EPROTO:
        return "protocol error";
    case RD_EAUTH:
        return "authentication failed";
    case RD_EEXIST:
        return "already exists";
    case RD_EBUSY:
        return "busy";
    case RD_ECANCELED:
        return "canceled";
    }
    return "unknown error";
}

static rd_abort_hook_fn abort_hook;

void rd_set_abort_hook(rd_abort_hook_fn fn)
{
    abort_hook = fn;
}

void rd_fatal(const char *fmt, ...)
{
    if (abort_hook != NULL) {
        /* A stack buffer: this may run because malloc just failed. */
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        abort_hook(msg);
    }
    abort();
}

static void oom(size_t n)
{
    rd_fatal("runnerd: out of memory allocating %zu bytes", n);
}

void *rd_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *rd_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *rd_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *rd_xstrdup(const char *s)
{
    return rd_xstrndup(s, strlen(s));
}

char *rd_xstrndup(const char *s, size_t n)
{
    char *p = rd_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rd_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = rd_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void rd_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void rd_sbuf_printf(rd_sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(room > 0 ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = rd_xrealloc(b->s, b->cap);
    }
}

void rd_sbuf_append(rd_sbuf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = rd_xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

char *rd_sbuf_take(rd_sbuf_t *b)
{
    char *s = b->s != NULL ? b->s : rd_xstrdup("");
    *b = (rd_sbuf_t){0};
    return s;
}

int rd_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
