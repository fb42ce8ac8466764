/* spawn.c: posix_spawn children, reaped from one SIGCHLD watcher.
 *
 * A child gets only stdin, stdout and stderr (issue 17 F3): runnerd's sockets (the
 * API connections libcurl opens without close-on-exec, the listener, the control
 * socket), other children's pipes and its files never reach a docker CLI. With
 * glibc 2.34+ the spawn closes everything from 3 up in the child
 * (posix_spawn_file_actions_addclosefrom_np, close_range underneath); elsewhere
 * every descriptor from 3 up is marked close-on-exec in the parent first
 * (harmless: runnerd execs nothing else). */
#include "runnerd/io/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if !(defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34)))
#include <dirent.h>
#define RD_NO_CLOSEFROM 1
#endif

#include "runnerd/core/common.h"

typedef struct child {
    struct child *next;
    uint64_t id;
    pid_t pid;
    int status;               /* waitpid status once reaped, -1 when lost */
    rd_spawn_exit_cb exit_cb; /* NULL once forgotten */
    void *ud;
} child_t;

struct rd_spawner {
    uv_signal_t sigchld;
    child_t *children;
    size_t nchildren;
    size_t nwaited; /* children whose exit_cb is still wanted: they keep the loop alive */
    uint64_t next_id;
    void (*closed_cb)(void *ud);
    void *closed_ud;
};

/* Like a uv_process_t, a child someone waits for keeps the loop alive. */
static void waited_add(rd_spawner_t *sp, int d)
{
    if (d < 0 && sp->nwaited == 0)
        return;
    sp->nwaited = (size_t)((ptrdiff_t)sp->nwaited + d);
    if (sp->nwaited > 0)
        uv_ref((uv_handle_t *)&sp->sigchld);
    else
        uv_unref((uv_handle_t *)&sp->sigchld);
}

static void reap(rd_spawner_t *sp)
{
    /* First unlink every child that has ended, then call back: a callback may
     * start or forget children, or close the spawner. */
    child_t *done = NULL, **tail = &done;
    child_t **pp = &sp->children;
    while (*pp) {
        child_t *c = *pp;
        int status = 0;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
            pp = &c->next;
            continue;
        }
        /* Reaped, or gone (ECHILD: reaped by someone else; report it as exit
         * 127 rather than wait for it forever). */
        *pp = c->next;
        sp->nchildren--;
        c->next = NULL;
        c->status = r == c->pid ? status : -1;
        *tail = c;
        tail = &c->next;
    }
    while (done) {
        child_t *c = done;
        done = c->next;
        int64_t code = 127;
        int sig = 0;
        if (c->status >= 0 && WIFEXITED(c->status))
            code = WEXITSTATUS(c->status);
        else if (c->status >= 0 && WIFSIGNALED(c->status)) {
            code = 0;
            sig = WTERMSIG(c->status);
        }
        rd_spawn_exit_cb cb = c->exit_cb;
        void *ud = c->ud;
        free(c);
        if (cb) {
            waited_add(sp, -1);
            cb(ud, code, sig);
        }
    }
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    reap(h->data);
}

int rd_spawner_new(uv_loop_t *loop, rd_spawner_t **out)
{
    *out = NULL;
    rd_spawner_t *sp = rd_xcalloc(1, sizeof *sp);
    int rc = uv_signal_init(loop, &sp->sigchld);
    if (rc != 0) {
        free(sp);
        return rc;
    }
    sp->sigchld.data = sp;
    rc = uv_signal_start(&sp->sigchld, on_sigchld, SIGCHLD);
    if (rc != 0) {
        uv_close((uv_handle_t *)&sp->sigchld, (uv_close_cb)free);
        return rc;
    }
    uv_unref((uv_handle_t *)&sp->sigchld); /* until a child is waited for */
    sp->next_id = 1;
    *out = sp;
    return 0;
}

#ifdef RD_NO_CLOSEFROM
/* Without a close-from file action: every descriptor from 3 up is close-on-exec. */
static void cloexec_from_3(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    int self = dirfd(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != self) {
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0 && !(fl & FD_CLOEXEC))
                fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    closedir(d);
}
#endif

/* file, or its first executable match in envp's PATH; *buf owns the result. */
static int resolve(const char *file, char *const *envp, char **buf)
{
    *buf = NULL;
    if (file == NULL || *file == '\0')
        return UV_ENOENT;
    if (strchr(file, '/')) {
        /* Checked here too: posix_spawn reports a failed exec only where the
         * child shares our memory (not under valgrind, which forks instead). */
        if (access(file, X_OK) != 0)
            return errno == EACCES ? UV_EACCES : UV_ENOENT;
        *buf = rd_xstrdup(file);
        return 0;
    }
    const char *path = NULL;
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = UV_ENOENT;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *cand = n ? rd_xasprintf("%.*s/%s", (int)n, p, file) : rd_xstrdup(file);
        if (access(cand, X_OK) == 0) {
            *buf = cand;
            return 0;
        }
        if (errno == EACCES)
            err = UV_EACCES;
        free(cand);
        if (end == NULL)
            break;
        p = end + 1;
    }
    return err;
}

int rd_spawn(rd_spawner_t *sp, const rd_spawn_options_t *o, uint64_t *id, pid_t *pid)
{
    int pout[2] = {-1, -1}, perr[2] = {-1, -1};
    char *prog = NULL;
    bool fa_init = false, at_init = false;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    pid_t child = -1;
    int rc = resolve(o->file, o->envp, &prog);
    if (rc != 0)
        goto cleanup;
    if ((o->out_fd && pipe2(pout, O_CLOEXEC) != 0) || (o->err_fd && pipe2(perr, O_CLOEXEC) != 0)) {
        rc = -errno;
        goto cleanup;
    }
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto cleanup;
    }
    fa_init = true;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        rc = -rc;
        goto cleanup;
    }
    at_init = true;
    /* dup2 onto 0/1/2 clears close-on-exec on the copy; the originals close at exec. */
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = o->out_fd ? posix_spawn_file_actions_adddup2(&fa, pout[1], 1)
                       : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (rc == 0)
        rc = o->err_fd ? posix_spawn_file_actions_adddup2(&fa, perr[1], 2)
                       : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#ifdef RD_NO_CLOSEFROM
    cloexec_from_3();
#else
    /* Last: after the dup2s onto 0, 1, 2, everything else goes. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o->new_session)
        flags |= POSIX_SPAWN_SETSID;
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, flags);
    if (rc == 0)
        rc = posix_spawn(&child, prog, &fa, &at, o->argv, o->envp);
    if (rc != 0) {
        rc = -rc;
        goto cleanup;
    }
    child_t *c = rd_xcalloc(1, sizeof *c);
    c->id = sp->next_id++;
    c->pid = child;
    c->exit_cb = o->exit_cb;
    c->ud = o->ud;
    c->next = sp->children;
    sp->children = c;
    sp->nchildren++;
    if (c->exit_cb)
        waited_add(sp, 1);
    if (o->out_fd) {
        *o->out_fd = pout[0];
        pout[0] = -1;
    }
    if (o->err_fd) {
        *o->err_fd = perr[0];
        perr[0] = -1;
    }
    *id = c->id;
    *pid = child;
    /* A child that already exited may have raised SIGCHLD before it was listed:
     * the watcher runs later from the loop and finds it then. */
cleanup:
    for (int i = 0; i < 2; i++) {
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (at_init)
        posix_spawnattr_destroy(&at);
    free(prog);
    return rc;
}

void rd_spawn_forget(rd_spawner_t *sp, uint64_t id)
{
    for (child_t *c = sp->children; c; c = c->next) {
        if (c->id == id) {
            if (c->exit_cb)
                waited_add(sp, -1);
            c->exit_cb = NULL;
            c->ud = NULL;
            return;
        }
    }
}

size_t rd_spawner_children(const rd_spawner_t *sp)
{
    return sp->nchildren;
}

static void spawner_closed(uv_handle_t *h)
{
    rd_spawner_t *sp = h->data;
    void (*cb)(void *) = sp->closed_cb;
    void *ud = sp->closed_ud;
    while (sp->children) {
        child_t *c = sp->children;
        sp->children = c->next;
        free(c);
    }
    free(sp);
    if (cb)
        cb(ud);
}

void rd_spawner_close(rd_spawner_t *sp, void (*closed_cb)(void *ud), void *ud)
{
    /* Reap what has already exited; the rest are left to init when we exit. */
    for (child_t *c = sp->children; c; c = c->next)
        c->exit_cb = NULL;
    sp->nwaited = 0;
    reap(sp);
    sp->closed_cb = closed_cb;
    sp->closed_ud = ud;
    uv_close((uv_handle_t *)&sp->sigchld, spawner_closed);
}
