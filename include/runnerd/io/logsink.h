/* logsink.h: the shell's side of the logger: lines to a FILE, the wall clock,
 * and journal detection (JOURNAL_STREAM). */
#ifndef RUNNERD_IO_LOGSINK_H
#define RUNNERD_IO_LOGSINK_H

#include <stdbool.h>
#include <stdio.h>

#include "runnerd/core/log.h"

/**
 * Configure the logger (rd_log_configure) and send its lines to OUT, each
 * written whole and flushed, stamped with CLOCK_REALTIME. Text lines go in
 * journal mode (rd_log_set_journal) when OUT is the stream systemd's
 * JOURNAL_STREAM names.
 */
void rd_logsink_setup(rd_log_level_t level, rd_log_format_t format, FILE *out);

/** Install the core's abort hook (rd_set_abort_hook): the message of an
 * out-of-memory or broken-invariant abort goes to stderr. rd_logsink_setup
 * installs it too; programs call this first thing so that it covers what runs
 * before the logger is set up. */
void rd_logsink_install_abort_hook(void);

/** True when $JOURNAL_STREAM ("DEV:INODE") names the file open on FD. */
bool rd_logsink_is_journal(int fd);

/** The wall clock in ms since the epoch (the logger's clock). */
int64_t rd_logsink_now_ms(void);

#endif
