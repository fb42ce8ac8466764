/* config_summary.c: lookups in a loaded config (pool by name, target of a
 * repository, how many runners of a pool fit), the warnings that need no I/O
 * and the --check-config summary. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "runnerd/core/common.h"

int rd_config_pool_index(const rd_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (cfg->pools[i].name && strcmp(cfg->pools[i].name, name) == 0)
            return (int)i;
    return -1;
}

int rd_config_target_for_repo(const rd_config_t *cfg, const char *full_name)
{
    const char *slash = strchr(full_name, '/');
    if (slash == NULL)
        return -1;
    size_t olen = (size_t)(slash - full_name);
    const char *repo = slash + 1;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        if (t->kind == RD_TARGET_REPO && strlen(t->owner) == olen &&
            strncasecmp(t->owner, full_name, olen) == 0 && strcasecmp(t->repo, repo) == 0)
            return (int)i;
    }
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        if (t->kind != RD_TARGET_ORG || strlen(t->owner) != olen ||
            strncasecmp(t->owner, full_name, olen) != 0)
            continue;
        if (t->nrepos == 0)
            return (int)i;
        for (size_t j = 0; j < t->nrepos; j++)
            if (strcasecmp(t->repos[j], repo) == 0)
                return (int)i;
    }
    return -1;
}

unsigned rd_config_pool_fit(const rd_config_t *cfg, size_t idx, const char **limit)
{
    const rd_pool_t *p = &cfg->pools[idx];
    const rd_host_config_t *h = &cfg->host;
    unsigned n = p->max_runners;
    const char *why = "pool_max";
    if (h->max_runners < n) {
        n = h->max_runners;
        why = "host_max";
    }
    /* A little slack so that 3 x 0.1 fits in 0.3. */
    unsigned by_cpu = p->cpus > 0 ? (unsigned)floor(h->cpus / p->cpus + 1e-9) : n;
    if (by_cpu < n) {
        n = by_cpu;
        why = "host_cpus";
    }
    unsigned by_mem = p->memory > 0 ? (unsigned)(h->memory / p->memory) : n;
    if (by_mem < n) {
        n = by_mem;
        why = "host_memory";
    }
    if (p->gpus > 0 && h->gpus / p->gpus < n) {
        n = h->gpus / p->gpus;
        why = "host_gpus";
    }
    if (limit)
        *limit = why;
    return n;
}

char *rd_config_summary(const rd_config_t *cfg)
{
    rd_sbuf_t sb = {0};
    rd_sbuf_t *fp = &sb;
    const rd_github_config_t *g = &cfg->github;
    const rd_host_config_t *h = &cfg->host;
    char a[32], b[32], d[32];
    rd_sbuf_printf(fp, "%s: configuration OK\n", cfg->path);
    rd_cfg_fmt_cpus(h->cpus, a, sizeof(a));
    rd_cfg_fmt_size(h->memory, b, sizeof(b));
    rd_sbuf_printf(fp, "host: arch %s, cpus %s, memory %s, gpus %u, max_runners %u\n",
                   rd_arch_name(h->arch), a, b, h->gpus, h->max_runners);
    rd_cfg_fmt_duration(g->poll_interval_ms, a, sizeof(a));
    if (g->token_file)
        rd_sbuf_printf(fp, "github: %s, auth token_file %s", g->api_url, g->token_file);
    else if (g->token_env)
        rd_sbuf_printf(fp, "github: %s, auth token_env %s", g->api_url, g->token_env);
    else if (g->client_id)
        rd_sbuf_printf(fp, "github: %s, auth app client_id %s", g->api_url, g->client_id);
    else
        rd_sbuf_printf(fp, "github: %s, auth app %lld", g->api_url, (long long)g->app_id);
    if (g->installation_id)
        rd_sbuf_printf(fp, " (installation %lld)", (long long)g->installation_id);
    rd_sbuf_printf(fp, ", poll %s, budget %u/h, max_connections %u\n", a,
                   g->request_budget_per_hour, g->max_connections);
    rd_cfg_fmt_duration(cfg->shutdown_grace_ms, a, sizeof(a));
    rd_sbuf_printf(fp, "instance: %s, docker: %s (network %s), shutdown_grace %s", cfg->instance,
                   cfg->docker.binary, cfg->docker.network, a);
    if (cfg->listen)
        rd_sbuf_printf(fp, ", listen %s%s", cfg->listen,
                       cfg->webhook_secret_file ? " (webhook)" : "");
    rd_sbuf_printf(fp, "\n");
    rd_sbuf_printf(fp, "pools: %zu\n", cfg->npools);
    for (size_t i = 0; i < cfg->npools; i++) {
        const rd_pool_t *p = &cfg->pools[i];
        const char *why;
        unsigned fit = rd_config_pool_fit(cfg, i, &why);
        rd_cfg_fmt_cpus(p->cpus, a, sizeof(a));
        rd_cfg_fmt_size(p->memory, b, sizeof(b));
        rd_sbuf_printf(fp, "  %s: labels [", p->name);
        for (size_t j = 0; j < p->nlabels; j++)
            rd_sbuf_printf(fp, "%s%s", j ? ", " : "", p->labels[j]);
        rd_sbuf_printf(fp, "]\n    image %s, cpus %s, memory %s", p->image, a, b);
        if (p->gpus)
            rd_sbuf_printf(fp, ", gpus %u", p->gpus);
        rd_sbuf_printf(fp, ", max_runners %u, min_idle %u, arch %s", p->max_runners, p->min_idle,
                       rd_arch_name(p->arch));
        if (p->emulated)
            rd_sbuf_printf(fp, " (emulated, platform %s)", p->platform);
        else if (p->platform)
            rd_sbuf_printf(fp, " (platform %s)", p->platform);
        rd_cfg_fmt_duration(p->startup_timeout_ms, a, sizeof(a));
        rd_cfg_fmt_duration(p->idle_timeout_ms, b, sizeof(b));
        rd_cfg_fmt_duration(p->job_timeout_ms, d, sizeof(d));
        rd_sbuf_printf(fp, "\n    timeouts startup %s, idle %s, job %s\n", a, b, d);
        rd_sbuf_printf(fp, "    fits %u at once on this host (bound by %s)\n", fit, why);
    }
    rd_sbuf_printf(fp, "targets: %zu\n", cfg->ntargets);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        rd_sbuf_printf(fp, "  %s", t->scope);
        if (t->kind == RD_TARGET_ORG) {
            if (t->nrepos == 0) {
                rd_sbuf_printf(fp, ": every repo");
            } else {
                rd_sbuf_printf(fp, ": repos ");
                for (size_t j = 0; j < t->nrepos; j++)
                    rd_sbuf_printf(fp, "%s%s", j ? ", " : "", t->repos[j]);
            }
            rd_sbuf_printf(fp, ";");
        } else {
            rd_sbuf_printf(fp, ":");
        }
        rd_sbuf_printf(fp, " pools ");
        for (size_t j = 0; j < t->npools; j++)
            rd_sbuf_printf(fp, "%s%s", j ? ", " : "", cfg->pools[t->pools[j]].name);
        if (t->discovery == RD_DISCOVERY_SCALESET) {
            /* docs/fleet.md: the scale sets this host registers, at the web host. */
            rd_sbuf_printf(fp, "; discovery scaleset at %s: ",
                           cfg->github.web_url ? cfg->github.web_url : "?");
            for (size_t j = 0; j < t->npools; j++)
                rd_sbuf_printf(fp, "%srunnerd-%s-%s", j ? ", " : "", cfg->instance,
                               cfg->pools[t->pools[j]].name);
        }
        rd_sbuf_printf(fp, "\n");
    }
    return rd_sbuf_take(&sb);
}

/* The REST API of github.com is api.github.com, of GHE.com (data residency)
 * api.SUBDOMAIN.ghe.com, of GitHub Enterprise Server https://HOST/api/v3: any
 * other host without /api/v3 in its path is most likely a GHES URL missing it
 * (every request would 404). Loopback hosts are local proxies and test doubles. */
static bool api_url_plausible(const char *url)
{
    const char *host, *path;
    size_t hl;
    rd_cfg_url_host(url, &host, &hl, &path);
    static const char ghe[] = ".ghe.com";
    if ((hl == 14 && strncasecmp(host, "api.github.com", 14) == 0) ||
        (hl > sizeof ghe - 1 &&
         strncasecmp(host + hl - (sizeof ghe - 1), ghe, sizeof ghe - 1) == 0) ||
        rd_config_host_is_loopback(host, hl))
        return true;
    for (const char *p = strstr(path, "/api/v3"); p != NULL; p = strstr(p + 1, "/api/v3"))
        if (p[7] == '\0' || p[7] == '/' || p[7] == '?' || p[7] == '#')
            return true;
    return false;
}

void rd_config_warnings(const rd_config_t *cfg, rd_config_errors_t *warnings)
{
    char reason[640];
    const rd_github_config_t *g = &cfg->github;
    if (g->api_url != NULL && !api_url_plausible(g->api_url)) {
        snprintf(reason, sizeof(reason),
                 "warning: %s is neither api.github.com nor a *.ghe.com host and its path has no "
                 "/api/v3: GitHub Enterprise Server serves its REST API at https://HOST/api/v3",
                 g->api_url);
        rd_config_errors_add(warnings, cfg->path, g->api_url_pos.line, g->api_url_pos.col,
                             "github.api_url", reason);
    }
    if (cfg->listen != NULL) {
        const char *host;
        size_t hl;
        rd_cfg_url_host(cfg->listen, &host, &hl, NULL);
        if (!rd_config_host_is_loopback(host, hl)) {
            snprintf(reason, sizeof(reason),
                     "warning: %s is not a loopback address: the listener has no authentication "
                     "(/metrics, /healthz and /status answer whoever reaches it; /webhook checks "
                     "its HMAC signature); listen on 127.0.0.1 or put an authenticating proxy in "
                     "front",
                     cfg->listen);
            rd_config_errors_add(warnings, cfg->path, cfg->listen_pos.line, cfg->listen_pos.col,
                                 "listen", reason);
        }
    }
}
