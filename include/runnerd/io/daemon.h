/* daemon.h: the service: one uv loop, signals, reload, poller, scheduler, supervisor, listener. */
#ifndef RUNNERD_DAEMON_H
#define RUNNERD_DAEMON_H

#include <stdbool.h>

#include "runnerd/core/log.h"

typedef struct {
    const char *config_path;
    bool once;                  /* one poll-and-schedule cycle, then exit */
    bool dry_run;               /* decide and log, start nothing, create nothing on GitHub */
    const char *control_socket; /* runnerctl's socket; NULL or "" = none (docs/operating.md) */
} rd_daemon_opts_t;

/** Run until stopped; returns the process exit code. */
int rd_daemon_run(const rd_daemon_opts_t *opts);

#endif
