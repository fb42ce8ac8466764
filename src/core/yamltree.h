/* yamltree.h: libyaml events -> a small node tree that keeps the line and
 * column of every node (like h2o's yoml), so that the config validator can
 * name the exact place of every problem.
 *
 * Only what runnerd's configuration needs: scalars, sequences and mappings of
 * one document. Anchors and aliases are refused (an alias would give one node
 * two positions, and a config of this size does not need them). */
#ifndef RUNNERD_YAMLTREE_H
#define RUNNERD_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { RD_YNODE_SCALAR = 0, RD_YNODE_SEQ, RD_YNODE_MAP } rd_ynode_kind_t;

typedef struct rd_ynode rd_ynode_t;

typedef struct {
    rd_ynode_t *key;
    rd_ynode_t *value;
} rd_ypair_t;

struct rd_ynode {
    rd_ynode_kind_t kind;
    int line; /* 1-based */
    int col;  /* 1-based */
    union {
        struct {
            char *s;     /* NUL-terminated copy of the scalar text */
            size_t len;  /* may contain NULs from escapes; s[len] == '\0' */
            bool quoted; /* single/double quoted or block (| >): never null */
        } scalar;
        struct {
            rd_ynode_t **v;
            size_t n;
        } seq;
        struct {
            rd_ypair_t *v;
            size_t n;
        } map;
    } u;
};

/* A syntax error: libyaml's problem and where it was seen (1-based). */
typedef struct {
    int line;
    int col;
    char reason[256];
} rd_yaml_error_t;

/**
 * Parse one YAML document from BUF. Returns 0 and sets *out (NULL for an
 * empty document); on a syntax error returns RD_EINVAL and fills *err.
 */
int rd_yaml_parse(const char *buf, size_t len, rd_ynode_t **out, rd_yaml_error_t *err);

/** Free a tree (NULL is fine). */
void rd_ynode_free(rd_ynode_t *node);

/** True for a plain scalar spelled as YAML's null ("", "~", "null", "Null", "NULL"). */
bool rd_ynode_is_null(const rd_ynode_t *node);

/** "a string", "a list", "a mapping" or "null", for type errors. */
const char *rd_ynode_kind_name(const rd_ynode_t *node);

#endif
