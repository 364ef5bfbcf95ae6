/*
 * The oracle through the built CLI: a case that Flink's jars resolved, replayed as a user runs
 * it: its files written into a real conf dir, `flink-memory resolve --conf-dir DIR -D k=v ...
 * --env NAME=VALUE --role R --legacy-heap-as T --output json` run as a child process, and its
 * JSON compared with Flink's result. This covers what the in-process replay never reaches: the
 * choice of file in the dir (both files in 1.19/1.20), reading it from disk, splitting -D and
 * --env, the defaults the CLI fills in, and the JSON it prints.
 */
#ifndef FMW_ORACLE_CLI_H
#define FMW_ORACLE_CLI_H

#include "pkg/base/base.h"

#include <jansson.h>
#include <stdbool.h>

struct oracle_cli {
    const char *path; /* the flink-memory binary */
    char dir[256];    /* a scratch directory of ours: conf/ and the child's stderr */
    size_t run;       /* cases run through the binary */
    size_t skipped;   /* cases it cannot be given (a NUL byte in an argument) */
};

/* Makes the scratch directory; false (with a message on stderr) when it cannot. */
bool oracle_cli_init(struct oracle_cli *cli, const char *path);
void oracle_cli_cleanup(struct oracle_cli *cli);

/*
 * Runs case `c` through the binary and compares. True when it agrees with Flink's "result" (or
 * the case was skipped: cli->skipped counts it); otherwise appends why to `why`.
 */
bool oracle_cli_same(struct oracle_cli *cli, json_t *c, struct fmw_buf *why);

/*
 * Appends "<prefix><key>: <a_label> A, <b_label> B" to `why`, each value as compact JSON
 * ("(absent)" for NULL). Both the binary's replay and the unit-test data check report so.
 */
void oracle_json_differs(struct fmw_buf *why, const char *prefix, const char *key,
                         const char *a_label, json_t *a, const char *b_label, json_t *b);

#endif
