/* readfile.c: the one whole-file reader (rd_read_file) for config and secret files. */
#include "runnerd/io/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runnerd/core/common.h"

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

int rd_read_fd(int fd, size_t max, unsigned flags, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
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

int rd_read_file(const char *path, size_t max, unsigned flags, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* O_NONBLOCK: a FIFO (or a device) put where a file was expected must not
     * block the caller (a SIGHUP reload runs on the event loop); it is refused
     * below, and a regular file reads the same without blocking. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return RD_EIO;
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0) {
        rc = RD_EIO;
    } else if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        rc = RD_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        rc = RD_EINVAL;
    } else {
        rc = rd_read_fd(fd, max, flags, out, out_len);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
