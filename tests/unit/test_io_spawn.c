/* test_io_spawn.c: children started with posix_spawn and reaped from the SIGCHLD
 * watcher: output pipes, exit codes and signals, PATH lookup in the child's own
 * environment, exactly the given environment, default signal dispositions, a new
 * session, forgotten children, a missing program, many children at once, and only
 * stdin, stdout and stderr inherited (issue 17 F3). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/logsink.h"
#include "runnerd/io/spawn.h"

typedef struct {
    uv_pipe_t out, err;
    char obuf[4096], ebuf[4096];
    size_t olen, elen;
    int exited;
    int64_t code;
    int sig;
    int closed;
} kid_t;

static void on_exit_cb(void *ud, int64_t code, int sig)
{
    kid_t *k = ud;
    k->exited++;
    k->code = code;
    k->sig = sig;
}

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    kid_t *k = h->data;
    bool is_out = h == (uv_handle_t *)&k->out;
    char *base = is_out ? k->obuf : k->ebuf;
    size_t used = is_out ? k->olen : k->elen;
    (void)n;
    b->base = base + used;
    b->len = sizeof k->obuf - 1 - used;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    kid_t *k = st->data;
    (void)b;
    if (n > 0) {
        if (st == (uv_stream_t *)&k->out)
            k->olen += (size_t)n;
        else
            k->elen += (size_t)n;
    } else if (n < 0) {
        uv_read_stop(st);
    }
}

static void closed_cb(uv_handle_t *h)
{
    kid_t *k = h->data;
    k->closed++;
}

/* Spawn argv with env, wait for its exit and both EOFs; returns the spawn result. */
static int run(uv_loop_t *loop, rd_spawner_t *sp, kid_t *k, char *const *argv, char *const *env,
               bool setsid)
{
    memset(k, 0, sizeof *k);
    int ofd = -1, efd = -1;
    rd_spawn_options_t o = {.file = argv[0],
                            .argv = argv,
                            .envp = env,
                            .new_session = setsid,
                            .out_fd = &ofd,
                            .err_fd = &efd,
                            .exit_cb = on_exit_cb,
                            .ud = k};
    uint64_t id = 0;
    pid_t pid = 0;
    int rc = rd_spawn(sp, &o, &id, &pid);
    if (rc != 0)
        return rc;
    assert_true(id != 0);
    assert_true(pid > 0);
    assert_int_equal(k->exited, 0); /* never called from inside rd_spawn */
    uv_pipe_init(loop, &k->out, 0);
    uv_pipe_init(loop, &k->err, 0);
    k->out.data = k->err.data = k;
    assert_int_equal(uv_pipe_open(&k->out, ofd), 0);
    assert_int_equal(uv_pipe_open(&k->err, efd), 0);
    uv_read_start((uv_stream_t *)&k->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&k->err, alloc_cb, read_cb);
    /* The loop stays alive while a waited-for child runs, even after its pipes close. */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(k->exited, 1);
    uv_close((uv_handle_t *)&k->out, closed_cb);
    uv_close((uv_handle_t *)&k->err, closed_cb);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(k->closed, 2);
    k->obuf[k->olen] = '\0';
    k->ebuf[k->elen] = '\0';
    return 0;
}

static char *env_min[] = {"PATH=/usr/bin:/bin", "FOO=bar baz", NULL};

typedef struct {
    uv_loop_t loop;
    rd_spawner_t *sp;
} fx_t;

static int setup(void **state)
{
    fx_t *f = rd_xcalloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    assert_int_equal(rd_spawner_new(&f->loop, &f->sp), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    rd_spawner_close(f->sp, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void test_output_and_exit_code(void **state)
{
    fx_t *f = *state;
    kid_t k;
    char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, false), 0);
    assert_string_equal(k.obuf, "out\n");
    assert_string_equal(k.ebuf, "err\n");
    assert_int_equal(k.code, 3);
    assert_int_equal(k.sig, 0);
    assert_int_equal(rd_spawner_children(f->sp), 0);
}

static void test_signal_and_defaults(void **state)
{
    fx_t *f = *state;
    kid_t k;
    /* The daemon ignores SIGPIPE; the child must get it back at its default. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, NULL); /* and an empty signal mask */
    char *argv[] = {"/bin/sh", "-c", "kill -TERM $$; sleep 5; exit 0", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, false), 0);
    assert_int_equal(k.sig, SIGTERM);
    assert_int_equal(k.code, 0);
    char *argv2[] = {"/bin/sh", "-c", "kill -PIPE $$; sleep 5; exit 0", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv2, env_min, false), 0);
    assert_int_equal(k.sig, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    signal(SIGPIPE, SIG_DFL);
}

static void test_env_exact_and_path_lookup(void **state)
{
    fx_t *f = *state;
    kid_t k;
    setenv("RD_SPAWN_TEST_PARENT_ONLY", "leak", 1);
    /* "env" is found through the child's PATH, not ours. */
    char *argv[] = {"env", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, false), 0);
    assert_int_equal(k.code, 0);
    assert_string_equal(k.obuf, "PATH=/usr/bin:/bin\nFOO=bar baz\n");
    char *nopath[] = {"HOME=/", NULL};
    char *argv2[] = {"no-such-program-rd", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv2, nopath, false), UV_ENOENT);
    char *argv3[] = {"/nonexistent/docker", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv3, env_min, false), UV_ENOENT);
    assert_int_equal(rd_spawner_children(f->sp), 0);
}

static void test_new_session(void **state)
{
    fx_t *f = *state;
    kid_t k;
    /* ps is not always there: read the session id from /proc. */
    char *argv[] = {"/bin/sh", "-c", "cut -d' ' -f6 /proc/$$/stat; echo $$", NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, true), 0);
    long sid = 0, pid = 0;
    assert_int_equal(sscanf(k.obuf, "%ld\n%ld", &sid, &pid), 2);
    assert_int_equal(sid, pid);
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, false), 0);
    assert_int_equal(sscanf(k.obuf, "%ld\n%ld", &sid, &pid), 2);
    assert_int_equal(sid, (long)getsid(0));
}

static void test_only_stdio_inherited(void **state)
{
    fx_t *f = *state;
    kid_t k;
    /* Descriptors opened without close-on-exec, as libcurl opens its sockets. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int dupped = dup(2);
    assert_true(dupped > 2);
    /* The shell lists its descriptors; 3 and up would be inherited ones (ls is avoided:
     * it opens a descriptor of its own to read the folder). */
    char *argv[] = {"/bin/sh", "-c",
                    "for fd in /proc/$$/fd/*; do n=${fd##*/}; "
                    "[ \"$n\" -gt 2 ] && echo \"inherited $n\"; done; exit 0",
                    NULL};
    assert_int_equal(run(&f->loop, f->sp, &k, argv, env_min, false), 0);
    assert_int_equal(k.code, 0);
    /* dash may hold the script's own descriptor (10 or so) open: not ours. */
    char want[64];
    for (int fd = 3; fd <= sv[1] || fd <= dupped; fd++) {
        snprintf(want, sizeof want, "inherited %d\n", fd);
        if (fd == sv[0] || fd == sv[1] || fd == dupped)
            if (strstr(k.obuf, want) != NULL)
                fail_msg("the child inherited descriptor %d: %s", fd, k.obuf);
    }
    close(sv[0]);
    close(sv[1]);
    close(dupped);
}

static int many_exited;

static void count_exit(void *ud, int64_t code, int sig)
{
    (void)ud;
    (void)sig;
    if (code == 7)
        many_exited++;
}

static void test_many_and_forget(void **state)
{
    fx_t *f = *state;
    enum { N = 60 };
    many_exited = 0;
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        char *argv[] = {"/bin/sh", "-c", "exit 7", NULL};
        rd_spawn_options_t o = {
            .file = argv[0], .argv = argv, .envp = env_min, .exit_cb = count_exit};
        pid_t pid;
        assert_int_equal(rd_spawn(f->sp, &o, &ids[i], &pid), 0);
    }
    assert_int_equal(rd_spawner_children(f->sp), N);
    /* Forget ten: they are reaped but never reported. */
    for (int i = 0; i < 10; i++)
        rd_spawn_forget(f->sp, ids[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns once the 50 waited-for ones are reaped */
    assert_int_equal(many_exited, N - 10);
    for (int i = 0; i < 100 && rd_spawner_children(f->sp) > 0; i++) {
        usleep(20000);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(rd_spawner_children(f->sp), 0);
}

int main(void)
{
    rd_logsink_setup(RD_LOG_ERROR, RD_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output_and_exit_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_exact_and_path_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_stdio_inherited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
