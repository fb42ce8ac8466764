/* scaleset_report.c: fleet mode's registry for the supervisor (generatejitconfig, agents
 * API; P 3.7) and its figures for /status, /metrics and /healthz (docs/fleet.md). */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "scaleset_int.h"

#define COMP "fleet"

/* ------------------------------------------------------------------ registry */

bool rd_fleet_reg_claims(void *ud, const char *scope)
{
    return rd_fleet_set_by(ud, scope, NULL) != NULL;
}

typedef struct {
    rd_github_jit_cb jit;
    rd_github_done_cb done;
    rd_github_runners_cb list;
    void *ud;
} reg_op_t;

static void on_jit(void *ud, int err, long status, const char *body, size_t len)
{
    reg_op_t *op = ud;
    rd_ss_agent_t a = {0};
    if (err != 0 && rd_ss_parse_error(body, len) == RD_SS_ERR_AGENT_EXISTS)
        err = RD_EEXIST;
    else if (err == 0 && rd_ss_parse_jit(body, len, &a) != 0)
        err = RD_EPROTO;
    if (err != 0 && err != RD_ECANCELED)
        rd_warn(COMP, "generatejitconfig failed: %s (HTTP %ld)", rd_strerror(err), status);
    if (a.jit)
        rd_log_add_secret(a.jit);
    op->jit(op->ud, err, a.id, a.jit);
    if (a.jit)
        rd_log_forget_secret(a.jit);
    rd_ss_agent_free(&a);
    free(op);
}

int rd_fleet_reg_jit(void *ud, const char *scope, const char *pool, const char *name,
                     rd_github_jit_cb cb, void *cbud)
{
    rd_fleet_t *f = ud;
    fset_t *s = rd_fleet_set_by(f, scope, pool);
    if (s == NULL || s->id == 0 || f->closing)
        return RD_EAGAIN;
    reg_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->jit = cb;
    op->ud = cbud;
    char *rel = rd_xasprintf("_apis/runtime/runnerscalesets/%" PRId64 "/generatejitconfig", s->id);
    rd_fleet_admin_call(s->t, "POST", rel, rd_ss_body_jit(name), on_jit, op);
    free(rel);
    return 0;
}

static void on_agent_deleted(void *ud, int err, long status, const char *body, size_t len)
{
    reg_op_t *op = ud;
    if (status == 400 && rd_ss_parse_error(body, len) == RD_SS_ERR_JOB_RUNNING)
        err = RD_EBUSY; /* P 3.7 */
    op->done(op->ud, err);
    free(op);
}

int rd_fleet_reg_delete(void *ud, const char *scope, int64_t id, rd_github_done_cb cb, void *cbud)
{
    rd_fleet_t *f = ud;
    fset_t *s = rd_fleet_set_by(f, scope, NULL);
    if (s == NULL || f->closing)
        return RD_EAGAIN;
    reg_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->done = cb;
    op->ud = cbud;
    char *rel = rd_xasprintf("_apis/distributedtask/pools/0/agents/%" PRId64, id);
    rd_fleet_admin_call(s->t, "DELETE", rel, NULL, on_agent_deleted, op);
    free(rel);
    return 0;
}

static void on_agents(void *ud, int err, long status, const char *body, size_t len)
{
    (void)status;
    reg_op_t *op = ud;
    rd_ss_agent_t *v = NULL;
    size_t n = 0;
    rd_gh_runners_t list = {0};
    if (err == 0 && rd_ss_parse_agent_list(body, len, &v, &n) != 0)
        err = RD_EPROTO;
    if (err == 0) {
        list.v = rd_xcalloc(n + 1, sizeof(rd_gh_runner_t));
        for (size_t i = 0; i < n; i++) {
            list.v[i].id = v[i].id;
            list.v[i].name = v[i].name;
            list.v[i].online = v[i].online;
            list.v[i].busy = v[i].busy;
        }
        list.n = n;
        list.total_count = (int64_t)n;
    }
    op->list(op->ud, err, err == 0 ? &list : NULL);
    free(list.v);
    rd_ss_agents_free(v, n);
    free(op);
}

int rd_fleet_reg_list(void *ud, const char *scope, rd_github_runners_cb cb, void *cbud)
{
    rd_fleet_t *f = ud;
    fset_t *s = rd_fleet_set_by(f, scope, NULL);
    if (s == NULL || f->closing)
        return RD_EAGAIN;
    reg_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->list = cb;
    op->ud = cbud;
    rd_fleet_admin_call(s->t, "GET", "_apis/distributedtask/pools/0/agents", NULL, on_agents, op);
    return 0;
}

const rd_supervisor_registry_t *rd_fleet_registry(rd_fleet_t *f)
{
    return &f->reg;
}

size_t rd_fleet_status(const rd_fleet_t *f, rd_fleet_set_status_t *out, size_t max)
{
    size_t n = 0;
    for (const fset_t *s = f->sets; s && n < max; s = s->next, n++) {
        rd_fleet_set_status_t *o = &out[n];
        o->scope = s->scope;
        o->pool = s->pool;
        o->name = s->name;
        o->state = f->draining && s->have_session ? "draining" : rd_fleet_state_name(s->state);
        o->scale_set_id = s->id;
        o->last_message_id = s->last_mid;
        o->assigned_jobs = s->stats.assigned;
        o->running_jobs = s->stats.running;
        o->advertised = s->advertised;
        o->messages = s->messages;
        o->acquired = s->acquired;
        o->conflicts = s->conflicts;
        o->errors = s->errors;
        o->healthy = s->healthy;
    }
    return n;
}

bool rd_fleet_healthy(const rd_fleet_t *f, char *reason, size_t reason_size)
{
    for (const fset_t *s = f->sets; s; s = s->next) {
        if (!s->healthy) {
            snprintf(reason, reason_size, "scale-set broker unreachable or failing (%s)", s->name);
            return false;
        }
    }
    return true;
}

char *rd_fleet_status_merge(const rd_fleet_t *f, char *json, size_t *len)
{
    json_object *root = json_tokener_parse(json);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return json;
    }
    json_object *arr = json_object_new_array();
    for (const fset_t *s = f->sets; s; s = s->next) {
        rd_fleet_set_status_t st;
        memset(&st, 0, sizeof(st));
        size_t one = 0;
        for (const fset_t *o = f->sets; o != s; o = o->next)
            one++;
        rd_fleet_set_status_t *all = rd_xcalloc(one + 1, sizeof(*all));
        rd_fleet_status(f, all, one + 1);
        st = all[one];
        free(all);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(st.name));
        json_object_object_add(o, "scope", json_object_new_string(st.scope));
        json_object_object_add(o, "pool", json_object_new_string(st.pool));
        json_object_object_add(o, "id", json_object_new_int64(st.scale_set_id));
        json_object_object_add(o, "session", json_object_new_string(st.state));
        json_object_object_add(o, "assigned_jobs", json_object_new_int64(st.assigned_jobs));
        json_object_object_add(o, "running_jobs", json_object_new_int64(st.running_jobs));
        json_object_object_add(o, "advertised_capacity", json_object_new_int64(st.advertised));
        json_object_object_add(o, "last_message_id", json_object_new_int64(st.last_message_id));
        json_object_object_add(o, "messages", json_object_new_int64((int64_t)st.messages));
        json_object_object_add(o, "acquired", json_object_new_int64((int64_t)st.acquired));
        json_object_object_add(o, "conflicts", json_object_new_int64((int64_t)st.conflicts));
        json_object_object_add(o, "healthy", json_object_new_boolean(st.healthy));
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "scale_sets", arr);
    char *out = rd_xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    free(json);
    *len = strlen(out);
    return out;
}

char *rd_fleet_metrics_append(const rd_fleet_t *f, char *text, size_t *len)
{
    size_t cap = 256;
    for (const fset_t *s = f->sets; s; s = s->next)
        cap += 600 + 6 * strlen(s->name);
    char *add = rd_xmalloc(cap);
    size_t n = 0;
    n += (size_t)snprintf(add + n, cap - n,
                          "# HELP runnerd_scaleset_assigned_jobs statistics.totalAssignedJobs of "
                          "the scale set.\n# TYPE runnerd_scaleset_assigned_jobs gauge\n");
    for (const fset_t *s = f->sets; s; s = s->next)
        n += (size_t)snprintf(add + n, cap - n,
                              "runnerd_scaleset_assigned_jobs{scale_set=\"%s\"} %" PRId64 "\n",
                              s->name, s->stats.assigned);
    n += (size_t)snprintf(add + n, cap - n,
                          "# HELP runnerd_scaleset_advertised_capacity Last "
                          "X-ScaleSetMaxCapacity sent.\n# TYPE "
                          "runnerd_scaleset_advertised_capacity gauge\n");
    for (const fset_t *s = f->sets; s; s = s->next)
        n += (size_t)snprintf(add + n, cap - n,
                              "runnerd_scaleset_advertised_capacity{scale_set=\"%s\"} %u\n",
                              s->name, s->advertised);
    n += (size_t)snprintf(add + n, cap - n,
                          "# HELP runnerd_scaleset_last_message_id Id of the last broker "
                          "message.\n# TYPE runnerd_scaleset_last_message_id gauge\n");
    for (const fset_t *s = f->sets; s; s = s->next)
        n += (size_t)snprintf(add + n, cap - n,
                              "runnerd_scaleset_last_message_id{scale_set=\"%s\"} %" PRId64 "\n",
                              s->name, s->last_mid);
    n += (size_t)snprintf(add + n, cap - n,
                          "# HELP runnerd_scaleset_session_up 1 while the message session is "
                          "open.\n# TYPE runnerd_scaleset_session_up gauge\n");
    for (const fset_t *s = f->sets; s; s = s->next)
        n +=
            (size_t)snprintf(add + n, cap - n, "runnerd_scaleset_session_up{scale_set=\"%s\"} %d\n",
                             s->name, s->have_session ? 1 : 0);
    char *out = rd_xasprintf("%s%s", text, add);
    free(add);
    free(text);
    *len = strlen(out);
    return out;
}
