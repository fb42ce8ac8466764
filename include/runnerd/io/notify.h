/* notify.h: the systemd notify protocol (I/O), written to $NOTIFY_SOCKET directly
 * (no libsystemd): READY=1, RELOADING=1 + MONOTONIC_USEC, STOPPING=1, STATUS=,
 * and WATCHDOG=1 every WATCHDOG_USEC/2 when the unit sets WatchdogSec.
 *
 * Without $NOTIFY_SOCKET (not started by systemd) every call is a no-op that
 * returns 0, so the daemon never has to ask. */
#ifndef RUNNERD_NOTIFY_H
#define RUNNERD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

typedef struct rd_notify rd_notify_t;

/**
 * Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment and
 * remove them from it (children such as the docker CLI must not inherit them).
 * A socket path starting with '@' is in the abstract namespace. The watchdog
 * is armed only when WATCHDOG_USEC is set and WATCHDOG_PID is absent or names
 * this process; its timer is unref'd (it never keeps the loop alive).
 * Returns 0 and *out (always; a disabled notifier when there is no socket), or
 * RD_EINVAL for an unusable NOTIFY_SOCKET (logged; *out is then disabled too).
 */
int rd_notify_open(uv_loop_t *loop, rd_notify_t **out);

/** True when $NOTIFY_SOCKET was set and usable. */
bool rd_notify_enabled(const rd_notify_t *n);
/** The watchdog interval in microseconds (0 when off). */
uint64_t rd_notify_watchdog_usec(const rd_notify_t *n);

/** Send one raw datagram ("KEY=VALUE\n..."). 0, or RD_EIO when the send failed. */
int rd_notify_send(rd_notify_t *n, const char *msg);

/** READY=1 (startup finished, or a reload finished), with a STATUS= line when status != NULL. */
int rd_notify_ready(rd_notify_t *n, const char *status);
/** RELOADING=1 and MONOTONIC_USEC=<now>, with an optional STATUS= line. */
int rd_notify_reloading(rd_notify_t *n, const char *status);
/** STOPPING=1, with an optional STATUS= line. */
int rd_notify_stopping(rd_notify_t *n, const char *status);
/** STATUS=<text>; newlines in text become spaces. */
int rd_notify_status(rd_notify_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Stop the watchdog timer, close the socket and free n once its handle is closed. */
void rd_notify_close(rd_notify_t *n);

#endif
