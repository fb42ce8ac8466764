/* github_auth.c: the GitHub client's credentials (see github_int.h).
 *
 * PAT: `token_file` or `token_env` (read with the config), sent as Bearer. GitHub App: a JWT signed
 * with the app's key (reused until a minute before it expires) for /app
 * endpoints, and an installation token per owner (or one for a configured
 * installation id), looked up and fetched on first use, renewed before it
 * expires. Requests waiting for a token are parked on their installation, not
 * sent. Every secret is registered with the log redactor and wiped on free. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "github_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"
#include "runnerd/core/ghurl.h"

/* A token whose expires_at has already passed by this host's clock (clock skew,
 * a proxy) is fresh all the same: it is used this long before another is asked
 * for, doubling while the next ones look expired too, up to the cap. */
#define GH_TOKEN_MIN_USE_MS (60 * 1000)
#define GH_TOKEN_MIN_USE_CAP_MS (30 * 60 * 1000)

/* Installation token per owner (or one shared entry for a configured installation id). */
typedef struct {
    char *key;
    int64_t inst_id;
    char *token;
    int64_t expires_ms;
    int64_t renew_ms;    /* renew from this time on */
    int64_t fetched_ms;  /* when the current token arrived */
    int64_t skew_gap_ms; /* > 0: tokens come back already expired; the gap between fetches */
    bool fetching;
    int last_err;
    int64_t failed_until_ms;
    gh_req_t *waiters_head, *waiters_tail;
} inst_t;

/* ------------------------------------------------------------------ credentials */

/* The credentials were read and checked with the config (rd_config_load_checked
 * in io/configfile.c: token_file or token_env, trimmed, non-empty; the App key's
 * PEM, parsed once there): fresh copies here, so that the config can go. */
int gh_creds_load(const rd_github_config_t *cfg, char **pat, rd_auth_key_t **key)
{
    *pat = NULL;
    *key = NULL;
    if (cfg->app_id > 0 || cfg->client_id != NULL) {
        int rc = cfg->private_key_pem
                     ? rd_auth_key_load(cfg->private_key_pem, cfg->private_key_len, key)
                     : RD_EINVAL;
        if (rc != 0) {
            rd_error(LOGC, "private_key_file %s: not a usable RSA private key: %s",
                     cfg->private_key_file ? cfg->private_key_file : "(unset)", rd_strerror(rc));
            return rc;
        }
        return 0;
    }
    if (cfg->token == NULL || cfg->token[0] == '\0') {
        rd_error(LOGC, "no GitHub token loaded (token_file or token_env)");
        return RD_EINVAL;
    }
    *pat = rd_xstrdup(cfg->token);
    return 0;
}

void gh_creds_set(rd_github_t *gh, const rd_github_config_t *cfg, char *pat, rd_auth_key_t *key)
{
    if (gh->pat) {
        rd_log_forget_secret(gh->pat);
        gh_wipe_free(gh->pat);
    }
    rd_auth_key_free(gh->app_key);
    gh->pat = pat;
    gh->app_key = key;
    if (pat)
        rd_log_add_secret(pat);
    bool app = cfg->app_id > 0 || cfg->client_id != NULL;
    bool same_client = (gh->client_id == NULL) == (cfg->client_id == NULL) &&
                       (gh->client_id == NULL || strcmp(gh->client_id, cfg->client_id) == 0);
    if (gh->installation_id != cfg->installation_id || gh->app_id != cfg->app_id || !same_client ||
        gh->app != app)
        gh_auth_flush(gh);
    gh->app = app;
    gh->app_id = cfg->app_id;
    if (!same_client) {
        free(gh->client_id);
        gh->client_id = cfg->client_id ? rd_xstrdup(cfg->client_id) : NULL;
    }
    gh->installation_id = cfg->installation_id;
    if (gh->jwt) {
        rd_log_forget_secret(gh->jwt);
        gh_wipe_free(gh->jwt);
        gh->jwt = NULL;
    }
}

/* ------------------------------------------------------------------ installations */

static void inst_free(void *p)
{
    inst_t *in = p;
    if (in->token)
        rd_log_forget_secret(in->token);
    gh_wipe_free(in->token);
    free(in->key);
    free(in);
}

static void requeue_waiters(void *val, void *ctx)
{
    inst_t *in = val;
    rd_github_t *gh = ctx;
    gh_req_t *w = in->waiters_head, *next;
    in->waiters_head = in->waiters_tail = NULL;
    for (; w; w = next) {
        next = w->next;
        gh_q_push(gh, w, true);
    }
}

void gh_auth_flush(rd_github_t *gh)
{
    rd_strmap_each(&gh->insts, requeue_waiters, gh);
    rd_strmap_free(&gh->insts, inst_free);
    if (gh->q_head)
        gh_gate_kick(gh);
}

static void cancel_waiters(void *val, void *ctx)
{
    inst_t *in = val;
    rd_github_t *gh = ctx;
    gh_req_t *w = in->waiters_head, *next;
    in->waiters_head = in->waiters_tail = NULL;
    for (; w; w = next) {
        next = w->next;
        gh_req_fail_later(gh, w, RD_ECANCELED);
    }
}

void gh_auth_cancel(rd_github_t *gh)
{
    rd_strmap_each(&gh->insts, cancel_waiters, gh);
}

void gh_auth_free(rd_github_t *gh)
{
    gh_creds_set(gh, &(rd_github_config_t){0}, NULL, NULL);
    rd_strmap_free(&gh->insts, inst_free);
}

static inst_t *inst_for(rd_github_t *gh, const char *owner)
{
    char key[256];
    if (gh->installation_id > 0) {
        snprintf(key, sizeof(key), "#%lld", (long long)gh->installation_id);
    } else {
        snprintf(key, sizeof(key), "%s", owner ? owner : "");
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    inst_t *in = rd_strmap_get(&gh->insts, key);
    if (in == NULL) {
        in = rd_xcalloc(1, sizeof(*in));
        in->key = rd_xstrdup(key);
        in->inst_id = gh->installation_id;
        rd_strmap_put(&gh->insts, key, in);
    }
    return in;
}

void gh_auth_rejected(rd_github_t *gh, gh_req_t *r)
{
    inst_t *in = inst_for(gh, r->owner);
    if (in->token && r->token && strcmp(in->token, r->token) == 0) {
        rd_log_forget_secret(in->token);
        gh_wipe_free(in->token);
        in->token = NULL;
        in->expires_ms = in->renew_ms = 0;
    }
}

/* A JWT for App endpoints, reused until a minute before it expires. */
static const char *app_jwt(rd_github_t *gh)
{
    int64_t now = gh_now_ms();
    if (gh->jwt && gh->jwt_exp_ms - 60000 > now)
        return gh->jwt;
    if (gh->jwt) {
        rd_log_forget_secret(gh->jwt);
        gh_wipe_free(gh->jwt);
        gh->jwt = NULL;
    }
    char *jwt = NULL;
    int64_t exp = 0;
    /* iss: the client ID when one is configured (GitHub: "the client ID or application ID"). */
    int rc = gh->app_key == NULL ? RD_EINVAL
             : gh->client_id
                 ? rd_auth_app_jwt_client(gh->app_key, gh->client_id, now / 1000, &jwt, &exp)
                 : rd_auth_app_jwt(gh->app_key, gh->app_id, now / 1000, &jwt, &exp);
    if (rc != 0) {
        rd_error(LOGC, "cannot sign the GitHub App JWT: %s", rd_strerror(rc));
        return NULL;
    }
    rd_log_add_secret(jwt);
    gh->jwt = jwt;
    gh->jwt_exp_ms = exp * 1000;
    return gh->jwt;
}

static void inst_wake(rd_github_t *gh, inst_t *in, int err)
{
    gh_req_t *w = in->waiters_head, *next;
    in->waiters_head = in->waiters_tail = NULL;
    /* Back to the front of the queue, keeping their order. */
    gh_req_t *rev = NULL;
    for (; w; w = next) {
        next = w->next;
        w->next = rev;
        rev = w;
    }
    for (w = rev; w; w = next) {
        next = w->next;
        if (err != 0)
            gh_req_fail_later(gh, w, err);
        else
            gh_q_push(gh, w, true);
    }
    gh_gate_kick(gh);
}

/* A token or installation request in flight names its installation by key:
 * the installation may be flushed meanwhile (reload), then the answer is dropped. */
typedef struct {
    rd_github_t *gh;
    char *key;
} inst_op_t;

static void inst_op_free(inst_op_t *op)
{
    free(op->key);
    free(op);
}

static void inst_failed(rd_github_t *gh, inst_t *in, int err)
{
    in->fetching = false;
    in->last_err = err;
    /* Do not hammer the token endpoint: retry a failed owner after 30 s. */
    in->failed_until_ms = gh_now_ms() + 30000;
    inst_wake(gh, in, err == RD_ECANCELED ? err : (err == RD_EAGAIN ? RD_EAGAIN : RD_EAUTH));
}

static void on_token(gh_req_t *r, int err, long status, const char *body, size_t len,
                     const char *link)
{
    (void)status;
    (void)link;
    inst_op_t *op = r->ud;
    rd_github_t *gh = op->gh;
    inst_t *in = rd_strmap_get(&gh->insts, op->key);
    inst_op_free(op);
    if (in == NULL)
        return;
    char *tok = NULL;
    int64_t exp = 0;
    if (err == 0 && rd_ghjson_parse_token(body, len, &tok, &exp) != 0)
        err = RD_EPROTO;
    if (err != 0) {
        rd_error(LOGC, "installation %lld: access token request failed: %s", (long long)in->inst_id,
                 rd_strerror(err));
        inst_failed(gh, in, err);
        return;
    }
    rd_log_add_secret(tok);
    if (in->token) {
        rd_log_forget_secret(in->token);
        gh_wipe_free(in->token);
    }
    in->token = tok;
    in->expires_ms = exp;
    int64_t now = gh_now_ms(), life = exp - now;
    in->fetched_ms = now;
    if (life > 0) {
        /* Renew 5 min before expiry, or after 3/4 of a shorter life. */
        int64_t margin = GH_TOKEN_RENEW_MS;
        if (life < 4 * margin)
            margin = life / 4;
        in->renew_ms = exp - margin;
        in->skew_gap_ms = 0;
        rd_info(LOGC, "installation %lld: new access token, expires in %lld s",
                (long long)in->inst_id, (long long)(life / 1000));
    } else {
        /* GitHub just made it, so it is not expired: this host's clock (or a
         * proxy) is off. Renewing "before expiry" would ask again at once, for
         * ever, and never poll. Use it, and ask again later and later. */
        in->skew_gap_ms = in->skew_gap_ms > 0 ? in->skew_gap_ms * 2 : GH_TOKEN_MIN_USE_MS;
        if (in->skew_gap_ms > GH_TOKEN_MIN_USE_CAP_MS)
            in->skew_gap_ms = GH_TOKEN_MIN_USE_CAP_MS;
        in->renew_ms = now + in->skew_gap_ms;
        rd_warn(LOGC,
                "installation %lld: the new access token's expires_at is %lld s in the past by "
                "this host's clock (clock skew or a proxy?); using it for %lld s before asking "
                "for another",
                (long long)in->inst_id, (long long)(-life / 1000),
                (long long)(in->skew_gap_ms / 1000));
    }
    in->fetching = false;
    in->last_err = 0;
    inst_wake(gh, in, 0);
}

static void token_request(rd_github_t *gh, inst_t *in)
{
    char *url = rd_xasprintf("%s/app/installations/%lld/access_tokens", gh->api_url,
                             (long long)in->inst_id);
    inst_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->key = rd_xstrdup(in->key);
    gh_req_t *r = gh_req_new(gh, "POST", url, NULL, NULL, AUTH_JWT, on_token, op);
    free(url);
    gh_q_push(gh, r, true);
    gh_gate_kick(gh);
}

static void on_installation(gh_req_t *r, int err, long status, const char *body, size_t len,
                            const char *link)
{
    (void)status;
    (void)link;
    inst_op_t *op = r->ud;
    rd_github_t *gh = op->gh;
    inst_t *in = rd_strmap_get(&gh->insts, op->key);
    inst_op_free(op);
    if (in == NULL)
        return;
    int64_t id = 0;
    char *acct = NULL;
    if (err == 0 && rd_ghjson_parse_installation(body, len, &id, &acct) != 0)
        err = RD_EPROTO;
    free(acct);
    if (err != 0) {
        rd_error(LOGC, "no GitHub App installation found for %s: %s", in->key, rd_strerror(err));
        inst_failed(gh, in, err);
        return;
    }
    in->inst_id = id;
    token_request(gh, in);
}

/* Look up the installation (unless known) and fetch a token. scope_hint
 * "repos/O/R" uses the repository's installation endpoint (works for user
 * accounts too), else the org's. */
static void inst_fetch(rd_github_t *gh, inst_t *in, const char *scope_hint)
{
    in->fetching = true;
    if (in->inst_id > 0) {
        token_request(gh, in);
        return;
    }
    char *url;
    if (scope_hint && strncmp(scope_hint, "repos/", 6) == 0)
        url = rd_xasprintf("%s/%s/installation", gh->api_url, scope_hint);
    else {
        char *o = rd_ghurl_seg(in->key);
        url = rd_xasprintf("%s/orgs/%s/installation", gh->api_url, o);
        free(o);
    }
    inst_op_t *op = rd_xcalloc(1, sizeof(*op));
    op->gh = gh;
    op->key = rd_xstrdup(in->key);
    gh_req_t *r = gh_req_new(gh, "GET", url, NULL, NULL, AUTH_JWT, on_installation, op);
    r->priority = true;
    free(url);
    gh_q_push(gh, r, true);
    gh_gate_kick(gh);
}

const char *gh_auth_for(rd_github_t *gh, gh_req_t *r, int *err)
{
    *err = 0;
    if (r->auth == AUTH_NONE)
        return NULL;
    if (r->auth == AUTH_JWT) {
        const char *j = app_jwt(gh);
        if (j == NULL)
            *err = RD_EAUTH;
        return j;
    }
    if (!gh->app)
        return gh->pat;
    inst_t *in = inst_for(gh, r->owner);
    int64_t now = gh_now_ms();
    if (in->token && now < in->renew_ms)
        return in->token;
    if (!in->fetching && in->failed_until_ms > now) {
        *err = in->last_err == RD_EAGAIN ? RD_EAGAIN : RD_EAUTH;
        return NULL;
    }
    if (!in->fetching && in->skew_gap_ms > 0 && now < in->fetched_ms + in->skew_gap_ms) {
        /* Tokens come back looking expired and GitHub refused this one (401):
         * asking again at once would loop; wait out the gap. */
        *err = RD_EAGAIN;
        return NULL;
    }
    /* Park r on the owner's waiters and fetch (once). */
    r->next = NULL;
    r->prev = NULL;
    if (in->waiters_tail)
        in->waiters_tail->next = r;
    else
        in->waiters_head = r;
    in->waiters_tail = r;
    if (!in->fetching)
        inst_fetch(gh, in, r->scope);
    return NULL;
}
