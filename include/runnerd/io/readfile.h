/* readfile.h: the one whole-file reader of the I/O shell (config, secret files,
 * runnerctl's look at the config). The core never reads files: it is handed text. */
#ifndef RUNNERD_IO_READFILE_H
#define RUNNERD_IO_READFILE_H

#include <stddef.h>

/** rd_read_file flags. */
enum {
    RD_READ_SECRET = 1, /* growing the buffer leaves no copy behind; wipe it when done */
};
/**
 * Read the whole regular file PATH into a fresh buffer, NUL-terminated (*out_len
 * excludes the NUL), without ever blocking on a FIFO or device. 0; RD_EIO when it
 * cannot be opened or read (errno tells why, e.g. ENOENT, EISDIR); RD_EINVAL when
 * it is not a regular file (a FIFO, device or socket); RD_ERANGE when it holds
 * more than max bytes. *out is NULL on failure.
 */
int rd_read_file(const char *path, size_t max, unsigned flags, char **out, size_t *out_len);
/** The same from an open descriptor, read to its end (no type check). */
int rd_read_fd(int fd, size_t max, unsigned flags, char **out, size_t *out_len);

#endif
