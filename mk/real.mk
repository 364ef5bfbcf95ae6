# Cases that start for real (tests/real/): the admission corpus's patched JobManager and TaskManager
# pods started with Flink's own release scripts (from PyPI's pyflink packages, cached outside the
# repository under ~/.cache/flink-memory-webhook/pyflink, or FLINK_REAL_CACHE) in private mount, UTS and PID
# namespaces, no container engine; the entrypoint's arguments parsed and its configuration loaded
# by Flink's own classes (tests/real/ParseArgs.java, compiled into the same cache); the JVM's final
# flags compared with the webhook's annotation.
# Needs root. REAL_START_CASES=a,b runs only the named cases; REAL_START_JOBS=N starts N at once
# (default 2).
.PHONY: real-start
TEST_SUITES += real-start

real-start: all pydeps
	@tests/real/deps.sh
	python3 -m pytest -q -rfEsxX tests/real
