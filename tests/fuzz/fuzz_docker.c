/* fuzz_docker: docker CLI output parsing and argv building (dockerargv.h).
 *
 * Input: byte 0 picks the mode (modulo 4), the rest is its data:
 *   0  `docker ps` output (rd_dockerargv_parse_ps), exact length
 *   1  `docker inspect --format {{.State.StartedAt}}` output
 *   2  lines instance, pool, name: runner names built and recognised again
 *   3  lines name, instance, scope, pool name, image, network, runtime,
 *      platform, env key, command word: every argv builder. Whatever a builder
 *      accepts must be safe in argv (no value from the config or GitHub may
 *      become a flag or carry a control character). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runnerd/core/dockerargv.h"

static void mode_ps(const char *buf, size_t len)
{
    rd_containers_t l;
    FZ_CHECK(rd_dockerargv_parse_ps(buf, len, &l) == 0);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    FZ_CHECK(l.n + l.rejected <= lines + 1);
    for (size_t i = 0; i < l.n; i++) {
        const rd_container_t *c = &l.v[i];
        FZ_CHECK(c->id != NULL && c->id[0] != '\0');
        FZ_CHECK(rd_dockerargv_valid_name(c->name));
        FZ_CHECK(c->pool != NULL && c->scope != NULL);
        FZ_CHECK(c->runner_id >= 0);
        FZ_CHECK(c->state >= RD_CSTATE_OTHER && c->state <= RD_CSTATE_DEAD);
    }
    rd_containers_free(&l);
}

static void mode_started_at(const char *buf, size_t len)
{
    int64_t ms = 0;
    (void)rd_dockerargv_parse_started_at(buf, len, &ms);
}

static void mode_names(const uint8_t *data, size_t size)
{
    char *instance = fz_take_line(&data, &size);
    char *pool = fz_take_line(&data, &size);
    char *name = fz_strndup(data, size);
    uint64_t t = 0, rnd = 0;
    for (size_t i = 0; i < size && i < 8; i++) {
        t = (t << 8) | data[i];
        rnd = (rnd << 7) ^ data[i];
    }
    int64_t now = (int64_t)(t >> 1); /* any time, negative ones included below */
    if (t & 1)
        now = -now;
    const char *pools[2] = {pool, "other"};
    char *built = NULL;
    if (rd_dockerargv_runner_name(instance, pool, now, rnd, &built) == 0) {
        FZ_CHECK(built != NULL);
        FZ_CHECK(strlen(built) <= 64);
        FZ_CHECK(rd_dockerargv_valid_name(built));
        FZ_CHECK(rd_dockerargv_safe_value(built));
        FZ_CHECK(rd_dockerargv_owns_name(built, instance, pools, 2));
        free(built);
    } else {
        FZ_CHECK(built == NULL);
    }
    (void)rd_dockerargv_owns_name(name, instance, pools, 2);
    if (rd_dockerargv_valid_name(name))
        FZ_CHECK(name[0] != '-' && rd_dockerargv_safe_value(name));
    (void)rd_dockerargv_valid_env_key(name);
    free(name);
    free(pool);
    free(instance);
}

/* The ps --format template is the one argument with tabs in it. */
static void check_argv_tabs(char **argv, bool tabs_ok)
{
    FZ_CHECK(argv != NULL);
    size_t n = rd_dockerargv_len(argv);
    FZ_CHECK(n >= 2);
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(argv[i] != NULL);
        for (const char *p = argv[i]; *p; p++)
            FZ_CHECK(((unsigned char)*p >= 0x20 || (tabs_ok && *p == '\t')) && *p != 0x7f);
    }
    rd_dockerargv_free(argv);
}

static void check_argv(char **argv)
{
    check_argv_tabs(argv, false);
}

static void mode_argv(const uint8_t *data, size_t size)
{
    enum {
        F_NAME,
        F_INSTANCE,
        F_SCOPE,
        F_POOL,
        F_IMAGE,
        F_NETWORK,
        F_RUNTIME,
        F_PLATFORM,
        F_ENVKEY,
        F_COMMAND,
        F_N
    };
    char *f[F_N];
    for (int i = 0; i < F_N; i++)
        f[i] = fz_take_line(&data, &size);

    char **argv;
    if (rd_dockerargv_stop("docker", f[F_NAME], 10, &argv) == 0) {
        FZ_CHECK(rd_dockerargv_safe_value(f[F_NAME]));
        check_argv(argv);
    }
    if (rd_dockerargv_kill("docker", f[F_NAME], &argv) == 0)
        check_argv(argv);
    if (rd_dockerargv_wait("docker", f[F_NAME], &argv) == 0)
        check_argv(argv);
    if (rd_dockerargv_rm("docker", f[F_NAME], &argv) == 0)
        check_argv(argv);
    if (rd_dockerargv_inspect("docker", f[F_NAME], &argv) == 0)
        check_argv(argv);
    /* The instance only ever appears inside "label=runnerd.instance=ID", so
     * a leading '-' is harmless there; control characters are not. */
    if (rd_dockerargv_ps("docker", f[F_INSTANCE], &argv) == 0)
        check_argv_tabs(argv, true);

    char *labels[2] = {f[F_POOL], "self-hosted"};
    char *command[1] = {f[F_COMMAND]};
    char *env_keys[1] = {f[F_ENVKEY]};
    char *env_vals[1] = {"value\nwith a newline is fine: it is not in argv"};
    char *extra[1] = {"--log-driver=none"};
    rd_pool_t pool = {.name = f[F_POOL],
                      .labels = labels,
                      .nlabels = 2,
                      .image = f[F_IMAGE],
                      .command = command,
                      .ncommand = f[F_COMMAND][0] ? 1 : 0,
                      .cpus = 1.5,
                      .memory = 1ULL << 30,
                      .gpus = (unsigned)(size & 1),
                      .pids_limit = 4096,
                      .pull = (rd_pull_t)(size % 3),
                      .runtime = f[F_RUNTIME][0] ? f[F_RUNTIME] : NULL,
                      .platform = f[F_PLATFORM][0] ? f[F_PLATFORM] : NULL,
                      .env_keys = env_keys,
                      .env_vals = env_vals,
                      .nenv = f[F_ENVKEY][0] ? 1 : 0};
    rd_docker_config_t docker = {
        .binary = "docker", .network = f[F_NETWORK], .extra_args = extra, .nextra_args = 1};
    rd_dockerargv_run_t in = {.binary = "docker",
                              .name = f[F_NAME],
                              .instance = f[F_INSTANCE],
                              .scope = f[F_SCOPE],
                              .runner_id = 7,
                              .pool = &pool,
                              .docker = &docker};
    if (rd_dockerargv_run(&in, &argv) == 0) {
        FZ_CHECK(rd_dockerargv_valid_name(f[F_NAME]));
        FZ_CHECK(rd_dockerargv_safe_value(f[F_IMAGE]));
        FZ_CHECK(rd_dockerargv_safe_value(f[F_NETWORK]));
        FZ_CHECK(pool.runtime == NULL || rd_dockerargv_safe_value(pool.runtime));
        FZ_CHECK(pool.platform == NULL || rd_dockerargv_safe_value(pool.platform));
        FZ_CHECK(pool.nenv == 0 || rd_dockerargv_valid_env_key(f[F_ENVKEY]));
        /* The image is the first word that is not a flag or a flag's value:
         * it must come right after the extra args. (The env value, with its
         * newline, cannot be in argv: check_argv refuses control characters.) */
        size_t n = rd_dockerargv_len(argv);
        bool seen_image = false;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && strcmp(argv[i - 1], "--log-driver=none") == 0) {
                FZ_CHECK(strcmp(argv[i], f[F_IMAGE]) == 0);
                seen_image = true;
            }
        }
        FZ_CHECK(seen_image);
        check_argv(argv);
    }
    for (int i = 0; i < F_N; i++)
        free(f[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_quiet_logs();
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 4;
    data++;
    size--;
    /* An exact-length copy: the parsers take a length and must not read past it. */
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    switch (mode) {
    case 0:
        mode_ps(buf, size);
        break;
    case 1:
        mode_started_at(buf, size);
        break;
    case 2:
        mode_names(data, size);
        break;
    case 3:
        mode_argv(data, size);
        break;
    }
    free(buf);
    return 0;
}
