# Differential test against real Flink (tests/oracle/): Flink's own jars, fetched by Maven, resolve
# seeded random JobManager and TaskManager memory configurations for every Flink line;
# tests/oracle/runner.c replays them through our resolvers (pkg/jmmem, pkg/tmmem), compares every
# field, and checks pkg/tmmem's unit-test data (tests/data/tmmem-*.json) against the jars too.
# A share of the cases, and every one whose conf dir holds both files, also runs through the built
# flink-memory resolve with a real conf dir (tests/oracle/README.md, "Through the binary";
# ORACLE_CLI_SHARE, default 100: one random case in 100).
#
#   make oracle-data      generate $(ORACLE_DIR)/<line>.jsonl (+ <line>-curated.jsonl), and for
#                         TaskManagers <line>-tm.jsonl (+ -tm-curated.jsonl, -tm-data.jsonl)
#   make oracle           the above, then the C runner over all of them
#   make oracle-vectors ORACLE_VECTORS=FILE   replay a file of test vectors through every line's jars
#
# ORACLE_SEED=N reproduces a run; ORACLE_SEED=random explores a fresh one (printed). `make test`
# uses a fixed seed so that CI is repeatable: fresh seeds still find a rare YAML parser edge case
# now and then (tests/oracle/SPEC-NOTES.md, "Known differences"). ORACLE_CASES (default 10000)
# random cases per line and role, ORACLE_TM_CASES the TaskManager's alone. By default the
# JobManager runs on 10 lines (1.13, 1.14, 1.16 and 1.17 have the same JobManager code) and the
# TaskManager on all 14 (its code changes in those four); ORACLE_LINES=all runs both roles on
# every served line (1.11-1.20, 2.0-2.3), ORACLE_LINES="1.20 2.3" on the named ones (see
# tests/oracle/oracle-data.sh). ORACLE_ROLES=jobmanager (or taskmanager) leaves the other out.
#
# Time (tests/oracle/README.md, "Time and results"): 328 s wall for both roles with 8,709 cases
# through the binary (210 s in process alone, 118 s for the JobManager alone), on 2 cores with
# the jars in ~/.m2. `make test` runs it in full: 10,000 random cases per line and role.

ORACLE_DIR    ?= $(BUILD)/oracle
ORACLE_SEED   ?= 591900469
export ORACLE_SEED
ORACLE_RUNNER := $(BUILD)/tests/oracle-runner

.PHONY: oracle oracle-data oracle-vectors

oracle-data:
	@scripts/install-deps.sh
	@tests/oracle/oracle-data.sh $(ORACLE_DIR)

# The runner's build rule lives in the top-level Makefile; say so clearly if it is missing.
oracle: oracle-data
	@if ! $(MAKE) --no-print-directory -n $(ORACLE_RUNNER) >/dev/null 2>&1; then \
	    echo "oracle: no build rule for $(ORACLE_RUNNER) (tests/oracle/runner.c); data left in $(ORACLE_DIR)"; \
	    exit 1; \
	fi
	@$(MAKE) --no-print-directory $(ORACLE_RUNNER) $(BUILD)/bin/flink-memory
	ORACLE_CLI=$(BUILD)/bin/flink-memory $(ORACLE_RUNNER) $(sort $(wildcard $(ORACLE_DIR)/*.jsonl))

# Self-check: a file of vectors through every line's jars (differences are printed, not fixed).
oracle-vectors:
	@[ -n "$(ORACLE_VECTORS)" ] || { echo "oracle-vectors needs ORACLE_VECTORS=FILE (a JSON file of cases)" >&2; exit 2; }
	@scripts/install-deps.sh
	@tests/oracle/oracle-data.sh $(ORACLE_DIR) --vectors $(ORACLE_VECTORS)

TEST_SUITES += oracle
