/* scaleset_cap.c: request bodies, URLs and the capacity arithmetic of fleet mode
 * (pure; see scaleset.h and DESIGN.md section 5). */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/scaleset.h"

/* CPU counts are compared with this slack, as sched.c does. */
#define CPU_EPS 1e-9

static char *to_text(json_object *o)
{
    /* No "\/" escapes: URLs go out as written (P 1.4: HTML escaping disabled). */
    char *s = rd_xstrdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

char *rd_ss_body_registration(const char *config_url)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "url", json_object_new_string(config_url));
    json_object_object_add(o, "runner_event", json_object_new_string("register"));
    return to_text(o);
}

char *rd_ss_body_scale_set(const char *name, int64_t group_id, const char *const *labels,
                           size_t nlabels)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "runnerGroupId", json_object_new_int64(group_id));
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < nlabels; i++) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, "name", json_object_new_string(labels[i]));
        json_object_object_add(l, "type", json_object_new_string("System"));
        json_object_array_add(arr, l);
    }
    json_object_object_add(o, "labels", arr);
    /* P 3.2: the odd capital R; ephemeral JIT runners that never self-update. */
    json_object *rs = json_object_new_object();
    json_object_object_add(rs, "ephemeral", json_object_new_boolean(1));
    json_object_object_add(rs, "disableUpdate", json_object_new_boolean(1));
    json_object_object_add(o, "RunnerSetting", rs);
    return to_text(o);
}

char *rd_ss_body_session(const char *owner)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ownerName", json_object_new_string(owner));
    return to_text(o);
}

char *rd_ss_body_jit(const char *runner_name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(runner_name));
    json_object_object_add(o, "workFolder", json_object_new_string("_work"));
    return to_text(o);
}

char *rd_ss_body_acquire(const int64_t *ids, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int64(ids[i]));
    return to_text(a);
}

char *rd_ss_service_url(const char *base, const char *rel)
{
    size_t n = strlen(base);
    const char *slash = (n > 0 && base[n - 1] == '/') || rel[0] == '/' ? "" : "/";
    if (n > 0 && base[n - 1] == '/' && rel[0] == '/')
        rel++;
    const char *sep = strchr(rel, '?') ? "&" : "?";
    if (strstr(rel, "api-version=") != NULL)
        return rd_xasprintf("%s%s%s", base, slash, rel);
    return rd_xasprintf("%s%s%s%sapi-version=%s", base, slash, rel, sep, RD_SS_API_VERSION);
}

char *rd_ss_poll_url(const char *queue_url, int64_t last_message_id)
{
    if (last_message_id <= 0)
        return rd_xstrdup(queue_url);
    const char *sep = strchr(queue_url, '?') ? "&" : "?";
    return rd_xasprintf("%s%slastMessageId=%lld", queue_url, sep, (long long)last_message_id);
}

char *rd_ss_ack_url(const char *queue_url, int64_t message_id)
{
    const char *q = strchr(queue_url, '?');
    size_t plen = q ? (size_t)(q - queue_url) : strlen(queue_url);
    while (plen > 0 && queue_url[plen - 1] == '/')
        plen--;
    return rd_xasprintf("%.*s/%lld%s", (int)plen, queue_url, (long long)message_id, q ? q : "");
}

char *rd_ss_web_url(const char *api_url)
{
    const char *p = strstr(api_url, "://");
    if (p == NULL)
        return rd_xstrdup(api_url);
    size_t scheme = (size_t)(p - api_url) + 3;
    const char *host = api_url + scheme;
    size_t n = strlen(api_url);
    while (n > scheme && api_url[n - 1] == '/')
        n--;
    /* HOST/api/v3 -> HOST (GHES, P 1.1) */
    if (n >= scheme + 7 && strncmp(api_url + n - 7, "/api/v3", 7) == 0)
        return rd_xasprintf("%.*s", (int)(n - 7), api_url);
    /* api.HOST -> HOST (github.com, *.ghe.com) */
    const char *slash = memchr(host, '/', n - scheme);
    if (strncmp(host, "api.", 4) == 0 && slash == NULL)
        return rd_xasprintf("%.*s%.*s", (int)scheme, api_url, (int)(n - scheme - 4), host + 4);
    return rd_xasprintf("%.*s", (int)n, api_url);
}

char *rd_ss_config_url(const char *web_url, const rd_target_t *t)
{
    size_t n = strlen(web_url);
    while (n > 0 && web_url[n - 1] == '/')
        n--;
    if (t->kind == RD_TARGET_ORG)
        return rd_xasprintf("%.*s/%s", (int)n, web_url, t->owner);
    return rd_xasprintf("%.*s/%s/%s", (int)n, web_url, t->owner, t->repo);
}

char *rd_ss_set_name(const char *instance, const char *pool)
{
    return rd_xasprintf("runnerd-%s-%s", instance, pool);
}

unsigned rd_ss_room(const rd_host_config_t *host, const rd_pool_t *pools, size_t npools,
                    size_t pool, const rd_sched_runner_t *runners, size_t nrunners, bool draining)
{
    if (draining || pool >= npools)
        return 0;
    const rd_pool_t *p = &pools[pool];
    unsigned in_pool = 0, on_host = 0;
    double cpus = 0;
    uint64_t mem = 0, gpus = 0;
    for (size_t i = 0; i < nrunners; i++) {
        on_host++;
        in_pool += runners[i].pool == pool;
        cpus += runners[i].cpus;
        mem += runners[i].memory;
        gpus += runners[i].gpus;
    }
    if (in_pool >= p->max_runners || on_host >= host->max_runners)
        return 0;
    unsigned room = p->max_runners - in_pool;
    if (host->max_runners - on_host < room)
        room = host->max_runners - on_host;
    double fc = host->cpus - cpus + CPU_EPS;
    unsigned by_cpu = fc <= 0 ? 0 : (unsigned)fmin(floor(fc / p->cpus), (double)room);
    if (by_cpu < room)
        room = by_cpu;
    uint64_t by_mem = mem >= host->memory ? 0 : (host->memory - mem) / p->memory;
    if (by_mem < room)
        room = (unsigned)by_mem;
    if (p->gpus > 0) {
        uint64_t by_gpu = gpus >= host->gpus ? 0 : (host->gpus - gpus) / p->gpus;
        if (by_gpu < room)
            room = (unsigned)by_gpu;
    }
    return room;
}

unsigned rd_ss_advertise(const rd_ss_cap_input_t *in)
{
    if (in->stopping)
        return 0;
    return in->live + in->room;
}

unsigned rd_ss_acquire_count(const rd_ss_cap_input_t *in, size_t offered)
{
    if (in->stopping || in->room <= in->pending)
        return 0;
    unsigned free_now = in->room - in->pending;
    return offered < free_now ? (unsigned)offered : free_now;
}

unsigned rd_ss_wanted(const rd_pool_t *pool, const rd_ss_cap_input_t *in)
{
    if (in->stopping)
        return 0;
    int64_t want = (int64_t)pool->min_idle + (in->total_assigned > 0 ? in->total_assigned : 0);
    return want > (int64_t)pool->max_runners ? pool->max_runners : (unsigned)want;
}

unsigned rd_ss_starts(const rd_pool_t *pool, const rd_ss_cap_input_t *in)
{
    unsigned want = rd_ss_wanted(pool, in);
    if (want <= in->live)
        return 0;
    unsigned s = want - in->live;
    return s < in->room ? s : in->room;
}

unsigned rd_ss_surplus(const rd_pool_t *pool, const rd_ss_cap_input_t *in)
{
    unsigned want = rd_ss_wanted(pool, in);
    unsigned idle = in->live > in->busy ? in->live - in->busy : 0;
    unsigned want_idle = want > in->busy ? want - in->busy : 0;
    return idle > want_idle ? idle - want_idle : 0;
}
