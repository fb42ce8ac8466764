/* logsink.c: where the core logger's lines go and what time they carry.
 *
 * The core (src/core/log.c) formats and redacts a record and hands the line to
 * the sink installed here; this file owns the only write and the only clock
 * read of logging. */
#include "runnerd/io/logsink.h"

#include "runnerd/core/common.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static void file_sink(void *ctx, rd_log_level_t level, const char *line, size_t len)
{
    (void)level;
    FILE *out = ctx;
    fwrite(line, 1, len, out);
    fflush(out);
}

int64_t rd_logsink_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool rd_logsink_is_journal(int fd)
{
    /* systemd sets JOURNAL_STREAM when stdout or stderr is connected to the
     * journal; a child that redirected its stderr elsewhere inherits the
     * variable, so the device and inode must match the descriptor itself
     * (sd_journal_stream_fd(3), systemd.exec(5)). */
    const char *v = getenv("JOURNAL_STREAM");
    if (v == NULL || fd < 0)
        return false;
    uintmax_t dev, ino;
    char tail;
    if (sscanf(v, "%ju:%ju%c", &dev, &ino, &tail) != 2)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

static void abort_to_stderr(const char *msg)
{
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

void rd_logsink_install_abort_hook(void)
{
    rd_set_abort_hook(abort_to_stderr);
}

void rd_logsink_setup(rd_log_level_t level, rd_log_format_t format, FILE *out)
{
    rd_logsink_install_abort_hook();
    rd_log_configure(level, format);
    rd_log_set_journal(out != NULL && rd_logsink_is_journal(fileno(out)));
    rd_log_set_clock(rd_logsink_now_ms);
    rd_log_set_sink(out != NULL ? file_sink : NULL, out);
}
