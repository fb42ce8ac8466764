/* common.c: allocation helpers that abort on exhaustion, error strings, and the
 * one whole-file reader (rd_read_file) for config and secret files. */
#include "runnerd/core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void oom(size_t n)
{
    fprintf(stderr, "runnerd: out of memory allocating %zu bytes\n", n);
    abort();
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

/* Grow *buf to cap bytes; a secret is copied and the old block wiped first. */
static char *grow(char *buf, size_t len, size_t cap, unsigned flags)
{
    if (!(flags & RD_READ_SECRET))
        return rd_xrealloc(buf, cap);
    char *n = rd_xmalloc(cap);
    if (len > 0)
        memcpy(n, buf, len);
    if (buf != NULL)
        explicit_bzero(buf, len);
    free(buf);
    return n;
}

int rd_read_file(const char *path, size_t max, unsigned flags, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return RD_EIO;
    size_t cap = 4096, len = 0;
    char *buf = rd_xmalloc(cap);
    int rc = 0, saved = 0;
    for (;;) {
        if (len + 1 == cap) {
            if (len > max)
                break;
            buf = grow(buf, len, cap * 2, flags);
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            saved = errno;
            rc = RD_EIO;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (rc == 0 && len > max)
        rc = RD_ERANGE;
    if (rc != 0) {
        if (flags & RD_READ_SECRET)
            explicit_bzero(buf, len);
        free(buf);
        errno = saved;
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}
