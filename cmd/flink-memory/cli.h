/* The commands of flink-memory that live in files of their own. */
#ifndef FMW_CLI_H
#define FMW_CLI_H

#include "pkg/admission/admission.h"

/* Exit codes shared by every command. */
#define FMW_CLI_EXIT_REJECTED 1 /* Flink rejects a configuration, or audit found disagreement */
#define FMW_CLI_EXIT_USAGE    2 /* bad usage, an unreadable file, an API server that failed */

/* flink-memory audit (argv[0] is "audit"). */
int fmw_cli_audit(int argc, char **argv);

#endif
