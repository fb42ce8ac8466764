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
 * Read the whole file PATH into a fresh buffer, NUL-terminated (*out_len excludes
 * the NUL). 0; RD_EIO when it cannot be opened or read (errno tells why, e.g.
 * EISDIR); RD_ERANGE when it holds more than max bytes. *out is NULL on failure.
 */
int rd_read_file(const char *path, size_t max, unsigned flags, char **out, size_t *out_len);

#endif
