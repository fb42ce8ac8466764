/* config_pools.c: the pools and targets sections (DESIGN.md section 2): their
 * key tables, the values that need more than a type check (labels, platform,
 * env, repo/org), and the cross-checks of pools against the host. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"

#define POOL(f) RD_CFG_FIELD(rd_pool_t, f)

static void parse_pool_labels(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                              void *auxp)
{
    rd_pool_t *pl = obj;
    rd_cfg_pool_aux_t *aux = auxp;
    if (n->kind != RD_YNODE_SEQ) {
        rd_cfg_errat(c, n, path, "must be a list of labels, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        rd_cfg_errat(c, n, path, "must hold at least one label");
        return;
    }
    if (n->u.seq.n > RD_MAX_LABELS) {
        rd_cfg_errat(c, n, path, "%zu labels: GitHub allows at most %d", n->u.seq.n, RD_MAX_LABELS);
        return;
    }
    pl->labels = rd_xcalloc(n->u.seq.n, sizeof(char *));
    const rd_ynode_t **items = rd_xcalloc(n->u.seq.n, sizeof(*items));
    for (size_t i = 0; i < n->u.seq.n; i++) {
        const rd_ynode_t *it = n->u.seq.v[i];
        char p[256];
        rd_cfg_join_idx(p, sizeof(p), path, i);
        if (it->kind != RD_YNODE_SCALAR || rd_ynode_is_null(it)) {
            rd_cfg_errat(c, it, p, "must be a string, not %s", rd_ynode_kind_name(it));
            continue;
        }
        const char *s = it->u.scalar.s;
        if (!rd_cfg_label_ok(s, it->u.scalar.len)) {
            rd_cfg_errat(c, it, p,
                         "not a label GitHub accepts (1-256 characters, no commas, no control "
                         "characters, no leading or trailing space)");
            continue;
        }
        size_t dup = SIZE_MAX;
        for (size_t j = 0; j < pl->nlabels; j++)
            if (strcasecmp(pl->labels[j], s) == 0)
                dup = j;
        if (dup != SIZE_MAX) {
            rd_cfg_errat(c, it, p, "duplicate label \"%s\" (labels compare case-insensitively)", s);
            continue;
        }
        rd_arch_t a = rd_arch_parse(s);
        if (a != RD_ARCH_UNKNOWN) {
            if (aux->label_arch != RD_ARCH_UNKNOWN && aux->label_arch != a) {
                rd_cfg_errat(c, it, p, "names a second architecture (%s, after %s)",
                             rd_arch_name(a), rd_arch_name(aux->label_arch));
                continue;
            }
            if (aux->label_arch == RD_ARCH_UNKNOWN)
                aux->arch_label = it;
            aux->label_arch = a;
        }
        items[pl->nlabels] = it;
        pl->labels[pl->nlabels++] = rd_xstrdup(s);
    }
    free(items);
}

static void parse_platform(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                           void *auxp)
{
    rd_pool_t *pl = obj;
    rd_cfg_pool_aux_t *aux = auxp;
    char *s = rd_cfg_get_str(c, n, path);
    if (s == NULL)
        return;
    /* os/arch[/variant], lower case, as docker --platform spells it. */
    char os[32], arch[32], variant[32];
    int nparts = 0;
    const char *p = s;
    char *parts[3] = {os, arch, variant};
    bool ok = true;
    while (ok && nparts < 3) {
        size_t len = 0;
        while (p[len] && p[len] != '/')
            len++;
        if (len == 0 || len >= 32)
            ok = false;
        for (size_t i = 0; ok && i < len; i++)
            if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '_'))
                ok = false;
        if (!ok)
            break;
        memcpy(parts[nparts], p, len);
        parts[nparts][len] = '\0';
        nparts++;
        p += len;
        if (*p == '\0')
            break;
        p++;
        if (*p == '\0')
            ok = false;
    }
    if (!ok || *p != '\0' || nparts < 2) {
        rd_cfg_errat(c, n, path, "\"%s\" is not a platform such as linux/arm64 (os/arch[/variant])",
                     s);
        free(s);
        return;
    }
    aux->platform_arch = rd_arch_parse(arch);
    if (aux->platform_arch == RD_ARCH_UNKNOWN) {
        rd_cfg_errat(c, n, path, "unknown architecture \"%s\" (runnerd knows amd64, arm64, arm)",
                     arch);
        free(s);
        return;
    }
    pl->platform = s;
}

static void parse_env(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj, void *aux)
{
    rd_pool_t *pl = obj;
    (void)aux;
    if (n->kind != RD_YNODE_MAP) {
        rd_cfg_errat(c, n, path, "must be a mapping of NAME: value, not %s", rd_ynode_kind_name(n));
        return;
    }
    pl->env_keys = rd_xcalloc(n->u.map.n + 1, sizeof(char *));
    pl->env_vals = rd_xcalloc(n->u.map.n + 1, sizeof(char *));
    for (size_t i = 0; i < n->u.map.n; i++) {
        const rd_ynode_t *k = n->u.map.v[i].key, *v = n->u.map.v[i].value;
        if (k->kind != RD_YNODE_SCALAR) {
            rd_cfg_errat(c, k, path, "keys must be strings, not %s", rd_ynode_kind_name(k));
            continue;
        }
        char p[256];
        rd_cfg_join(p, sizeof(p), path, k->u.scalar.s);
        const char *key = k->u.scalar.s;
        if (!rd_cfg_env_key_ok(key)) {
            rd_cfg_errat(c, k, p, "not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
            continue;
        }
        if (strcmp(key, "ACTIONS_RUNNER_INPUT_JITCONFIG") == 0) {
            rd_cfg_errat(c, k, p, "reserved: runnerd sets it to the runner's JIT configuration");
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i; j++) {
            const rd_ynode_t *kj = n->u.map.v[j].key;
            if (kj->kind == RD_YNODE_SCALAR && strcmp(kj->u.scalar.s, key) == 0) {
                rd_cfg_errat(c, k, p, "duplicate key (first at line %d)", kj->line);
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        if (rd_ynode_is_null(v)) {
            rd_cfg_errat(c, v, p, "must be a string (write \"\" for an empty value)");
            continue;
        }
        const char *val = rd_cfg_scalar(c, v, p, "a string");
        if (val == NULL)
            continue;
        pl->env_keys[pl->nenv] = rd_xstrdup(key);
        pl->env_vals[pl->nenv] = rd_xstrdup(val);
        pl->nenv++;
    }
}

static void parse_pool_name(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                            void *auxp)
{
    rd_pool_t *pl = obj;
    rd_cfg_pool_aux_t *aux = auxp;
    char *s = rd_cfg_get_str(c, n, path);
    if (s != NULL && !rd_cfg_name_ok(s, RD_MAX_NAME)) {
        rd_cfg_errat(c, n, path,
                     "\"%s\" is not a pool name ([a-z0-9][a-z0-9_.-]*, at most %d characters)", s,
                     RD_MAX_NAME);
        pl->name = s; /* kept so that targets naming it do not also fail */
    } else if (s != NULL) {
        pl->name = s;
        aux->ok_name = true;
    }
}

static const char *image_check(const char *s)
{
    return s[0] == '-' || !rd_cfg_token_ok(s)
               ? "\"%s\" is not an image name (no leading '-', no spaces)"
               : NULL;
}

static const char *runtime_check(const char *s)
{
    return isalnum((unsigned char)s[0]) && rd_cfg_token_ok(s) ? NULL
                                                              : "\"%s\" is not a runtime name";
}

static const char *log_driver_check(const char *s)
{
    /* A docker logging driver's name (none, json-file, local, journald, ...). */
    return isalnum((unsigned char)s[0]) &&
                   strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen(s)
               ? NULL
               : "\"%s\" is not a docker logging driver name";
}

static void release_env(void *obj)
{
    rd_pool_t *pl = obj;
    rd_strv_free(pl->env_keys, pl->nenv);
    rd_strv_free(pl->env_vals, pl->nenv);
    pl->env_keys = pl->env_vals = NULL;
    pl->nenv = 0;
}

static const char *const pull_choices[] = {"missing", "always", "never", NULL};
/* no_new_privileges: the index is rd_pool_t.allow_new_privileges ("false" allows them). */
static const char *const nnp_choices[] = {"true", "false", NULL};

enum {
    PL_NAME,
    PL_LABELS,
    PL_IMAGE,
    PL_COMMAND,
    PL_CPUS,
    PL_MEMORY,
    PL_GPUS,
    PL_PIDS_LIMIT,
    PL_MEMORY_SWAP,
    PL_LOG_DRIVER,
    PL_PULL,
    PL_RUNTIME,
    PL_PLATFORM,
    PL_MAX_RUNNERS,
    PL_MIN_IDLE,
    PL_RUNNER_GROUP,
    PL_STARTUP_TIMEOUT,
    PL_IDLE_TIMEOUT,
    PL_JOB_TIMEOUT,
    PL_NO_NEW_PRIVILEGES,
    PL_ENV,
    PL_N
};

/* pools[i]: one row per key (config_int.h); the order is the order of checks. */
const rd_cfg_key_t rd_cfg_pool_keys[PL_N] = {
    [PL_NAME] = {"name", RD_CFG_CUSTOM, .flags = RD_CFG_REQUIRED | RD_CFG_OWN_STR,
                 .parse = parse_pool_name, POOL(name),
                 .help = "the pool's name: [a-z0-9][a-z0-9_.-]*, at most 40 characters"},
    [PL_LABELS] = {"labels", RD_CFG_CUSTOM, .flags = RD_CFG_REQUIRED | RD_CFG_OWN_STRV,
                   .count_off = offsetof(rd_pool_t, nlabels), .parse = parse_pool_labels,
                   POOL(labels),
                   .help = "the runner labels a job's runs-on must all match (1-100; at most one "
                           "architecture)"},
    [PL_IMAGE] = {"image", RD_CFG_STR, .flags = RD_CFG_REQUIRED, .check = image_check, POOL(image),
                  .help = "the runner's container image"},
    [PL_COMMAND] = {"command", RD_CFG_STRLIST, .flags = RD_CFG_ONE_OR_MORE,
                    .count_off = offsetof(rd_pool_t, ncommand), POOL(command),
                    .help = "the container's command (default: the image's)"},
    [PL_CPUS] = {"cpus", RD_CFG_CPUS, "1", POOL(cpus), .help = "CPUs reserved per runner"},
    [PL_MEMORY] = {"memory", RD_CFG_SIZE, "2GiB", 6 * RD_CFG_MIB, POOL(memory),
                   .help = "memory per runner (docker --memory)"},
    [PL_GPUS] = {"gpus", RD_CFG_UINT, "0", 0, 1024, POOL(gpus), .help = "GPUs per runner"},
    [PL_PIDS_LIMIT] = {"pids_limit", RD_CFG_UINT, "4096", 16, 4194304, POOL(pids_limit),
                       .help = "processes per runner (docker --pids-limit)"},
    [PL_MEMORY_SWAP] = {"memory_swap", RD_CFG_SIZE, "memory", 6 * RD_CFG_MIB,
                        .flags = RD_CFG_DEF_DOC, POOL(memory_swap),
                        .help = "memory plus swap per runner (docker --memory-swap), at least "
                                "memory; the default, equal to memory, allows no swap"},
    [PL_LOG_DRIVER] = {"log_driver", RD_CFG_STR, "none", .check = log_driver_check,
                       POOL(log_driver),
                       .help = "docker --log-driver; none: runnerd logs the output itself "
                               "(json-file is bounded to 3 files of 10m)"},
    [PL_PULL] = {"pull", RD_CFG_ENUM, "missing", .choices = pull_choices, POOL(pull),
                 .help = "when to pull the image: missing, always or never"},
    [PL_RUNTIME] = {"runtime", RD_CFG_STR, .check = runtime_check, POOL(runtime),
                    .help = "docker --runtime (e.g. sysbox-runc)"},
    [PL_PLATFORM] = {"platform", RD_CFG_CUSTOM, .flags = RD_CFG_OWN_STR, .parse = parse_platform,
                     POOL(platform),
                     .help = "docker --platform os/arch[/variant]; another arch runs emulated"},
    [PL_MAX_RUNNERS] = {"max_runners", RD_CFG_UINT, "host.max_runners", 1, 1024,
                        .flags = RD_CFG_DEF_DOC, POOL(max_runners),
                        .help = "runners of this pool at once"},
    [PL_MIN_IDLE] = {"min_idle", RD_CFG_UINT, "0", 0, 1024, POOL(min_idle),
                     .help = "idle runners kept waiting for jobs"},
    [PL_RUNNER_GROUP] = {"runner_group", RD_CFG_STR, "Default", POOL(runner_group),
                         .help = "the GitHub runner group runners register in"},
    [PL_STARTUP_TIMEOUT] = {"startup_timeout", RD_CFG_DURATION, "5m", 1000, 24 * 3600000ULL,
                            POOL(startup_timeout_ms),
                            .help = "a runner not online by then is removed"},
    [PL_IDLE_TIMEOUT] = {"idle_timeout", RD_CFG_DURATION, "10m", 1000, 24 * 3600000ULL,
                         POOL(idle_timeout_ms), .help = "an idle runner is stopped after this"},
    [PL_JOB_TIMEOUT] = {"job_timeout", RD_CFG_DURATION, "6h", 1000, 7 * 24 * 3600000ULL,
                        POOL(job_timeout_ms), .help = "a job running longer is stopped"},
    [PL_NO_NEW_PRIVILEGES] = {"no_new_privileges", RD_CFG_ENUM, "true", .choices = nnp_choices,
                              POOL(allow_new_privileges),
                              .help = "false lets setuid programs such as sudo work in jobs "
                                      "(root inside the container)"},
    [PL_ENV] = {"env", RD_CFG_CUSTOM, .parse = parse_env, .release = release_env, POOL(env_keys),
                .help = "extra container environment, NAME: value"},
};
const size_t rd_cfg_npool_keys = PL_N;

static void parse_pool(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, rd_pool_t *pl,
                       rd_cfg_pool_aux_t *aux)
{
    const rd_ynode_t *v[PL_N], *k[PL_N];
    /* Its one default that is not a constant: the host's max_runners. */
    pl->max_runners = c->cfg->host.max_runners;
    pl->pos = (rd_pos_t){n->line, n->col};
    aux->node = n;
    rd_cfg_read_section(c, n, n, path, rd_cfg_pool_keys, PL_N, pl, aux, v, k);
    aux->name = v[PL_NAME];
    aux->labels = v[PL_LABELS];
    aux->cpus = v[PL_CPUS];
    aux->memory = v[PL_MEMORY];
    aux->memory_swap = v[PL_MEMORY_SWAP];
    aux->gpus = v[PL_GPUS];
    aux->platform = v[PL_PLATFORM];
    aux->min_idle = v[PL_MIN_IDLE];
}

/* Cross-checks of one pool against the host. */
static void check_pool(rd_cfg_ctx_t *c, size_t i, rd_pool_t *pl, rd_cfg_pool_aux_t *aux,
                       bool host_ok)
{
    const rd_host_config_t *h = &c->cfg->host;
    char p[256], base[64];
    snprintf(base, sizeof(base), "pools[%zu]", i);
#define PP(key) (rd_cfg_join(p, sizeof(p), base, key), p)
    if (aux->min_idle && pl->min_idle > pl->max_runners)
        rd_cfg_errat(c, aux->min_idle, PP("min_idle"), "%u is more than max_runners (%u)",
                     pl->min_idle, pl->max_runners);
    /* --memory-swap is memory plus swap: docker refuses less than --memory. */
    if (aux->memory_swap && pl->memory_swap != 0 && pl->memory_swap < pl->memory)
        rd_cfg_errat(
            c, aux->memory_swap, PP("memory_swap"),
            "%s is less than memory (%s): it is memory plus swap", aux->memory_swap->u.scalar.s,
            aux->memory && aux->memory->kind == RD_YNODE_SCALAR ? aux->memory->u.scalar.s
                                                                : rd_cfg_pool_keys[PL_MEMORY].def);

    /* The pool's arch: its arch label, else its platform, else the host's. */
    rd_arch_t arch = aux->label_arch;
    if (aux->label_arch != RD_ARCH_UNKNOWN && aux->platform_arch != RD_ARCH_UNKNOWN &&
        aux->label_arch != aux->platform_arch)
        rd_cfg_errat(c, aux->platform, PP("platform"), "%s does not match the pool's %s label",
                     pl->platform, rd_arch_name(aux->label_arch));
    if (arch == RD_ARCH_UNKNOWN)
        arch = aux->platform_arch;
    if (!host_ok || h->arch == RD_ARCH_UNKNOWN) {
        pl->arch = arch;
        return;
    }
    if (arch == RD_ARCH_UNKNOWN)
        arch = h->arch;
    pl->arch = arch;
    pl->emulated = arch != h->arch;
    if (pl->emulated && pl->platform == NULL && aux->platform == NULL) {
        int li = -1;
        for (size_t j = 0;
             aux->labels && aux->labels->kind == RD_YNODE_SEQ && j < aux->labels->u.seq.n; j++)
            if (aux->labels->u.seq.v[j] == aux->arch_label)
                li = (int)j;
        snprintf(p, sizeof(p), "%s.labels[%d]", base, li);
        rd_cfg_errat(
            c, aux->arch_label, p,
            "%s runners cannot run natively on this %s host; set platform: linux/%s to run "
            "them under emulation",
            rd_arch_name(arch), rd_arch_name(h->arch), rd_cfg_arch_docker(arch));
    }

    if (pl->cpus > h->cpus) {
        char a[32], b[32];
        rd_cfg_fmt_cpus(pl->cpus, a, sizeof(a));
        rd_cfg_fmt_cpus(h->cpus, b, sizeof(b));
        rd_cfg_errat(c, aux->cpus ? aux->cpus : aux->node, PP("cpus"),
                     "%s per runner is more than host.cpus (%s): no runner could start", a, b);
    }
    if (pl->memory > h->memory) {
        char a[32], b[32];
        rd_cfg_fmt_size(pl->memory, a, sizeof(a));
        rd_cfg_fmt_size(h->memory, b, sizeof(b));
        rd_cfg_errat(c, aux->memory ? aux->memory : aux->node, PP("memory"),
                     "%s per runner is more than host.memory (%s): no runner could start", a, b);
    }
    if (pl->gpus > h->gpus)
        rd_cfg_errat(c, aux->gpus ? aux->gpus : aux->node, PP("gpus"),
                     "%u per runner is more than host.gpus (%u): no runner could start", pl->gpus,
                     h->gpus);
#undef PP
}

/* Runner names are "runnerd-<instance>-<pool>-<suffix>" (dockerargv.h) and
 * GitHub takes at most 64 characters: refuse a pool whose names cannot fit
 * here, rather than have the supervisor refuse every start at run time. */
static void check_runner_name(rd_cfg_ctx_t *c, const char *instance, const char *pool, size_t i,
                              const rd_ynode_t *node)
{
    static const char pre[] = "runnerd-";
    size_t len = sizeof pre - 1 + strlen(instance) + 1 + strlen(pool) + 1 + RD_RUNNER_SUFFIX_LEN;
    if (len <= RD_RUNNER_NAME_MAX)
        return;
    char p[64];
    snprintf(p, sizeof(p), "pools[%zu].name", i);
    rd_cfg_errat(c, node, p,
                 "runner names \"runnerd-%s-%s-\" + a %d-character suffix would be %zu characters, "
                 "over GitHub's %d: instance and pool name together may have at most %d characters",
                 instance, pool, RD_RUNNER_SUFFIX_LEN, len, RD_RUNNER_NAME_MAX,
                 RD_RUNNER_NAME_MAX - (int)(sizeof pre - 1) - 2 - RD_RUNNER_SUFFIX_LEN);
}

void rd_cfg_parse_pools(rd_cfg_ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root, bool host_ok)
{
    rd_config_t *cfg = c->cfg;
    if (n == NULL) {
        rd_cfg_errat(c, root, "pools", "is required (a list of at least one pool)");
        return;
    }
    if (n->kind != RD_YNODE_SEQ) {
        rd_cfg_errat(c, n, "pools", "must be a list of pools, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        rd_cfg_errat(c, n, "pools", "must hold at least one pool");
        return;
    }
    cfg->npools = n->u.seq.n;
    cfg->pools = rd_xcalloc(cfg->npools, sizeof(*cfg->pools));
    rd_cfg_pool_aux_t *aux = rd_xcalloc(cfg->npools, sizeof(*aux));
    for (size_t i = 0; i < cfg->npools; i++) {
        char p[64];
        rd_cfg_join_idx(p, sizeof(p), "pools", i);
        parse_pool(c, n->u.seq.v[i], p, &cfg->pools[i], &aux[i]);
    }
    for (size_t i = 0; i < cfg->npools; i++) {
        check_pool(c, i, &cfg->pools[i], &aux[i], host_ok);
        if (cfg->pools[i].name == NULL)
            continue;
        if (aux[i].ok_name && cfg->instance != NULL)
            check_runner_name(c, cfg->instance, cfg->pools[i].name, i, aux[i].name);
        for (size_t j = 0; j < i; j++) {
            if (cfg->pools[j].name && strcmp(cfg->pools[j].name, cfg->pools[i].name) == 0) {
                char p[64];
                snprintf(p, sizeof(p), "pools[%zu].name", i);
                rd_cfg_errat(c, aux[i].name, p, "duplicate pool name \"%s\" (first at line %d)",
                             cfg->pools[i].name, aux[j].name->line);
                break;
            }
        }
    }
    free(aux);
}

enum { TG_REPO, TG_ORG, TG_POOLS, TG_REPOS, TG_DISCOVERY, TG_N };
/* targets[i]: read by parse_target (a repo or an org, and what goes with each). */
const rd_cfg_key_t rd_cfg_target_keys[TG_N] = {
    [TG_REPO] = {"repo", RD_CFG_CUSTOM, .help = "OWNER/REPO: serve this repository's jobs"},
    [TG_ORG] = {"org", RD_CFG_CUSTOM, .help = "ORG: serve the organization's repositories"},
    [TG_POOLS] = {"pools", RD_CFG_CUSTOM, .help = "the pools that serve it (default: every pool)"},
    [TG_REPOS] = {"repos", RD_CFG_CUSTOM,
                  .help = "org targets: only these repositories (default: every one)"},
    [TG_DISCOVERY] = {"discovery", RD_CFG_CUSTOM,
                      .help = "how its jobs are found: poll (default) or scaleset (docs/fleet.md)"},
};
const size_t rd_cfg_ntarget_keys = TG_N;
#define target_keys rd_cfg_target_keys

static void parse_target(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, rd_target_t *t)
{
    const rd_ynode_t *v[TG_N], *k[TG_N];
    char p[256];
    rd_config_t *cfg = c->cfg;
    t->pos = (rd_pos_t){n->line, n->col};
    if (!rd_cfg_read_map(c, n, path, target_keys, TG_N, v, k))
        return;
#define PP(key) (rd_cfg_join(p, sizeof(p), path, key), p)
    if (v[TG_DISCOVERY]) {
        const char *d = rd_cfg_scalar(c, v[TG_DISCOVERY], PP("discovery"), "poll or scaleset");
        if (d != NULL && strcmp(d, "scaleset") == 0)
            t->discovery = RD_DISCOVERY_SCALESET;
        else if (d != NULL && strcmp(d, "poll") != 0)
            rd_cfg_errat(c, v[TG_DISCOVERY], p, "must be poll or scaleset, not \"%s\"", d);
    }
    if (k[TG_REPO] && k[TG_ORG]) {
        const rd_ynode_t *second = k[TG_ORG]->line > k[TG_REPO]->line ? k[TG_ORG] : k[TG_REPO];
        rd_cfg_errat(c, second, PP(second == k[TG_ORG] ? "org" : "repo"),
                     "a target is either a repo or an org, not both");
        return;
    }
    if (v[TG_REPO] == NULL && v[TG_ORG] == NULL) {
        rd_cfg_errat(c, n, path, "needs repo: OWNER/REPO or org: ORG");
        return;
    }
    if (v[TG_REPO]) {
        t->kind = RD_TARGET_REPO;
        const char *s = rd_cfg_scalar(c, v[TG_REPO], PP("repo"), "a string");
        if (s == NULL)
            return;
        const char *slash = strchr(s, '/');
        if (slash == NULL || strchr(slash + 1, '/') != NULL) {
            rd_cfg_errat(c, v[TG_REPO], p, "\"%s\" is not OWNER/REPO", s);
            return;
        }
        char *owner = rd_xstrndup(s, (size_t)(slash - s));
        bool ok = true;
        if (!rd_config_owner_valid(owner)) {
            rd_cfg_errat(
                c, v[TG_REPO], p,
                "\"%s\" is not a GitHub owner name (letters, digits, '-', 1-39, no leading "
                "'-')",
                owner);
            ok = false;
        } else if (!rd_config_repo_name_valid(slash + 1)) {
            rd_cfg_errat(c, v[TG_REPO], p,
                         "\"%s\" is not a GitHub repository name (letters, digits, '.', '_', '-', "
                         "1-100, not . or ..)",
                         slash + 1);
            ok = false;
        }
        if (!ok) {
            free(owner);
            return;
        }
        t->owner = owner;
        t->repo = rd_xstrdup(slash + 1);
        t->scope = rd_xasprintf("repos/%s/%s", t->owner, t->repo);
        if (k[TG_REPOS])
            rd_cfg_errat(c, k[TG_REPOS], PP("repos"), "only applies to org targets");
    } else {
        t->kind = RD_TARGET_ORG;
        const char *s = rd_cfg_scalar(c, v[TG_ORG], PP("org"), "a string");
        if (s == NULL)
            return;
        if (!rd_config_owner_valid(s)) {
            rd_cfg_errat(c, v[TG_ORG], p,
                         "\"%s\" is not a GitHub organization name (letters, digits, '-', 1-39, no "
                         "leading '-')",
                         s);
            return;
        }
        t->owner = rd_xstrdup(s);
        t->scope = rd_xasprintf("orgs/%s", t->owner);
        if (v[TG_REPOS]) {
            const rd_ynode_t **items = NULL;
            rd_cfg_get_strlist(c, v[TG_REPOS], PP("repos"), false, &t->repos, &t->nrepos, &items);
            if (v[TG_REPOS]->kind == RD_YNODE_SEQ && v[TG_REPOS]->u.seq.n == 0)
                rd_cfg_errat(c, v[TG_REPOS], p,
                             "must not be empty (leave it out to watch every repo)");
            size_t keep = 0;
            for (size_t i = 0; i < t->nrepos; i++) {
                char q[256];
                snprintf(q, sizeof(q), "%s.repos[%zu]", path, i);
                bool bad = false;
                if (!rd_config_repo_name_valid(t->repos[i])) {
                    rd_cfg_errat(c, items[i], q, "\"%s\" is not a GitHub repository name",
                                 t->repos[i]);
                    bad = true;
                }
                for (size_t j = 0; !bad && j < keep; j++)
                    if (strcasecmp(t->repos[j], t->repos[i]) == 0) {
                        rd_cfg_errat(c, items[i], q, "duplicate repository \"%s\"", t->repos[i]);
                        bad = true;
                    }
                if (bad) {
                    free(t->repos[i]);
                    continue;
                }
                t->repos[keep] = t->repos[i];
                items[keep++] = items[i];
            }
            t->nrepos = keep;
            free(items);
        }
    }
    if (v[TG_POOLS] == NULL) {
        t->npools = cfg->npools;
        t->pools = rd_xcalloc(cfg->npools + 1, sizeof(size_t));
        for (size_t i = 0; i < cfg->npools; i++)
            t->pools[i] = i;
    } else if (k[TG_POOLS] && v[TG_POOLS]) {
        char **names = NULL;
        size_t nn = 0;
        const rd_ynode_t **items = NULL;
        rd_cfg_get_strlist(c, v[TG_POOLS], PP("pools"), false, &names, &nn, &items);
        if (v[TG_POOLS]->kind == RD_YNODE_SEQ && v[TG_POOLS]->u.seq.n == 0)
            rd_cfg_errat(c, v[TG_POOLS], p, "must not be empty (leave it out to use every pool)");
        t->pools = rd_xcalloc(nn + 1, sizeof(size_t));
        for (size_t i = 0; i < nn; i++) {
            char q[256];
            snprintf(q, sizeof(q), "%s.pools[%zu]", path, i);
            int idx = rd_config_pool_index(cfg, names[i]);
            if (idx < 0) {
                rd_cfg_errat(c, items[i], q, "unknown pool \"%s\"", names[i]);
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < t->npools; j++)
                dup |= t->pools[j] == (size_t)idx;
            if (dup) {
                rd_cfg_errat(c, items[i], q, "pool \"%s\" is listed twice", names[i]);
                continue;
            }
            t->pools[t->npools++] = (size_t)idx;
        }
        rd_strv_free(names, nn);
        free(items);
    }
#undef PP
}

void rd_cfg_parse_targets(rd_cfg_ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    if (n == NULL) {
        rd_cfg_errat(c, root, "targets", "is required (a list of repos and orgs to serve)");
        return;
    }
    if (n->kind != RD_YNODE_SEQ) {
        rd_cfg_errat(c, n, "targets", "must be a list of targets, not %s", rd_ynode_kind_name(n));
        return;
    }
    if (n->u.seq.n == 0) {
        rd_cfg_errat(c, n, "targets", "must hold at least one target");
        return;
    }
    cfg->ntargets = n->u.seq.n;
    cfg->targets = rd_xcalloc(cfg->ntargets, sizeof(*cfg->targets));
    for (size_t i = 0; i < cfg->ntargets; i++) {
        char p[64];
        rd_cfg_join_idx(p, sizeof(p), "targets", i);
        rd_target_t *t = &cfg->targets[i];
        parse_target(c, n->u.seq.v[i], p, t);
        if (t->scope == NULL)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (cfg->targets[j].scope && strcasecmp(cfg->targets[j].scope, t->scope) == 0) {
                rd_cfg_errat(c, n->u.seq.v[i], p, "duplicate target %s (first at line %d)",
                             t->scope, cfg->targets[j].pos.line);
                break;
            }
        }
    }
}
