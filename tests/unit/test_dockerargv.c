/* test_dockerargv.c: golden docker argv, hostile inputs, ps/inspect parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/dockerargv.h"

static char *labels[] = {"self-hosted", "linux", "x64"};
static char *envk[] = {"FOO", "BAR_2"};
static char *envv[] = {"1", "s3cr3tval"};
static char *extra[] = {"--add-host", "host.docker.internal:host-gateway"};
static char *cmd[] = {"/home/runner/run.sh", "--once"};

static rd_pool_t mkpool(void)
{
    rd_pool_t p;
    memset(&p, 0, sizeof p);
    p.name = "linux-x64";
    p.labels = labels;
    p.nlabels = 3;
    p.image = "ghcr.io/actions/actions-runner:latest";
    p.cpus = 2;
    p.memory = 4294967296ull;
    p.pids_limit = 4096;
    p.pull = RD_PULL_NEVER;
    return p;
}

static rd_docker_config_t mkdocker(void)
{
    rd_docker_config_t d;
    memset(&d, 0, sizeof d);
    d.binary = "docker";
    d.network = "bridge";
    return d;
}

static rd_dockerargv_run_t mkrun(const rd_pool_t *p, const rd_docker_config_t *d)
{
    rd_dockerargv_run_t r = {
        .binary = "docker",
        .name = "runnerd-host1-linux-x64-abc123",
        .instance = "host1",
        .scope = "repos/octo-org/hello-world",
        .runner_id = 23,
        .pool = p,
        .docker = d,
    };
    return r;
}

static void assert_argv(char **got, const char *const *want)
{
    size_t i = 0;
    for (; want[i]; i++) {
        if (got[i] == NULL)
            fail_msg("argv too short at %zu: want '%s'", i, want[i]);
        if (strcmp(got[i], want[i]) != 0)
            fail_msg("argv[%zu]: got '%s' want '%s'", i, got[i], want[i]);
    }
    if (got[i] != NULL)
        fail_msg("argv too long at %zu: extra '%s'", i, got[i]);
}

static void test_run_golden_minimal(void **state)
{
    (void)state;
    rd_pool_t p = mkpool();
    rd_docker_config_t d = mkdocker();
    rd_dockerargv_run_t r = mkrun(&p, &d);
    char **argv = NULL;
    assert_int_equal(rd_dockerargv_run(&r, &argv), 0);
    const char *want[] = {"docker",
                          "run",
                          "--rm",
                          "--name",
                          "runnerd-host1-linux-x64-abc123",
                          "--sig-proxy=false",
                          "--label",
                          "runnerd.instance=host1",
                          "--label",
                          "runnerd.pool=linux-x64",
                          "--label",
                          "runnerd.runner-id=23",
                          "--label",
                          "runnerd.scope=repos/octo-org/hello-world",
                          "--cpus",
                          "2",
                          "--memory",
                          "4294967296",
                          "--memory-swap",
                          "4294967296",
                          "--pids-limit",
                          "4096",
                          "--security-opt",
                          "no-new-privileges",
                          "--log-driver",
                          "none",
                          "--network",
                          "bridge",
                          "--pull",
                          "never",
                          "-e",
                          "ACTIONS_RUNNER_INPUT_JITCONFIG",
                          "ghcr.io/actions/actions-runner:latest",
                          NULL};
    assert_argv(argv, want);
    rd_dockerargv_free(argv);
}

/* no_new_privileges: false (docs/install.md, jobs that use sudo): the flag goes,
 * nothing else changes. */
static void test_run_allow_new_privileges(void **state)
{
    (void)state;
    rd_pool_t p = mkpool();
    p.allow_new_privileges = 1;
    rd_docker_config_t d = mkdocker();
    rd_dockerargv_run_t r = mkrun(&p, &d);
    char **argv = NULL;
    assert_int_equal(rd_dockerargv_run(&r, &argv), 0);
    const char *want[] = {"docker",
                          "run",
                          "--rm",
                          "--name",
                          "runnerd-host1-linux-x64-abc123",
                          "--sig-proxy=false",
                          "--label",
                          "runnerd.instance=host1",
                          "--label",
                          "runnerd.pool=linux-x64",
                          "--label",
                          "runnerd.runner-id=23",
                          "--label",
                          "runnerd.scope=repos/octo-org/hello-world",
                          "--cpus",
                          "2",
                          "--memory",
                          "4294967296",
                          "--memory-swap",
                          "4294967296",
                          "--pids-limit",
                          "4096",
                          "--log-driver",
                          "none",
                          "--network",
                          "bridge",
                          "--pull",
                          "never",
                          "-e",
                          "ACTIONS_RUNNER_INPUT_JITCONFIG",
                          "ghcr.io/actions/actions-runner:latest",
                          NULL};
    assert_argv(argv, want);
    rd_dockerargv_free(argv);
}

static void test_run_golden_full(void **state)
{
    (void)state;
    rd_pool_t p = mkpool();
    p.cpus = 0.5;
    p.gpus = 1;
    p.runtime = "runsc";
    p.platform = "linux/arm64";
    p.pull = RD_PULL_MISSING;
    p.env_keys = envk;
    p.env_vals = envv;
    p.nenv = 2;
    p.command = cmd;
    p.ncommand = 2;
    p.memory_swap = 6442450944ull;
    p.log_driver = "json-file";
    rd_docker_config_t d = mkdocker();
    d.network = "host";
    d.extra_args = extra;
    d.nextra_args = 2;
    d.binary = "podman";
    rd_dockerargv_run_t r = mkrun(&p, &d);
    r.binary = "/usr/bin/podman";
    char **argv = NULL;
    assert_int_equal(rd_dockerargv_run(&r, &argv), 0);
    const char *want[] = {"/usr/bin/podman",
                          "run",
                          "--rm",
                          "--name",
                          "runnerd-host1-linux-x64-abc123",
                          "--sig-proxy=false",
                          "--label",
                          "runnerd.instance=host1",
                          "--label",
                          "runnerd.pool=linux-x64",
                          "--label",
                          "runnerd.runner-id=23",
                          "--label",
                          "runnerd.scope=repos/octo-org/hello-world",
                          "--cpus",
                          "0.5",
                          "--memory",
                          "4294967296",
                          "--memory-swap",
                          "6442450944",
                          "--pids-limit",
                          "4096",
                          "--security-opt",
                          "no-new-privileges",
                          "--log-driver",
                          "json-file",
                          "--log-opt",
                          "max-size=10m",
                          "--log-opt",
                          "max-file=3",
                          "--network",
                          "host",
                          "--gpus",
                          "1",
                          "--runtime",
                          "runsc",
                          "--platform",
                          "linux/arm64",
                          "--pull",
                          "missing",
                          "-e",
                          "ACTIONS_RUNNER_INPUT_JITCONFIG",
                          "-e",
                          "FOO",
                          "-e",
                          "BAR_2",
                          "--add-host",
                          "host.docker.internal:host-gateway",
                          "ghcr.io/actions/actions-runner:latest",
                          "/home/runner/run.sh",
                          "--once",
                          NULL};
    assert_argv(argv, want);
    /* env values never appear in argv */
    for (char **a = argv; *a; a++)
        assert_null(strstr(*a, "s3cr3tval"));
    rd_dockerargv_free(argv);
}

static void expect_einval(rd_dockerargv_run_t *r)
{
    char **argv = (char **)0x1;
    assert_int_equal(rd_dockerargv_run(r, &argv), RD_EINVAL);
    assert_null(argv);
}

static void test_run_hostile(void **state)
{
    (void)state;
    rd_pool_t p;
    rd_docker_config_t d;
    rd_dockerargv_run_t r;
#define RESET() (p = mkpool(), d = mkdocker(), r = mkrun(&p, &d))
    RESET();
    p.image = "--privileged";
    expect_einval(&r);
    RESET();
    p.image = "-v/:/host";
    expect_einval(&r);
    RESET();
    p.image = "";
    expect_einval(&r);
    RESET();
    p.image = "img\nx";
    expect_einval(&r);
    RESET();
    r.name = "-x";
    expect_einval(&r);
    RESET();
    r.name = "a b";
    expect_einval(&r);
    RESET();
    r.name = "a\n";
    expect_einval(&r);
    RESET();
    r.name = "";
    expect_einval(&r);
    RESET();
    d.network = "--privileged";
    expect_einval(&r);
    RESET();
    p.runtime = "-x";
    expect_einval(&r);
    RESET();
    p.platform = "linux/\tarm64";
    expect_einval(&r);
    RESET();
    r.scope = "repos/o/r\n--privileged";
    expect_einval(&r);
    RESET();
    r.instance = "h\x01";
    expect_einval(&r);
    RESET();
    p.name = "pool\r";
    expect_einval(&r);
    RESET();
    r.runner_id = -1;
    expect_einval(&r);
    RESET();
    p.cpus = 0;
    expect_einval(&r);
    RESET();
    p.memory = 0;
    expect_einval(&r);
    RESET();
    p.pids_limit = 0;
    expect_einval(&r);
    RESET();
    p.memory_swap = p.memory - 1;
    expect_einval(&r);
    RESET();
    p.log_driver = "--privileged";
    expect_einval(&r);
    RESET();
    p.log_driver = "";
    expect_einval(&r);
    RESET();
    p.log_driver = "json file";
    expect_einval(&r);
    RESET();
    r.binary = "-docker";
    expect_einval(&r);
    static char *badk[] = {"A=B"};
    static char *badv[] = {"x"};
    RESET();
    p.env_keys = badk;
    p.env_vals = badv;
    p.nenv = 1;
    expect_einval(&r);
    static char *jitk[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG"};
    RESET();
    p.env_keys = jitk;
    p.env_vals = badv;
    p.nenv = 1;
    expect_einval(&r);
    static char *dashk[] = {"-e"};
    RESET();
    p.env_keys = dashk;
    p.env_vals = badv;
    p.nenv = 1;
    expect_einval(&r);
    static char *badx[] = {"--x\n"};
    RESET();
    d.extra_args = badx;
    d.nextra_args = 1;
    expect_einval(&r);
    /* A label value starting with '-' is fine: it is glued to "key=". */
    RESET();
    r.scope = "-weird";
    char **argv = NULL;
    assert_int_equal(rd_dockerargv_run(&r, &argv), 0);
    rd_dockerargv_free(argv);
#undef RESET
}

static void test_simple_argvs(void **state)
{
    (void)state;
    char **a = NULL;
    assert_int_equal(rd_dockerargv_stop("docker", "runnerd-h-p-1", 10, &a), 0);
    assert_argv(a, (const char *[]){"docker", "stop", "-t", "10", "runnerd-h-p-1", NULL});
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_kill("docker", "runnerd-h-p-1", &a), 0);
    assert_argv(a, (const char *[]){"docker", "kill", "runnerd-h-p-1", NULL});
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_wait("docker", "runnerd-h-p-1", &a), 0);
    assert_argv(a, (const char *[]){"docker", "wait", "runnerd-h-p-1", NULL});
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_rm("docker", "runnerd-h-p-1", &a), 0);
    assert_argv(a, (const char *[]){"docker", "rm", "-f", "runnerd-h-p-1", NULL});
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_inspect("docker", "runnerd-h-p-1", &a), 0);
    assert_argv(a, (const char *[]){"docker", "inspect", "--format", "{{.State.StartedAt}}",
                                    "runnerd-h-p-1", NULL});
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_ps("docker", "host1", &a), 0);
    assert_argv(a,
                (const char *[]){"docker", "ps", "-a", "--no-trunc", "--filter",
                                 "label=runnerd.instance=host1", "--format",
                                 "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"runnerd.pool\"}}"
                                 "\t{{.Label \"runnerd.runner-id\"}}\t{{.Label \"runnerd.scope\"}}",
                                 NULL});
    assert_int_equal(rd_dockerargv_len(a), 8);
    rd_dockerargv_free(a);
    assert_int_equal(rd_dockerargv_stop("docker", "-t", 10, &a), RD_EINVAL);
    assert_null(a);
    assert_int_equal(rd_dockerargv_kill("docker", "--all", &a), RD_EINVAL);
    assert_int_equal(rd_dockerargv_rm("docker", "", &a), RD_EINVAL);
    assert_int_equal(rd_dockerargv_ps("docker", "", &a), RD_EINVAL);
    assert_int_equal(rd_dockerargv_ps("docker", "a\nb", &a), RD_EINVAL);
}

static void test_names(void **state)
{
    (void)state;
    char *n = NULL;
    assert_int_equal(rd_dockerargv_runner_name("host1", "linux-x64", 1764446400000, 12345, &n), 0);
    assert_non_null(n);
    assert_true(strncmp(n, "runnerd-host1-linux-x64-", 24) == 0);
    assert_true(rd_dockerargv_valid_name(n));
    const char *pools[] = {"linux-x64", "arm"};
    assert_true(rd_dockerargv_owns_name(n, "host1", pools, 2));
    assert_false(rd_dockerargv_owns_name(n, "host", pools, 2));
    assert_false(rd_dockerargv_owns_name(n, "host1", pools + 1, 1));
    char *n2 = NULL;
    assert_int_equal(rd_dockerargv_runner_name("host1", "linux-x64", 1764446400000, 12346, &n2), 0);
    assert_string_not_equal(n, n2);
    char *n3 = NULL;
    assert_int_equal(rd_dockerargv_runner_name("host1", "linux-x64", 1764446400001, 12345, &n3), 0);
    assert_string_not_equal(n, n3);
    free(n);
    free(n2);
    free(n3);
    /* "a" must not claim "a-b"'s runners when pools do not line up. */
    const char *pa[] = {"p"};
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-p-xyz", "a", pa, 1));
    assert_true(rd_dockerargv_owns_name("runnerd-a-b-p-xyz", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-p-", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-p-X!", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("other", "a-b", pa, 1));
    /* DESIGN.md: runnerd-<instance>-* are ours, whatever follows... */
    assert_true(rd_dockerargv_owns_name("runnerd-a-b-orphan", "a-b", pa, 1));
    assert_true(rd_dockerargv_owns_name("runnerd-a-b-orphan-1", "a-b", pa, 1));
    assert_true(rd_dockerargv_owns_name("runnerd-a-b-p-Stale_1", "a-b", pa, 1));
    assert_true(rd_dockerargv_owns_name("runnerd-a-b-oldpool-k3x9q2abcdefgh", "a-b", pa, 1));
    /* ...except what a daemon whose instance extends ours ("a-b-c") would make */
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-c-p-k3x9q2", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-c-q-k3x9q2abcdefgh", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("runnerd-a-b-", "a-b", pa, 1));
    assert_false(rd_dockerargv_owns_name("runnerd-a-bc-p-xyz", "a-b", pa, 1));
    assert_int_equal(rd_dockerargv_runner_name("bad host", "p", 1, 1, &n), RD_EINVAL);
    assert_int_equal(rd_dockerargv_runner_name("h", "p/q", 1, 1, &n), RD_EINVAL);
    assert_int_equal(rd_dockerargv_runner_name("h", "", 1, 1, &n), RD_EINVAL);
    char longp[80];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(rd_dockerargv_runner_name("h", longp, 1, 1, &n), RD_EINVAL);
    assert_null(n);
    assert_true(rd_dockerargv_valid_env_key("_A1"));
    assert_false(rd_dockerargv_valid_env_key("1A"));
    assert_false(rd_dockerargv_valid_env_key(""));
}

static void test_parse_ps(void **state)
{
    (void)state;
    const char out[] = "abc123\trunnerd-h-p-1\trunning\tp\t42\trepos/o/r\n"
                       "def456\trunnerd-h-p-2\texited\tp\t\torgs/o\r\n"
                       "\n"
                       "bad line with no tabs\n"
                       "x\t-flag\trunning\tp\t1\ts\n"    /* name starts with '-' */
                       "x\tn\trunning\tp\t12a\ts\n"      /* runner id not a number */
                       "x\tn\trunning\tp\t1\ts\textra\n" /* 7 fields */
                       "x!\tn\trunning\tp\t1\ts\n"       /* id not alnum */
                       "\tn\trunning\tp\t1\ts\n"         /* empty id */
                       "ghi\t/runnerd-h-p-3\tdead\tp\t7\tx\n"
                       "jkl\trunnerd-h-p-4\tcreated\tp\t99999999999999999999\tx\n" /* id too long */
                       "mno\trunnerd-h-p-5\trestarting\tp\t5\tx"; /* no final newline */
    rd_containers_t l;
    assert_int_equal(rd_dockerargv_parse_ps(out, sizeof out - 1, &l), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.rejected, 7);
    assert_string_equal(l.v[0].id, "abc123");
    assert_string_equal(l.v[0].name, "runnerd-h-p-1");
    assert_int_equal(l.v[0].state, RD_CSTATE_RUNNING);
    assert_string_equal(l.v[0].pool, "p");
    assert_int_equal(l.v[0].runner_id, 42);
    assert_string_equal(l.v[0].scope, "repos/o/r");
    assert_int_equal(l.v[1].state, RD_CSTATE_EXITED);
    assert_int_equal(l.v[1].runner_id, 0);
    assert_string_equal(l.v[1].scope, "orgs/o");
    assert_string_equal(l.v[2].name, "runnerd-h-p-3");
    assert_int_equal(l.v[2].state, RD_CSTATE_DEAD);
    assert_int_equal(l.v[3].state, RD_CSTATE_OTHER);
    rd_containers_free(&l);

    assert_int_equal(rd_dockerargv_parse_ps("", 0, &l), 0);
    assert_int_equal(l.n, 0);
    rd_containers_free(&l);
    const char nul[] = "a\tb\0\trunning\tp\t1\ts\n";
    assert_int_equal(rd_dockerargv_parse_ps(nul, sizeof nul - 1, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.rejected, 1);
    rd_containers_free(&l);
}

/* Random bytes and random mixes of valid pieces: never crash, never leak. */
static void test_parse_ps_fuzz(void **state)
{
    (void)state;
    uint64_t s = 0x1234567;
    const char *pieces[] = {"\t", "\n", "abc", "running", "-", "\r", "1", "/", "\0", "runnerd-h"};
    for (int iter = 0; iter < 3000; iter++) {
        char buf[256];
        size_t n = 0;
        while (n < sizeof buf - 16) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            if ((s >> 60) == 0)
                break;
            if (iter % 2) {
                buf[n++] = (char)(s >> 33);
            } else {
                const char *p = pieces[(s >> 40) % RD_ARRAY_SIZE(pieces)];
                size_t pl = p[0] ? strlen(p) : 1;
                memcpy(buf + n, p, pl);
                n += pl;
            }
        }
        rd_containers_t l;
        assert_int_equal(rd_dockerargv_parse_ps(buf, n, &l), 0);
        for (size_t i = 0; i < l.n; i++)
            assert_true(rd_dockerargv_valid_name(l.v[i].name));
        rd_containers_free(&l);
        int64_t ms;
        (void)rd_dockerargv_parse_started_at(buf, n, &ms);
    }
}

static void test_started_at(void **state)
{
    (void)state;
    int64_t ms = 0;
    const char *a = "2026-11-29T20:00:00.123456789Z\n";
    assert_int_equal(rd_dockerargv_parse_started_at(a, strlen(a), &ms), 0);
    assert_int_equal(ms, 1795982400123LL);
    const char *b = "2026-11-29T21:00:00+01:00";
    assert_int_equal(rd_dockerargv_parse_started_at(b, strlen(b), &ms), 0);
    assert_int_equal(ms, 1795982400000LL);
    const char *c = "2026-11-29T20:00:00.5Z";
    assert_int_equal(rd_dockerargv_parse_started_at(c, strlen(c), &ms), 0);
    assert_int_equal(ms, 1795982400500LL);
    const char *z = "0001-01-01T00:00:00Z";
    assert_int_equal(rd_dockerargv_parse_started_at(z, strlen(z), &ms), RD_EINVAL);
    const char *bad[] = {"",
                         "garbage",
                         "2026-11-29 20:00:00",
                         "2026-13-29T20:00:00Z",
                         "2026-11-29T20:00:00.Z",
                         "2026-11-29T20:00:00Zjunk",
                         "2026-11-29T20:00:00+0100"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++)
        assert_int_equal(rd_dockerargv_parse_started_at(bad[i], strlen(bad[i]), &ms), RD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_golden_minimal),
        cmocka_unit_test(test_run_golden_full),
        cmocka_unit_test(test_run_allow_new_privileges),
        cmocka_unit_test(test_run_hostile),
        cmocka_unit_test(test_simple_argvs),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_ps),
        cmocka_unit_test(test_parse_ps_fuzz),
        cmocka_unit_test(test_started_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
