/* scaleset_int.h: private to scaleset_client.c and scaleset_report.c. */
#ifndef RUNNERD_SCALESET_INT_H
#define RUNNERD_SCALESET_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "runnerd/core/scaleset.h"
#include "runnerd/io/http.h"
#include "runnerd/io/scaleset_client.h"

#define SEEN_MAX 4096 /* JobAvailable ids remembered against redelivery */

typedef struct fleet_tenant tenant_t;
typedef struct fleet_set fset_t;
typedef struct fleet_call call_t;

typedef void (*call_cb)(void *ud, int err, long status, const char *body, size_t len);

struct fleet_call {
    rd_fleet_t *f;
    tenant_t *t;
    char *method, *rel, *body, *url; /* url: absolute (mq calls), else rel on the service */
    char *mq_token;                  /* mq calls: the session token, else admin */
    call_cb cb;
    void *ud;
    bool retried;
    rd_http_req_t *req;
    call_t *next; /* waiting for the tenant's token */
};

struct fleet_tenant {
    rd_fleet_t *f;
    char *scope;
    char *config_url;
    char *service; /* Actions service base, ends in '/' */
    char *token;   /* admin JWT */
    int64_t token_exp_ms;
    bool fetching, failed;
    unsigned failures;
    int64_t retry_at;
    call_t *waiting;
    tenant_t *next;
};

typedef enum {
    SS_IDLE = 0,
    SS_BOOT,
    SS_FINDING,
    SS_SESSION,
    SS_POLLING,
    SS_CONFLICT,
    SS_BACKOFF,
    SS_CLOSED,
    SS_MISSING,
} ss_state_t;

struct fleet_set {
    rd_fleet_t *f;
    tenant_t *t;
    char *scope, *pool, *name;
    /* Held references (ident.h): one scale set per (target, pool) pair of objects. */
    rd_target_ref_t *tref;
    rd_pool_ref_t *pref;
    bool removed;
    ss_state_t state;
    int64_t id, group_id;
    rd_ss_session_t sess;
    bool have_session;
    int64_t last_mid;
    rd_ss_stats_t stats;
    unsigned extra; /* acquired since the last statistics */
    unsigned advertised, poll_adv;
    call_t *poll; /* the long poll in flight */
    int64_t last_repoll_ms;
    unsigned failures;
    bool conflict_logged, healthy, busy_step;
    bool looked, labels_differ; /* dry run: the lookup answered (found, missing or failed) */
    uint64_t messages, acquired, conflicts, errors;
    int64_t seen[SEEN_MAX];
    size_t nseen;
    uv_timer_t timer;
    fset_t *next;
};

struct rd_fleet {
    uv_loop_t *loop;
    const rd_config_t *cfg;
    rd_idents_t *ids; /* opt.idents, or own_ids */
    bool own_ids;
    rd_github_t *gh;
    rd_supervisor_t *sup;
    rd_fleet_options_t opt;
    rd_http_t *http;
    tenant_t *tenants;
    fset_t *sets;
    rd_supervisor_registry_t reg;
    bool draining, closing, finished;
    int open;
    uint64_t rng;
    void (*closed)(void *ud);
    void *closed_ud;
    uv_timer_t t_close;
};

void rd_fleet_admin_call(tenant_t *t, const char *method, const char *rel, char *body, call_cb cb,
                         void *ud);
void rd_fleet_call_free(call_t *c);
void rd_fleet_on_call_done(void *ud, const rd_http_response_t *res);
void rd_fleet_mq_call(fset_t *s, const char *method, char *url, char *body, call_cb cb, void *ud);
tenant_t *rd_fleet_tenant_for(rd_fleet_t *f, const rd_target_t *tg);
fset_t *rd_fleet_set_by(rd_fleet_t *f, const char *scope, const char *pool);
const char *rd_fleet_state_name(int st);
bool rd_fleet_reg_claims(void *ud, const char *scope);
int rd_fleet_reg_jit(void *ud, const char *scope, const char *pool, const char *name,
                     rd_github_jit_cb cb, void *cbud);
int rd_fleet_reg_delete(void *ud, const char *scope, int64_t id, rd_github_done_cb cb, void *cbud);
int rd_fleet_reg_list(void *ud, const char *scope, rd_github_runners_cb cb, void *cbud);

#endif
