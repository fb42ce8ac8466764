/* supervisor_reg.c: the supervisor's side of GitHub (see supervisor_int.h): runner
 * groups and generate-jitconfig for a start, registration deletes with their retries,
 * registrations that may exist without a runner (lost JIT answers, given-up deletes,
 * a previous run's leftovers), and reconciliation: each scope's runner list fed into
 * the runners' state machines, and stops that wait for a fresh list. */
#include "supervisor_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/log.h"

static void delete_cb(void *ud, int err);
static void retry_later(sup_runner_t *r);
static void jit_cb(void *ud, int err, int64_t runner_id, const char *encoded_jit);
static void suspect_add_until(sup_t *s, const char *scope, int64_t until);

ticket_t *rd_sup_ticket_new(sup_t *s, ticket_kind_t kind, uint64_t key, const char *scope)
{
    ticket_t *t = rd_xcalloc(1, sizeof *t);
    t->sup = s;
    t->kind = kind;
    t->key = key;
    t->scope = scope ? rd_xstrdup(scope) : NULL;
    t->sent_ms = rd_sup_now_wall();
    t->next = s->tickets;
    if (s->tickets)
        s->tickets->prev = t;
    s->tickets = t;
    return t;
}

/* Unlink and free; returns the supervisor it belonged to (NULL when detached by close). */
sup_t *rd_sup_ticket_end(ticket_t *t)
{
    sup_t *s = t->sup;
    if (s) {
        if (t->prev)
            t->prev->next = t->next;
        else
            s->tickets = t->next;
        if (t->next)
            t->next->prev = t->prev;
    }
    free(t->scope);
    free(t->name);
    free(t);
    return s;
}

void rd_sup_delete_reg(sup_runner_t *r)
{
    sup_t *s = r->sup;
    ticket_t *t = rd_sup_ticket_new(s, TK_DELETE, r->key, r->scope);
    int rc = sup_reg_delete(s, r->scope, r->m.runner_id, delete_cb, t);
    if (rc != 0) {
        rd_sup_ticket_end(t);
        /* Same path as a failed answer, but from the loop. */
        r->delete_attempts++;
        retry_later(r);
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    sup_runner_t *r = rd_container_of(t, sup_runner_t, t_retry);
    if (r->done || !r->m.deleting)
        return;
    sup_t *s = r->sup;
    bool late = s->draining && rd_sup_now_wall() >= s->drain_giveup_ms;
    if (r->delete_attempts >= DELETE_ATTEMPTS || late) {
        rd_error(COMP,
                 "%s: giving up deleting runner registration %" PRId64 " after %u attempts; "
                 "the next start deletes it once GitHub shows it offline",
                 r->name, r->m.runner_id, r->delete_attempts);
        rd_sup_suspect_add(s, r->scope);
        rd_sup_feed(r, RD_REV_DELETED, 0);
        return;
    }
    rd_sup_delete_reg(r);
}

static void retry_later(sup_runner_t *r)
{
    uint64_t d = 1000ull << (r->delete_attempts < 6 ? r->delete_attempts : 6);
    if (d > 60000)
        d = 60000;
    d = d / 2 + rd_sup_rnd(r->sup) % (d / 2 + 1);
    uint64_t at = (uint64_t)rd_github_retry_at(r->sup->gh, r->scope);
    uint64_t now = (uint64_t)rd_sup_now_wall();
    if (at > now && at - now > d)
        d = at - now;
    /* Shutting down: keep trying often, but only until the drain gives up. */
    if (r->sup->draining && d > 2000)
        d = 2000;
    uv_timer_start(&r->t_retry, on_retry_timer, d, 0);
}

static void delete_cb(void *ud, int err)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = rd_sup_ticket_end(t);
    if (s == NULL)
        return;
    sup_runner_t *r = rd_sup_find_key(s, key);
    if (r == NULL)
        return;
    if (err == 0 || err == RD_ENOENT) {
        rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r), "%s: runner registration %" PRId64 " %s", r->name,
                r->m.runner_id, err == 0 ? "deleted" : "already gone");
        rd_sup_feed(r, RD_REV_DELETED, 0);
        return;
    }
    r->delete_attempts++;
    rd_log(err == RD_EBUSY ? RD_LOG_INFO : RD_LOG_WARN, COMP,
           "%s: deleting runner registration %" PRId64 " failed: %s%s; retrying", r->name,
           r->m.runner_id, rd_strerror(err), err == RD_EBUSY ? " (still running a job)" : "");
    retry_later(r);
}

static void register_jit(sup_runner_t *r, int64_t group_id)
{
    sup_t *s = r->sup;
    const rd_pool_t *pool = rd_pool_ref_cfg(r->pool);
    if (pool == NULL) {
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    ticket_t *t = rd_sup_ticket_new(s, TK_JIT, r->key, r->scope);
    int rc = sup_reg_claims(s, r->scope)
                 ? s->reg.generate_jit(s->reg.ud, r->scope, pool->name, r->name, jit_cb, t)
                 : rd_github_generate_jitconfig(s->gh, r->scope, r->name,
                                                (const char *const *)pool->labels, pool->nlabels,
                                                group_id, jit_cb, t);
    if (rc != 0) {
        rd_sup_ticket_end(t);
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: cannot register: %s", r->name, rd_strerror(rc));
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
    }
}

/* A failed generate-jitconfig after which the registration may exist anyway: the
 * transfer failed or timed out, a 5xx, an unreadable answer, or 409 (the name is
 * taken: an earlier attempt did make it). Refusals (401/403/404/422), rate-limit
 * holds and cancellations made nothing. */
static bool jit_maybe_made(int err)
{
    return err == RD_EIO || err == RD_EPROTO || err == RD_EEXIST || err == 0;
}

static void jit_cb(void *ud, int err, int64_t runner_id, const char *encoded_jit)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = t->sup;
    char *scope = t->scope ? rd_xstrdup(t->scope) : NULL;
    rd_sup_ticket_end(t);
    if (s == NULL) {
        free(scope);
        return;
    }
    sup_runner_t *r = rd_sup_find_key(s, key);
    if (r == NULL) {
        if (err == 0)
            rd_sup_orphan_delete(s, scope, runner_id, NULL);
        free(scope);
        return;
    }
    free(scope);
    if (err != 0 || encoded_jit == NULL) {
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: generate-jitconfig failed: %s", r->name,
                rd_strerror(err ? err : RD_EPROTO));
        if (jit_maybe_made(err)) {
            /* GitHub may have made it (the answer was lost, or came after the timeout;
             * a 409 says the name exists). Read the scope's runner list for a while:
             * list_cb deletes registrations of ours that no runner tracks once offline. */
            rd_logc(RD_LOG_INFO, COMP, SUP_CTX(r),
                    "%s: the registration may exist on GitHub; looking for it to delete it",
                    r->name);
            suspect_add_until(s, r->scope, rd_sup_now_wall() + JIT_LOST_WATCH_MS);
        }
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    /* The log redactor already knows this secret (github.c registers it). */
    r->registered_ms = rd_sup_now_wall();
    rd_logc(RD_LOG_DEBUG, COMP, SUP_CTX(r),
            "%s: registered as runner %" PRId64 " after %" PRId64 " ms", r->name, runner_id,
            r->registered_ms - r->m.created_ms);
    r->jit = encoded_jit;
    free(r->jit_copy);
    r->jit_copy = rd_xstrdup(encoded_jit);
    rd_sup_feed(r, RD_REV_REGISTERED, runner_id);
    r->jit = NULL;
}

static void group_cb(void *ud, int err, int64_t group_id)
{
    ticket_t *t = ud;
    uint64_t key = t->key;
    sup_t *s = rd_sup_ticket_end(t);
    if (s == NULL)
        return;
    sup_runner_t *r = rd_sup_find_key(s, key);
    if (r == NULL)
        return;
    if (err != 0) {
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: runner group '%s' of %s: %s", r->name, r->group,
                r->scope, rd_strerror(err));
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    s->groups = rd_xrealloc(s->groups, (s->ngroups + 1) * sizeof *s->groups);
    s->groups[s->ngroups].scope = rd_xstrdup(r->scope);
    s->groups[s->ngroups].group = rd_xstrdup(r->group);
    s->groups[s->ngroups].id = group_id;
    s->ngroups++;
    if (r->m.stop_requested) {
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
        return;
    }
    register_jit(r, group_id);
}

void rd_sup_register_runner(sup_runner_t *r)
{
    sup_t *s = r->sup;
    if (strncmp(r->scope, "orgs/", 5) != 0 || sup_reg_claims(s, r->scope)) {
        register_jit(r, 1);
        return;
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        if (strcmp(s->groups[i].scope, r->scope) == 0 &&
            strcmp(s->groups[i].group, r->group) == 0) {
            register_jit(r, s->groups[i].id);
            return;
        }
    }
    ticket_t *t = rd_sup_ticket_new(s, TK_GROUP, r->key, r->scope);
    int rc = rd_github_runner_group_id(s->gh, r->scope, r->group, group_cb, t);
    if (rc != 0) {
        rd_sup_ticket_end(t);
        rd_logc(RD_LOG_WARN, COMP, SUP_CTX(r), "%s: cannot look up runner group: %s", r->name,
                rd_strerror(rc));
        rd_sup_feed(r, RD_REV_REGISTER_FAILED, 0);
    }
}

static void orphan_delete_cb(void *ud, int err)
{
    ticket_t *t = ud;
    if (err == 0 || err == RD_ENOENT)
        rd_info(COMP, "deleted runner registration %s in %s", t->name ? t->name : "?", t->scope);
    else
        rd_warn(COMP, "deleting runner registration %s in %s failed: %s", t->name ? t->name : "?",
                t->scope, rd_strerror(err));
    rd_sup_ticket_end(t);
}

void rd_sup_orphan_delete(sup_t *s, const char *scope, int64_t runner_id, const char *name)
{
    ticket_t *t = rd_sup_ticket_new(s, TK_ORPHAN_DELETE, 0, scope);
    t->name = name ? rd_xstrdup(name) : rd_xasprintf("id %" PRId64, runner_id);
    if (sup_reg_delete(s, scope, runner_id, orphan_delete_cb, t) != 0) {
        rd_warn(COMP, "cannot delete runner registration %s in %s", t->name, scope);
        rd_sup_ticket_end(t);
    }
}

/* A scope whose runner list is read on every reconcile until it shows no
 * registration of ours that no runner tracks, and not before `until` (0: no
 * minimum; a registration GitHub may still be making needs one). */
static void suspect_add_until(sup_t *s, const char *scope, int64_t until)
{
    for (size_t i = 0; i < s->nsuspects; i++) {
        if (strcmp(s->suspects[i], scope) == 0) {
            if (until > s->suspect_until[i])
                s->suspect_until[i] = until;
            return;
        }
    }
    s->suspects = rd_xrealloc(s->suspects, (s->nsuspects + 1) * sizeof *s->suspects);
    s->suspect_until = rd_xrealloc(s->suspect_until, (s->nsuspects + 1) * sizeof *s->suspect_until);
    s->suspect_until[s->nsuspects] = until;
    s->suspects[s->nsuspects++] = rd_xstrdup(scope);
}

void rd_sup_suspect_add(sup_t *s, const char *scope)
{
    suspect_add_until(s, scope, 0);
}

static void suspect_remove(sup_t *s, const char *scope)
{
    for (size_t i = 0; i < s->nsuspects; i++) {
        if (strcmp(s->suspects[i], scope) == 0) {
            if (s->suspect_until[i] > rd_sup_now_wall())
                return;
            free(s->suspects[i]);
            s->nsuspects--;
            s->suspects[i] = s->suspects[s->nsuspects];
            s->suspect_until[i] = s->suspect_until[s->nsuspects];
            return;
        }
    }
}

static void list_cb(void *ud, int err, const rd_gh_runners_t *list)
{
    ticket_t *t = ud;
    sup_t *s = t->sup;
    char *scope = t->scope;
    int64_t sent = t->sent_ms;
    t->scope = NULL;
    rd_sup_ticket_end(t);
    if (s == NULL) {
        free(scope);
        return;
    }
    for (size_t i = 0; i < s->nlisting; i++) {
        if (strcmp(s->listing[i], scope) == 0) {
            free(s->listing[i]);
            s->listing[i] = s->listing[--s->nlisting];
            break;
        }
    }
    if (err != 0) {
        rd_debug(COMP, "listing runners of %s: %s", scope, rd_strerror(err));
        free(scope);
        return;
    }
    sup_runner_t *next;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        if (strcmp(r->scope, scope) != 0 || r->m.runner_id == 0 || r->m.registering ||
            r->registered_ms > sent)
            continue;
        const rd_gh_runner_t *g = NULL;
        for (size_t i = 0; i < list->n && !g; i++)
            if (list->v[i].id == r->m.runner_id)
                g = &list->v[i];
        r->gh_seen = true;
        if (g == NULL)
            rd_sup_feed(r, RD_REV_GH_ABSENT, 0);
        else if (g->online && g->busy)
            rd_sup_feed(r, RD_REV_GH_BUSY, 0);
        else if (g->online)
            rd_sup_feed(r, RD_REV_GH_ONLINE, 0);
        else
            rd_sup_feed(r, RD_REV_GH_OFFLINE, 0);
    }
    bool again = false;
    for (sup_runner_t *r = s->runners; r; r = next) {
        next = r->next;
        if (!r->stop_after_list || strcmp(r->scope, scope) != 0)
            continue;
        if (sent < r->stop_asked_ms) {
            again = true; /* this list may predate a job it took: ask again */
            continue;
        }
        r->stop_after_list = false;
        rd_sup_feed(r, RD_REV_STOP, 0); /* no-op for the busy ones: they finish their job */
    }
    if (again)
        rd_sup_list_scope(s, scope);
    /* Registrations of this instance that no runner here tracks and that GitHub shows
     * offline and idle were left by a previous run: a container that died mid-job while
     * the daemon restarted was still busy on GitHub when the start-up sweep looked. */
    const char **pools = rd_xcalloc(s->cfg->npools + 1, sizeof *pools);
    for (size_t i = 0; i < s->cfg->npools; i++)
        pools[i] = s->cfg->pools[i].name;
    bool untracked_online = false;
    for (size_t k = 0; k < list->n; k++) {
        const rd_gh_runner_t *g = &list->v[k];
        if (g->name == NULL || rd_sup_find_name(s, g->name) != NULL ||
            !rd_dockerargv_owns_name(g->name, s->cfg->instance, pools, s->cfg->npools))
            continue;
        if (g->online || g->busy) {
            untracked_online = true; /* GitHub has not noticed yet: look again later */
            continue;
        }
        rd_info(COMP, "deleting offline registration %s (id %" PRId64 ") in %s: no runner", g->name,
                g->id, scope);
        rd_sup_orphan_delete(s, scope, g->id, g->name);
    }
    free(pools);
    if (!untracked_online)
        suspect_remove(s, scope);
    if (s->draining) {
        /* Now that busy runners show as busy, stop the others (see rd_supervisor_drain). */
        for (sup_runner_t *r = s->runners; r; r = next) {
            next = r->next;
            if (strcmp(r->scope, scope) == 0 && r->registered_ms <= sent)
                rd_sup_feed(r, RD_REV_STOP, 0);
        }
    }
    free(scope);
}

/* List the runners of one scope unless a list of it is in flight. */
void rd_sup_list_scope(sup_t *s, const char *scope)
{
    for (size_t i = 0; i < s->nlisting; i++)
        if (strcmp(s->listing[i], scope) == 0)
            return;
    ticket_t *t = rd_sup_ticket_new(s, TK_LIST, 0, scope);
    if (sup_reg_list(s, scope, list_cb, t) != 0) {
        rd_sup_ticket_end(t);
        return;
    }
    s->listing = rd_xrealloc(s->listing, (s->nlisting + 1) * sizeof *s->listing);
    s->listing[s->nlisting++] = rd_xstrdup(scope);
}

void rd_supervisor_reconcile(rd_supervisor_t *s)
{
    if (s->closing || s->opt.read_only)
        return;
    for (sup_runner_t *r = s->runners; r; r = r->next) {
        if (r->m.runner_id == 0 || r->m.state == RD_RUNNER_EXITED)
            continue;
        rd_sup_list_scope(s, r->scope);
    }
    for (size_t k = 0; k < s->nsuspects; k++) {
        const char *scope = s->suspects[k];
        bool busy = false;
        for (size_t i = 0; i < s->nlisting && !busy; i++)
            busy = strcmp(s->listing[i], scope) == 0;
        if (busy)
            continue;
        ticket_t *t = rd_sup_ticket_new(s, TK_LIST, 0, scope);
        if (sup_reg_list(s, scope, list_cb, t) != 0) {
            rd_sup_ticket_end(t);
            continue;
        }
        s->listing = rd_xrealloc(s->listing, (s->nlisting + 1) * sizeof *s->listing);
        s->listing[s->nlisting++] = rd_xstrdup(scope);
    }
}

void rd_sup_on_reconcile_timer(uv_timer_t *t)
{
    rd_supervisor_reconcile(rd_container_of(t, sup_t, t_reconcile));
}

bool sup_reg_claims(const sup_t *s, const char *scope)
{
    return s->reg.claims != NULL && s->reg.claims(s->reg.ud, scope);
}

int sup_reg_delete(sup_t *s, const char *scope, int64_t id, rd_github_done_cb cb, void *ud)
{
    if (sup_reg_claims(s, scope))
        return s->reg.delete_runner(s->reg.ud, scope, id, cb, ud);
    return rd_github_delete_runner(s->gh, scope, id, cb, ud);
}

int sup_reg_list(sup_t *s, const char *scope, rd_github_runners_cb cb, void *ud)
{
    if (sup_reg_claims(s, scope))
        return s->reg.list_runners(s->reg.ud, scope, cb, ud);
    return rd_github_list_runners(s->gh, scope, cb, ud);
}

void rd_supervisor_set_registry(rd_supervisor_t *s, const rd_supervisor_registry_t *reg)
{
    if (reg != NULL)
        s->reg = *reg;
    else
        memset(&s->reg, 0, sizeof(s->reg));
}
