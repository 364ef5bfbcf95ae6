# The local control plane: etcd, kube-apiserver, kube-controller-manager, kubectl and helm built
# from their Go modules (tests/cluster/go.mod), run on loopback. See tests/cluster/README.md.
.PHONY: tools cluster-up cluster-down cluster-smoke

# Suites that need the control plane add themselves here as well as to TEST_SUITES and run their
# tests through tests/cluster/with-cluster.sh; `make test` then starts one instance for all of
# them and stops it after the last one.
CLUSTER_SUITES += cluster-smoke
TEST_SUITES += cluster-smoke

# One id per top-level make, inherited by the makes that scripts/run-suites.sh starts.
ifndef FMW_RUN_ID
FMW_RUN_ID := $(shell date +%s%N)
endif
export FMW_RUN_ID
export FMW_CLUSTER_SUITES = $(CLUSTER_SUITES)
test: export FMW_RUN_SUITES = $(TEST_SUITES)

tools:
	@tests/cluster/tools.sh

cluster-up: tools
	@tests/cluster/up.sh

cluster-down:
	@tests/cluster/down.sh

cluster-smoke: tools
	@tests/cluster/with-cluster.sh cluster-smoke tests/cluster/smoke.sh
