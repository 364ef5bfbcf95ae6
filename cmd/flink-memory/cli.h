/* The commands of flink-memory that live in files of their own. */
#ifndef FMW_CLI_H
#define FMW_CLI_H

#include "pkg/admission/admission.h"

/* Exit codes shared by every command. */
#define FMW_CLI_EXIT_REJECTED 1 /* Flink rejects a configuration, or audit found disagreement */
#define FMW_CLI_EXIT_USAGE    2 /* bad usage, an unreadable file, an API server that failed */

/* Prints "flink-memory[ CMD]: message" and, when `help` is set, "(see 'HELP')" on stderr;
 * returns FMW_CLI_EXIT_USAGE. */
int fmw_cli_error(const char *cmd, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* flink-memory audit (argv[0] is "audit"). */
int fmw_cli_audit(int argc, char **argv);

#endif
