/* scaleset_call.c: fleet mode's HTTP calls to the broker and the per-scope bootstrap
 * (protocol 1.3-1.5, 2): admin calls wait for a fresh admin token (refreshed 60 s before
 * its exp, and once on a 401), message-queue calls carry the session's token. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/log.h"
#include "runnerd/io/http.h"
#include "scaleset_int.h"

#define COMP "fleet"
#define REFRESH_BEFORE_MS 60000 /* P 1.5 */

static int64_t now_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ------------------------------------------------------------------ calls */

void rd_fleet_call_free(call_t *c)
{
    free(c->method);
    free(c->rel);
    free(c->body);
    free(c->url);
    free(c->mq_token);
    free(c);
}

static void tenant_fetch(tenant_t *t);
static void call_send(call_t *c);

void rd_fleet_on_call_done(void *ud, const rd_http_response_t *res)
{
    call_t *c = ud;
    c->req = NULL;
    rd_fleet_t *f = c->f;
    if (res->error == 0 && res->status == 401 && !c->retried && !f->closing &&
        c->mq_token == NULL) {
        /* The admin token was refused: fetch a new one and send once more. */
        c->retried = true;
        free(c->t->token);
        c->t->token = NULL;
        c->next = c->t->waiting;
        c->t->waiting = c;
        tenant_fetch(c->t);
        return;
    }
    int err = res->error;
    if (err == 0 && (res->status < 200 || res->status > 299))
        err = res->status == 404 ? RD_ENOENT : res->status == 409 ? RD_EEXIST : RD_EPROTO;
    c->cb(c->ud, err, res->status, res->body ? res->body : "", res->body_len);
    rd_fleet_call_free(c);
}

static void call_send(call_t *c)
{
    rd_fleet_t *f = c->f;
    char *url = c->url ? rd_xstrdup(c->url) : rd_ss_service_url(c->t->service, c->rel);
    char *auth = rd_xasprintf("Authorization: Bearer %s", c->mq_token ? c->mq_token : c->t->token);
    const char *hdrs[] = {auth, "Content-Type: application/json",
                          "Accept: application/json; api-version=" RD_SS_API_VERSION, NULL};
    int rc = rd_http_request(f->http, c->method, url, hdrs, c->body, c->body ? strlen(c->body) : 0,
                             rd_fleet_on_call_done, c, &c->req);
    memset(auth, 0, strlen(auth));
    free(auth);
    free(url);
    if (rc != 0) {
        c->cb(c->ud, rc, 0, "", 0);
        rd_fleet_call_free(c);
    }
}

/* An admin call on the tenant's service (waits for a fresh admin token). */
void rd_fleet_admin_call(tenant_t *t, const char *method, const char *rel, char *body, call_cb cb,
                         void *ud)
{
    call_t *c = rd_xcalloc(1, sizeof(*c));
    c->f = t->f;
    c->t = t;
    c->method = rd_xstrdup(method);
    c->rel = rd_xstrdup(rel);
    c->body = body;
    c->cb = cb;
    c->ud = ud;
    if (t->token == NULL || t->token_exp_ms - REFRESH_BEFORE_MS < now_ms()) {
        c->next = t->waiting;
        t->waiting = c;
        tenant_fetch(t);
        return;
    }
    call_send(c);
}

/* A call with the session's message-queue token (P 3.4-3.6). */
void rd_fleet_mq_call(fset_t *s, const char *method, char *url, char *body, call_cb cb, void *ud)
{
    call_t *c = rd_xcalloc(1, sizeof(*c));
    c->f = s->f;
    c->t = s->t;
    c->method = rd_xstrdup(method);
    c->url = url;
    c->body = body;
    c->mq_token = rd_xstrdup(s->sess.queue_token);
    c->cb = cb;
    c->ud = ud;
    call_send(c);
}

/* ------------------------------------------------------------------ bootstrap (P 1) */

static void tenant_fail_waiting(tenant_t *t, int err)
{
    call_t *w = t->waiting;
    t->waiting = NULL;
    while (w) {
        call_t *n = w->next;
        w->cb(w->ud, err, 0, "", 0);
        rd_fleet_call_free(w);
        w = n;
    }
}

static void on_registration(void *ud, const rd_http_response_t *res)
{
    tenant_t *t = ud;
    rd_fleet_t *f = t->f;
    t->fetching = false;
    rd_ss_token_t tok;
    int err = res->error;
    if (err == 0 && (res->status < 200 || res->status > 299))
        err = res->status == 401 || res->status == 403 ? RD_EAUTH : RD_EPROTO;
    if (err == 0 && rd_ss_parse_registration(res->body, res->body_len, &tok) != 0)
        err = RD_EPROTO;
    if (err != 0) {
        t->failures++;
        if (err != RD_ECANCELED)
            rd_warn(COMP, "%s: actions/runner-registration failed: %s (HTTP %ld)", t->scope,
                    rd_strerror(err), res->status);
        /* P 1.4: 401/403 on this call are retried (with the callers' backoff). */
        tenant_fail_waiting(t, err == RD_ECANCELED ? err : RD_EAGAIN);
        return;
    }
    rd_log_add_secret(tok.token);
    free(t->token);
    free(t->service);
    t->token = tok.token;
    t->service = tok.url;
    t->token_exp_ms = tok.expires_ms;
    t->failures = 0;
    rd_debug(COMP, "%s: admin token until %" PRId64, t->scope, t->token_exp_ms);
    call_t *w = t->waiting;
    t->waiting = NULL;
    while (w) {
        call_t *n = w->next;
        if (f->closing) {
            w->cb(w->ud, RD_ECANCELED, 0, "", 0);
            rd_fleet_call_free(w);
        } else {
            call_send(w);
        }
        w = n;
    }
}

static void on_reg_token(void *ud, int err, const char *token, int64_t expires_ms)
{
    (void)expires_ms;
    tenant_t *t = ud;
    rd_fleet_t *f = t->f;
    if (err != 0 || f->closing) {
        t->fetching = false;
        t->failures++;
        if (err != RD_ECANCELED)
            rd_warn(COMP, "%s: registration token: %s", t->scope, rd_strerror(err));
        tenant_fail_waiting(t, f->closing ? RD_ECANCELED : RD_EAGAIN);
        return;
    }
    char *url = rd_xasprintf("%s/actions/runner-registration", f->cfg->github.api_url);
    char *auth = rd_xasprintf("Authorization: RemoteAuth %s", token);
    char *body = rd_ss_body_registration(t->config_url);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    int rc =
        rd_http_request(f->http, "POST", url, hdrs, body, strlen(body), on_registration, t, NULL);
    memset(auth, 0, strlen(auth));
    free(auth);
    free(url);
    free(body);
    if (rc != 0) {
        t->fetching = false;
        tenant_fail_waiting(t, RD_EAGAIN);
    }
}

static void tenant_fetch(tenant_t *t)
{
    if (t->fetching)
        return;
    t->fetching = true;
    int rc = rd_github_registration_token(t->f->gh, t->scope, on_reg_token, t);
    if (rc != 0) {
        t->fetching = false;
        tenant_fail_waiting(t, RD_EAGAIN);
    }
}

tenant_t *rd_fleet_tenant_for(rd_fleet_t *f, const rd_target_t *tg)
{
    for (tenant_t *t = f->tenants; t; t = t->next)
        if (strcmp(t->scope, tg->scope) == 0)
            return t;
    tenant_t *t = rd_xcalloc(1, sizeof(*t));
    t->f = f;
    t->scope = rd_xstrdup(tg->scope);
    t->config_url = rd_ss_config_url(f->cfg->github.web_url, tg);
    t->next = f->tenants;
    f->tenants = t;
    return t;
}
