/* config_int.h: what the config loader's files share (not for other modules).
 *
 * The loader is cut by concern:
 *   config.c         the schema (one table row per key) and the top-level sections
 *   config_pools.c   pools and targets, and their cross-checks
 *   config_read.c    errors, the node readers (one per value type) and the table walk
 *   config_units.c   durations, sizes, architectures, names, and their formatting
 *   config_summary.c lookups (pool index, target of a repo, pool fit), --check-config summary
 *
 * A key is one row of an rd_cfg_key_t table: its name, value type, default (as
 * written in the file), range, one line of help and the field it fills.
 * rd_cfg_read_section() reads a mapping against such a table: unknown and
 * duplicate keys, wrong types, out-of-range values are reported with the node's
 * position; absent keys get their default; rd_cfg_free_section() frees what it
 * allocated. Keys whose value needs more than a type check name a parse hook. */
#ifndef RUNNERD_CONFIG_INT_H
#define RUNNERD_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"
#include "yamltree.h"

/* Key paths and messages are cut short when absurdly long (a 300-character
 * unknown key); that is fine, so gcc's truncation warning is off in the loader. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define RD_CFG_GIB (1024ULL * 1024 * 1024)
#define RD_CFG_MIB (1024ULL * 1024)

#define RD_MAX_LABELS 100
#define RD_MAX_NAME 40     /* pool names */
#define RD_MAX_INSTANCE 32 /* instance */

typedef struct {
    const char *file;
    const rd_host_facts_t *facts;
    rd_config_errors_t *errs;
    size_t nerr_start;
    rd_config_t *cfg;
} rd_cfg_ctx_t;

/* Nodes of one pool kept for the cross-checks. */
typedef struct {
    const rd_ynode_t *node, *name, *labels, *cpus, *memory, *memory_swap, *gpus, *platform,
        *min_idle;
    const rd_ynode_t *arch_label; /* the label item that named the arch */
    rd_arch_t label_arch, platform_arch;
    bool ok_name;
} rd_cfg_pool_aux_t;

/* Value types of a key. */
typedef enum {
    RD_CFG_STR,      /* char *: non-empty, no control characters (+ check) */
    RD_CFG_PATH,     /* char *: a string, relative to the config file's folder */
    RD_CFG_UINT,     /* unsigned or uint64_t/int64_t (size 4 or 8), min..max */
    RD_CFG_DURATION, /* uint64_t ms, min..max */
    RD_CFG_SIZE,     /* uint64_t bytes, at least min */
    RD_CFG_CPUS,     /* double, > 0, 3 decimals */
    RD_CFG_ENUM,     /* int: index into choices */
    RD_CFG_STRLIST,  /* char ** + size_t count at count_off */
    RD_CFG_CUSTOM,   /* parse hook; also sections read by their own function */
} rd_cfg_type_t;

/* Row flags. */
enum {
    RD_CFG_REQUIRED = 1,    /* "is required" when absent (at the mapping) */
    RD_CFG_ONE_OR_MORE = 2, /* STRLIST: a lone string is a one-item list */
    RD_CFG_DEF_DOC = 4,     /* def only documents a default that code sets */
    RD_CFG_OWN_STR = 8,     /* CUSTOM: the field is a char * the config owns */
    RD_CFG_OWN_STRV = 16,   /* CUSTOM: the field is a char ** of count_off items */
};

typedef struct rd_cfg_key rd_cfg_key_t;

/* A parse hook: read node N (never NULL; for a default, a scalar at the
 * section's position) at key path PATH into OBJ (the section's struct). AUX is
 * what the section function passes along. A refusal is an error added. */
typedef void (*rd_cfg_parse_fn)(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, void *obj,
                                void *aux);

struct rd_cfg_key {
    const char *name;
    rd_cfg_type_t type;
    const char *def; /* default as written in the file; NULL = none (field stays 0/NULL) */
    uint64_t min, max;
    const char *help; /* one line, for docs and `--help` style listings */
    size_t off;       /* the field in the section's struct */
    size_t size;      /* sizeof the field (UINT: 4 or 8) */
    unsigned flags;
    size_t pos_off;   /* 1 + offset of an rd_pos_t field for the value's position; 0 = none */
    size_t count_off; /* STRLIST: the size_t count field */
    const char *const *choices; /* ENUM: NULL-terminated, in enum order */
    /* STR: NULL when S is fine, else the reason (printf format, one %s = S). */
    const char *(*check)(const char *s);
    rd_cfg_parse_fn parse;      /* CUSTOM */
    void (*release)(void *obj); /* CUSTOM: frees what parse allocated (else by flags) */
};

/* Row helpers: the field F of struct T, and its position field. */
#define RD_CFG_FIELD(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define RD_CFG_POS(T, f) .pos_off = offsetof(T, f) + 1

/* The schema, one table per section (config.c). */
extern const rd_cfg_key_t rd_cfg_root_keys[];
extern const size_t rd_cfg_nroot_keys;
extern const rd_cfg_key_t rd_cfg_github_keys[];
extern const size_t rd_cfg_ngithub_keys;
extern const rd_cfg_key_t rd_cfg_host_keys[];
extern const size_t rd_cfg_nhost_keys;
extern const rd_cfg_key_t rd_cfg_docker_keys[];
extern const size_t rd_cfg_ndocker_keys;
extern const rd_cfg_key_t rd_cfg_pool_keys[];
extern const size_t rd_cfg_npool_keys;
extern const rd_cfg_key_t rd_cfg_target_keys[];
extern const size_t rd_cfg_ntarget_keys;

/* config_read.c */
void rd_cfg_errat(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rd_cfg_sort_errors(rd_config_errors_t *errs, size_t from);
void rd_cfg_join(char *buf, size_t len, const char *path, const char *key);
void rd_cfg_join_idx(char *buf, size_t len, const char *path, size_t i);
bool rd_cfg_read_map(rd_cfg_ctx_t *c, const rd_ynode_t *node, const char *path,
                     const rd_cfg_key_t *keys, size_t nkeys, const rd_ynode_t **vals,
                     const rd_ynode_t **knodes);
/**
 * Read mapping NODE (NULL when the section is absent) against KEYS into OBJ:
 * vals[i]/knodes[i] get the value and key nodes of keys[i] (NULL when absent);
 * each present value is read by its type (or hook), each absent one gets its
 * default, positioned at AT for messages. Required keys that are absent are
 * reported. Returns false when NODE is not a mapping or any value was refused.
 */
bool rd_cfg_read_section(rd_cfg_ctx_t *c, const rd_ynode_t *node, const rd_ynode_t *at,
                         const char *path, const rd_cfg_key_t *keys, size_t nkeys, void *obj,
                         void *aux, const rd_ynode_t **vals, const rd_ynode_t **knodes);
/** The values half of rd_cfg_read_section, for a mapping already read with rd_cfg_read_map. */
void rd_cfg_read_values(rd_cfg_ctx_t *c, const rd_ynode_t *at, const char *path,
                        const rd_cfg_key_t *keys, size_t nkeys, void *obj, void *aux,
                        const rd_ynode_t **vals, bool check_required);
/** Free what rd_cfg_read_section allocated into OBJ (strings, lists). */
void rd_cfg_free_section(const rd_cfg_key_t *keys, size_t nkeys, void *obj);
/** Index of the row named NAME in KEYS (for the section functions), or aborts. */
size_t rd_cfg_key_index(const rd_cfg_key_t *keys, size_t nkeys, const char *name);
const char *rd_cfg_scalar(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, const char *what);
char *rd_cfg_get_str(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path);
bool rd_cfg_get_uint(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min,
                     uint64_t max, uint64_t *out);
bool rd_cfg_get_duration(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min_ms,
                         uint64_t max_ms, uint64_t *out);
bool rd_cfg_get_size(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, uint64_t min,
                     uint64_t *out);
bool rd_cfg_get_cpus(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, double *out);
bool rd_cfg_get_strlist(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, bool allow_scalar,
                        char ***out, size_t *nout, const rd_ynode_t ***items_out);
bool rd_cfg_is_auto(const rd_ynode_t *n);
char *rd_cfg_get_path(rd_cfg_ctx_t *c, const rd_ynode_t *n, const char *path, rd_pos_t *pos);

/* config_units.c */
const char *rd_cfg_arch_docker(rd_arch_t a);
void rd_cfg_fmt_duration(uint64_t ms, char *buf, size_t len);
void rd_cfg_fmt_size(uint64_t b, char *buf, size_t len);
void rd_cfg_fmt_cpus(double v, char *buf, size_t len);
bool rd_cfg_label_ok(const char *s, size_t len);
bool rd_cfg_name_ok(const char *s, size_t max);
bool rd_cfg_env_key_ok(const char *s);
bool rd_cfg_token_ok(const char *s);
bool rd_cfg_has_ctl(const char *s);
/**
 * The host of URL ("scheme://[user@]host[:port]/path"): *host points into URL,
 * *len its length ("[::1]" keeps its brackets); *path (if not NULL) the rest
 * from the first '/', '?' or '#' (or the end).
 */
void rd_cfg_url_host(const char *url, const char **host, size_t *len, const char **path);

/* config_pools.c */
void rd_cfg_parse_pools(rd_cfg_ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root, bool host_ok);
void rd_cfg_parse_targets(rd_cfg_ctx_t *c, const rd_ynode_t *n, const rd_ynode_t *root);

#endif
