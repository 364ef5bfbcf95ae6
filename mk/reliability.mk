# Reliability suites (issue 7): hostile input against the running webhook, faults on the local
# control plane, and a soak benchmark.
#
#   make hostile   the hostile-input catalogue (tests/hostile) against build/bin's webhook with a
#                  loopback stub API; `make asan` runs it again against the sanitized build
#   make faults    API server stopped and slowed, ConfigMap churn, cert rotation, SIGTERM and
#                  SIGKILL under load, a connection flood (tests/faults; needs the control plane)
#   make soak      SOAK_MINUTES (30) at SOAK_RATE (100) reviews/s; RSS drift and errors
#                  (bench, not CI)
.PHONY: hostile faults soak

hostile: all pydeps
	python3 -m pytest -q tests/hostile

CLUSTER_SUITES += faults
faults: all pydeps tools
	@tests/cluster/with-cluster.sh faults python3 -m pytest -q tests/faults

SOAK_MINUTES ?= 30
SOAK_RATE    ?= 100
soak: all pydeps
	python3 tests/faults/soak.py --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

TEST_SUITES += hostile faults
