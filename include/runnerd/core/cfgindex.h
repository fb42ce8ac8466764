/* cfgindex.h: hash indexes over one loaded config (pure): which target serves
 * a repository, which target has a scope. Built once per config (start and
 * each reload) so that a poll result or a delivery costs O(1) instead of a scan
 * of every target (issue 14: with 5,000 repo targets the scans were most of a
 * cycle's CPU). Answers exactly as rd_config_target_for_repo does. */
#ifndef RUNNERD_CFGINDEX_H
#define RUNNERD_CFGINDEX_H

#include "runnerd/core/config.h"

typedef struct rd_cfgindex rd_cfgindex_t;

/** Index cfg (borrowed: it must outlive the index). */
rd_cfgindex_t *rd_cfgindex_new(const rd_config_t *cfg);
void rd_cfgindex_free(rd_cfgindex_t *x);
/** rd_config_target_for_repo(cfg, full_name), in O(1). */
int rd_cfgindex_target_for_repo(const rd_cfgindex_t *x, const char *full_name);
/** The target whose scope ("repos/O/R", "orgs/O") this is, or -1. */
int rd_cfgindex_target_by_scope(const rd_cfgindex_t *x, const char *scope);

#endif
