/*
 * pkg/flinkconf: Flink configuration as the JobManager sees it — the legacy flink-conf.yaml line
 * format, standard config.yaml (YAML 1.2 Core schema, flattened to dotted keys), "-D" dynamic
 * properties on top, and typed getters that fail with Flink's exact texts.
 *
 * The two file parsers take a text of `len` bytes, which may be NULL when `len` is 0 (an empty
 * file): either reads it as an empty configuration, as Flink does.
 *
 * Values keep the Java type Flink's loader gives them, because Flink converts a value by calling
 * toString() on it: the YAML int 0x10 reads as the size "16", the YAML float 1e3 as "1000.0".
 */
#ifndef FMW_FLINKCONF_H
#define FMW_FLINKCONF_H

#include "pkg/base/base.h"

enum fmw_conf_type {
    FMW_CONF_STRING, /* legacy file, -D, quoted or block YAML scalars */
    FMW_CONF_INT,    /* YAML int (Integer, Long or BigInteger in Java) */
    FMW_CONF_FLOAT,  /* YAML float (Java Double) */
    FMW_CONF_BOOL,   /* YAML bool */
    FMW_CONF_LIST    /* YAML sequence (kept as its Java toString text) */
};

struct fmw_conf_entry {
    char *key;
    char *text; /* Java toString() of the value */
    enum fmw_conf_type type;
    double number; /* FMW_CONF_FLOAT: the Java double */
};

/* Caps on what one configuration may hold: ConfigMaps are user input. */
#define FMW_CONF_MAX_ENTRIES 20000
#define FMW_CONF_MAX_TEXT    (4u << 20)
#define FMW_CONF_MAX_DEPTH   64

struct fmw_conf {
    struct fmw_conf_entry *entries;
    size_t len;
    size_t alloc;
    /* Hash index of the keys (open addressing, entry index + 1, 0 = empty): a linear search made
     * a ConfigMap of 20000 keys cost seconds of CPU per admission. Private to conf.c. */
    size_t *slots;
    size_t nslots;
    /* Legacy-format lines that Flink skips with a WARN (kept for explain output). */
    struct fmw_buf warnings;
};

void fmw_conf_init(struct fmw_conf *conf);
void fmw_conf_cleanup(struct fmw_conf *conf);
/* A deep copy of `src` into an initialised, empty `dst`. */
FMW_NODISCARD enum fmw_err fmw_conf_copy(struct fmw_conf *dst, const struct fmw_conf *src);

/* Sets `key` (replacing an existing value in place, as later entries win in Flink). */
FMW_NODISCARD enum fmw_err fmw_conf_set(struct fmw_conf *conf, struct fmw_str key,
                                        struct fmw_str text, enum fmw_conf_type type,
                                        double number);
const struct fmw_conf_entry *fmw_conf_get(const struct fmw_conf *conf, const char *key);
bool fmw_conf_has(const struct fmw_conf *conf, const char *key);

/*
 * Legacy flink-conf.yaml (GlobalConfiguration's line parser): cut at the first '#', trim, split
 * at the first ": ", last duplicate wins, values kept verbatim (quotes included). Never fails on
 * content; skipped lines are noted in conf->warnings. FMW_ETOOBIG past the caps.
 */
FMW_NODISCARD enum fmw_err fmw_conf_parse_legacy(struct fmw_conf *conf, const char *text,
                                                 size_t len, struct fmw_diag *d);

/*
 * Standard config.yaml (Flink 1.19+): one YAML document whose root is a mapping, flattened with
 * '.'; duplicate keys, null values, several documents or a non-mapping root fail with FMW_EINVAL
 * and Flink's text "Error parsing YAML configuration." (line/column of the cause in `d`). When
 * `detail` is non-NULL, a human explanation of the failure is appended to it.
 */
FMW_NODISCARD enum fmw_err fmw_conf_parse_yaml(struct fmw_conf *conf, const char *text, size_t len,
                                               struct fmw_diag *d, struct fmw_buf *detail);

/*
 * One dynamic property as the scripts pass it after "-D": "key=value" split at the first '='
 * (a token without '=' sets the key to "true", as commons-cli does). Values are strings.
 */
FMW_NODISCARD enum fmw_err fmw_conf_apply_dynamic(struct fmw_conf *conf, struct fmw_str property);

/*
 * Typed getters. Each returns FMW_OK with `*present` false and the default when the key is
 * absent. Failures carry Flink's text in `d`:
 *  - memory sizes: FMW_ECONFIG "Cannot read memory size from config option '<key>'."
 *    (the parse error, Flink's cause, is returned in `cause` when non-NULL);
 *  - float/bool/int: FMW_EINVAL "Could not parse value '<raw>' for key '<key>'."
 */
FMW_NODISCARD enum fmw_err fmw_conf_get_memsize(const struct fmw_conf *conf, const char *key,
                                                uint64_t dflt, uint64_t *out, bool *present,
                                                struct fmw_diag *d, struct fmw_diag *cause);
FMW_NODISCARD enum fmw_err fmw_conf_get_float(const struct fmw_conf *conf, const char *key,
                                              float dflt, float *out, bool *present,
                                              struct fmw_diag *d);
FMW_NODISCARD enum fmw_err fmw_conf_get_double(const struct fmw_conf *conf, const char *key,
                                               double dflt, double *out, bool *present,
                                               struct fmw_diag *d);
FMW_NODISCARD enum fmw_err fmw_conf_get_bool(const struct fmw_conf *conf, const char *key,
                                             bool dflt, bool *out, bool *present,
                                             struct fmw_diag *d);
FMW_NODISCARD enum fmw_err fmw_conf_get_int(const struct fmw_conf *conf, const char *key,
                                            int32_t dflt, int32_t *out, bool *present,
                                            struct fmw_diag *d);

#endif
