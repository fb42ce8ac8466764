/* scaleset_client.h: fleet mode, GitHub's runner scale-set broker (I/O module;
 * DESIGN.md section 5, docs/fleet.md).
 *
 * One scale set per (discovery: scaleset target, pool that serves it), named
 * runnerd-<instance>-<pool>; one message session and one long poll per scale set,
 * on the daemon's loop with its own curl multi (rd_http_t), so long polls never take
 * a connection of the REST client. Assignments start runners through the supervisor
 * (the same docker run path); the supervisor registers them and removes their
 * registrations through the registry this module provides (generatejitconfig, agents
 * API). All calls on the loop thread. */
#ifndef RUNNERD_SCALESET_CLIENT_H
#define RUNNERD_SCALESET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "runnerd/core/config.h"
#include "runnerd/core/scaleset.h"
#include "runnerd/io/github.h"
#include "runnerd/io/supervisor.h"

typedef struct rd_fleet rd_fleet_t;

typedef struct {
    bool dry_run; /* look only: find scale sets, create, poll and start nothing */
    /* The pools' and targets' identities (ident.h), borrowed: the caller applies each
     * reload's config to it before rd_fleet_reconfigure. NULL: the client keeps its own. */
    rd_idents_t *idents;
} rd_fleet_options_t;

/** cfg, gh and sup are borrowed (cfg until the next reconfigure). sup may be NULL (dry run). */
int rd_fleet_new(uv_loop_t *loop, const rd_config_t *cfg, rd_github_t *gh, rd_supervisor_t *sup,
                 const rd_fleet_options_t *opts, rd_fleet_t **out);
/** Whether any target of cfg uses the broker. */
bool rd_fleet_wanted(const rd_config_t *cfg);
/** Start bootstrapping, finding/creating scale sets and polling. */
void rd_fleet_start(rd_fleet_t *f);
/** A reloaded config: new scale sets start, removed ones drain and are deleted once empty. */
void rd_fleet_reconfigure(rd_fleet_t *f, const rd_config_t *cfg);
/** Capacity may have changed (a runner exited, a plan pass ran): start wanted runners,
 * re-advertise. Cheap; call it from every scheduling pass. */
void rd_fleet_kick(rd_fleet_t *f);
/** SIGTERM: advertise 0 and acquire nothing from now on. */
void rd_fleet_drain(rd_fleet_t *f);
/** Delete the sessions (bounded wait), then close everything. closed(ud) once, f freed. */
void rd_fleet_close(rd_fleet_t *f, void (*closed)(void *ud), void *ud);

/** The registry for rd_supervisor_set_registry (valid while f lives). */
const rd_supervisor_registry_t *rd_fleet_registry(rd_fleet_t *f);

typedef struct {
    const char *scope; /* borrowed until the next call into f */
    const char *pool;
    const char *name;     /* runnerd-<instance>-<pool> */
    const char *state;    /* "bootstrap", "finding", "session", "polling", "conflict", "backoff",
                             "draining", "closed", "missing" (dry run: not created yet) */
    int64_t scale_set_id; /* 0 until known */
    int64_t last_message_id;
    int64_t assigned_jobs; /* statistics.totalAssignedJobs */
    int64_t running_jobs;  /* statistics.totalRunningJobs */
    unsigned advertised;   /* last X-ScaleSetMaxCapacity sent */
    uint64_t messages, acquired, conflicts, errors;
    bool healthy; /* the broker answers (no transport error / 5xx streak) */
} rd_fleet_set_status_t;

/** Status per scale set; returns the count (at most max written). */
size_t rd_fleet_status(const rd_fleet_t *f, rd_fleet_set_status_t *out, size_t max);
/** false with a reason when a scale set's broker is unreachable or failing. */
bool rd_fleet_healthy(const rd_fleet_t *f, char *reason, size_t reason_size);
/** /status JSON with a "scale_sets" array added (takes json, returns the new text). */
char *rd_fleet_status_merge(const rd_fleet_t *f, char *json, size_t *len);
/** /metrics text with the runnerd_scaleset_* families appended (takes text). */
char *rd_fleet_metrics_append(const rd_fleet_t *f, char *text, size_t *len);
/** Dry run: one JSON line per scale set: {"scale_set","scope","pool","exists","id",
 * "labels_match"} ("exists": null when the broker could not be asked). */
void rd_fleet_print_dry(const rd_fleet_t *f, FILE *out);
/** Dry run: true once every scale set was looked up (or failed). */
bool rd_fleet_settled(const rd_fleet_t *f);

#endif
