/* supervisor_adopt.c: restart adoption (see supervisor.h, rd_supervisor_adopt): list
 * this instance's containers, remove dead ones, inspect the running ones for their
 * start time, read every scope's runner list, adopt what runs and delete offline
 * registrations of this instance that have no container. */
#include "supervisor_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"
#include "runnerd/core/dockerargv.h"
#include "runnerd/core/log.h"

static void adopt_inspected(sup_t *s);
static void adopt_finish(sup_t *s);

void rd_sup_adopt_free(adopt_t *ad)
{
    for (size_t i = 0; i < ad->n; i++) {
        free(ad->c[i].name);
        free(ad->c[i].pool);
        free(ad->c[i].scope);
    }
    free(ad->c);
    rd_strv_free(ad->scopes, ad->nscopes);
    free(ad);
}

static void adopt_end(sup_t *s, int err)
{
    adopt_t *ad = s->adopt;
    s->adopt = NULL;
    void (*done)(void *, int) = ad->done;
    void *ud = ad->ud;
    rd_sup_adopt_free(ad);
    if (done)
        done(ud, err);
}

int rd_supervisor_adopt(rd_supervisor_t *s, void (*done)(void *ud, int err), void *ud)
{
    if (s->closing || s->adopt)
        return RD_ECANCELED;
    char **argv = NULL;
    int rc = rd_dockerargv_ps(s->cfg->docker.binary, s->cfg->instance, &argv);
    if (rc != 0)
        return rc;
    sup_proc_t *p = rd_sup_proc_spawn(s, PK_PS, 0, "ps", argv, NULL, true);
    if (p == NULL)
        return RD_EIO;
    s->adopt = rd_xcalloc(1, sizeof *s->adopt);
    s->adopt->done = done;
    s->adopt->ud = ud;
    return 0;
}

void rd_sup_adopt_ps_done(sup_t *s, sup_proc_t *p)
{
    adopt_t *ad = s->adopt;
    if (ad == NULL)
        return;
    if (p->term_signal || p->exit_status != 0) {
        if (p->timed_out)
            rd_error(COMP, "restart: docker ps did not answer; adopting nothing yet");
        else if (p->term_signal)
            rd_error(COMP, "restart: docker ps died of signal %d; adopting nothing yet",
                     p->term_signal);
        else
            rd_error(COMP, "restart: docker ps failed (exit %" PRId64 "); adopting nothing yet",
                     p->exit_status);
        adopt_end(s, RD_EIO);
        return;
    }
    rd_containers_t l;
    rd_dockerargv_parse_ps(p->cap ? p->cap : "", p->caplen, &l);
    if (l.rejected)
        rd_warn(COMP, "restart: ignored %zu malformed docker ps lines", l.rejected);
    ad->c = rd_xcalloc(l.n ? l.n : 1, sizeof *ad->c);
    for (size_t i = 0; i < l.n; i++) {
        rd_container_t *c = &l.v[i];
        /* A retried adoption (docker was down at start) also lists our own. */
        if (rd_sup_find_name(s, c->name))
            continue;
        if (c->state != RD_CSTATE_RUNNING) {
            if (s->opt.read_only) {
                rd_info(COMP, "dry run: would remove dead container %s", c->name);
                continue;
            }
            rd_info(COMP, "restart: removing dead container %s", c->name);
            rd_sup_docker_simple(s, PK_RM, 0, c->name);
            continue;
        }
        cand_t *cd = &ad->c[ad->n++];
        cd->name = rd_xstrdup(c->name);
        cd->pool = rd_xstrdup(c->pool);
        cd->scope = rd_xstrdup(c->scope);
        cd->runner_id = c->runner_id;
        cd->gh = RD_GH_UNKNOWN;
    }
    rd_containers_free(&l);
    ad->pending = ad->n;
    for (size_t i = 0; i < ad->n; i++) {
        char **argv = NULL;
        ad->c[i].started_ms = rd_sup_now_wall();
        if (rd_dockerargv_inspect(s->cfg->docker.binary, ad->c[i].name, &argv) != 0) {
            ad->pending--;
            continue;
        }
        sup_proc_t *ip = rd_sup_proc_spawn(s, PK_INSPECT, 0, ad->c[i].name, argv, NULL, true);
        if (ip == NULL)
            ad->pending--;
        else
            ip->index = i;
    }
    if (ad->pending == 0)
        adopt_inspected(s);
}

void rd_sup_adopt_inspect_done(sup_t *s, sup_proc_t *p)
{
    adopt_t *ad = s->adopt;
    if (ad == NULL || p->index >= ad->n)
        return;
    int64_t ms = 0;
    if (p->exit_status == 0 && p->cap &&
        rd_dockerargv_parse_started_at(p->cap, p->caplen, &ms) == 0)
        ad->c[p->index].started_ms = ms;
    else
        rd_warn(COMP, "restart: no start time for %s; timing it from now", ad->c[p->index].name);
    if (--ad->pending == 0)
        adopt_inspected(s);
}

static void adopt_list_cb(void *ud, int err, const rd_gh_runners_t *list)
{
    ticket_t *t = ud;
    sup_t *s = t->sup;
    char *scope = t->scope;
    t->scope = NULL;
    rd_sup_ticket_end(t);
    if (s == NULL || s->adopt == NULL) {
        free(scope);
        return;
    }
    adopt_t *ad = s->adopt;
    if (err != 0) {
        rd_warn(COMP, "restart: cannot list runners of %s: %s", scope, rd_strerror(err));
    } else {
        for (size_t i = 0; i < ad->n; i++) {
            cand_t *cd = &ad->c[i];
            if (strcmp(cd->scope, scope) != 0)
                continue;
            const rd_gh_runner_t *g = NULL;
            for (size_t k = 0; k < list->n && !g; k++)
                if ((cd->runner_id && list->v[k].id == cd->runner_id) ||
                    (list->v[k].name && strcmp(list->v[k].name, cd->name) == 0))
                    g = &list->v[k];
            cd->gh = g == NULL   ? RD_GH_ABSENT
                     : g->online ? (g->busy ? RD_GH_ONLINE_BUSY : RD_GH_ONLINE_IDLE)
                                 : RD_GH_OFFLINE;
            if (g && cd->runner_id == 0)
                cd->runner_id = g->id;
        }
        const char **pools = rd_xcalloc(s->cfg->npools + ad->n + 1, sizeof *pools);
        size_t np = 0;
        for (size_t i = 0; i < s->cfg->npools; i++)
            pools[np++] = s->cfg->pools[i].name;
        for (size_t i = 0; i < ad->n; i++)
            if (ad->c[i].pool[0])
                pools[np++] = ad->c[i].pool;
        for (size_t k = 0; k < list->n; k++) {
            const rd_gh_runner_t *g = &list->v[k];
            if (g->name == NULL || !rd_dockerargv_owns_name(g->name, s->cfg->instance, pools, np) ||
                rd_sup_find_name(s, g->name))
                continue;
            bool has_container = false;
            for (size_t i = 0; i < ad->n && !has_container; i++)
                has_container = strcmp(ad->c[i].name, g->name) == 0;
            if (has_container || s->opt.read_only)
                continue;
            if (g->online || g->busy) {
                /* No container, yet GitHub has not noticed: delete it once it shows offline
                 * (the periodic listing looks at this scope until then). */
                rd_sup_suspect_add(s, scope);
                continue;
            }
            rd_info(COMP,
                    "restart: deleting offline registration %s (id %" PRId64
                    ") in %s: no container",
                    g->name, g->id, scope);
            rd_sup_orphan_delete(s, scope, g->id, g->name);
        }
        free(pools);
    }
    free(scope);
    if (--ad->pending == 0)
        adopt_finish(s);
}

static void add_scope(adopt_t *ad, const char *scope)
{
    if (scope == NULL || scope[0] == '\0')
        return;
    for (size_t i = 0; i < ad->nscopes; i++)
        if (strcmp(ad->scopes[i], scope) == 0)
            return;
    ad->scopes = rd_xrealloc(ad->scopes, (ad->nscopes + 1) * sizeof *ad->scopes);
    ad->scopes[ad->nscopes++] = rd_xstrdup(scope);
}

static void adopt_inspected(sup_t *s)
{
    adopt_t *ad = s->adopt;
    for (size_t i = 0; i < s->cfg->ntargets; i++)
        add_scope(ad, s->cfg->targets[i].scope);
    for (size_t i = 0; i < ad->n; i++)
        add_scope(ad, ad->c[i].scope);
    ad->pending = ad->nscopes;
    size_t sent = 0;
    for (size_t i = 0; i < ad->nscopes; i++) {
        ticket_t *t = rd_sup_ticket_new(s, TK_ADOPT_LIST, 0, ad->scopes[i]);
        if (sup_reg_list(s, ad->scopes[i], adopt_list_cb, t) != 0) {
            rd_sup_ticket_end(t);
            ad->pending--;
        } else {
            sent++;
        }
    }
    if (sent == 0)
        adopt_finish(s);
}

static void adopt_finish(sup_t *s)
{
    adopt_t *ad = s->adopt;
    int64_t now = rd_sup_now_wall();
    for (size_t i = 0; i < ad->n; i++) {
        cand_t *cd = &ad->c[i];
        if (rd_sup_find_name(s, cd->name))
            continue;
        /* The one place a runner's pool and target come from text (the container's
         * labels): claimed by name, so a reload that adds them later pairs with them. */
        sup_runner_t *r = rd_sup_runner_new(
            s, cd->name, rd_idents_target_claim(s->ids, cd->scope[0] ? cd->scope : "?"),
            rd_idents_pool_claim(s->ids, cd->pool));
        r->adopted = true;
        r->gh_seen = cd->gh != RD_GH_UNKNOWN;
        rd_runner_limits_t lim = rd_sup_limits_for(s, r->pool);
        rd_runner_actions_t a;
        rd_runner_adopt(&r->m, &lim, cd->runner_id, cd->started_ms, cd->gh, ADOPT_MIN_STARTUP_MS,
                        now, &a);
        r->adopted_unbusy = r->m.state != RD_RUNNER_BUSY;
        rd_info(COMP, "%s %s (pool %s, scope %s, %s, up %" PRId64 "s)",
                s->opt.read_only ? "dry run: found" : "restart: adopted", r->name, r->pool_name,
                r->scope, rd_runner_state_name(r->m.state), (now - cd->started_ms) / 1000);
        if (s->opt.read_only)
            continue; /* counted as supply and capacity; not supervised */
        rd_sup_apply(r, &a);
        uint64_t key = r->key;
        rd_sup_docker_simple(s, PK_WAIT, key, cd->name);
        r = rd_sup_find_key(s, key);
        if (r && rd_pool_ref_removed(r->pool))
            rd_sup_feed(r, RD_REV_STOP, 0);
    }
    adopt_end(s, 0);
}
