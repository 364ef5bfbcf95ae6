/* YAML manifests as JSON, with the scalar typing of Kubernetes' YAML reader. */
#include "pkg/kube/kube.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_TEXT  (8u << 20)
#define MAX_DEPTH 100
#define MAX_NODES 500000 /* bounds alias expansion */

static bool is_int(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
    }
    return true;
}

static bool is_float(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    bool digits = false, dot = false;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (isdigit((unsigned char)*s))
            digits = true;
        else if (*s == '.' && !dot)
            dot = true;
        else
            return false;
    }
    if (!digits)
        return false;
    if (*s) {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!*s)
            return false;
        for (; *s; s++) {
            if (!isdigit((unsigned char)*s))
                return false;
        }
    }
    return true;
}

static bool word_in(const char *s, const char *const *words)
{
    for (; *words; words++) {
        if (strcmp(s, *words) == 0)
            return true;
    }
    return false;
}

static json_t *scalar(const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(s) != len)
        return json_stringn(s, len);
    static const char *const NULLS[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const TRUES[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON",  NULL};
    static const char *const FALSES[] = {"false", "False", "FALSE", "no",  "No",
                                         "NO",    "off",   "Off",   "OFF", NULL};
    if (word_in(s, NULLS))
        return json_null();
    if (word_in(s, TRUES))
        return json_true();
    if (word_in(s, FALSES))
        return json_false();
    if (is_int(s)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    if (is_float(s))
        return json_real(strtod(s, NULL));
    return json_stringn(s, len);
}

struct conv {
    yaml_document_t *doc;
    size_t nodes;
};

static json_t *convert(struct conv *c, yaml_node_t *node, int depth)
{
    if (!node || depth > MAX_DEPTH || ++c->nodes > MAX_NODES)
        return NULL;
    if (node->type == YAML_SCALAR_NODE)
        return scalar(node);
    if (node->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             arr && it < node->data.sequence.items.top; it++) {
            json_t *v = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (!v || json_array_append_new(arr, v)) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         obj && p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            json_decref(obj);
            return NULL; /* JSON keys are strings */
        }
        json_t *v = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
        char *key = fmw_str_dup(
            (struct fmw_str){(const char *)k->data.scalar.value, k->data.scalar.length});
        if (!v || !key || json_object_set_new(obj, key, v)) {
            free(key);
            json_decref(obj);
            return NULL;
        }
        free(key);
    }
    return obj;
}

enum fmw_err fmw_kube_yaml_load(const char *text, size_t len, json_t **docs, struct fmw_diag *d)
{
    *docs = NULL;
    if (len > MAX_TEXT)
        return fmw_diag_set(d, FMW_ETOOBIG, "manifest larger than %u bytes", MAX_TEXT);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return FMW_ENOMEM;
    /* libyaml asserts a non-NULL input, which an empty file's text may not have. */
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""),
                                 text ? len : 0);
    json_t *all = json_array();
    enum fmw_err err = all ? FMW_OK : FMW_ENOMEM;
    while (!err) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            if (d) {
                d->line = (int)parser.problem_mark.line + 1;
                d->column = (int)parser.problem_mark.column + 1;
            }
            err = fmw_diag_set(d, FMW_EINVAL, "not YAML: %s (line %d, column %d)",
                               parser.problem ? parser.problem : "syntax error",
                               (int)parser.problem_mark.line + 1,
                               (int)parser.problem_mark.column + 1);
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        struct conv c = {&doc, 0};
        json_t *v = convert(&c, root, 0);
        if (!v)
            err = fmw_diag_set(d, FMW_ETOOBIG,
                               "manifest too large, too deep, or with a "
                               "non-scalar mapping key");
        else if (!json_is_null(v) && json_array_append_new(all, v))
            err = FMW_ENOMEM;
        else if (json_is_null(v))
            json_decref(v);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (err) {
        json_decref(all);
        return err;
    }
    *docs = all;
    return FMW_OK;
}
