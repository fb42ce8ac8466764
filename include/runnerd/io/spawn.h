/* spawn.h: child processes started with posix_spawn and reaped from one
 * SIGCHLD watcher on the loop (I/O).
 *
 * Why not uv_spawn: libuv 1.44 forks, and fork copies the daemon's page
 * tables only for the child to throw them away at exec, while uv_spawn blocks
 * the loop until that exec. On a virtualised build host that is several
 * milliseconds per `docker` child, paid serially when a burst of jobs arrives.
 * glibc's posix_spawn uses clone(CLONE_VM | CLONE_VFORK): nothing is copied.
 *
 * The child gets: stdin from /dev/null, stdout and stderr on pipes (or
 * /dev/null), every signal at its default disposition and an empty signal
 * mask, optionally its own session, and exactly the environment given. Every
 * other descriptor of the daemon is close-on-exec already (libuv, libcurl). */
#ifndef RUNNERD_SPAWN_H
#define RUNNERD_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

typedef struct rd_spawner rd_spawner_t;

/** Called once per child when it has been reaped: exit_status is the exit
 * code (0-255) when it exited, term_signal the signal that ended it (else 0). */
typedef void (*rd_spawn_exit_cb)(void *ud, int64_t exit_status, int term_signal);

typedef struct {
    const char *file;  /* a path, or a name looked up in envp's PATH (like execvp) */
    char *const *argv; /* argv[0] first, NULL-terminated */
    char *const *envp; /* the child's whole environment, NULL-terminated */
    bool new_session;  /* setsid() in the child */
    int *out_fd;       /* non-NULL: a pipe for stdout; *out_fd = the read end (CLOEXEC) */
    int *err_fd;       /* the same for stderr */
    rd_spawn_exit_cb exit_cb;
    void *ud;
} rd_spawn_options_t;

/** A spawner on loop: starts its SIGCHLD watcher. 0, or a uv error code. */
int rd_spawner_new(uv_loop_t *loop, rd_spawner_t **out);

/**
 * Start a child. Returns 0 with *id (a handle for rd_spawn_forget, never 0)
 * and *pid, or a negative errno (uv error code: UV_ENOENT when the program is
 * not found, ...) with nothing left open. exit_cb runs from the loop later,
 * never from inside this call.
 */
int rd_spawn(rd_spawner_t *sp, const rd_spawn_options_t *o, uint64_t *id, pid_t *pid);

/** Do not call the child's exit_cb any more; it is still reaped when it exits. */
void rd_spawn_forget(rd_spawner_t *sp, uint64_t id);

/** Children started and not reaped yet. */
size_t rd_spawner_children(const rd_spawner_t *sp);

/**
 * Close the SIGCHLD watcher and free the spawner once it is closed (closed_cb
 * then, may be NULL). Children still running are no longer reaped; their
 * callbacks are never called.
 */
void rd_spawner_close(rd_spawner_t *sp, void (*closed_cb)(void *ud), void *ud);

#endif
