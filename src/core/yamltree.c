/* yamltree.c: build a position-keeping node tree from libyaml's event stream. */
#include "yamltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "runnerd/core/common.h"

/* Deeper nesting than any config needs is refused, so that a hostile file cannot
 * make the (recursive) free or the validator run out of stack. */
#define RD_YAML_MAX_DEPTH 64

typedef struct {
    rd_ynode_t *node;
    rd_ynode_t *pending_key; /* mappings: a key waiting for its value */
} frame_t;

static rd_ynode_t *node_new(rd_ynode_kind_t kind, const yaml_mark_t *mark)
{
    rd_ynode_t *n = rd_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    return n;
}

void rd_ynode_free(rd_ynode_t *node)
{
    if (node == NULL)
        return;
    switch (node->kind) {
    case RD_YNODE_SCALAR:
        free(node->u.scalar.s);
        break;
    case RD_YNODE_SEQ:
        for (size_t i = 0; i < node->u.seq.n; i++)
            rd_ynode_free(node->u.seq.v[i]);
        free(node->u.seq.v);
        break;
    case RD_YNODE_MAP:
        for (size_t i = 0; i < node->u.map.n; i++) {
            rd_ynode_free(node->u.map.v[i].key);
            rd_ynode_free(node->u.map.v[i].value);
        }
        free(node->u.map.v);
        break;
    }
    free(node);
}

bool rd_ynode_is_null(const rd_ynode_t *node)
{
    if (node == NULL)
        return true;
    if (node->kind != RD_YNODE_SCALAR || node->u.scalar.quoted)
        return false;
    const char *s = node->u.scalar.s;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *rd_ynode_kind_name(const rd_ynode_t *node)
{
    if (rd_ynode_is_null(node))
        return "null";
    switch (node->kind) {
    case RD_YNODE_SCALAR:
        return "a string";
    case RD_YNODE_SEQ:
        return "a list";
    case RD_YNODE_MAP:
        return "a mapping";
    }
    return "?";
}

/* Hang CHILD under the innermost open collection, or make it the root. */
static void attach(frame_t *stack, size_t depth, rd_ynode_t **root, rd_ynode_t *child)
{
    if (depth == 0) {
        *root = child;
        return;
    }
    frame_t *f = &stack[depth - 1];
    rd_ynode_t *p = f->node;
    if (p->kind == RD_YNODE_SEQ) {
        p->u.seq.v = rd_xrealloc(p->u.seq.v, (p->u.seq.n + 1) * sizeof(*p->u.seq.v));
        p->u.seq.v[p->u.seq.n++] = child;
    } else if (f->pending_key == NULL) {
        f->pending_key = child;
    } else {
        p->u.map.v = rd_xrealloc(p->u.map.v, (p->u.map.n + 1) * sizeof(*p->u.map.v));
        p->u.map.v[p->u.map.n].key = f->pending_key;
        p->u.map.v[p->u.map.n].value = child;
        p->u.map.n++;
        f->pending_key = NULL;
    }
}

static void set_error(rd_yaml_error_t *err, const yaml_mark_t *mark, const char *fmt, const char *a,
                      const char *b)
{
    err->line = (int)mark->line + 1;
    err->col = (int)mark->column + 1;
    snprintf(err->reason, sizeof(err->reason), fmt, a ? a : "", b ? b : "");
}

/* Turn libyaml's problem into a message; a tab where a token should start is the
 * one mistake everybody makes, so it gets words of its own. */
static void parser_error(const yaml_parser_t *p, const char *buf, size_t len, rd_yaml_error_t *err)
{
    const yaml_mark_t *mark = &p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a line: find the line ourselves. */
        yaml_mark_t m = {0, 0, 0};
        size_t off = p->problem_offset < len ? p->problem_offset : len;
        for (size_t i = 0; i < off; i++) {
            if (buf[i] == '\n') {
                m.line++;
                m.column = 0;
            } else {
                m.column++;
            }
        }
        set_error(err, &m, "YAML syntax error: %s%s", p->problem ? p->problem : "unreadable input",
                  "");
        return;
    }
    if (mark->index < len && buf[mark->index] == '\t' && p->problem != NULL &&
        strstr(p->problem, "cannot start any token") != NULL) {
        set_error(err, mark, "YAML syntax error: tab character; indent with spaces%s%s", "", "");
        return;
    }
    if (p->context != NULL)
        set_error(err, mark, "YAML syntax error: %s (%s)", p->problem ? p->problem : "invalid",
                  p->context);
    else
        set_error(err, mark, "YAML syntax error: %s%s", p->problem ? p->problem : "invalid", "");
}

int rd_yaml_parse(const char *buf, size_t len, rd_ynode_t **out, rd_yaml_error_t *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    frame_t stack[RD_YAML_MAX_DEPTH];
    size_t depth = 0;
    rd_ynode_t *root = NULL;
    int ndocs = 0;
    int rc = RD_EINVAL;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    if (!yaml_parser_initialize(&parser))
        rd_fatal("runnerd: out of memory initialising the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(&parser, buf, len, err);
            goto fail;
        }
        yaml_event_type_t type = ev.type;
        switch (type) {
        case YAML_STREAM_START_EVENT:
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                set_error(err, &ev.start_mark, "only one YAML document is allowed%s%s", "", "");
                yaml_event_delete(&ev);
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            set_error(err, &ev.start_mark, "YAML aliases (*%s) are not supported%s",
                      (const char *)ev.data.alias.anchor, "");
            yaml_event_delete(&ev);
            goto fail;
        case YAML_SCALAR_EVENT: {
            rd_ynode_t *n = node_new(RD_YNODE_SCALAR, &ev.start_mark);
            n->u.scalar.len = ev.data.scalar.length;
            n->u.scalar.s = rd_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->u.scalar.quoted =
                ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !ev.data.scalar.plain_implicit;
            attach(stack, depth, &root, n);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (depth == RD_YAML_MAX_DEPTH) {
                set_error(err, &ev.start_mark, "nesting deeper than 64 levels%s%s", "", "");
                yaml_event_delete(&ev);
                goto fail;
            }
            rd_ynode_t *n = node_new(
                type == YAML_SEQUENCE_START_EVENT ? RD_YNODE_SEQ : RD_YNODE_MAP, &ev.start_mark);
            attach(stack, depth, &root, n);
            stack[depth].node = n;
            stack[depth].pending_key = NULL;
            depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        case YAML_NO_EVENT:
            break;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    *out = root;
    root = NULL;
    rc = RD_OK;
fail:
    /* Keys still waiting for a value hang off no node yet: free them here. */
    for (size_t i = 0; i < depth; i++)
        rd_ynode_free(stack[i].pending_key);
    rd_ynode_free(root);
    yaml_parser_delete(&parser);
    return rc;
}
