/* config.c: load and validate runnerd.yaml (DESIGN.md section 2).
 *
 * The file's text becomes a position-keeping node tree (yamltree.c); each
 * section is then read against its table of keys (config_int.h: one row per
 * key with its type, default, range and help), so that unknown and duplicate
 * keys, wrong types and out-of-range values are all found in one pass, each
 * with the line and column of the node at fault. Cross-checks (pool names,
 * arch, host capacity, targets) run last, while the tree is still there to
 * point into. Nothing here reads the host, a file or the environment: the
 * host's facts and the file's text are handed in; src/io/configfile.c reads the
 * file, the files it names and the environment.
 *
 * This file holds the top-level, github, host and docker tables and sections;
 * pools and targets are in config_pools.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/scaleset.h"

#define GH(f) RD_CFG_FIELD(rd_github_config_t, f)
#define GH_POS(f) RD_CFG_POS(rd_github_config_t, f)
#define HOST(f) RD_CFG_FIELD(rd_host_config_t, f)
#define DK(f) RD_CFG_FIELD(rd_docker_config_t, f)
#define ROOT(f) RD_CFG_FIELD(rd_config_t, f)

/* ------------------------------------------------------------------ github */

static void parse_api_url(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                          void *aux)
{
    rd_github_config_t *g = obj;
    (void)aux;
    char *s = rd_cfg_get_str(c, n, path);
    if (s == NULL)
        return;
    const char *rest = NULL;
    if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/' || !rd_cfg_token_ok(s)) {
        rd_cfg_errat(c, n, path, "must be an http:// or https:// URL, not \"%s\"", s);
        free(s);
        return;
    }
    /* The token goes with every request: in clear text only over loopback (a
     * local proxy or a test double), never across a network. */
    const char *host;
    size_t hlen;
    rd_cfg_url_host(s, &host, &hlen, NULL);
    if (rest == s + 7 && !rd_config_host_is_loopback(host, hlen)) {
        rd_cfg_errat(c, n, path,
                     "plain http:// would send the token in clear text: use https:// "
                     "(http:// is accepted only for a loopback host: 127.0.0.0/8, ::1, localhost)");
        free(s);
        return;
    }
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        s[--len] = '\0';
    free(g->api_url);
    g->api_url = s;
}

/* github.web_url (fleet mode, docs/fleet.md): the web host runners register with. */
static void parse_web_url(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                          void *aux)
{
    rd_github_config_t *g = obj;
    (void)aux;
    char *w = rd_cfg_get_str(c, n, path);
    if (w != NULL && ((strncmp(w, "https://", 8) != 0 && strncmp(w, "http://", 7) != 0) ||
                      !rd_cfg_token_ok(w))) {
        rd_cfg_errat(c, n, path, "must be an http:// or https:// URL");
        free(w);
        w = NULL;
    }
    if (w != NULL) {
        size_t wl = strlen(w);
        while (wl > 0 && w[wl - 1] == '/')
            w[--wl] = '\0';
    }
    free(g->web_url);
    g->web_url = w;
}

static void parse_budget(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                         void *aux)
{
    rd_github_config_t *g = obj;
    (void)aux;
    const char *s = rd_cfg_scalar(c, n, path, "a rate such as 4000/h");
    if (s == NULL)
        return;
    const char *p = s;
    uint64_t v = 0;
    int ndig = 0;
    while (isdigit((unsigned char)*p) && ndig < 10) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        ndig++;
    }
    uint64_t mult = 0;
    if (*p == '\0' || strcmp(p, "/h") == 0)
        mult = 1;
    else if (strcmp(p, "/m") == 0)
        mult = 60;
    if (ndig == 0 || mult == 0) {
        rd_cfg_errat(c, n, path, "\"%s\" is not a rate (use N/h, N/m, or N per hour)", s);
        return;
    }
    v *= mult;
    if (v < 1 || v > 1000000) {
        rd_cfg_errat(c, n, path, "must be between 1/h and 1000000/h");
        return;
    }
    g->request_budget_per_hour = (unsigned)v;
}

static const char *env_name_check(const char *s)
{
    return rd_cfg_env_key_ok(s) ? NULL : "\"%s\" is not an environment variable name";
}

/* GitHub App client IDs: "Iv1.0123456789abcdef", "Iv23liAbCdEf0123456". */
static const char *client_id_check(const char *s)
{
    size_t n = strlen(s);
    bool ok = n <= 100;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-';
    return ok ? NULL : "\"%s\" is not a GitHub App client ID (letters, digits, '.', '_', '-')";
}

enum {
    GH_API_URL,
    GH_TOKEN_FILE,
    GH_TOKEN_ENV,
    GH_APP_ID,
    GH_CLIENT_ID,
    GH_PRIVATE_KEY_FILE,
    GH_INSTALLATION_ID,
    GH_POLL_INTERVAL,
    GH_REQUEST_BUDGET,
    GH_MAX_CONNECTIONS,
    GH_CA_FILE,
    GH_WEB_URL,
    GH_N
};

const rd_cfg_key_t rd_cfg_github_keys[GH_N] = {
    [GH_API_URL] = {"api_url", RD_CFG_CUSTOM, "https://api.github.com", .flags = RD_CFG_OWN_STR,
                    .parse = parse_api_url, GH(api_url), GH_POS(api_url_pos),
                    .help = "the REST API's base URL (GHES: https://HOST/api/v3)"},
    [GH_TOKEN_FILE] = {"token_file", RD_CFG_PATH, GH(token_file), GH_POS(token_file_pos),
                       .help = "a file holding a personal access token"},
    [GH_TOKEN_ENV] = {"token_env", RD_CFG_STR, .check = env_name_check, GH(token_env),
                      GH_POS(token_env_pos),
                      .help = "an environment variable holding a personal access token"},
    [GH_APP_ID] = {"app_id", RD_CFG_UINT, NULL, 1, 999999999999ULL, GH(app_id),
                   .help = "a GitHub App's id (with private_key_file)"},
    [GH_CLIENT_ID] = {"client_id", RD_CFG_STR, .check = client_id_check, GH(client_id),
                      GH_POS(client_id_pos),
                      .help = "a GitHub App's client ID, instead of app_id (the JWT's iss)"},
    [GH_PRIVATE_KEY_FILE] = {"private_key_file", RD_CFG_PATH, GH(private_key_file),
                             GH_POS(private_key_file_pos),
                             .help = "the GitHub App's private key (PEM)"},
    [GH_INSTALLATION_ID] = {"installation_id", RD_CFG_UINT, NULL, 1, 999999999999ULL,
                            GH(installation_id),
                            .help = "the App installation to use (default: per owner)"},
    [GH_POLL_INTERVAL] = {"poll_interval", RD_CFG_DURATION, "15s", 1000, 3600000,
                          GH(poll_interval_ms), .help = "how often each target is polled"},
    [GH_REQUEST_BUDGET] = {"request_budget", RD_CFG_CUSTOM, "4000/h", .parse = parse_budget,
                           GH(request_budget_per_hour),
                           .help = "API requests per hour runnerd may spend (N/h or N/m)"},
    [GH_MAX_CONNECTIONS] = {"max_connections", RD_CFG_UINT, "8", 1, 64, GH(max_connections),
                            .help = "concurrent API requests"},
    [GH_CA_FILE] = {"ca_file", RD_CFG_PATH, GH(ca_file), GH_POS(ca_file_pos),
                    .help = "CA certificates to trust for the API (default: the system's)"},
    [GH_WEB_URL] = {"web_url", RD_CFG_CUSTOM, .flags = RD_CFG_OWN_STR, .parse = parse_web_url,
                    GH(web_url),
                    .help = "fleet mode: the web URL runners register with (default: derived "
                            "from api_url)"},
};
const size_t rd_cfg_ngithub_keys = GH_N;

static void parse_github(rd_cfg_ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *root)
{
    rd_github_config_t *g = &c->cfg->github;
    const rd_ynode_t *v[GH_N], *k[GH_N];
    if (node == NULL)
        rd_cfg_errat(c, root, "github", "is required (it holds the API URL and credentials)");
    rd_cfg_read_section(c, node, node ? node : root, "github", rd_cfg_github_keys, GH_N, g, NULL, v,
                        k);
    if (node == NULL || node->kind != RD_YNODE_MAP)
        return;

    /* Exactly one way to authenticate. The app counts once app_id, client_id
     * or its key is written; the other half missing is its own error. */
    const rd_ynode_t *app = k[GH_APP_ID] ? k[GH_APP_ID] : k[GH_CLIENT_ID];
    const char *app_name = k[GH_APP_ID] || !k[GH_CLIENT_ID] ? "app_id" : "client_id";
    const rd_ynode_t *methods[3] = {k[GH_TOKEN_FILE], k[GH_TOKEN_ENV],
                                    app ? app : k[GH_PRIVATE_KEY_FILE]};
    const char *names[3] = {"token_file", "token_env", app_name};
    const rd_ynode_t *first = NULL;
    size_t firsti = 0, nmethods = 0;
    for (size_t i = 0; i < 3; i++) {
        if (methods[i] == NULL)
            continue;
        nmethods++;
        if (first == NULL || methods[i]->line < first->line ||
            (methods[i]->line == first->line && methods[i]->col < first->col)) {
            first = methods[i];
            firsti = i;
        }
    }
    if (nmethods == 0) {
        rd_cfg_errat(c, node, "github",
                     "no credentials: set one of token_file, token_env or app_id + "
                     "private_key_file");
    } else if (nmethods > 1) {
        for (size_t i = 0; i < 3; i++) {
            if (methods[i] == NULL || i == firsti)
                continue;
            char p[64];
            rd_cfg_join(p, sizeof(p), "github", names[i]);
            rd_cfg_errat(c, methods[i], p,
                         "only one authentication method may be set (%s is already set at line "
                         "%d)",
                         names[firsti], first->line);
        }
    }
    if (k[GH_APP_ID] && k[GH_CLIENT_ID])
        rd_cfg_errat(c, k[GH_CLIENT_ID], "github.client_id",
                     "app_id and client_id both name the App: set one of them (app_id is set at "
                     "line %d)",
                     k[GH_APP_ID]->line);
    if (app && !k[GH_PRIVATE_KEY_FILE])
        rd_cfg_errat(c, app, app == k[GH_APP_ID] ? "github.app_id" : "github.client_id",
                     "needs private_key_file");
    if (k[GH_PRIVATE_KEY_FILE] && !app)
        rd_cfg_errat(c, k[GH_PRIVATE_KEY_FILE], "github.private_key_file",
                     "needs app_id or client_id");
    if (k[GH_INSTALLATION_ID] && !app)
        rd_cfg_errat(c, k[GH_INSTALLATION_ID], "github.installation_id",
                     "only applies to a GitHub App (app_id or client_id)");
}

/* ------------------------------------------------------------------ host */

/* cpus, memory, arch: "auto" (the default) takes the host's fact, handed in. */
static void host_cpus(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj, void *aux)
{
    rd_host_config_t *h = obj;
    (void)aux;
    if (!rd_cfg_is_auto(n))
        rd_cfg_get_cpus(c, n, path, &h->cpus);
    else if (c->facts->cores == 0)
        rd_cfg_errat(c, n, path, "cannot count this host's cores; set cpus explicitly");
    else
        h->cpus = c->facts->cores;
}

static void host_memory(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                        void *aux)
{
    rd_host_config_t *h = obj;
    uint64_t total = c->facts->mem_total;
    (void)aux;
    if (!rd_cfg_is_auto(n))
        rd_cfg_get_size(c, n, path, 6 * RD_CFG_MIB, &h->memory);
    else if (total == 0)
        rd_cfg_errat(c, n, path, "cannot read this host's memory size; set memory explicitly");
    else /* Leave 1 GiB to the host; on a small host keep half of it instead. */
        h->memory = total > 2 * RD_CFG_GIB ? total - RD_CFG_GIB : total / 2;
}

static void host_arch(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj, void *aux)
{
    rd_host_config_t *h = obj;
    (void)aux;
    if (rd_cfg_is_auto(n)) {
        if (c->facts->arch == RD_ARCH_UNKNOWN)
            rd_cfg_errat(c, n, path,
                         "this host's architecture is not one runnerd knows; set arch explicitly");
        h->arch = c->facts->arch;
        return;
    }
    const char *s = rd_cfg_scalar(c, n, path, "a string");
    if (s == NULL)
        return;
    h->arch = rd_arch_parse(s);
    if (h->arch == RD_ARCH_UNKNOWN)
        rd_cfg_errat(c, n, path, "\"%s\" is not one of auto, x64, arm64, arm", s);
}

enum { HOST_CPUS, HOST_MEMORY, HOST_ARCH, HOST_GPUS, HOST_MAX_RUNNERS, HOST_N };

const rd_cfg_key_t rd_cfg_host_keys[HOST_N] = {
    [HOST_CPUS] = {"cpus", RD_CFG_CUSTOM, "auto", .parse = host_cpus, HOST(cpus),
                   .help = "CPUs runners may reserve in all (auto: every online core)"},
    [HOST_MEMORY] = {"memory", RD_CFG_CUSTOM, "auto", .parse = host_memory, HOST(memory),
                     .help = "memory runners may reserve in all (auto: MemTotal - 1GiB)"},
    [HOST_ARCH] = {"arch", RD_CFG_CUSTOM, "auto", .parse = host_arch, HOST(arch),
                   .help = "the host's architecture: auto, x64, arm64 or arm"},
    [HOST_GPUS] = {"gpus", RD_CFG_UINT, "0", 0, 1024, HOST(gpus), .help = "GPUs runners may use"},
    [HOST_MAX_RUNNERS] = {"max_runners", RD_CFG_UINT, "16", 1, 1024, HOST(max_runners),
                          .help = "runners at once on this host (and each pool's default)"},
};
const size_t rd_cfg_nhost_keys = HOST_N;

/* Returns false when a value the cross-checks need could not be resolved. */
static bool parse_host(rd_cfg_ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *root)
{
    const rd_ynode_t *v[HOST_N], *k[HOST_N];
    const rd_ynode_t *at = node && node->kind == RD_YNODE_MAP ? node : root;
    return rd_cfg_read_section(c, node, at, "host", rd_cfg_host_keys, HOST_N, &c->cfg->host, NULL,
                               v, k);
}

/* ------------------------------------------------------------------ docker */

static const char *binary_check(const char *s)
{
    return s[0] == '-' ? "must not start with '-'" : NULL;
}

static const char *network_check(const char *s)
{
    return s[0] == '-' || !rd_cfg_token_ok(s)
               ? "\"%s\" is not a network name (no leading '-', no spaces)"
               : NULL;
}

enum { DK_BINARY, DK_NETWORK, DK_EXTRA_ARGS, DK_N };

const rd_cfg_key_t rd_cfg_docker_keys[DK_N] = {
    [DK_BINARY] = {"binary", RD_CFG_STR, "docker", .check = binary_check, DK(binary),
                   .help = "the docker (or podman) CLI to run"},
    [DK_NETWORK] = {"network", RD_CFG_STR, "bridge", .check = network_check, DK(network),
                    .help = "the network runner containers join"},
    [DK_EXTRA_ARGS] = {"extra_args", RD_CFG_STRLIST,
                       .count_off = offsetof(rd_docker_config_t, nextra_args), DK(extra_args),
                       .help = "more docker run arguments for every runner"},
};
const size_t rd_cfg_ndocker_keys = DK_N;

/* ------------------------------------------------------------------ top level */

/* hostname -> [a-z0-9-], no leading or trailing '-', at most RD_MAX_INSTANCE. */
static char *instance_from_hostname(const char *host)
{
    char buf[RD_MAX_INSTANCE + 1];
    size_t n = 0;
    for (const char *p = host ? host : ""; *p && n < RD_MAX_INSTANCE; p++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)*p);
        if (isalnum(ch) && ch < 128)
            buf[n++] = (char)ch;
        else if (n > 0 && buf[n - 1] != '-')
            buf[n++] = '-';
    }
    while (n > 0 && buf[n - 1] == '-')
        n--;
    buf[n] = '\0';
    return n ? rd_xstrdup(buf) : NULL;
}

static void parse_instance(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                           void *aux)
{
    rd_config_t *cfg = obj;
    (void)aux;
    if (rd_cfg_is_auto(n)) {
        cfg->instance = instance_from_hostname(c->facts->hostname);
        if (cfg->instance == NULL)
            rd_cfg_errat(c, n, path, "cannot derive it from the hostname; set instance explicitly");
        return;
    }
    char *s = rd_cfg_get_str(c, n, path);
    if (s == NULL)
        return;
    if (!rd_cfg_name_ok(s, RD_MAX_INSTANCE)) {
        rd_cfg_errat(c, n, path,
                     "\"%s\" is not an instance name ([a-z0-9][a-z0-9_.-]*, at most %d characters)",
                     s, RD_MAX_INSTANCE);
        free(s);
        return;
    }
    cfg->instance = s;
    cfg->instance_explicit = true;
}

/* Fleet mode (docs/fleet.md): the instance names the scale sets and the broker allows one
 * session per scale set, so two hosts whose hostnames sanitise alike would fight over
 * one; runnerd cannot see other hosts, so it asks for an explicit instance. */
static void check_fleet(rd_cfg_ctx_t *c, const rd_ynode_t *inst, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    bool fleet = false;
    for (size_t i = 0; i < cfg->ntargets; i++)
        fleet |= cfg->targets[i].discovery == RD_DISCOVERY_SCALESET;
    if (fleet && !cfg->instance_explicit)
        rd_cfg_errat(c, inst ? inst : root, "instance",
                     "must be set explicitly when a target uses discovery: scaleset (it names the "
                     "scale sets and must differ between hosts)");
    if (cfg->github.web_url == NULL && cfg->github.api_url != NULL)
        cfg->github.web_url = rd_ss_web_url(cfg->github.api_url);
}

static void parse_listen(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                         void *aux)
{
    rd_config_t *cfg = obj;
    (void)aux;
    char *s = rd_cfg_get_str(c, n, path);
    if (s == NULL)
        return;
    const char *port = NULL;
    bool ok = true;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        ok = close != NULL && close > s + 1 && close[1] == ':';
        for (char *q = s + 1; ok && q < close; q++)
            if (!(isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
                ok = false;
        port = ok ? close + 2 : NULL;
    } else {
        char *colon = strrchr(s, ':');
        ok = colon != NULL && colon > s;
        for (char *q = s; ok && q < colon; q++)
            if (!(isalnum((unsigned char)*q) || *q == '.' || *q == '-'))
                ok = false;
        port = ok ? colon + 1 : NULL;
    }
    if (ok) {
        size_t len = strlen(port);
        ok = len >= 1 && len <= 5 && strspn(port, "0123456789") == len;
        long v = ok ? strtol(port, NULL, 10) : 0;
        ok = ok && v >= 1 && v <= 65535;
    }
    if (!ok) {
        rd_cfg_errat(c, n, path, "\"%s\" is not HOST:PORT or [IPv6]:PORT (port 1-65535)", s);
        free(s);
        return;
    }
    free(cfg->listen);
    cfg->listen = s;
}

/* control_socket: an absolute path a Unix socket can have (sun_path is 108
 * bytes), or "" for no control socket. */
static void parse_control_socket(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                                 void *aux)
{
    rd_config_t *cfg = obj;
    (void)aux;
    const char *s = rd_cfg_scalar(c, n, path, "a path");
    if (s == NULL)
        return;
    bool ok = s[0] == '\0' || (s[0] == '/' && strlen(s) < 108);
    for (const char *q = s; ok && *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            ok = false;
    if (!ok) {
        rd_cfg_errat(c, n, path,
                     "must be an absolute path of at most 107 bytes, or \"\" for no control "
                     "socket");
        return;
    }
    free(cfg->control_socket);
    cfg->control_socket = rd_xstrdup(s);
}

enum {
    RT_GITHUB,
    RT_HOST,
    RT_DOCKER,
    RT_SHUTDOWN_GRACE,
    RT_INSTANCE,
    RT_LISTEN,
    RT_WEBHOOK_SECRET_FILE,
    RT_CONTROL_SOCKET,
    RT_POOLS,
    RT_TARGETS,
    RT_N
};

/* The sections (parse NULL) are read by their own functions, in load_tree. */
const rd_cfg_key_t rd_cfg_root_keys[RT_N] = {
    [RT_GITHUB] = {"github", RD_CFG_CUSTOM, .help = "the API and credentials (required)"},
    [RT_HOST] = {"host", RD_CFG_CUSTOM, .help = "what runners may use of this host"},
    [RT_DOCKER] = {"docker", RD_CFG_CUSTOM, .help = "how runner containers are run"},
    [RT_SHUTDOWN_GRACE] = {"shutdown_grace", RD_CFG_DURATION, "10m", 0, 24 * 3600000ULL,
                           ROOT(shutdown_grace_ms),
                           .help = "how long a stop waits for busy runners to finish"},
    [RT_INSTANCE] = {"instance", RD_CFG_CUSTOM, "auto", .flags = RD_CFG_OWN_STR,
                     .parse = parse_instance, ROOT(instance),
                     .help = "this runnerd's name in runner names (auto: the hostname)"},
    [RT_LISTEN] = {"listen", RD_CFG_CUSTOM, .flags = RD_CFG_OWN_STR, .parse = parse_listen,
                   ROOT(listen), RD_CFG_POS(rd_config_t, listen_pos),
                   .help = "HOST:PORT for /metrics, /healthz, /status, /webhook"},
    [RT_WEBHOOK_SECRET_FILE] = {"webhook_secret_file", RD_CFG_PATH, ROOT(webhook_secret_file),
                                RD_CFG_POS(rd_config_t, webhook_secret_file_pos),
                                .help = "the webhook's secret (enables POST /webhook)"},
    [RT_CONTROL_SOCKET] = {"control_socket", RD_CFG_CUSTOM, "/run/runnerd/runnerd.sock",
                           .flags = RD_CFG_OWN_STR | RD_CFG_DEF_DOC, .parse = parse_control_socket,
                           ROOT(control_socket),
                           .help = "runnerctl's Unix socket (mode 0660); \"\" for none"},
    [RT_POOLS] = {"pools", RD_CFG_CUSTOM, .help = "the kinds of runner (required)"},
    [RT_TARGETS] = {"targets", RD_CFG_CUSTOM, .help = "the repos and orgs served (required)"},
};
const size_t rd_cfg_nroot_keys = RT_N;

static void load_tree(rd_cfg_ctx_t *c, const rd_ynode_t *root)
{
    rd_config_t *cfg = c->cfg;
    const rd_ynode_t *v[RT_N], *k[RT_N];
    static const rd_ynode_t start = {.kind = RD_YNODE_MAP, .line = 1, .col = 1};
    if (root == NULL) {
        rd_cfg_errat(c, &start, "", "the file is empty: github, pools and targets are required");
        return;
    }
    if (!rd_cfg_read_map(c, root, "", rd_cfg_root_keys, RT_N, v, k))
        return;
    parse_github(c, v[RT_GITHUB], root);
    /* host.max_runners is the default of every pool's max_runners: host first. */
    bool host_ok = parse_host(c, v[RT_HOST], root);
    const rd_ynode_t *dv[DK_N], *dk[DK_N];
    rd_cfg_read_section(c, v[RT_DOCKER], v[RT_DOCKER] ? v[RT_DOCKER] : root, "docker",
                        rd_cfg_docker_keys, DK_N, &cfg->docker, NULL, dv, dk);
    /* The top level's own values: shutdown_grace, instance, listen, webhook_secret_file. */
    rd_cfg_read_values(c, root, "", rd_cfg_root_keys, RT_N, cfg, NULL, v, true);
    if (v[RT_WEBHOOK_SECRET_FILE] && v[RT_LISTEN] == NULL)
        rd_cfg_errat(c, v[RT_WEBHOOK_SECRET_FILE], "webhook_secret_file",
                     "needs listen: the webhook is served on the listen address");
    rd_cfg_parse_pools(c, v[RT_POOLS], root, host_ok);
    rd_cfg_parse_targets(c, v[RT_TARGETS], root);
    check_fleet(c, v[RT_INSTANCE], root);
}

/* ------------------------------------------------------------------ entry points */

int rd_config_load_buffer(const char *file, const char *buf, size_t len,
                          const rd_host_facts_t *facts, rd_config_t **out, rd_config_errors_t *errs)
{
    rd_cfg_ctx_t c = {.file = file, .facts = facts, .errs = errs, .nerr_start = errs->n};
    rd_ynode_t *root = NULL;
    rd_yaml_error_t yerr;
    *out = NULL;
    if (rd_yaml_parse(buf, len, &root, &yerr) != RD_OK) {
        rd_config_errors_add(errs, file, yerr.line, yerr.col, "", yerr.reason);
        return RD_EINVAL;
    }
    rd_config_t *cfg = rd_xcalloc(1, sizeof(*cfg));
    cfg->path = rd_xstrdup(file);
    c.cfg = cfg;
    load_tree(&c, root);
    rd_ynode_free(root);
    if (errs->n > c.nerr_start) {
        rd_cfg_sort_errors(errs, c.nerr_start);
        rd_config_free(cfg);
        return RD_EINVAL;
    }
    *out = cfg;
    return RD_OK;
}

/* A secret the I/O shell handed in: wiped, then freed. */
static void free_secret(char **s, size_t len)
{
    if (*s != NULL) {
        explicit_bzero(*s, len);
        free(*s);
        *s = NULL;
    }
}

void rd_config_free(rd_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    rd_github_config_t *g = &cfg->github;
    free_secret(&g->token, g->token ? strlen(g->token) : 0);
    free_secret(&g->private_key_pem, g->private_key_len);
    free_secret(&cfg->webhook_secret, cfg->webhook_secret_len);
    rd_cfg_free_section(rd_cfg_github_keys, GH_N, &cfg->github);
    rd_cfg_free_section(rd_cfg_docker_keys, DK_N, &cfg->docker);
    rd_cfg_free_section(rd_cfg_root_keys, RT_N, cfg);
    for (size_t i = 0; i < cfg->npools; i++)
        rd_cfg_free_section(rd_cfg_pool_keys, rd_cfg_npool_keys, &cfg->pools[i]);
    free(cfg->pools);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        rd_target_t *t = &cfg->targets[i];
        free(t->owner);
        free(t->repo);
        free(t->scope);
        rd_strv_free(t->repos, t->nrepos);
        free(t->pools);
    }
    free(cfg->targets);
    free(cfg);
}
